// session.js: the master and viewer roles of the test page, on top of the
// browser's RTCPeerConnection and our SignalingClient, with what the
// official 2.9.0 page does around them: candidate, TURN and codec filters,
// WebRTC ingestion (JoinStorageSession), the viewer's renegotiation
// (toggle sending, pause incoming), multi-track receive, and the master's
// profile sent to each viewer over the data channel.
//
// Why one file of about 800 lines: most of it is the Session class, one
// state machine whose methods share its peers, its signaling client and
// its local tracks (a master's viewers, a viewer's renegotiation); the
// stateless parts (filters.js, metrics.js, storage.js, signaling.js) are
// modules of their own.

import { SignalingClient } from './signaling.js';
import { candidatePredicate, filterSdp, filterIceServers, pickCodecs, compactSdp, payloadSize, DEFAULT_CODECS } from './filters.js';
import { PROFILE_MESSAGE, profileMessage, parseProfile } from './metrics.js';
import { describeStorage, joinStorageSession } from './storage.js';

export { filterSdp, isLoopbackCandidate } from './filters.js';

/** Most viewers a master answers at once, as KVS allows. */
export const MAX_VIEWERS = 10;

/** Video transceivers a viewer offers with "receive multi-track" (4 video + 1 audio, as 2.9.0). */
export const MULTI_TRACK_VIDEO = 4;

/** The peer id the page gives the KVS media server (its offers have no sender id). */
export const MEDIA_SERVER = 'media-server';

/** KVS refuses message payloads larger than this (base64 bytes). */
export const MAX_PAYLOAD = 10240;

/** Join attempts of a master in ingestion mode that gets no offer (as the official page). */
export const MAX_JOIN_ATTEMPTS = 5;

async function postJSON(path, params) {
  const res = await fetch(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(params),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${path}: HTTP ${res.status}`);
  return body;
}

/** Asks the page's backend for a signed URL and ICE servers. */
export function fetchConnect(params) {
  return postJSON('api/connect', params);
}

/** Asks the page's backend to create a signaling channel. */
export function createChannel(channelName, endpoint) {
  return postJSON('api/channels', { channelName, ...endpoint });
}

/** The endpoint choices of cfg that every backend call carries. */
export function endpointParams(cfg) {
  return {
    region: cfg.region || undefined,
    endpointType: cfg.endpointType || undefined,
    fips: !!cfg.useFips,
    endpoint: cfg.endpoint || undefined,
  };
}

function videoConstraints(cfg) {
  const [w, h] = (cfg.resolution || '1280x720').split('x').map(Number);
  return { width: { ideal: w }, height: { ideal: h } };
}

function mediaConstraints(cfg) {
  return {
    video: cfg.sendVideo ? videoConstraints(cfg) : false,
    audio: !!cfg.sendAudio,
  };
}

function waitGatheringComplete(pc, timeoutMs = 10000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(t);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

/** The ICE username fragment of an SDP ('' when it has none). */
export function iceUfrag(sdp) {
  const m = /^a=ice-ufrag:(\S+)/m.exec(String(sdp || ''));
  return m ? m[1] : '';
}

/**
 * The codecs of one kind the page offers or answers with: with the codec
 * filter on, those of cfg.codecs (a comma-separated list of mimeTypes,
 * DEFAULT_CODECS when empty) that the browser has; with it off, null (the
 * browser's own list).
 */
export function allowedCodecs(cfg, kind) {
  if (!cfg.codecFilter || !window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return null;
  const caps = RTCRtpReceiver.getCapabilities(kind);
  if (!caps) return null;
  const allowed = cfg.codecs ? String(cfg.codecs).split(',').map((s) => s.trim()).filter(Boolean) : DEFAULT_CODECS;
  return pickCodecs(caps.codecs, allowed);
}

/** Applies allowedCodecs to every transceiver of pc that takes preferences. */
export function applyCodecPreferences(pc, cfg, log) {
  for (const tr of pc.getTransceivers()) {
    if (!tr.setCodecPreferences || tr.stopped) continue;
    const kind = tr.receiver.track.kind;
    const codecs = allowedCodecs(cfg, kind);
    if (codecs === null) continue;
    if (codecs.length === 0) {
      if (log) log.warn(`codec filter: no ${kind} codec allowed; the browser's own list is used`);
      continue;
    }
    try {
      tr.setCodecPreferences(codecs);
    } catch (e) {
      if (log) log.warn(`codec filter: ${e.message}`);
    }
  }
}

/** Wall-clock step, for the profile the master sends its viewers. */
function wallStep(step, detail) {
  return { step, detail: detail || '', at: Date.now() };
}

/**
 * Session is one running master or viewer. hooks:
 *   log                            a Logger
 *   step(name, detail)             a timeline step
 *   state(s)                       'connecting' | 'signaling' | 'connected' | 'stopped' | 'error'
 *   localStream(stream)
 *   remoteStream(peerId, stream)   peerId: the viewer's client id (master), 'master' (viewer)
 *                                  or MEDIA_SERVER; the first video track and the audio
 *   extraTrack(peerId, track, n)   the n-th (from 1) further video track of a multi-track peer
 *   remoteGone(peerId)
 *   peersChanged()                 a peer came or went
 *   negotiated(peerId)             the first answer of a peer was applied
 *   data(peerId, text)
 *   dataOpen(peerId)
 *   profile(peerId, steps)         the master's profile arrived (viewer)
 *   connectInfo(info)              the backend's answer (no secrets in it but the signed URL)
 *   ingestion(state, detail)       'joining' | 'offer' | 'retry' | 'off' | 'failed'
 */
export class Session {
  constructor(cfg, hooks) {
    this.cfg = { ...cfg };
    this.hooks = hooks;
    this.log = hooks.log;
    this.role = cfg.role === 'master' ? 'MASTER' : 'VIEWER';
    this.peers = new Map(); // peerId -> peer
    this.localStream = null;
    this.connectInfo = null;
    this.stopped = false;
    this.ingesting = false;
    this.joinAttempts = 0;
    this.joinTimer = null;
    this.masterSteps = []; // the master's own steps (signaling), wall clock
    this.sent = []; // what went out over signaling, after the filters (for tests and diagnostics)
    this.keepSend = candidatePredicate(this.cfg, 'send');
    this.keepAccept = candidatePredicate(this.cfg, 'accept');
  }

  label(peerId) {
    if (peerId === MEDIA_SERVER) return 'KVS media server';
    return this.role === 'MASTER' ? `viewer ${peerId}` : 'master';
  }

  /** Decides whether this session ingests (WebRTC ingestion and storage). */
  async decideIngestion() {
    const cfg = this.cfg;
    const mode = cfg.ingestMode || 'off';
    if (mode === 'off') return false;
    if (mode === 'on') return true;
    try {
      const ms = await describeStorage(cfg.channelName, endpointParams(cfg));
      this.log.info(`media storage of ${cfg.channelName}: ${ms.status}${ms.streamARN ? ' (' + ms.streamARN + ')' : ''}`);
      return ms.status === 'ENABLED';
    } catch (e) {
      this.log.warn(`could not describe the media storage configuration (ingestion off): ${e.message}`);
      return false;
    }
  }

  async start() {
    const cfg = this.cfg;
    this.hooks.state('connecting');
    this.log.info(`starting ${cfg.role} on channel ${cfg.channelName}${this.role === 'VIEWER' ? ' as ' + cfg.clientId : ''}`);
    this.ingesting = await this.decideIngestion();
    if (this.ingesting) {
      // The rules of the official page in this mode.
      if (this.role === 'MASTER' && (!cfg.sendVideo || !cfg.sendAudio)) {
        throw new Error('WebRTC ingestion: the master must send both video and audio (check Send video and Send audio)');
      }
      if (this.role === 'VIEWER' && cfg.sendVideo) {
        this.log.warn('WebRTC ingestion: a viewer does not send video to the media server; Send video is ignored');
        cfg.sendVideo = false;
      }
      if (this.role === 'MASTER' && cfg.openDataChannel) {
        this.log.warn('WebRTC ingestion: the media server opens no data channel; Open data channel is ignored for it');
      }
      this.hooks.step('ingestion', 'on');
      this.hooks.ingestion('on');
    }
    if (cfg.sendVideo || cfg.sendAudio) {
      try {
        this.localStream = await navigator.mediaDevices.getUserMedia(mediaConstraints(cfg));
        this.hooks.localStream(this.localStream);
        this.hooks.step('localMedia');
        const vt = this.localStream.getVideoTracks()[0];
        if (vt) {
          const s = vt.getSettings();
          this.log.info(`local camera: ${s.width}x${s.height}`);
        }
      } catch (e) {
        this.log.error(`could not open camera/microphone: ${e.message}`);
        throw e;
      }
    } else {
      this.localStream = new MediaStream();
      this.hooks.localStream(this.localStream);
    }
    this.signaling = new SignalingClient({
      role: this.role,
      clientId: cfg.clientId,
      log: this.log,
      reconnect: cfg.signalingReconnect !== false,
      allowNoRecipient: this.ingesting && this.role === 'MASTER',
      getSignedURL: async (reason) => {
        const info = await fetchConnect({
          channelName: cfg.channelName,
          role: this.role === 'MASTER' ? 'master' : 'viewer',
          clientId: this.role === 'VIEWER' ? cfg.clientId : undefined,
          natTraversal: cfg.natTraversal,
          reason,
          ...endpointParams(cfg),
        });
        this.connectInfo = info;
        this.hooks.connectInfo(info);
        this.hooks.step('signedURL', reason === 'open' ? '' : reason);
        this.masterSteps.push(wallStep('signedURL'));
        const servers = (info.iceServers || []).map((s) => (s.urls || []).join(' ')).join(', ');
        this.log.info(`backend: channel ${info.channelARN}; ICE servers: ${servers || 'none'}; policy ${info.iceTransportPolicy}`);
        if (info.timings) this.log.debug(`backend timings: ${JSON.stringify(info.timings)}`);
        return info.signedURL;
      },
    });
    const sig = this.signaling;
    sig.on('open', () => {
      this.hooks.step('signalingOpen');
      this.masterSteps.push(wallStep('signalingOpen'));
      this.hooks.state(this.anyConnected() ? 'connected' : 'signaling');
      if (this.ingesting && this.role === 'MASTER' && !cfg.showJoinStorageSession) {
        this.joinAttempts = 0;
        this.joinStorage();
      }
      if (this.role === 'VIEWER' && !this.peers.has('master')) this.startViewerPeer();
    });
    sig.on('sdpOffer', (offer, from) => this.onOffer(offer, from));
    sig.on('sdpAnswer', (answer) => this.onAnswer(answer));
    sig.on('iceCandidate', (cand, from) => this.onRemoteCandidate(cand, this.peerKey(from)));
    sig.on('statusResponse', (st) => this.hooks.step('statusResponse', `${st.errorType || ''} ${st.statusCode || ''}`));
    sig.on('goAway', () => this.hooks.step('goAway'));
    sig.on('ended', () => {
      this.hooks.step('signalingEnded');
      if (!this.anyConnected()) this.hooks.state('stopped');
    });
    await sig.open();
  }

  /** The peer a signaling message without sender id belongs to. */
  peerKey(from) {
    if (from) return from;
    return this.role === 'MASTER' ? MEDIA_SERVER : 'master';
  }

  // ---- WebRTC ingestion ---------------------------------------------------

  /**
   * Calls JoinStorageSession (master) or JoinStorageSessionAsViewer
   * (viewer) through the backend. A master that gets no offer within the
   * official page's delay (6 s plus jitter) calls it again, at most
   * MAX_JOIN_ATTEMPTS times.
   */
  async joinStorage() {
    if (this.stopped) return;
    const cfg = this.cfg;
    this.joinAttempts++;
    this.hooks.ingestion('joining', `attempt ${this.joinAttempts}`);
    this.hooks.step('joinStorageSession', this.role === 'MASTER' ? `attempt ${this.joinAttempts}` : 'as viewer');
    try {
      await joinStorageSession({
        channelName: cfg.channelName,
        role: this.role === 'MASTER' ? 'master' : 'viewer',
        clientId: this.role === 'VIEWER' ? cfg.clientId : undefined,
        ...endpointParams(cfg),
      });
      this.log.info(`${this.role === 'MASTER' ? 'JoinStorageSession' : 'JoinStorageSessionAsViewer'} accepted; waiting for the media server`);
    } catch (e) {
      this.log.error(`${this.role === 'MASTER' ? 'JoinStorageSession' : 'JoinStorageSessionAsViewer'} failed: ${e.message}`);
      this.hooks.ingestion('failed', e.message);
      if (!/retry|throttl|limit|5\d\d|timeout/i.test(e.message)) return;
    }
    if (this.role !== 'MASTER') return;
    clearTimeout(this.joinTimer);
    const n = this.joinAttempts;
    const delay = 6000 + Math.min(Math.random() * 200 ** (n - 1), 10000);
    this.joinTimer = setTimeout(() => {
      if (this.stopped || this.peers.has(MEDIA_SERVER)) return;
      if (this.joinAttempts >= MAX_JOIN_ATTEMPTS) {
        this.log.error(`no offer from the media server after ${this.joinAttempts} JoinStorageSession calls`);
        this.hooks.ingestion('failed', 'no offer');
        return;
      }
      this.hooks.ingestion('retry', `attempt ${this.joinAttempts + 1}`);
      this.joinStorage();
    }, delay);
  }

  // ---- peers ----------------------------------------------------------------

  anyConnected() {
    for (const p of this.peers.values()) if (p.pc.connectionState === 'connected') return true;
    return false;
  }

  rtcConfig() {
    const info = this.connectInfo || {};
    return {
      iceServers: filterIceServers(info.iceServers || [], this.cfg),
      iceTransportPolicy: info.iceTransportPolicy || 'all',
    };
  }

  newPeer(peerId) {
    const conf = this.rtcConfig();
    this.log.debug(`${this.label(peerId)}: ICE servers after the TURN filters: ${JSON.stringify(conf.iceServers.map((s) => s.urls))}`);
    const pc = new RTCPeerConnection(conf);
    const peer = {
      id: peerId,
      pc,
      dc: null,
      stream: new MediaStream(),
      videoTracks: 0,
      remoteSet: false,
      negotiated: false,
      pendingCandidates: [],
      steps: [], // the master's steps for this viewer, wall clock
      remoteUfrag: '',
    };
    this.peers.set(peerId, peer);
    const label = this.label(peerId);
    // The master shows every viewer, even one that sends no media.
    if (this.role === 'MASTER') this.hooks.remoteStream(peerId, peer.stream);
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (!candidate || !candidate.candidate) {
        if (!candidate) peer.steps.push(wallStep('iceGatheringComplete'));
        return;
      }
      if (!this.keepSend(candidate.candidate)) {
        this.log.debug(`local ICE candidate for ${label} filtered out: ${candidate.candidate}`);
        return;
      }
      this.log.debug(`local ICE candidate for ${label}: ${candidate.candidate}`);
      if (this.cfg.trickleIce) {
        try {
          this.signaling.sendIceCandidate(candidate, this.recipient(peerId));
          this.sent.push({ kind: 'candidate', to: peerId, candidate: candidate.candidate });
        } catch (e) {
          this.log.warn(`could not send ICE candidate: ${e.message}`);
        }
      }
    });
    pc.addEventListener('iceconnectionstatechange', () => {
      this.log.info(`${label}: ICE ${pc.iceConnectionState}`);
      // The timeline's iceConnected is ICE's own: it comes before DTLS
      // and the first frame, where connectionState may report later.
      if ((pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed') && !peer.iceUp) {
        peer.iceUp = true;
        this.hooks.step('iceConnected', label);
        peer.steps.push(wallStep('iceConnected'));
      }
    });
    pc.addEventListener('connectionstatechange', () => {
      const st = pc.connectionState;
      this.log.info(`${label}: connection ${st}`);
      if (st === 'connected') {
        this.hooks.step('peerConnected', label);
        peer.steps.push(wallStep('peerConnected'));
        this.hooks.state('connected');
        if (peerId === MEDIA_SERVER) this.hooks.ingestion('connected');
        this.maybeSendProfile(peer);
      }
      if (st === 'failed' || st === 'closed') this.dropPeer(peerId, st);
      if (st === 'disconnected') {
        clearTimeout(peer.gone);
        peer.gone = setTimeout(() => {
          if (pc.connectionState === 'disconnected') this.dropPeer(peerId, 'disconnected');
        }, 5000);
      }
    });
    pc.addEventListener('track', (ev) => {
      const track = ev.track;
      this.log.info(`${label}: remote ${track.kind} track${ev.streams[0] ? ' (stream ' + ev.streams[0].id + ')' : ''}`);
      // A renegotiation that resumes a track fires track again with it.
      if (peer.stream.getTracks().includes(track)) {
        this.hooks.remoteStream(peerId, peer.stream);
        return;
      }
      if (peer.extraTracks && peer.extraTracks.includes(track)) return;
      if (track.kind === 'video' && peer.videoTracks++ > 0) {
        (peer.extraTracks = peer.extraTracks || []).push(track);
        this.hooks.extraTrack(peerId, track, peer.videoTracks - 1, ev.streams[0]);
        return;
      }
      peer.stream.addTrack(track);
      this.hooks.remoteStream(peerId, peer.stream);
    });
    pc.addEventListener('datachannel', (ev) => {
      if (!this.cfg.openDataChannel) {
        this.log.info(`${label} opened a data channel; ignored (data channel is off here)`);
        return;
      }
      this.wireDataChannel(peer, ev.channel);
    });
    pc.addEventListener('negotiationneeded', () => this.onNegotiationNeeded(peer));
    return peer;
  }

  /** Whom a master's message to peerId names: nobody for the media server. */
  recipient(peerId) {
    if (this.role !== 'MASTER' || peerId === MEDIA_SERVER) return undefined;
    return peerId;
  }

  wireDataChannel(peer, dc) {
    peer.dc = dc;
    const label = this.label(peer.id);
    dc.addEventListener('open', () => {
      this.log.info(`data channel to ${label} open`);
      this.hooks.step('dataChannelOpen', label);
      peer.steps.push(wallStep('dataChannelOpen'));
      this.hooks.dataOpen(peer.id);
      this.maybeSendProfile(peer);
    });
    dc.addEventListener('close', () => {
      this.log.info(`data channel to ${label} closed`);
      // A viewer that closes its data channel is leaving: free its view now
      // rather than after ICE times out.
      if (this.role === 'MASTER' && !this.stopped && this.peers.get(peer.id) === peer) this.dropPeer(peer.id, 'data channel closed');
    });
    dc.addEventListener('message', (ev) => {
      const text = typeof ev.data === 'string' ? ev.data : `[${ev.data.byteLength || ev.data.size} bytes]`;
      const steps = this.role === 'VIEWER' ? parseProfile(text) : null;
      if (steps) {
        this.log.info(`profile from ${label}: ${steps.length} steps`);
        this.hooks.profile(peer.id, steps);
        return;
      }
      this.log.info(`data from ${label}: ${text}`);
      this.hooks.data(peer.id, text);
    });
  }

  /**
   * Master with the profiling timeline on: sends a viewer the profile once
   * both its peer connection is connected and its data channel open
   * (either may come first).
   */
  maybeSendProfile(peer) {
    if (this.role !== 'MASTER' || !this.cfg.profilingTimeline || peer.profileSent) return;
    if (!peer.dc || peer.dc.readyState !== 'open' || peer.pc.connectionState !== 'connected') return;
    peer.profileSent = true;
    this.sendProfile(peer);
  }

  /** Sends a viewer the master's steps: its signaling steps and those for this viewer. */
  sendProfile(peer) {
    const steps = [...this.masterSteps, ...peer.steps];
    try {
      peer.dc.send(profileMessage(steps));
      this.log.info(`profile (${steps.length} steps) sent to ${this.label(peer.id)}`);
    } catch (e) {
      this.log.warn(`could not send the profile: ${e.message}`);
    }
  }

  addLocalTracks(pc) {
    if (!this.localStream) return;
    for (const t of this.localStream.getTracks()) pc.addTrack(t, this.localStream);
  }

  async sendLocalDescription(peer, kind) {
    const pc = peer.pc;
    if (!this.cfg.trickleIce) await waitGatheringComplete(pc);
    const local = pc.localDescription;
    const desc = { type: local.type, sdp: filterSdp(local.sdp, this.keepSend) };
    let size = payloadSize(desc);
    for (let level = 1; size > MAX_PAYLOAD && level <= 2; level++) {
      const was = size;
      desc.sdp = compactSdp(desc.sdp, level);
      size = payloadSize(desc);
      this.log.info(`the ${kind} is compacted for the ${MAX_PAYLOAD}-byte limit: ${was} -> ${size} bytes (level ${level})`);
    }
    if (size > MAX_PAYLOAD) {
      this.log.error(`the ${kind} is ${size} bytes in base64, more than the ${MAX_PAYLOAD} bytes KVS accepts: turn trickle ICE or the codec filter on, or send fewer tracks`);
    }
    this.sent.push({ kind, to: peer.id, sdp: desc.sdp });
    if (kind === 'offer') {
      this.signaling.sendSdpOffer(desc);
      this.hooks.step(peer.negotiated ? 'reofferSent' : 'offerSent', `${size} B`);
    } else {
      this.signaling.sendSdpAnswer(desc, this.recipient(peer.id));
      this.hooks.step('answerSent', `${this.label(peer.id)}, ${size} B`);
      peer.steps.push(wallStep('answerSent'));
    }
    this.log.info(`${kind} sent${this.cfg.trickleIce ? '' : ' (with all candidates)'}`);
    this.log.debug(`${kind} SDP:\n${desc.sdp}`);
  }

  // Viewer: one peer connection to the master.
  async startViewerPeer() {
    const cfg = this.cfg;
    if (this.ingesting && !cfg.showJoinStorageSessionAsViewer) await this.joinStorage();
    const peer = this.newPeer('master');
    const pc = peer.pc;
    this.addLocalTracks(pc);
    const sendingVideo = this.localStream.getVideoTracks().length > 0;
    const videoRecv = cfg.receiveMultiTrack ? MULTI_TRACK_VIDEO - (sendingVideo ? 1 : 0) : sendingVideo ? 0 : 1;
    const extra = [];
    for (let i = 0; i < videoRecv; i++) {
      const tr = pc.addTransceiver('video', { direction: 'recvonly' });
      if (i > 0 || sendingVideo) extra.push(tr);
    }
    if (!this.localStream.getAudioTracks().length) pc.addTransceiver('audio', { direction: 'recvonly' });
    if (cfg.openDataChannel) this.wireDataChannel(peer, pc.createDataChannel('kvsDataChannel'));
    applyCodecPreferences(pc, cfg, this.log);
    // Four video m-lines with every codec pass the 10 KB payload limit: the
    // extra ones offer the allowed codecs without retransmission.
    for (const tr of extra) {
      const codecs = (allowedCodecs(cfg, 'video') || RTCRtpReceiver.getCapabilities('video').codecs).filter((c) => !/\/(rtx|red|ulpfec|flexfec-03)$/i.test(c.mimeType));
      try {
        if (codecs.length) tr.setCodecPreferences(codecs);
      } catch (e) {
        this.log.warn(`multi-track codecs: ${e.message}`);
      }
    }
    try {
      peer.makingOffer = true;
      await pc.setLocalDescription(await pc.createOffer());
      await this.sendLocalDescription(peer, 'offer');
    } catch (e) {
      this.log.error(`offer failed: ${e.message}`);
    } finally {
      peer.makingOffer = false;
    }
  }

  /** The viewer re-offers after a change of its tracks or directions (2.9.0's renegotiation). */
  async onNegotiationNeeded(peer) {
    if (this.role !== 'VIEWER' || !peer.negotiated || peer.makingOffer) return;
    const pc = peer.pc;
    if (pc.signalingState !== 'stable') return;
    try {
      peer.makingOffer = true;
      applyCodecPreferences(pc, this.cfg, this.log);
      await pc.setLocalDescription(await pc.createOffer());
      this.log.info('renegotiating: sending a new offer');
      await this.sendLocalDescription(peer, 'offer');
    } catch (e) {
      this.log.error(`re-offer failed: ${e.message}`);
    } finally {
      peer.makingOffer = false;
    }
  }

  async onAnswer(answer) {
    const peer = this.peers.get('master');
    if (!peer) return;
    const pc = peer.pc;
    // A late or repeated answer must not throw.
    if (pc.signalingState !== 'have-local-offer') {
      this.log.debug(`answer ignored: signaling state ${pc.signalingState}`);
      return;
    }
    this.hooks.step(peer.negotiated ? 'reanswerReceived' : 'answerReceived');
    try {
      await pc.setRemoteDescription({ type: answer.type, sdp: filterSdp(answer.sdp || '', this.keepAccept) });
      peer.remoteSet = true;
      for (const c of peer.pendingCandidates.splice(0)) await this.addCandidate(peer, c);
      if (!peer.negotiated) {
        peer.negotiated = true;
        this.hooks.negotiated(peer.id);
      }
    } catch (e) {
      this.log.error(`could not apply the answer: ${e.message}`);
    }
  }

  // Master: one peer connection per viewer (and one for the media server).
  async onOffer(offer, viewerId) {
    if (this.role !== 'MASTER') return;
    if (!viewerId) {
      if (!this.ingesting) {
        this.log.warn('offer without a sender client id (the KVS media server) ignored: ingestion is off');
        return;
      }
      viewerId = MEDIA_SERVER;
      clearTimeout(this.joinTimer);
      this.hooks.ingestion('offer');
    }
    const existing = this.peers.get(viewerId);
    const ufrag = iceUfrag(offer.sdp);
    if (existing && existing.remoteSet && ufrag && ufrag === existing.remoteUfrag && existing.pc.signalingState === 'stable') {
      return this.renegotiate(existing, offer);
    }
    this.hooks.step('offerReceived', this.label(viewerId));
    if (existing) this.dropPeer(viewerId, 'new offer');
    if (viewerId !== MEDIA_SERVER && [...this.peers.keys()].filter((k) => k !== MEDIA_SERVER).length >= MAX_VIEWERS) {
      this.log.warn(`viewer ${viewerId} refused: already ${MAX_VIEWERS} viewers`);
      return;
    }
    this.log.info(`offer from ${this.label(viewerId)}`);
    const peer = this.newPeer(viewerId);
    peer.steps.push(wallStep('offerReceived'));
    const pc = peer.pc;
    this.addLocalTracks(pc);
    try {
      await pc.setRemoteDescription({ type: offer.type, sdp: filterSdp(offer.sdp || '', this.keepAccept) });
      peer.remoteSet = true;
      peer.remoteUfrag = ufrag;
      if (viewerId !== MEDIA_SERVER) applyCodecPreferences(pc, this.cfg, this.log);
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      peer.negotiated = true;
      this.hooks.peersChanged();
      for (const c of peer.pendingCandidates.splice(0)) await this.addCandidate(peer, c);
      await this.sendLocalDescription(peer, 'answer');
    } catch (e) {
      this.log.error(`answering ${this.label(viewerId)} failed: ${e.message}`);
    }
  }

  /** Master: a new offer on a live session (same ICE credentials) is a renegotiation. */
  async renegotiate(peer, offer) {
    this.hooks.step('reofferReceived', this.label(peer.id));
    this.log.info(`renegotiation offer from ${this.label(peer.id)}`);
    try {
      await peer.pc.setRemoteDescription({ type: offer.type, sdp: filterSdp(offer.sdp || '', this.keepAccept) });
      await peer.pc.setLocalDescription(await peer.pc.createAnswer());
      await this.sendLocalDescription(peer, 'answer');
    } catch (e) {
      this.log.error(`renegotiation with ${this.label(peer.id)} failed: ${e.message}`);
    }
  }

  async onRemoteCandidate(cand, peerId) {
    const peer = this.peers.get(peerId);
    if (!peer) {
      this.log.debug(`ICE candidate for unknown peer ${peerId}: dropped`);
      return;
    }
    if (!peer.remoteSet) {
      peer.pendingCandidates.push(cand);
      return;
    }
    await this.addCandidate(peer, cand);
  }

  async addCandidate(peer, cand) {
    if (cand.candidate && !this.keepAccept(cand.candidate)) {
      this.log.debug(`remote ICE candidate from ${peer.id} filtered out: ${cand.candidate}`);
      return;
    }
    this.log.debug(`remote ICE candidate from ${peer.id}: ${cand.candidate}`);
    try {
      await peer.pc.addIceCandidate(cand);
    } catch (e) {
      this.log.warn(`could not add ICE candidate: ${e.message}`);
    }
  }

  dropPeer(peerId, why) {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    this.peers.delete(peerId);
    clearTimeout(peer.gone);
    try {
      peer.pc.close();
    } catch (_) {}
    this.log.info(`${this.label(peerId)} left (${why})`);
    this.hooks.remoteGone(peerId);
    this.hooks.peersChanged();
    if (!this.stopped && !this.anyConnected()) this.hooks.state(this.signaling && this.signaling.isOpen ? 'signaling' : 'connecting');
  }

  // ---- the viewer's renegotiation controls (2.9.0) -------------------------

  /** Reports whether the viewer sends a track of kind ('video' or 'audio'). */
  sending(kind) {
    const peer = this.peers.get('master');
    if (!peer) return false;
    return peer.pc.getSenders().some((s) => s.track && s.track.kind === kind);
  }

  /**
   * Adds or removes the viewer's local track of kind, which renegotiates
   * the session. Resolves to true when the track is sent afterwards.
   */
  async toggleSend(kind) {
    const peer = this.peers.get('master');
    if (!peer) throw new Error('no session to the master');
    const pc = peer.pc;
    const sender = pc.getSenders().find((s) => s.track && s.track.kind === kind);
    if (sender) {
      const track = sender.track;
      pc.removeTrack(sender);
      this.localStream.removeTrack(track);
      track.stop();
      this.hooks.localStream(this.localStream);
      this.hooks.step('sendOff', kind);
      return false;
    }
    const s = await navigator.mediaDevices.getUserMedia(kind === 'video' ? { video: videoConstraints(this.cfg) } : { audio: true });
    const track = s.getTracks()[0];
    this.localStream.addTrack(track);
    pc.addTrack(track, this.localStream);
    this.hooks.localStream(this.localStream);
    this.hooks.step('sendOn', kind);
    return true;
  }

  /** The first negotiated transceiver receiving kind, or null. */
  incomingTransceiver(kind) {
    const peer = this.peers.get('master');
    if (!peer) return null;
    return peer.pc.getTransceivers().find((t) => !t.stopped && t.receiver.track && t.receiver.track.kind === kind) || null;
  }

  /** Reports whether incoming media of kind is paused (its transceiver does not receive). */
  paused(kind) {
    const t = this.incomingTransceiver(kind);
    return !!t && !t.direction.includes('recv');
  }

  /**
   * Pauses or resumes incoming media of kind by flipping the receive
   * direction of its transceiver, which asks the master to stop or resume
   * sending. Resolves to true when it is paused afterwards.
   */
  async togglePause(kind) {
    const t = this.incomingTransceiver(kind);
    if (!t) throw new Error(`no ${kind} transceiver`);
    const flip = { sendrecv: 'sendonly', recvonly: 'inactive', sendonly: 'sendrecv', inactive: 'recvonly' };
    t.direction = flip[t.direction] || t.direction;
    const paused = !t.direction.includes('recv');
    this.hooks.step(paused ? 'pauseIncoming' : 'resumeIncoming', kind);
    return paused;
  }

  // ---- data channel, stats, stop -------------------------------------------

  /**
   * Sends text on the open data channels: to every peer, or only to the
   * viewer named by to (master). Returns how many got it.
   */
  sendData(text, to) {
    let n = 0;
    for (const p of this.peers.values()) {
      if (to && p.id !== to) continue;
      if (p.dc && p.dc.readyState === 'open') {
        p.dc.send(text);
        n++;
      }
    }
    return n;
  }

  /** Collects getStats() from every peer: Map peerId -> RTCStatsReport. */
  async stats() {
    const out = new Map();
    for (const [id, p] of this.peers) {
      try {
        out.set(id, await p.pc.getStats());
      } catch (_) {}
    }
    return out;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.joinTimer);
    if (this.signaling) this.signaling.close();
    for (const id of [...this.peers.keys()]) this.dropPeer(id, 'stopped');
    if (this.localStream) for (const t of this.localStream.getTracks()) t.stop();
    this.localStream = null;
    this.hooks.state('stopped');
  }
}

export { PROFILE_MESSAGE };
