// session.js: the master and viewer roles of the test page, on top of the
// browser's RTCPeerConnection and our SignalingClient.

import { SignalingClient } from './signaling.js';

/** Most viewers a master answers at once, as KVS allows. */
export const MAX_VIEWERS = 10;

/** Asks the page's backend for a signed URL and ICE servers. */
export async function fetchConnect(params) {
  const res = await fetch('api/connect', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(params),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `api/connect: HTTP ${res.status}`);
  return body;
}

/** Asks the page's backend to create a signaling channel. */
export async function createChannel(channelName) {
  const res = await fetch('api/channels', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ channelName }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `api/channels: HTTP ${res.status}`);
  return body;
}

function mediaConstraints(cfg) {
  const [w, h] = (cfg.resolution || '1280x720').split('x').map(Number);
  return {
    video: cfg.sendVideo ? { width: { ideal: w }, height: { ideal: h } } : false,
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

/** Reports whether a candidate line's address is on the loopback interface. */
export function isLoopbackCandidate(candidate) {
  // candidate:<foundation> <component> <protocol> <priority> <address> <port> typ <type> ...
  const f = String(candidate || '').replace(/^a=/, '').split(/\s+/);
  const addr = (f[4] || '').replace(/^\[|\]$/g, '');
  return /^127\./.test(addr) || addr === '::1';
}

/**
 * Returns a predicate for the candidateFilter setting: '' or 'all' lets
 * every candidate through, 'loopback' only 127.0.0.0/8 and ::1 ones (for
 * tests on one machine that must not use other addresses).
 */
export function candidateFilter(mode) {
  if (mode === 'loopback') return isLoopbackCandidate;
  return () => true;
}

/** Removes the a=candidate lines that keep() refuses from an SDP. */
export function filterSdp(sdp, keep) {
  return sdp
    .split('\r\n')
    .filter((l) => !l.startsWith('a=candidate:') || keep(l))
    .join('\r\n');
}

/** KVS refuses message payloads larger than this (base64 bytes). */
export const MAX_PAYLOAD = 10240;

/**
 * Keeps VP8, H.264 (constrained baseline, packetization-mode 1) and their
 * retransmission codec for video, and Opus for audio, on every transceiver
 * of pc. Chrome offers a dozen video codecs; an offer with all of them, its
 * candidates inside (no trickle ICE) and base64 on top can pass the 10 KB
 * payload limit of KVS signaling.
 */
export function preferCommonCodecs(pc) {
  if (!window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
  for (const tr of pc.getTransceivers()) {
    if (!tr.setCodecPreferences) continue;
    const kind = tr.receiver.track.kind;
    const caps = RTCRtpReceiver.getCapabilities(kind);
    if (!caps) continue;
    const keep = caps.codecs.filter((c) => {
      const m = c.mimeType.toLowerCase();
      const f = c.sdpFmtpLine || '';
      if (kind === 'audio') return m === 'audio/opus';
      if (m === 'video/vp8' || m === 'video/rtx') return true;
      return m === 'video/h264' && /profile-level-id=42e01f/.test(f) && /packetization-mode=1/.test(f);
    });
    if (keep.some((c) => c.mimeType.toLowerCase() !== 'video/rtx')) {
      try {
        tr.setCodecPreferences(keep);
      } catch (_) {}
    }
  }
}

/**
 * Session is one running master or viewer. hooks:
 *   log                      a Logger
 *   step(name, detail)       a timeline step
 *   state(s)                 'connecting' | 'signaling' | 'connected' | 'stopped' | 'error'
 *   localStream(stream)
 *   remoteStream(peerId, stream)   peerId: the viewer's client id (master) or 'master'
 *   remoteGone(peerId)
 *   data(peerId, text)
 *   dataOpen(peerId)
 *   connectInfo(info)        the backend's answer (no secrets in it but the signed URL)
 */
export class Session {
  constructor(cfg, hooks) {
    this.cfg = cfg;
    this.hooks = hooks;
    this.log = hooks.log;
    this.role = cfg.role === 'master' ? 'MASTER' : 'VIEWER';
    this.peers = new Map(); // peerId -> {pc, dc, stream, pendingCandidates}
    this.localStream = null;
    this.connectInfo = null;
    this.stopped = false;
    this.keepCandidate = candidateFilter(cfg.candidateFilter);
  }

  async start() {
    const cfg = this.cfg;
    this.hooks.state('connecting');
    this.log.info(`starting ${cfg.role} on channel ${cfg.channelName}${this.role === 'VIEWER' ? ' as ' + cfg.clientId : ''}`);
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
    }
    this.signaling = new SignalingClient({
      role: this.role,
      clientId: cfg.clientId,
      log: this.log,
      getSignedURL: async (reason) => {
        const info = await fetchConnect({
          channelName: cfg.channelName,
          role: this.role === 'MASTER' ? 'master' : 'viewer',
          clientId: this.role === 'VIEWER' ? cfg.clientId : undefined,
          natTraversal: cfg.natTraversal,
          reason,
        });
        this.connectInfo = info;
        this.hooks.connectInfo(info);
        this.hooks.step('signedURL', reason === 'open' ? '' : reason);
        const servers = (info.iceServers || []).map((s) => (s.urls || []).join(' ')).join(', ');
        this.log.info(`backend: channel ${info.channelARN}; ICE servers: ${servers || 'none'}; policy ${info.iceTransportPolicy}`);
        if (info.timings) this.log.debug(`backend timings: ${JSON.stringify(info.timings)}`);
        return info.signedURL;
      },
    });
    const sig = this.signaling;
    sig.on('open', () => {
      this.hooks.step('signalingOpen');
      this.hooks.state(this.anyConnected() ? 'connected' : 'signaling');
      if (this.role === 'VIEWER' && !this.peers.has('master')) this.startViewerPeer();
    });
    sig.on('sdpOffer', (offer, from) => this.onOffer(offer, from));
    sig.on('sdpAnswer', (answer) => this.onAnswer(answer));
    sig.on('iceCandidate', (cand, from) => this.onRemoteCandidate(cand, from || 'master'));
    sig.on('statusResponse', (st) => this.hooks.step('statusResponse', `${st.errorType || ''} ${st.statusCode || ''}`));
    sig.on('goAway', () => this.hooks.step('goAway'));
    await sig.open();
  }

  anyConnected() {
    for (const p of this.peers.values()) if (p.pc.connectionState === 'connected') return true;
    return false;
  }

  rtcConfig() {
    const info = this.connectInfo || {};
    return {
      iceServers: info.iceServers || [],
      iceTransportPolicy: info.iceTransportPolicy || 'all',
    };
  }

  newPeer(peerId) {
    const pc = new RTCPeerConnection(this.rtcConfig());
    const peer = { id: peerId, pc, dc: null, stream: new MediaStream(), remoteSet: false, pendingCandidates: [] };
    this.peers.set(peerId, peer);
    const label = this.role === 'MASTER' ? `viewer ${peerId}` : 'master';
    // The master shows every viewer, even one that sends no media.
    if (this.role === 'MASTER') this.hooks.remoteStream(peerId, peer.stream);
    pc.addEventListener('icecandidate', ({ candidate }) => {
      if (!candidate || !candidate.candidate) return;
      if (!this.keepCandidate(candidate.candidate)) {
        this.log.debug(`local ICE candidate for ${label} filtered out: ${candidate.candidate}`);
        return;
      }
      this.log.debug(`local ICE candidate for ${label}: ${candidate.candidate}`);
      if (this.cfg.trickleIce) {
        try {
          this.signaling.sendIceCandidate(candidate, this.role === 'MASTER' ? peerId : undefined);
        } catch (e) {
          this.log.warn(`could not send ICE candidate: ${e.message}`);
        }
      }
    });
    pc.addEventListener('iceconnectionstatechange', () => {
      this.log.info(`${label}: ICE ${pc.iceConnectionState}`);
    });
    pc.addEventListener('connectionstatechange', () => {
      const st = pc.connectionState;
      this.log.info(`${label}: connection ${st}`);
      if (st === 'connected') {
        this.hooks.step('iceConnected', label);
        this.hooks.state('connected');
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
      this.log.info(`${label}: remote ${ev.track.kind} track`);
      peer.stream.addTrack(ev.track);
      this.hooks.remoteStream(peerId, peer.stream);
    });
    pc.addEventListener('datachannel', (ev) => {
      if (!this.cfg.openDataChannel) {
        this.log.info(`${label} opened a data channel; ignored (data channel is off here)`);
        return;
      }
      this.wireDataChannel(peer, ev.channel);
    });
    return peer;
  }

  wireDataChannel(peer, dc) {
    peer.dc = dc;
    const label = this.role === 'MASTER' ? `viewer ${peer.id}` : 'master';
    dc.addEventListener('open', () => {
      this.log.info(`data channel to ${label} open`);
      this.hooks.step('dataChannelOpen', label);
      this.hooks.dataOpen(peer.id);
    });
    dc.addEventListener('close', () => {
      this.log.info(`data channel to ${label} closed`);
      // A viewer that closes its data channel is leaving: free its view now
      // rather than after ICE times out.
      if (this.role === 'MASTER' && !this.stopped && this.peers.get(peer.id) === peer) this.dropPeer(peer.id, 'data channel closed');
    });
    dc.addEventListener('message', (ev) => {
      const text = typeof ev.data === 'string' ? ev.data : `[${ev.data.byteLength || ev.data.size} bytes]`;
      this.log.info(`data from ${label}: ${text}`);
      this.hooks.data(peer.id, text);
    });
  }

  addLocalTracks(pc) {
    if (!this.localStream) return;
    for (const t of this.localStream.getTracks()) pc.addTrack(t, this.localStream);
  }

  async sendLocalDescription(peer, kind) {
    const pc = peer.pc;
    if (!this.cfg.trickleIce) await waitGatheringComplete(pc);
    const local = pc.localDescription;
    const desc = { type: local.type, sdp: filterSdp(local.sdp, this.keepCandidate) };
    const size = Math.ceil((new TextEncoder().encode(JSON.stringify(desc)).length / 3)) * 4;
    if (size > MAX_PAYLOAD) {
      this.log.error(`the ${kind} is ${size} bytes in base64, more than the ${MAX_PAYLOAD} bytes KVS accepts: turn trickle ICE on or send fewer tracks`);
    }
    if (kind === 'offer') {
      this.signaling.sendSdpOffer(desc);
      this.hooks.step('offerSent', `${size} B`);
    } else {
      this.signaling.sendSdpAnswer(desc, peer.id);
      this.hooks.step('answerSent', `viewer ${peer.id}, ${size} B`);
    }
    this.log.info(`${kind} sent${this.cfg.trickleIce ? '' : ' (with all candidates)'}`);
  }

  // Viewer: one peer connection to the master.
  async startViewerPeer() {
    const peer = this.newPeer('master');
    const pc = peer.pc;
    this.addLocalTracks(pc);
    if (!this.cfg.sendVideo) pc.addTransceiver('video', { direction: 'recvonly' });
    if (!this.cfg.sendAudio) pc.addTransceiver('audio', { direction: 'recvonly' });
    if (this.cfg.openDataChannel) this.wireDataChannel(peer, pc.createDataChannel('kvsDataChannel'));
    preferCommonCodecs(pc);
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await this.sendLocalDescription(peer, 'offer');
    } catch (e) {
      this.log.error(`offer failed: ${e.message}`);
    }
  }

  async onAnswer(answer) {
    const peer = this.peers.get('master');
    if (!peer) return;
    this.hooks.step('answerReceived');
    try {
      await peer.pc.setRemoteDescription({ type: answer.type, sdp: filterSdp(answer.sdp || '', this.keepCandidate) });
      peer.remoteSet = true;
      for (const c of peer.pendingCandidates.splice(0)) await this.addCandidate(peer, c);
    } catch (e) {
      this.log.error(`could not apply the answer: ${e.message}`);
    }
  }

  // Master: one peer connection per viewer.
  async onOffer(offer, viewerId) {
    if (this.role !== 'MASTER') return;
    if (!viewerId) {
      this.log.warn('offer without a sender client id: ignored');
      return;
    }
    this.hooks.step('offerReceived', `viewer ${viewerId}`);
    if (this.peers.has(viewerId)) this.dropPeer(viewerId, 'new offer');
    if (this.peers.size >= MAX_VIEWERS) {
      this.log.warn(`viewer ${viewerId} refused: already ${MAX_VIEWERS} viewers`);
      return;
    }
    this.log.info(`offer from viewer ${viewerId}`);
    const peer = this.newPeer(viewerId);
    const pc = peer.pc;
    this.addLocalTracks(pc);
    try {
      await pc.setRemoteDescription({ type: offer.type, sdp: filterSdp(offer.sdp || '', this.keepCandidate) });
      peer.remoteSet = true;
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      for (const c of peer.pendingCandidates.splice(0)) await this.addCandidate(peer, c);
      await this.sendLocalDescription(peer, 'answer');
    } catch (e) {
      this.log.error(`answering viewer ${viewerId} failed: ${e.message}`);
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
    if (cand.candidate && !this.keepCandidate(cand.candidate)) {
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
    this.log.info(`${this.role === 'MASTER' ? 'viewer ' + peerId : 'master'} left (${why})`);
    this.hooks.remoteGone(peerId);
    if (!this.stopped && !this.anyConnected()) this.hooks.state(this.signaling && this.signaling.isOpen ? 'signaling' : 'connecting');
  }

  /** Sends text on every open data channel; returns how many got it. */
  sendData(text) {
    let n = 0;
    for (const p of this.peers.values()) {
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
    if (this.signaling) this.signaling.close();
    for (const id of [...this.peers.keys()]) this.dropPeer(id, 'stopped');
    if (this.localStream) for (const t of this.localStream.getTracks()) t.stop();
    this.localStream = null;
    this.hooks.state('stopped');
  }
}
