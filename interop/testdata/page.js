// page.js runs the official KVS WebRTC JS SDK's browser bundle (global
// KVSWebRTC) as a viewer or a master, following the flows of the SDK's
// README, against the local service. The Go test reads window.interop.
//
// window.interopConfig (from /config.js): role ('VIEWER' | 'MASTER'),
// channelARN, channelEndpoint (wss://...), region, clientId (viewer),
// credentials {accessKeyId, secretAccessKey, sessionToken}, iceServers,
// iceTransportPolicy ('all' | 'relay'), candidateFilter ('loopback' sends
// only 127.0.0.0/8 and ::1 candidates: headless Chromium here also has
// addresses that lead nowhere).
'use strict';

(function () {
  const cfg = window.interopConfig;
  const state = {
    version: '',
    events: [], // signaling events, in order
    errors: [],
    log: [],
    signalingOpen: false,
    offersSent: 0,
    answersSent: 0,
    offersReceived: [], // sender ids (master)
    answersReceived: 0,
    candidatesSent: 0,
    candidatesReceived: 0,
    candidatesDropped: 0,
    addCandidateErrors: [],
    connectionStates: {}, // peer id -> last RTCPeerConnectionState
    localStreamReady: false,
  };
  window.interop = state;
  const log = (...a) => state.log.push(new Date().toISOString().slice(11, 23) + ' ' + a.join(' '));
  const fail = (where, e) => {
    const msg = where + ': ' + (e && (e.stack || e.message) || String(e));
    state.errors.push(msg);
    log('ERROR', msg);
  };

  const isLoopback = (cand) => {
    // candidate:<foundation> <component> <protocol> <priority> <address> ...
    const f = (cand || '').split(' ');
    if (f.length < 5) return false;
    const addr = f[4];
    return addr.startsWith('127.') || addr === '::1';
  };
  const keep = (c) => cfg.candidateFilter !== 'loopback' || isLoopback(c.candidate);

  const pcConfig = {
    iceServers: cfg.iceServers || [],
    iceTransportPolicy: cfg.iceTransportPolicy || 'all',
  };

  try {
    state.version = KVSWebRTC.VERSION || '';
  } catch (e) {
    fail('KVSWebRTC', e);
    return;
  }

  const role = cfg.role === 'MASTER' ? KVSWebRTC.Role.MASTER : KVSWebRTC.Role.VIEWER;
  const signalingClient = new KVSWebRTC.SignalingClient({
    channelARN: cfg.channelARN,
    channelEndpoint: cfg.channelEndpoint,
    clientId: role === KVSWebRTC.Role.VIEWER ? cfg.clientId : undefined,
    role: role,
    region: cfg.region,
    credentials: cfg.credentials,
    systemClockOffset: 0,
  });
  state.signalingClient = signalingClient;

  signalingClient.on('close', () => {
    state.signalingOpen = false;
    state.events.push('close');
    log('signaling closed');
  });
  signalingClient.on('error', (e) => {
    state.events.push('error');
    fail('signaling error', e);
  });
  signalingClient.on('statusResponse', (s) => {
    state.events.push('statusResponse');
    log('statusResponse', JSON.stringify(s));
  });

  const watch = (id, pc) => {
    pc.addEventListener('connectionstatechange', () => {
      state.connectionStates[id] = pc.connectionState;
      log('peer', id, pc.connectionState);
    });
  };

  if (role === KVSWebRTC.Role.VIEWER) {
    // The README's viewer flow.
    const peerConnection = new RTCPeerConnection(pcConfig);
    state.pc = peerConnection;
    watch('master', peerConnection);
    const remoteView = document.getElementById('remote');

    signalingClient.on('open', async () => {
      state.signalingOpen = true;
      state.events.push('open');
      log('signaling open');
      try {
        peerConnection.addTransceiver('video', { direction: 'recvonly' });
        peerConnection.addTransceiver('audio', { direction: 'recvonly' });
        await peerConnection.setLocalDescription(await peerConnection.createOffer());
        signalingClient.sendSdpOffer(peerConnection.localDescription);
        state.offersSent++;
        log('offer sent');
      } catch (e) {
        fail('offer', e);
      }
    });
    signalingClient.on('sdpAnswer', async (answer) => {
      state.events.push('sdpAnswer');
      state.answersReceived++;
      log('answer received');
      try {
        await peerConnection.setRemoteDescription(answer);
      } catch (e) {
        fail('setRemoteDescription(answer)', e);
      }
    });
    signalingClient.on('iceCandidate', (candidate) => {
      state.candidatesReceived++;
      peerConnection.addIceCandidate(candidate).catch((e) => {
        state.addCandidateErrors.push(String(e && e.message || e));
        log('addIceCandidate failed', e);
      });
    });
    peerConnection.addEventListener('icecandidate', ({ candidate }) => {
      if (!candidate) return;
      if (!keep(candidate)) {
        state.candidatesDropped++;
        return;
      }
      signalingClient.sendIceCandidate(candidate);
      state.candidatesSent++;
    });
    peerConnection.addEventListener('track', (event) => {
      log('track', event.track.kind);
      if (remoteView.srcObject) return;
      remoteView.srcObject = event.streams[0];
      remoteView.play().catch((e) => log('play', e));
    });

    state.videoWidth = () => remoteView.videoWidth;
    state.videoHeight = () => remoteView.videoHeight;
    state.framesDecoded = () => {
      const q = remoteView.getVideoPlaybackQuality ? remoteView.getVideoPlaybackQuality() : null;
      return q ? q.totalVideoFrames : 0;
    };
    state.inboundVideo = async () => {
      const stats = await peerConnection.getStats();
      let out = null;
      stats.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          const codec = r.codecId ? stats.get(r.codecId) : null;
          out = { framesDecoded: r.framesDecoded || 0, mimeType: codec ? codec.mimeType : '' };
        }
      });
      return out;
    };
  } else {
    // The README's master flow: one peer connection per viewer.
    const peerConnectionByClientId = {};
    state.peerConnectionByClientId = peerConnectionByClientId;
    let localStream = null;
    const localReady = navigator.mediaDevices
      .getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: true })
      .then((s) => {
        localStream = s;
        document.getElementById('local').srcObject = s;
        state.localStreamReady = true;
        log('local stream', s.getTracks().map((t) => t.kind).join(','));
      })
      .catch((e) => fail('getUserMedia', e));

    signalingClient.on('open', () => {
      state.signalingOpen = true;
      state.events.push('open');
      log('signaling open');
    });
    signalingClient.on('sdpOffer', async (offer, remoteClientId) => {
      state.events.push('sdpOffer');
      state.offersReceived.push(remoteClientId);
      log('offer from', remoteClientId);
      try {
        await localReady;
        const old = peerConnectionByClientId[remoteClientId];
        if (old) old.close();
        const peerConnection = new RTCPeerConnection(pcConfig);
        peerConnectionByClientId[remoteClientId] = peerConnection;
        watch(remoteClientId, peerConnection);
        peerConnection.addEventListener('icecandidate', ({ candidate }) => {
          if (!candidate) return;
          if (!keep(candidate)) {
            state.candidatesDropped++;
            return;
          }
          signalingClient.sendIceCandidate(candidate, remoteClientId);
          state.candidatesSent++;
        });
        localStream.getTracks().forEach((track) => peerConnection.addTrack(track, localStream));
        await peerConnection.setRemoteDescription(offer);
        await peerConnection.setLocalDescription(await peerConnection.createAnswer());
        signalingClient.sendSdpAnswer(peerConnection.localDescription, remoteClientId);
        state.answersSent++;
        log('answer sent to', remoteClientId);
      } catch (e) {
        fail('answer ' + remoteClientId, e);
      }
    });
    signalingClient.on('iceCandidate', (candidate, remoteClientId) => {
      state.candidatesReceived++;
      const peerConnection = peerConnectionByClientId[remoteClientId];
      if (!peerConnection) {
        state.addCandidateErrors.push('candidate from ' + remoteClientId + ' before its peer connection');
        return;
      }
      peerConnection.addIceCandidate(candidate).catch((e) => {
        state.addCandidateErrors.push(String(e && e.message || e));
        log('addIceCandidate failed', e);
      });
    });
    state.outboundVideo = async (id) => {
      const pc = peerConnectionByClientId[id];
      if (!pc) return null;
      const stats = await pc.getStats();
      let out = null;
      stats.forEach((r) => {
        if (r.type === 'outbound-rtp' && r.kind === 'video') {
          const codec = r.codecId ? stats.get(r.codecId) : null;
          out = { framesEncoded: r.framesEncoded || 0, mimeType: codec ? codec.mimeType : '' };
        }
      });
      return out;
    };
  }

  // selectedPair returns the candidate types of the selected pair of the
  // peer connection with id ('master' on a viewer page), e.g.
  // {local: 'relay', remote: 'host'}, or null before there is one.
  state.selectedPair = async (id) => {
    const pc = role === KVSWebRTC.Role.VIEWER ? state.pc : state.peerConnectionByClientId[id];
    if (!pc) return null;
    const stats = await pc.getStats();
    let pairId = null;
    stats.forEach((r) => {
      if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
    });
    const pair = pairId ? stats.get(pairId) : null;
    if (!pair) return null;
    const l = stats.get(pair.localCandidateId);
    const r = stats.get(pair.remoteCandidateId);
    return { local: l ? l.candidateType : '', remote: r ? r.candidateType : '' };
  };

  state.diagnostics = () => JSON.stringify({
    version: state.version,
    events: state.events,
    errors: state.errors,
    signalingOpen: state.signalingOpen,
    offersSent: state.offersSent,
    answersSent: state.answersSent,
    offersReceived: state.offersReceived,
    answersReceived: state.answersReceived,
    candidatesSent: state.candidatesSent,
    candidatesReceived: state.candidatesReceived,
    candidatesDropped: state.candidatesDropped,
    addCandidateErrors: state.addCandidateErrors,
    connectionStates: state.connectionStates,
    log: state.log,
  }, null, 1);

  signalingClient.open();
  log('signaling opening', cfg.channelEndpoint);
})();
