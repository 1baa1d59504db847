package peer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/backoff"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// This file is the viewer's re-offer state machine: which events make a
// new peer connection and a new offer (see Viewer), with what backoff,
// and how a replaced session is retired.

// handleSignaling sets the viewer's handlers on its signaling client.
func (v *Viewer) handleSignaling() {
	v.sc.OnSDPAnswer(func(answer webrtc.SessionDescription, _ string) { v.handleAnswer(answer) })
	v.sc.OnICECandidate(func(c webrtc.ICECandidateInit, _ string) { v.handleCandidate(c) })
	v.sc.OnReconnecting(func(attempt int, delay time.Duration, cause error) {
		v.mu.Lock()
		v.reconn = true
		v.mu.Unlock()
		v.log.Info("peer: signaling reconnecting", "attempt", attempt, "delay", delay, "cause", cause)
	})
	v.sc.OnOpen(func() {
		v.mu.Lock()
		was := v.reconn
		v.reconn = false
		if was {
			v.sigRec++
		}
		cur := v.cur
		v.mu.Unlock()
		if !was || cur == nil {
			return
		}
		if st := cur.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
			v.log.Info("peer: signaling back and the peer connection is not connected; offering again")
			reason := fmt.Errorf("%w: peer connection %s", ErrSignalingReconnected, st)
			v.goRun(func() { v.renegotiate(cur, false, reason) })
		}
	})
	v.sc.OnReconnectICEServer(func() {
		v.log.Info("peer: RECONNECT_ICE_SERVER; fetching ICE servers and offering again")
		v.goRun(func() { v.renegotiate(nil, true, ErrReconnectICEServer) })
	})
	v.sc.OnError(func(err error) { v.log.Warn("peer: signaling error", "err", err) })
}

// renegotiate replaces the peer connection with a new one and offers
// again, for reason. With from set, it does so only if from is still the
// current session: another path (a signaling reconnect, an automatic
// re-offer) that replaced it already did the work. Renegotiations run one
// at a time.
func (v *Viewer) renegotiate(from *viewerSession, refresh bool, reason error) {
	v.negMu.Lock()
	defer v.negMu.Unlock()
	v.mu.Lock()
	ctx, closed, cur := v.ctx, v.closed, v.cur
	v.mu.Unlock()
	if closed || from != nil && cur != from {
		return
	}
	if refresh {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := v.res.RefreshICEServers(rctx); err != nil {
			v.log.Warn("peer: refreshing ICE servers failed", "err", err)
		}
		cancel()
	}
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	v.reoffer++
	v.mu.Unlock()
	f := handler(&v.hmu, &v.onReoff)
	if f != nil {
		f(reason)
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := v.offer(octx); err != nil && !errors.Is(err, ErrClosed) {
		v.log.Warn("peer: offering again failed", "err", err)
	}
}

// lost schedules an automatic re-offer for the current session s, lost
// for reason, after the backoff; once per session, and not with
// DisableAutoReoffer or after Close.
func (v *Viewer) lost(s *viewerSession, reason error) {
	v.mu.Lock()
	if v.closed || v.cfg.DisableAutoReoffer || v.cur != s || s.lost || v.ctx == nil {
		v.mu.Unlock()
		return
	}
	s.lost = true
	delay := backoff.FullJitter(v.cfg.ReofferBaseDelay, v.cfg.ReofferMaxDelay, v.attempt)
	v.attempt++
	ctx := v.ctx
	v.mu.Unlock()
	v.log.Info("peer: session lost; offering again", "reason", reason, "delay", delay)
	v.goRun(func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		v.mu.Lock()
		reconn := v.reconn
		v.mu.Unlock()
		if reconn || v.sc.State() != signaling.StateOpen {
			// OnOpen offers again when signaling is back, if still needed.
			v.log.Info("peer: signaling is not open; the re-offer waits for it")
			return
		}
		v.renegotiate(s, false, reason)
	})
}

// watchAnswer reports s lost if its offer gets no answer within
// ReofferAnswerTimeout.
func (v *Viewer) watchAnswer(s *viewerSession) {
	if v.cfg.DisableAutoReoffer {
		return
	}
	v.mu.Lock()
	ctx := v.ctx
	v.mu.Unlock()
	if ctx == nil {
		return
	}
	v.goRun(func() {
		t := time.NewTimer(v.cfg.ReofferAnswerTimeout)
		defer t.Stop()
		for {
			answered := s.answered()
			v.mu.Lock()
			done := v.closed || v.cur != s || answered
			ch := v.changed
			v.mu.Unlock()
			if done {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-ch: // cur replaced or a state change
			case <-t.C:
				if !s.answered() {
					v.lost(s, fmt.Errorf("%w within %v", ErrNoAnswer, v.cfg.ReofferAnswerTimeout))
				}
				return
			}
		}
	})
}

// notifyLocked wakes the waiters on v.changed; v.mu is held.
func (v *Viewer) notifyLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// stateChange follows the peer connection state of s: for the current
// session it retires the replaced ones once s is connected or failed,
// attaches the own media once connected, and schedules a re-offer when s
// is lost.
func (v *Viewer) stateChange(s *viewerSession, st webrtc.PeerConnectionState) {
	v.mu.Lock()
	s.state = st
	current := v.cur == s
	var old []*viewerSession
	if current {
		v.notifyLocked()
		if st == webrtc.PeerConnectionStateConnected || st == webrtc.PeerConnectionStateFailed ||
			st == webrtc.PeerConnectionStateClosed {
			old, v.old = v.old, nil
		}
		if st == webrtc.PeerConnectionStateConnected {
			v.attempt = 0 // the backoff starts again
		}
	}
	v.mu.Unlock()
	if !current {
		return
	}
	for _, o := range old {
		v.retire(o)
	}
	v.log.Info("peer: connection state", "state", st)
	if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed {
		// Closed here is the remote's doing: Close makes no current
		// session closed before it sets closed, which lost checks.
		v.lost(s, fmt.Errorf("%w: peer connection %s", ErrConnectionFailed, st))
	}
	if st == webrtc.PeerConnectionStateConnected {
		s.attach(v.media)
	}
	f := handler(&v.hmu, &v.onState)
	if f != nil {
		f(st)
	}
}

// retire takes an old session's tracks out of the media and closes it.
func (v *Viewer) retire(s *viewerSession) {
	s.detach(v.media)
	v.goRun(func() { _ = s.close() })
}
