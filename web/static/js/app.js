// app.js: the test page's UI: form fields (kept in localStorage and
// presettable by URL query), start/stop, media views, data channel, the
// viewer's renegotiation controls, storage controls, quality metrics,
// profiling timeline, live stats chart, timeline, recordings, log and
// diagnostics. Test hooks live on window.kvsTest.
//
// Why one file of about 900 lines: it is the page's controller, and its
// sections (marked "// ----" below) share the page state declared at the
// top (the session, the timers, the samplers, the test hooks) that every
// control reads and writes. What needs none of that state lives in the
// other modules (session.js, signaling.js, filters.js, metrics.js,
// storage.js, player.js, chart.js, log.js), each tested on its own.

import { Logger, copyText } from './log.js';
import { StatsChart, StatsSampler } from './chart.js';
import { Session, createChannel, endpointParams, MEDIA_SERVER } from './session.js';
import { DEFAULT_CODECS, codecMimeTypes } from './filters.js';
import { QualityMeter, renderQuality, renderProfile, stepsToSpans } from './metrics.js';
import { createStream, listStreams, describeStorage, updateStorage, listStorageChannels, joinStorageSession, playbackURL, fetchClip } from './storage.js';
import { Player } from './player.js';

const $ = (id) => document.getElementById(id);

const bool = (def) => ({ type: 'bool', def });
const FIELDS = {
  region: { type: 'text', def: '' }, // '' until the backend's region is known
  endpointType: { type: 'select', def: 'legacy' },
  useFips: bool(false),
  endpoint: { type: 'text', def: '' },
  channelName: { type: 'text', def: 'demo-channel' },
  clientId: { type: 'text', def: '' }, // per tab: sessionStorage
  sendVideo: bool(true),
  sendAudio: bool(true),
  openDataChannel: bool(true),
  receiveMultiTrack: bool(false),
  resolution: { type: 'select', def: '1280x720' },
  streamName: { type: 'text', def: '' },
  retentionHours: { type: 'text', def: '48' },
  ingestMode: { type: 'select', def: 'off' },
  showJoinStorageSession: bool(false),
  showJoinStorageSessionAsViewer: bool(false),
  natTraversal: { type: 'select', def: 'stunTurn' },
  trickleIce: bool(true),
  signalingReconnect: bool(true),
  profilingTimeline: bool(false),
  logLevel: { type: 'select', def: 'info' },
  sendHost: bool(true),
  acceptHost: bool(true),
  sendSrflx: bool(true),
  acceptSrflx: bool(true),
  sendRelay: bool(true),
  acceptRelay: bool(true),
  sendPrflx: bool(true),
  acceptPrflx: bool(true),
  sendUdp: bool(true),
  acceptUdp: bool(true),
  sendTcp: bool(true),
  acceptTcp: bool(true),
  candidateFilter: { type: 'select', def: 'all' },
  turnUdp: bool(true),
  turnTcp: bool(true),
  turnsUdp: bool(true),
  turnsTcp: bool(true),
  turnOneSet: bool(true),
  codecFilter: bool(true),
  codecs: { type: 'text', def: '' }, // '' means DEFAULT_CODECS
  playbackProtocol: { type: 'select', def: 'hls' },
  playbackMode: { type: 'select', def: 'LIVE' },
  containerFormat: { type: 'select', def: 'FRAGMENTED_MP4' },
  playbackPlayer: { type: 'select', def: 'auto' },
};
const STORE_PREFIX = 'kvswebrtc.';

const logger = new Logger($('log'), () => $('logLevel').value);
const chart = new StatsChart($('stats-chart'), [
  { key: 'inKbps', label: 'bitrate in', unit: 'kbps', color: '#4fc3f7' },
  { key: 'outKbps', label: 'bitrate out', unit: 'kbps', color: '#ffb74d' },
  { key: 'fps', label: 'frames/s', unit: 'fps', color: '#81c784' },
  { key: 'packetsLost', label: 'packets lost', unit: '', color: '#e57373' },
  { key: 'rttMs', label: 'round-trip time', unit: 'ms', color: '#ba68c8' },
]);
const player = new Player($('playback-video'), logger);

let session = null;
let t0 = 0;
let statsTimer = null;
let samplers = new Map();
let quality = null;
let lastConnectInfo = null;
let masterProfile = [];
let backend = {};

const test = {
  state: 'idle',
  role: null,
  timeline: [],
  lastDataMessage: null,
  dataMessages: [],
  dataChannelsOpen: 0,
  errors: [],
  stats: null,
  statsSamples: 0,
  quality: null,
  qualityAverages: null,
  profile: null,
  storage: null,
  ingestion: [],
  player,
  chart,
  /** Frames decoded so far across the remote video elements. */
  framesDecoded() {
    let n = 0;
    for (const v of remoteVideos()) {
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
      n += q ? q.totalVideoFrames - q.droppedVideoFrames : 0;
    }
    return n;
  },
  /** Largest videoWidth among the remote video elements (0 when none plays). */
  videoWidth() {
    return Math.max(0, ...remoteVideos().map((v) => v.videoWidth || 0));
  },
  /** The viewers a master is connected to (client ids; the media server is not one). */
  remoteViewers() {
    return session && session.role === 'MASTER' ? [...session.peers.keys()].filter((k) => k !== MEDIA_SERVER) : [];
  },
  /** The SDPs of each peer connection: {peerId: {local, remote}} ('' until set). */
  descriptions() {
    const out = {};
    if (!session) return out;
    for (const [id, p] of session.peers) {
      out[id] = {
        local: p.pc.localDescription ? p.pc.localDescription.sdp : '',
        remote: p.pc.remoteDescription ? p.pc.remoteDescription.sdp : '',
      };
    }
    return out;
  },
  /** The ICE servers the peer connections were given (after the TURN filters). */
  iceServers() {
    return session ? session.rtcConfig().iceServers : [];
  },
  /** What the page signaled: [{kind: 'offer'|'answer'|'candidate', to, sdp|candidate}]. */
  sent() {
    return session ? session.sent : [];
  },
  /** Frames decoded by the recording's video element. */
  playbackFrames() {
    const v = $('playback-video');
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    return q ? q.totalVideoFrames - q.droppedVideoFrames : 0;
  },
  hasStep(name) {
    return test.timeline.some((s) => s.step === name);
  },
  sendData(text, to) {
    return sendData(text, to);
  },
  start(role) {
    return start(role);
  },
  stop() {
    stop();
  },
  toggleSend(kind) {
    return session.toggleSend(kind).then((on) => (updateSessionControls(), on));
  },
  togglePause(kind) {
    return session.togglePause(kind).then((p) => (updateSessionControls(), p));
  },
  sending(kind) {
    return !!session && session.sending(kind);
  },
  paused(kind) {
    return !!session && session.paused(kind);
  },
  /** Whether the client id field is shown. */
  clientIdVisible() {
    return !$('clientId-field').hidden && $('clientId-field').offsetParent !== null;
  },
  diagnostics() {
    return diagnostics();
  },
};
window.kvsTest = test;

function remoteVideos() {
  return [...document.querySelectorAll('#remote-video, #remote-views video')].filter((v) => v.srcObject);
}

// ---- fields -------------------------------------------------------------

function randomClientId() {
  const a = new Uint8Array(5);
  crypto.getRandomValues(a);
  return 'viewer-' + [...a].map((b) => b.toString(36).padStart(2, '0')).join('').slice(0, 8);
}

function parseBool(v) {
  return /^(1|true|on|yes)$/i.test(v);
}

function setField(name, value) {
  const el = $(name);
  if (FIELDS[name].type === 'bool') el.checked = typeof value === 'boolean' ? value : parseBool(value);
  else el.value = value;
}

function getField(name) {
  const el = $(name);
  return FIELDS[name].type === 'bool' ? el.checked : el.value.trim();
}

function store(name) {
  return name === 'clientId' ? sessionStorage : localStorage;
}

function loadFields(query) {
  for (const [name, f] of Object.entries(FIELDS)) {
    let v = f.def;
    const saved = store(name).getItem(STORE_PREFIX + name);
    if (saved !== null) v = f.type === 'bool' ? saved === 'true' : saved;
    if (query.has(name)) v = query.get(name);
    setField(name, v);
  }
  if (!getField('clientId')) setField('clientId', randomClientId());
  saveFields();
}

function saveFields() {
  for (const name of Object.keys(FIELDS)) {
    try {
      store(name).setItem(STORE_PREFIX + name, String(getField(name)));
    } catch (_) {}
  }
}

function currentConfig() {
  const cfg = {};
  for (const name of Object.keys(FIELDS)) cfg[name] = getField(name);
  return cfg;
}

function endpoint() {
  return endpointParams(currentConfig());
}

// ---- codec filter -------------------------------------------------------

function allowedCodecList() {
  const v = getField('codecs');
  return v ? v.split(',').filter(Boolean) : DEFAULT_CODECS;
}

/** Draws one checkbox per mimeType the browser receives, checked when allowed. */
function renderCodecs() {
  if (!window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
  const allowed = new Set(allowedCodecList().map((m) => m.toLowerCase()));
  for (const kind of ['video', 'audio']) {
    const box = $(`${kind}-codecs`);
    box.textContent = '';
    const caps = RTCRtpReceiver.getCapabilities(kind);
    for (const m of codecMimeTypes(caps ? caps.codecs : [])) {
      const label = document.createElement('label');
      label.className = 'check';
      const cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.value = m;
      cb.dataset.codec = m;
      cb.checked = allowed.has(m.toLowerCase());
      cb.disabled = !getField('codecFilter');
      cb.addEventListener('change', () => {
        const list = [...document.querySelectorAll('.codec-list input:checked')].map((c) => c.value);
        // H.265 is allowed by default when the browser has none; keep the
        // default entries the browser lacks so that the list stays "default".
        setField('codecs', list.join(','));
        saveFields();
      });
      label.append(cb, document.createTextNode(' ' + m.replace(/^(video|audio)\//, '')));
      box.appendChild(label);
    }
  }
}

// ---- state, timeline ----------------------------------------------------

function setState(s) {
  test.state = s;
  const el = $('state');
  el.textContent = s;
  el.dataset.state = s;
  el.className = `state state-${s}`;
  const running = s !== 'idle' && s !== 'stopped' && s !== 'error';
  $('start-master').disabled = running;
  $('start-viewer').disabled = running;
  $('stop').disabled = !running;
}

/** Shows the role in the header and the media heading; hides the client id for a master. */
function showRole(role, cfg) {
  const chip = $('role');
  if (!role) {
    chip.hidden = true;
    chip.textContent = '';
    $('media-heading').textContent = 'Not started';
    $('clientId-field').hidden = false;
    return;
  }
  chip.hidden = false;
  chip.textContent = role.toUpperCase();
  chip.dataset.role = role;
  $('media-heading').textContent = role === 'master' ? `Master on channel ${cfg.channelName}` : `Viewer ${cfg.clientId} on channel ${cfg.channelName}`;
  $('clientId-field').hidden = role === 'master';
  $('local-view').querySelector('figcaption').textContent = role === 'master' ? 'local (sent to the viewers)' : 'local (return channel to the master)';
}

function step(name, detail = '') {
  const ms = Math.round(performance.now() - t0);
  test.timeline.push({ step: name, detail, ms, at: new Date().toISOString() });
  const li = document.createElement('li');
  li.dataset.step = name;
  const b = document.createElement('b');
  b.textContent = name;
  li.appendChild(b);
  if (detail) li.appendChild(document.createTextNode(' ' + detail));
  const t = document.createElement('span');
  t.className = 't';
  t.textContent = `+${ms} ms`;
  li.appendChild(t);
  $('timeline').appendChild(li);
  logger.debug(`timeline: ${name}${detail ? ' (' + detail + ')' : ''} at +${ms} ms`);
  if (test.role === 'viewer' && getField('profilingTimeline')) drawProfile();
}

// ---- media views --------------------------------------------------------

function attachVideo(video, stream, label) {
  if (video.srcObject !== stream) video.srcObject = stream;
  video.play().catch((e) => logger.debug(`video.play(): ${e.message}`));
  if (video.dataset.watching) return;
  video.dataset.watching = '1';
  const first = () => {
    if (video.dataset.firstFrame) return;
    video.dataset.firstFrame = '1';
    step('firstFrame', label);
    logger.info(`first frame from ${label}: ${video.videoWidth}x${video.videoHeight}`);
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(first);
  else video.addEventListener('loadeddata', first, { once: true });
}

function newFigure(id, videoId, caption) {
  const fig = document.createElement('figure');
  fig.id = id;
  fig.className = 'remote-view';
  const v = document.createElement('video');
  v.id = videoId;
  v.autoplay = true;
  v.playsInline = true;
  const cap = document.createElement('figcaption');
  cap.textContent = caption;
  fig.append(v, cap);
  $('remote-views').appendChild(fig);
  return fig;
}

function remoteView(peerId) {
  if (session && session.role === 'VIEWER') {
    $('master-view').hidden = false;
    return $('remote-video');
  }
  const id = `remote-view-${peerId}`;
  let fig = document.getElementById(id);
  if (!fig) {
    fig = newFigure(id, `remote-video-${peerId}`, peerId === MEDIA_SERVER ? 'KVS media server (recording)' : `viewer ${peerId}`);
    fig.dataset.clientId = peerId;
  }
  return fig.querySelector('video');
}

/** A further video track of a multi-track master, in its own labelled view. */
function extraTrackView(peerId, track, n, stream) {
  const fig = newFigure(`remote-track-${n}`, `remote-video-track-${n}`, `master track ${n + 1}${stream ? ' (' + stream.id + ')' : ''}`);
  fig.dataset.track = String(n);
  attachVideo(fig.querySelector('video'), new MediaStream([track]), `master track ${n + 1}`);
}

function removeRemoteView(peerId) {
  if (session && session.role === 'VIEWER') {
    const v = $('remote-video');
    v.srcObject = null;
    delete v.dataset.watching;
    delete v.dataset.firstFrame;
    $('master-view').hidden = true;
    for (const f of document.querySelectorAll('#remote-views [data-track]')) f.remove();
    return;
  }
  const fig = document.getElementById(`remote-view-${peerId}`);
  if (fig) fig.remove();
  samplers.delete(peerId);
}

function resetViews() {
  $('local-video').srcObject = null;
  $('local-view').hidden = false;
  removeRemoteView('master');
  $('remote-views').textContent = '';
}

// ---- data channel -------------------------------------------------------

function dataLine(dir, who, text) {
  const div = document.createElement('div');
  div.className = dir;
  div.textContent = `${dir === 'in' ? '\u2190' : '\u2192'} ${who}: ${text}`;
  $('data-log').appendChild(div);
  $('data-log').scrollTop = $('data-log').scrollHeight;
}

function sendData(text, to) {
  if (!session) return 0;
  const n = session.sendData(text, to || undefined);
  if (n === 0) logger.warn(to ? `no open data channel to viewer ${to}` : 'no open data channel to send on');
  else dataLine('out', session.role === 'MASTER' ? (to ? `viewer ${to}` : `${n} viewer(s)`) : 'master', text);
  return n;
}

/** Master: the recipient list holds "all" and every viewer. */
function updateRecipients() {
  const sel = $('data-recipient');
  if (!session || session.role !== 'MASTER') {
    sel.hidden = true;
    return;
  }
  sel.hidden = false;
  const keep = sel.value;
  const ids = test.remoteViewers();
  sel.replaceChildren(new Option('All viewers', ''), ...ids.map((id) => new Option(`viewer ${id}`, id)));
  sel.value = ids.includes(keep) ? keep : '';
}

// ---- session controls ---------------------------------------------------

function updateSessionControls() {
  const box = $('session-controls');
  const viewer = session && session.role === 'VIEWER';
  const negotiated = viewer && session.peers.get('master') && session.peers.get('master').negotiated;
  for (const b of box.querySelectorAll('[data-viewer]')) b.hidden = !negotiated;
  const ingest = session && session.ingesting;
  $('join-storage-session').hidden = !(session && session.role === 'MASTER' && ingest && getField('showJoinStorageSession'));
  $('join-storage-session-as-viewer').hidden = !(viewer && ingest && getField('showJoinStorageSessionAsViewer'));
  box.hidden = ![...box.querySelectorAll('button')].some((b) => !b.hidden) && !$('ingestion-status').textContent;
  if (negotiated) {
    for (const kind of ['video', 'audio']) {
      const s = session.sending(kind);
      const p = session.paused(kind);
      const send = $(`toggle-send-${kind}`);
      send.textContent = `${s ? 'Stop' : 'Start'} sending ${kind}`;
      send.classList.toggle('on', s);
      const pause = $(`toggle-pause-${kind}`);
      pause.textContent = `${p ? 'Resume' : 'Pause'} incoming ${kind}`;
      pause.classList.toggle('on', !p);
    }
  }
}

// ---- stats, quality, profile --------------------------------------------

async function pollStats() {
  if (!session) return;
  const reports = await session.stats();
  const agg = { inKbps: 0, outKbps: 0, fps: null, packetsLost: 0, rttMs: null, framesDecoded: 0, peers: {} };
  for (const [id, report] of reports) {
    if (!samplers.has(id)) samplers.set(id, new StatsSampler());
    const s = samplers.get(id).sample(report);
    agg.peers[id] = s;
    agg.inKbps += s.inKbps;
    agg.outKbps += s.outKbps;
    agg.packetsLost += s.packetsLost;
    agg.framesDecoded += s.framesDecoded;
    if (s.fps !== null) agg.fps = Math.max(agg.fps || 0, s.fps);
    if (s.rttMs !== null) agg.rttMs = Math.max(agg.rttMs || 0, s.rttMs);
  }
  if (reports.size === 0) {
    agg.inKbps = agg.outKbps = null;
  }
  test.stats = agg;
  test.statsSamples++;
  chart.push(agg);
  const pairs = Object.entries(agg.peers)
    .filter(([, s]) => s.localCandidate)
    .map(([id, s]) => `${id}: ${s.localCandidate} \u2194 ${s.remoteCandidate}`);
  $('candidate-pair').textContent = pairs.join('; ');
  if (session && session.role === 'VIEWER' && reports.has('master')) {
    const now = quality.sample(reports.get('master'));
    test.quality = now;
    test.qualityAverages = quality.averages();
    renderQuality($('quality'), now, test.qualityAverages);
  }
}

function drawProfile() {
  const rows = [{ side: 'viewer', spans: stepsToSpans(test.timeline) }];
  if (masterProfile.length) rows.push({ side: 'master', spans: stepsToSpans(masterProfile) });
  test.profile = rows;
  $('profile-section').hidden = false;
  renderProfile($('profile'), rows);
}

// ---- start / stop -------------------------------------------------------

async function start(role) {
  if (session) stop();
  saveFields();
  const cfg = currentConfig();
  cfg.role = role;
  if (!/^[a-zA-Z0-9_.-]{1,256}$/.test(cfg.channelName)) {
    logger.error('channel name must match [a-zA-Z0-9_.-]{1,256}');
    setState('error');
    return;
  }
  if (role === 'viewer' && (!/^[a-zA-Z0-9_.-]{1,256}$/.test(cfg.clientId) || cfg.clientId.startsWith('AWS_'))) {
    logger.error('client id must match [a-zA-Z0-9_.-]{1,256} and not start with AWS_');
    setState('error');
    return;
  }
  test.role = role;
  test.timeline = [];
  test.errors = [];
  test.lastDataMessage = null;
  test.dataMessages = [];
  test.dataChannelsOpen = 0;
  test.quality = test.qualityAverages = test.profile = null;
  test.ingestion = [];
  masterProfile = [];
  quality = new QualityMeter();
  $('timeline').textContent = '';
  $('data-log').textContent = '';
  $('profile').textContent = '';
  $('profile-section').hidden = true;
  $('quality-section').hidden = role !== 'viewer';
  renderQuality($('quality'), null, null);
  $('ingestion-status').textContent = '';
  samplers = new Map();
  chart.reset();
  resetViews();
  showRole(role, cfg);
  t0 = performance.now();
  step('start', role);
  document.title = `KVS WebRTC ${role} \u2013 ${cfg.channelName}`;
  $('data-message').placeholder = role === 'master' ? 'Text to send to the viewers (all, or the one chosen)' : 'Text to send to the master';
  session = new Session(cfg, {
    log: logger,
    step,
    state: setState,
    connectInfo: (info) => {
      lastConnectInfo = info;
    },
    localStream: (stream) => {
      const v = $('local-video');
      v.srcObject = stream;
      v.play().catch(() => {});
      // Nothing sent (a viewer that only watches): no empty local picture.
      $('local-view').hidden = !stream || stream.getTracks().length === 0;
    },
    remoteStream: (peerId, stream) => {
      attachVideo(remoteView(peerId), stream, session.label(peerId));
    },
    extraTrack: extraTrackView,
    remoteGone: removeRemoteView,
    peersChanged: () => {
      updateRecipients();
      updateSessionControls();
    },
    negotiated: () => updateSessionControls(),
    data: (peerId, text) => {
      test.lastDataMessage = text;
      test.dataMessages.push({ from: peerId, text });
      dataLine('in', session.label(peerId), text);
    },
    dataOpen: () => {
      test.dataChannelsOpen++;
      $('send-data').disabled = false;
    },
    profile: (peerId, steps) => {
      masterProfile = steps;
      step('profileReceived', `${steps.length} steps`);
      drawProfile();
    },
    ingestion: (state, detail) => {
      test.ingestion.push({ state, detail: detail || '' });
      $('ingestion-status').textContent = `ingestion: ${state}${detail ? ' (' + detail + ')' : ''}`;
      updateSessionControls();
    },
  });
  statsTimer = setInterval(() => pollStats().catch((e) => logger.debug(`stats: ${e.message}`)), 1000);
  try {
    await session.start();
    updateSessionControls();
  } catch (e) {
    test.errors.push(e.message);
    logger.error(`start failed: ${e.message}`);
    const s = session;
    stop();
    if (s) setState('error');
  }
}

function stop() {
  clearInterval(statsTimer);
  statsTimer = null;
  if (session) {
    const s = session;
    s.stop();
    session = null;
    logger.info('stopped');
  }
  $('send-data').disabled = true;
  resetViews();
  showRole(null);
  updateRecipients();
  updateSessionControls();
}

// ---- storage controls ---------------------------------------------------

function storageResult(what, value) {
  test.storage = { what, value };
  $('storage-result').textContent = `${what}: ${typeof value === 'string' ? value : JSON.stringify(value, null, 2)}`;
}

async function storageAction(what, fn) {
  saveFields();
  try {
    const r = await fn();
    storageResult(what, r);
    logger.info(`${what}: ${JSON.stringify(r)}`);
    return r;
  } catch (e) {
    storageResult(what, `failed: ${e.message}`);
    logger.error(`${what}: ${e.message}`);
    return null;
  }
}

// ---- recordings ---------------------------------------------------------

function toLocalInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function inputTime(id) {
  const v = $(id).value;
  return v ? new Date(v).toISOString() : '';
}

async function refreshStreams() {
  const sel = $('playback-stream');
  try {
    const r = await listStreams(endpoint());
    const keep = sel.value || getField('streamName');
    sel.replaceChildren(...(r.streams || []).map((s) => new Option(`${s.streamName}${s.retentionHours ? '' : ' (no retention)'}`, s.streamName)));
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
    return r.streams || [];
  } catch (e) {
    logger.warn(`ListStreams: ${e.message}`);
    return [];
  }
}

function playbackParams() {
  const stream = $('playback-stream').value || getField('streamName');
  return {
    streamName: stream,
    protocol: getField('playbackProtocol'),
    playbackMode: getField('playbackMode'),
    containerFormat: getField('containerFormat'),
    start: getField('playbackMode') === 'LIVE' ? '' : inputTime('playbackStart'),
    end: getField('playbackMode') === 'ON_DEMAND' ? inputTime('playbackEnd') : '',
    ...endpoint(),
  };
}

async function playRecording() {
  saveFields();
  const params = playbackParams();
  const status = $('playback-status');
  if (!params.streamName) {
    status.textContent = 'pick a stream (Create Stream, or record one) first';
    return;
  }
  status.textContent = 'asking for a session URL\u2026';
  try {
    const r = await playbackURL(params);
    $('playback-url').textContent = r.url.replace(/SessionToken=[^&]+/, 'SessionToken=\u2026');
    $('playback-caption').textContent = `${params.streamName}: ${params.protocol.toUpperCase()} ${params.playbackMode}`;
    status.textContent = `session until ${new Date(r.expiresAt).toLocaleTimeString()}`;
    test.playbackURL = r.url;
    await player.play(r.url, { protocol: params.protocol, how: getField('playbackPlayer') });
    status.textContent = `${player.how === 'native' ? 'native HLS' : 'MSE'}: ${player.state}${player.error ? ': ' + player.error : ''}`;
  } catch (e) {
    status.textContent = e.message;
    logger.error(`playback: ${e.message}`);
  }
}

async function downloadClip() {
  const p = playbackParams();
  const status = $('playback-status');
  const start = inputTime('playbackStart');
  const end = inputTime('playbackEnd');
  if (!p.streamName || !start || !end) {
    status.textContent = 'GetClip needs a stream, a start and an end';
    return;
  }
  status.textContent = 'GetClip\u2026';
  try {
    const { blob, fileName } = await fetchClip({ streamName: p.streamName, start, end, ...endpoint() });
    test.clip = { size: blob.size, type: blob.type, fileName };
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = fileName;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    status.textContent = `clip ${fileName}: ${(blob.size / 1e6).toFixed(2)} MB`;
  } catch (e) {
    test.clip = { error: e.message };
    status.textContent = `GetClip: ${e.message}`;
    logger.error(`GetClip: ${e.message}`);
  }
}

// ---- diagnostics --------------------------------------------------------

function redactURL(u) {
  try {
    const url = new URL(u);
    for (const k of ['X-Amz-Signature', 'X-Amz-Security-Token', 'X-Amz-Credential', 'SessionToken']) {
      if (url.searchParams.has(k)) url.searchParams.set(k, 'REDACTED');
    }
    return url.toString();
  } catch (_) {
    return 'REDACTED';
  }
}

function diagnostics() {
  const info = lastConnectInfo ? { ...lastConnectInfo, signedURL: redactURL(lastConnectInfo.signedURL) } : null;
  if (info && info.iceServers) info.iceServers = info.iceServers.map((s) => ({ urls: s.urls, username: s.username ? '(set)' : undefined, credential: s.credential ? '(set)' : undefined }));
  return JSON.stringify(
    {
      time: new Date().toISOString(),
      userAgent: navigator.userAgent,
      page: location.origin + location.pathname,
      version: backend.version,
      config: currentConfig(),
      role: test.role,
      state: test.state,
      backend: info,
      timeline: test.timeline,
      stats: test.stats,
      quality: test.qualityAverages,
      framesDecoded: test.framesDecoded(),
      videoWidth: test.videoWidth(),
      playback: playbackDiagnostics(),
      log: logger.lines.slice(-300),
    },
    null,
    2,
  );
}

function playbackDiagnostics() {
  const v = $('playback-video');
  const ranges = [];
  for (let i = 0; i < v.buffered.length; i++) ranges.push([+v.buffered.start(i).toFixed(3), +v.buffered.end(i).toFixed(3)]);
  return {
    how: player.how,
    state: player.state,
    error: player.error,
    segments: player.segments,
    playlists: player.playlists,
    url: player.url ? redactURL(player.url) : '',
    currentTime: v.currentTime,
    readyState: v.readyState,
    paused: v.paused,
    buffered: ranges,
    frames: test.playbackFrames(),
    mediaError: v.error ? `${v.error.code} ${v.error.message}` : '',
  };
}

async function copyStatus(what, text) {
  const ok = await copyText(text);
  $('copy-status').textContent = ok ? `${what} copied` : `could not copy ${what}`;
  setTimeout(() => ($('copy-status').textContent = ''), 3000);
}

// ---- wiring -------------------------------------------------------------

async function loadBackendInfo(query) {
  try {
    const res = await fetch('api/info');
    if (!res.ok) return;
    const info = await res.json();
    backend = info;
    test.backend = info;
    $('backend-info').textContent = `${info.region}${info.endpoint ? ' \u00b7 ' + info.endpoint : ''}`;
    $('sdk-version').textContent = `kvswebrtc ${info.version || '(devel)'} \u00b7 JS SDK ${info.sdkVersion || '2.9.0'} page`;
    const region = $('region');
    if (!info.regionChangeable || !getField('region')) {
      if (!query.has('region') || !info.regionChangeable) setField('region', info.region);
    }
    region.disabled = !info.regionChangeable;
    region.title = info.regionChangeable ? 'the backend signs for the region given here' : 'set by the backend (kvswebrtc web --region; --allow-region-change lets the page choose)';
    const ep = $('endpoint');
    ep.disabled = !info.endpointOverride;
    ep.placeholder = info.endpoint || 'AWS';
    if (!info.endpointOverride) setField('endpoint', '');
    saveFields();
  } catch (_) {}
}

function init() {
  $('form').addEventListener('submit', (e) => e.preventDefault());
  const query = new URLSearchParams(location.search);
  loadFields(query);
  for (const name of Object.keys(FIELDS)) $(name).addEventListener('change', saveFields);
  $('logLevel').addEventListener('change', () => logger.refresh());
  $('codecFilter').addEventListener('change', renderCodecs);
  $('reset-codecs').addEventListener('click', () => {
    setField('codecs', '');
    setField('codecFilter', true);
    saveFields();
    renderCodecs();
    logger.info(`codec filter reset: ${DEFAULT_CODECS.join(', ')}`);
  });
  renderCodecs();
  $('random-client-id').addEventListener('click', () => {
    setField('clientId', randomClientId());
    saveFields();
  });
  $('start-master').addEventListener('click', () => start('master'));
  $('start-viewer').addEventListener('click', () => start('viewer'));
  $('stop').addEventListener('click', stop);
  $('create-channel').addEventListener('click', async () => {
    const name = getField('channelName');
    saveFields();
    try {
      const r = await createChannel(name, endpoint());
      logger.info(`channel ${name}: ${r.created ? 'created' : 'already exists'} (${r.channelARN})`);
    } catch (e) {
      logger.error(`create channel ${name}: ${e.message}`);
    }
  });
  $('create-stream').addEventListener('click', () =>
    storageAction('CreateStream', () => createStream(getField('streamName'), getField('retentionHours'), endpoint())).then(() => refreshStreams()),
  );
  $('update-storage').addEventListener('click', () =>
    storageAction('UpdateMediaStorageConfiguration', () => updateStorage(getField('channelName'), getField('streamName'), endpoint())),
  );
  $('describe-storage').addEventListener('click', () => storageAction('DescribeMediaStorageConfiguration', () => describeStorage(getField('channelName'), endpoint())));
  $('list-storage-channels').addEventListener('click', () => storageAction('ListStorageChannels', () => listStorageChannels(endpoint())));
  $('join-storage-session').addEventListener('click', () => session && session.joinStorage());
  $('join-storage-session-as-viewer').addEventListener('click', () => session && session.joinStorage());
  for (const kind of ['video', 'audio']) {
    $(`toggle-send-${kind}`).addEventListener('click', () => test.toggleSend(kind).catch((e) => logger.error(`toggle sending ${kind}: ${e.message}`)));
    $(`toggle-pause-${kind}`).addEventListener('click', () => test.togglePause(kind).catch((e) => logger.error(`pause ${kind}: ${e.message}`)));
  }
  const send = () => {
    const input = $('data-message');
    if (!input.value) return;
    sendData(input.value, $('data-recipient').hidden ? '' : $('data-recipient').value);
    input.value = '';
  };
  $('send-data').addEventListener('click', send);
  $('data-message').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') send();
  });
  $('refresh-streams').addEventListener('click', refreshStreams);
  $('play-recording').addEventListener('click', playRecording);
  $('stop-recording').addEventListener('click', () => {
    player.stop();
    $('playback-status').textContent = 'stopped';
  });
  $('download-clip').addEventListener('click', downloadClip);
  $('last-minute').addEventListener('click', () => {
    const now = new Date();
    $('playbackStart').value = toLocalInput(new Date(now.getTime() - 60000));
    $('playbackEnd').value = toLocalInput(now);
  });
  $('playbackStart').value = toLocalInput(new Date(Date.now() - 10 * 60000));
  $('playbackEnd').value = toLocalInput(new Date());
  $('copy-log').addEventListener('click', () => copyStatus('log', logger.text()));
  $('copy-diagnostics').addEventListener('click', () => copyStatus('diagnostics', diagnostics()));
  $('clear-log').addEventListener('click', () => logger.clear());
  $('more-log').addEventListener('click', () => ($('log').style.height = `${$('log').clientHeight + 100}px`));
  $('less-log').addEventListener('click', () => ($('log').style.height = `${Math.max(100, $('log').clientHeight - 100)}px`));
  window.addEventListener('error', (e) => test.errors.push(String(e.message)));
  window.addEventListener('unhandledrejection', (e) => test.errors.push(String(e.reason && e.reason.message ? e.reason.message : e.reason)));
  window.addEventListener('beforeunload', () => stop());
  setState('idle');
  chart.draw();
  const view = query.get('view');
  if (view === 'master') $('clientId-field').hidden = true;
  const ready = loadBackendInfo(query).then(() => refreshStreams());
  test.ready = ready;
  if (view === 'master' || view === 'viewer') ready.then(() => start(view));
  else if (view) logger.warn(`unknown view ${view}: use master or viewer`);
}

init();
