package localkvs

import (
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// The viewers of a storage session (JoinStorageSessionAsViewer; docs/protocol.md,
// "Streams and storage"). A viewer that joined sends its offer as to the
// master, but the hub hands it, and its candidates, to the media server,
// which answers as the master would (no sender client id) with a peer
// connection of its own for that viewer. The media server forwards the
// master's video and audio to every joined viewer as it receives them (the
// same RTP, no decoding) and asks the master for a key frame when a
// viewer connects or asks for one. What a viewer sends is received and
// dropped: the local media server does not mix the participants' audio.

// sessionViewer is one viewer of a storage session.
type sessionViewer struct {
	id string
	pc *webrtc.PeerConnection // nil until its offer came

	mu     sync.Mutex
	remote heldCandidates // its candidates, until its offer is set
	closed bool           // it left: a peer connection made meanwhile is closed at once
}

// forwardTracks makes the tracks a storage session forwards to its
// viewers: H.264 video and Opus audio, as the media server receives them.
func forwardTracks() (video, audio *webrtc.TrackLocalStaticRTP, err error) {
	video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}, "video", "kvs-media-server")
	if err != nil {
		return nil, nil, err
	}
	audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
	}, "audio", "kvs-media-server")
	return video, audio, err
}

// forward is the tap of the recorder on the master's tracks: each packet
// goes on to the joined viewers too, without its header extensions. Those
// carry the ids negotiated with the master (the MID among them, which a
// browser demultiplexes by): in a viewer's session they would name other
// extensions and other m-lines. TrackLocalStaticRTP sets each viewer's
// SSRC and payload type.
func (ss *storageSession) forward(kind webrtc.RTPCodecType) func(*rtp.Packet) {
	t := ss.fwdAudio
	if kind == webrtc.RTPCodecTypeVideo {
		t = ss.fwdVideo
	}
	return func(p *rtp.Packet) {
		q := *p // the recorder keeps p
		q.Header.Extension, q.Header.Extensions, q.Header.ExtensionProfile = false, nil, 0
		_ = t.WriteRTP(&q) // no viewer, or one gone: nothing to do
	}
}

// joinViewer admits viewer id into the storage session of channel: from now
// on its offer and candidates go to the media server (it may join before
// its signaling connection opens). The channel must have a storage session
// (its master called JoinStorageSession), and at most Limits.MaxViewers
// viewers join one session; a viewer's place ends with the session, or
// when its signaling connection closes.
func (ms *mediaServer) joinViewer(channel, id string) error {
	ss := ms.session(channel)
	if ss == nil {
		return notFound("the signaling channel has no storage session: its master has not called JoinStorageSession, or the session ended")
	}
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return notFound("the channel's storage session ended")
	}
	old := ss.viewers[id]
	if old == nil && len(ss.viewers) >= ms.s.limits.MaxViewers {
		ss.mu.Unlock()
		return limitExceeded(codeClientLimit, "the storage session already has the maximum of %d viewers", ms.s.limits.MaxViewers)
	}
	ss.viewers[id] = &sessionViewer{id: id}
	ss.mu.Unlock()
	ms.viewerJoins.Add(1)
	if old != nil { // joined again: its next offer starts anew
		old.close()
	}
	return nil
}

// joinedViewer returns the storage session of channel and its viewer id,
// when that viewer joined it; nil otherwise. While no viewer has ever
// joined a session (ms.viewerJoins), it costs an atomic load: the relay
// asks it for every viewer message.
func (ms *mediaServer) joinedViewer(channel, id string) (*storageSession, *sessionViewer) {
	if ms.viewerJoins.Load() == 0 {
		return nil, nil
	}
	ss := ms.session(channel)
	if ss == nil {
		return nil, nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if v := ss.viewers[id]; v != nil {
		return ss, v
	}
	return nil, nil
}

// fromViewer hands the media server a message of viewer id of channel,
// its offer or one of its candidates, and reports true, when the viewer
// joined the channel's storage session; else it reports false and the
// message goes to the master as any viewer's.
func (ms *mediaServer) fromViewer(channel, id, action, payload string) bool {
	ss, v := ms.joinedViewer(channel, id)
	if v == nil {
		return false
	}
	switch action {
	case wire.SDPOffer:
		var sd webrtc.SessionDescription
		if err := wire.DecodePayload(payload, &sd); err != nil || sd.Type != webrtc.SDPTypeOffer {
			ms.s.log.Info("localkvs: media server: a viewer's offer does not decode; dropped", "channel", channel, "clientId", id)
			return true
		}
		if err := ss.answerViewer(v, sd); err != nil {
			ms.s.log.Info("localkvs: media server: could not answer a viewer", "channel", channel, "clientId", id, "err", err)
		}
	case wire.ICECandidate:
		var c webrtc.ICECandidateInit
		if err := wire.DecodePayload(payload, &c); err != nil {
			return true
		}
		v.mu.Lock()
		held := v.remote.holdLocked(c)
		pc := v.pc
		v.mu.Unlock()
		if !held && pc != nil {
			_ = pc.AddICECandidate(c)
		}
	default:
		ms.s.log.Info("localkvs: media server: unexpected message from a viewer; dropped", "channel", channel, "clientId", id, "action", action)
	}
	return true
}

// answerViewer makes the viewer's peer connection (replacing one it had),
// with the forwarded tracks, and answers its offer.
func (ss *storageSession) answerViewer(v *sessionViewer, offer webrtc.SessionDescription) error {
	api, err := ss.ms.webrtcAPI()
	if err != nil {
		return err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: ss.ms.iceServers(ss.channel)})
	if err != nil {
		return err
	}
	for _, t := range []*webrtc.TrackLocalStaticRTP{ss.fwdVideo, ss.fwdAudio} {
		sender, err := pc.AddTrack(t)
		if err != nil {
			_ = pc.Close()
			return err
		}
		go ss.viewerRTCP(sender)
	}
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for { // what the viewer sends is not shared: read and dropped
			if _, _, err := track.ReadRTP(); err != nil {
				return
			}
		}
	})
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			ss.sendViewer(v.id, wire.ICECandidate, c.ToJSON())
		}
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		ss.ms.s.log.Debug("localkvs: storage session viewer", "channel", ss.channel, "clientId", v.id, "state", st.String())
		if st == webrtc.PeerConnectionStateConnected {
			ss.rec.requestKeyFrame() // so that the viewer starts without waiting for one
		}
	})
	if err := pc.SetRemoteDescription(offer); err != nil {
		_ = pc.Close()
		return err
	}
	answer, err := pc.CreateAnswer(nil)
	if err == nil {
		err = pc.SetLocalDescription(answer)
	}
	if err != nil {
		_ = pc.Close()
		return err
	}
	ss.mu.Lock()
	gone := ss.closed || ss.viewers[v.id] != v // the session ended, or the viewer left or joined again
	ss.mu.Unlock()
	if gone {
		_ = pc.Close()
		return nil
	}
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		_ = pc.Close()
		return nil
	}
	old := v.pc
	v.pc = pc
	held := v.remote.openLocked()
	v.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	ss.sendViewer(v.id, wire.SDPAnswer, answer)
	for _, c := range held {
		_ = pc.AddICECandidate(c)
	}
	return nil
}

// viewerRTCP reads the RTCP a viewer sends for a forwarded track, and asks
// the master for a key frame when the viewer does.
func (ss *storageSession) viewerRTCP(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				ss.rec.requestKeyFrame()
			}
		}
	}
}

// sendViewer sends viewer id a message from the media server, as from the
// master (no sender client id).
func (ss *storageSession) sendViewer(id, action string, payload any) {
	p, err := wire.EncodePayload(payload)
	if err != nil {
		return
	}
	frame := mustMarshal(wire.ServiceMessage{MessageType: action, MessagePayload: p})
	ss.ms.s.room(ss.channel).routeToViewer(id, action, p, frame)
}

// viewerLeft takes viewer id out of channel's storage session, when its
// signaling connection closes.
func (ms *mediaServer) viewerLeft(channel, id string) {
	ss, v := ms.joinedViewer(channel, id)
	if v == nil {
		return
	}
	ss.mu.Lock()
	if ss.viewers[id] == v {
		delete(ss.viewers, id)
	}
	ss.mu.Unlock()
	v.close()
}

// close closes the viewer's peer connection.
func (v *sessionViewer) close() {
	v.mu.Lock()
	v.closed = true
	pc := v.pc
	v.mu.Unlock()
	if pc != nil {
		_ = pc.Close()
	}
}
