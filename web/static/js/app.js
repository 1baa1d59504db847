// app.js: the test page's UI: form fields (kept in localStorage and
// presettable by URL query), start/stop, media views, data channel, live
// stats chart, timeline, log and diagnostics. Test hooks live on
// window.kvsTest.

import { Logger, copyText } from './log.js';
import { StatsChart, StatsSampler } from './chart.js';
import { Session, createChannel } from './session.js';

const $ = (id) => document.getElementById(id);

const FIELDS = {
  channelName: { type: 'text', def: 'demo-channel' },
  clientId: { type: 'text', def: '' }, // per tab: sessionStorage
  sendVideo: { type: 'bool', def: true },
  sendAudio: { type: 'bool', def: false },
  openDataChannel: { type: 'bool', def: true },
  resolution: { type: 'select', def: '1280x720' },
  natTraversal: { type: 'select', def: 'stunTurn' },
  trickleIce: { type: 'bool', def: true },
  candidateFilter: { type: 'select', def: 'all' },
  logLevel: { type: 'select', def: 'info' },
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

let session = null;
let t0 = 0;
let statsTimer = null;
let samplers = new Map();
let lastConnectInfo = null;

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
  /** The viewers a master is connected to (client ids). */
  remoteViewers() {
    return session && session.role === 'MASTER' ? [...session.peers.keys()] : [];
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
  hasStep(name) {
    return test.timeline.some((s) => s.step === name);
  },
  sendData(text) {
    return sendData(text);
  },
  start(role) {
    return start(role);
  },
  stop() {
    stop();
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

function remoteView(peerId) {
  if (session && session.role === 'VIEWER') {
    $('master-view').hidden = false;
    return $('remote-video');
  }
  const id = `remote-view-${peerId}`;
  let fig = document.getElementById(id);
  if (!fig) {
    fig = document.createElement('figure');
    fig.id = id;
    fig.className = 'remote-view';
    fig.dataset.clientId = peerId;
    const v = document.createElement('video');
    v.id = `remote-video-${peerId}`;
    v.autoplay = true;
    v.playsInline = true;
    const cap = document.createElement('figcaption');
    cap.textContent = `viewer ${peerId}`;
    fig.append(v, cap);
    $('remote-views').appendChild(fig);
  }
  return fig.querySelector('video');
}

function removeRemoteView(peerId) {
  if (session && session.role === 'VIEWER') {
    const v = $('remote-video');
    v.srcObject = null;
    delete v.dataset.watching;
    delete v.dataset.firstFrame;
    $('master-view').hidden = true;
    return;
  }
  const fig = document.getElementById(`remote-view-${peerId}`);
  if (fig) fig.remove();
  samplers.delete(peerId);
}

function resetViews() {
  $('local-video').srcObject = null;
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

function sendData(text) {
  if (!session) return 0;
  const n = session.sendData(text);
  if (n === 0) logger.warn('no open data channel to send on');
  else dataLine('out', session.role === 'MASTER' ? `${n} viewer(s)` : 'master', text);
  return n;
}

// ---- stats --------------------------------------------------------------

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
  $('timeline').textContent = '';
  $('data-log').textContent = '';
  samplers = new Map();
  chart.reset();
  resetViews();
  t0 = performance.now();
  step('start', role);
  document.title = `KVS WebRTC ${role} \u2013 ${cfg.channelName}`;
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
    },
    remoteStream: (peerId, stream) => {
      attachVideo(remoteView(peerId), stream, session.role === 'MASTER' ? `viewer ${peerId}` : 'master');
    },
    remoteGone: removeRemoteView,
    data: (peerId, text) => {
      test.lastDataMessage = text;
      test.dataMessages.push({ from: peerId, text });
      dataLine('in', session.role === 'MASTER' ? `viewer ${peerId}` : 'master', text);
    },
    dataOpen: () => {
      test.dataChannelsOpen++;
      $('send-data').disabled = false;
    },
  });
  statsTimer = setInterval(() => pollStats().catch((e) => logger.debug(`stats: ${e.message}`)), 1000);
  try {
    await session.start();
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
}

// ---- diagnostics --------------------------------------------------------

function redactURL(u) {
  try {
    const url = new URL(u);
    for (const k of ['X-Amz-Signature', 'X-Amz-Security-Token', 'X-Amz-Credential']) {
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
      config: currentConfig(),
      role: test.role,
      state: test.state,
      backend: info,
      timeline: test.timeline,
      stats: test.stats,
      framesDecoded: test.framesDecoded(),
      videoWidth: test.videoWidth(),
      log: logger.lines.slice(-300),
    },
    null,
    2,
  );
}

async function copyStatus(what, text) {
  const ok = await copyText(text);
  $('copy-status').textContent = ok ? `${what} copied` : `could not copy ${what}`;
  setTimeout(() => ($('copy-status').textContent = ''), 3000);
}

// ---- wiring -------------------------------------------------------------

async function loadBackendInfo() {
  try {
    const res = await fetch('api/info');
    if (!res.ok) return;
    const info = await res.json();
    $('backend-info').textContent = `${info.region}${info.endpoint ? ' \u00b7 ' + info.endpoint : ''}`;
    test.backend = info;
  } catch (_) {}
}

function init() {
  $('form').addEventListener('submit', (e) => e.preventDefault());
  const query = new URLSearchParams(location.search);
  loadFields(query);
  for (const name of Object.keys(FIELDS)) $(name).addEventListener('change', saveFields);
  $('logLevel').addEventListener('change', () => logger.refresh());
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
      const r = await createChannel(name);
      logger.info(`channel ${name}: ${r.created ? 'created' : 'already exists'} (${r.channelARN})`);
    } catch (e) {
      logger.error(`create channel ${name}: ${e.message}`);
    }
  });
  const send = () => {
    const input = $('data-message');
    if (!input.value) return;
    sendData(input.value);
    input.value = '';
  };
  $('send-data').addEventListener('click', send);
  $('data-message').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') send();
  });
  $('copy-log').addEventListener('click', () => copyStatus('log', logger.text()));
  $('copy-diagnostics').addEventListener('click', () => copyStatus('diagnostics', diagnostics()));
  $('clear-log').addEventListener('click', () => logger.clear());
  window.addEventListener('error', (e) => test.errors.push(String(e.message)));
  window.addEventListener('unhandledrejection', (e) => test.errors.push(String(e.reason && e.reason.message ? e.reason.message : e.reason)));
  window.addEventListener('beforeunload', () => stop());
  setState('idle');
  chart.draw();
  loadBackendInfo();
  const view = query.get('view');
  if (view === 'master' || view === 'viewer') start(view);
  else if (view) logger.warn(`unknown view ${view}: use master or viewer`);
}

init();
