package peer

import (
	"context"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// viewerSession is one peer connection of the viewer.
type viewerSession struct {
	link

	// Under Viewer.mu.
	state webrtc.PeerConnectionState
	lost  bool // an automatic re-offer is scheduled for it
}

// offer makes a new peer connection (the old one goes on until the new
// one connects) and sends its offer.
func (v *Viewer) offer(ctx context.Context) error {
	if v.cfg.JoinStorageSession { // the media server answers this offer (docs/protocol.md, "Viewers of a storage session")
		if err := v.res.JoinStorageSessionAsViewer(ctx); err != nil {
			return err
		}
	}
	s := &viewerSession{}
	err := s.open(linkConfig{
		api:    v.api,
		config: iceConfig(ctx, v.res, v.cfg.NAT, v.log),
		log:    v.log,
		video:  v.cfg.Video, audio: v.cfg.Audio, streamID: v.id,
		recvVideo: !v.cfg.NoVideo, recvAudio: !v.cfg.NoAudio, offer: true,
		noTrickle:     v.cfg.NonTrickle,
		sendCandidate: func(c webrtc.ICECandidateInit) { v.sendCandidate(s, c) },
		dataSent:      &v.dataOut, dataRecv: &v.dataIn,
		t:       &v.tracker,
		onState: func(st webrtc.PeerConnectionState) { v.stateChange(s, st) },
	})
	if err != nil {
		return err
	}
	pc := s.pc
	fail := func(err error) error {
		_ = pc.Close()
		return err
	}
	if !v.cfg.NoDataChannel {
		dc, err := pc.CreateDataChannel(v.cfg.DataChannelLabel, nil)
		if err != nil {
			return fail(fmt.Errorf("%w: data channel: %w", ErrPeerConnection, err))
		}
		s.useDataChannel(dc, v.dataMessage)
	}
	pc.OnDataChannel(func(dc *webrtc.DataChannel) { s.receiveData(dc, v.dataMessage) }) // one the master opens
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { v.track(track) })

	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: creating the offer: %w", ErrPeerConnection, err))
	}
	var gathered <-chan struct{}
	if v.cfg.NonTrickle {
		gathered = webrtc.GatheringCompletePromise(pc)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(fmt.Errorf("%w: applying the offer: %w", ErrPeerConnection, err))
	}

	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return fail(ErrClosed)
	}
	// Make before break: a connected peer connection goes on until the new
	// one is connected (or fails), or until the master replaces it. The
	// others it supersedes (never connected, or no longer) have nothing to
	// keep and are closed now: a viewer that offers again and again (a
	// broken service, a master that never answers) holds the new peer
	// connection and at most one connected one, not one per offer.
	retired := v.supersedeLocked()
	v.cur = s
	v.notifyLocked()
	v.mu.Unlock()
	for _, o := range retired {
		v.retire(o)
	}
	// Candidates of the master's old session must not reach the new one
	// before its answer.
	v.sc.ResetICECandidateState("")

	if gathered != nil {
		select {
		case <-gathered:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for ICE gathering: %w", ErrPeerConnection, ctx.Err())
		}
		offer = *pc.LocalDescription()
	}
	s.markStarted()
	v.watchAnswer(s)
	if err := v.sc.SendSDPOffer(offer); err != nil {
		return fmt.Errorf("%w: sending the offer: %w", ErrSignaling, err)
	}
	s.localDescriptionSent()
	v.log.Debug("peer: offer sent", "trickle", !v.cfg.NonTrickle)
	return nil
}

// supersedeLocked parks the session worth keeping while a new one is made
// (the newest connected one of v.cur and v.old) and returns the others, to
// be retired. v.mu is held.
func (v *Viewer) supersedeLocked() (retired []*viewerSession) {
	all := v.old
	if v.cur != nil {
		all = append(all, v.cur)
	}
	var keep *viewerSession
	for i := len(all) - 1; i >= 0; i-- {
		if keep == nil && all[i].state == webrtc.PeerConnectionStateConnected {
			keep = all[i]
			continue
		}
		retired = append(retired, all[i])
	}
	v.old = nil
	if keep != nil {
		v.old = []*viewerSession{keep}
	}
	return retired
}

// sendCandidate sends a local candidate of s, if s is still the current
// session.
func (v *Viewer) sendCandidate(s *viewerSession, c webrtc.ICECandidateInit) {
	v.mu.Lock()
	current := v.cur == s
	v.mu.Unlock()
	if !current {
		return
	}
	if err := v.sc.SendICECandidate(c); err != nil {
		v.log.Debug("peer: sending a candidate failed", "err", err)
	}
}

// handleAnswer applies the master's answer to the current session.
func (v *Viewer) handleAnswer(answer webrtc.SessionDescription) {
	v.mu.Lock()
	s := v.cur
	v.mu.Unlock()
	if s == nil {
		return
	}
	if s.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		v.log.Debug("peer: answer with no offer pending; ignored", "state", s.pc.SignalingState())
		return
	}
	if err := s.setRemoteDescription(answer); err != nil {
		v.log.Warn("peer: applying the answer failed", "err", err)
		return
	}
	s.markAnswered()
}

// handleCandidate applies a candidate of the master to the current
// session, or keeps it until the answer.
func (v *Viewer) handleCandidate(c webrtc.ICECandidateInit) {
	v.mu.Lock()
	s := v.cur
	v.mu.Unlock()
	if s != nil {
		s.remoteCandidate(c)
	}
}
