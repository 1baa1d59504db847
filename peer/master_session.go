package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/media"
)

// session is the master's peer connection with one viewer.
type session struct {
	link
	m  *Master
	id string

	// Under link.mu.
	joined bool
	ended  bool

	dataSent, dataRecv atomic.Uint64
}

func (m *Master) session(id string) *session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sessions[id]
}

// handleOffer answers a viewer's offer; it runs on the signaling event
// goroutine, so that the candidates that follow the offer find the
// session with its remote description set.
func (m *Master) handleOffer(offer webrtc.SessionDescription, viewerID string) {
	received := time.Now()
	log := m.log.With("viewer", viewerID)
	if viewerID == "" {
		log.Warn("peer: SDP offer without a sender client id; ignored")
		return
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	old := m.sessions[viewerID]
	if old != nil {
		delete(m.sessions, viewerID)
	}
	full := len(m.sessions) >= m.cfg.MaxViewers
	m.mu.Unlock()
	if old != nil {
		log.Info("peer: new offer from a viewer with a session; replacing it")
		m.end(old, ErrSessionReplaced)
	}
	_, left, _, _ := m.handlers()
	if full {
		log.Warn("peer: offer refused", "err", ErrTooManyViewers, "max", m.cfg.MaxViewers)
		if left != nil {
			left(viewerID, ErrTooManyViewers)
		}
		return
	}

	s, err := m.newSession(viewerID, received)
	if err != nil {
		log.Warn("peer: cannot answer the offer", "err", err)
		if left != nil {
			left(viewerID, err)
		}
		return
	}
	m.mu.Lock()
	if m.closed || m.sessions[viewerID] != nil {
		m.mu.Unlock()
		m.closePC(s)
		return
	}
	m.sessions[viewerID] = s
	m.mu.Unlock()

	if err := s.answer(offer); err != nil {
		log.Warn("peer: cannot answer the offer", "err", err)
		m.end(s, err)
		return
	}
	log.Debug("peer: answered", "took", time.Since(received))
}

// newSession makes the peer connection for a viewer, with the media tracks.
func (m *Master) newSession(id string, started time.Time) (*session, error) {
	s := &session{m: m, id: id}
	err := s.open(linkConfig{
		api:    m.api,
		config: iceConfig(context.Background(), m.res, m.cfg.NAT, m.log),
		log:    m.log.With("viewer", id),
		peerID: id,
		video:  m.cfg.Video, audio: m.cfg.Audio, streamID: "kvswebrtc",
		recvVideo: true, recvAudio: true, // the viewer may send its own
		sendCandidate: func(c webrtc.ICECandidateInit) { m.out.put(outMsg{cand: c, recipient: id}) },
		dataSent:      &s.dataSent, dataRecv: &s.dataRecv,
		started: started,
		t:       &m.tracker,
		onState: s.stateChange,
	})
	if err != nil {
		return nil, err
	}
	s.pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if f := m.cfg.ViewerSinks; f != nil {
			if sinks := f(id, track); len(sinks) > 0 {
				m.goRun(func() { m.consume(id, track, sinks) })
				return
			}
		}
		_, _, onTrack, _ := m.handlers()
		if onTrack != nil {
			m.goRun(func() { onTrack(id, track) })
			return
		}
		m.goRun(func() { drainRTP(track) })
	})
	s.pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		s.useDataChannel(dc, func(msg webrtc.DataChannelMessage) {
			if _, _, _, onData := m.handlers(); onData != nil {
				onData(id, msg)
			}
		})
	})
	return s, nil
}

// consume reads a viewer's track into sinks until the track ends (the
// session closes), then closes the sinks that are io.Closers.
func (m *Master) consume(id string, track *webrtc.TrackRemote, sinks []media.Sink) {
	log := m.log.With("viewer", id, "codec", track.Codec().MimeType)
	log.Info("peer: receiving the viewer's track", "kind", track.Kind().String())
	if err := media.Consume(context.Background(), track, sinks...); err != nil && !errors.Is(err, io.EOF) {
		log.Debug("peer: the viewer's track ended", "err", err)
	}
	for _, s := range sinks {
		if c, ok := s.(io.Closer); ok {
			if err := c.Close(); err != nil {
				log.Warn("peer: closing a sink of the viewer's track", "err", err)
			}
		}
	}
}

// answer applies the offer and sends the answer, then the candidates
// gathered meanwhile.
func (s *session) answer(offer webrtc.SessionDescription) error {
	if err := s.m.canReceive(offer); err != nil {
		return err
	}
	if err := s.setRemoteDescription(offer); err != nil {
		return fmt.Errorf("%w: applying the offer: %w", ErrPeerConnection, err)
	}
	ans, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("%w: creating the answer: %w", ErrPeerConnection, err)
	}
	if err := s.pc.SetLocalDescription(ans); err != nil {
		return fmt.Errorf("%w: applying the answer: %w", ErrPeerConnection, err)
	}
	s.m.out.put(outMsg{sdp: &ans, recipient: s.id})
	s.markAnswered()
	s.localDescriptionSent()
	return nil
}

// handleCandidate applies a viewer's candidate, or keeps it until the
// offer is applied.
func (m *Master) handleCandidate(c webrtc.ICECandidateInit, viewerID string) {
	s := m.session(viewerID)
	if s == nil {
		m.log.Debug("peer: candidate from a viewer with no session; dropped", "viewer", viewerID)
		return
	}
	s.remoteCandidate(c)
}

// join marks s joined and adds its tracks to the media, once: it
// reports false, and does nothing, when s had joined or ended already.
// Viewers' sessions and the session with the media server join so.
func (s *session) join() bool {
	s.mu.Lock()
	if s.joined || s.ended {
		s.mu.Unlock()
		return false
	}
	s.joined = true
	s.mu.Unlock()
	s.attach(s.m.media)
	return true
}

// markEnded marks s ended, once: it reports false when s had ended
// already. The caller then ends it (Master.end, ingest.endSession).
func (s *session) markEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.ended = true
	return true
}

func (s *session) stateChange(st webrtc.PeerConnectionState) {
	m := s.m
	switch st {
	case webrtc.PeerConnectionStateConnected:
		if !s.join() {
			return
		}
		m.log.Info("peer: viewer joined", "viewer", s.id, "after", s.connectTime())
		if joined, _, _, _ := m.handlers(); joined != nil {
			joined(s.id)
		}
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		m.mu.Lock()
		if m.sessions[s.id] == s {
			delete(m.sessions, s.id)
		}
		m.mu.Unlock()
		m.end(s, fmt.Errorf("%w: peer connection %s", ErrConnectionFailed, st))
	}
}

// end takes s out of the media, closes its peer connection (in the
// background) and reports OnViewerLeft, once. The caller has removed s
// from m.sessions.
func (m *Master) end(s *session, reason error) {
	if !s.markEnded() {
		return
	}
	m.mu.Lock()
	if m.sessions[s.id] == s {
		delete(m.sessions, s.id)
	}
	m.mu.Unlock()
	s.detach(m.media)
	m.closePC(s)
	m.log.Info("peer: viewer left", "viewer", s.id, "reason", reason)
	if _, left, _, _ := m.handlers(); left != nil {
		left(s.id, reason)
	}
}

func (m *Master) closePC(s *session) {
	m.goRun(func() {
		if err := s.close(); err != nil {
			m.log.Debug("peer: closing a peer connection", "viewer", s.id, "err", err)
		}
	})
}

// Send sends a binary data channel message to one viewer, on the data
// channel the viewer opened. It returns ErrUnknownViewer when the viewer
// has no session and ErrNoDataChannel when its data channel is not open.
func (m *Master) Send(viewerID string, data []byte) error {
	return m.send(viewerID, func(dc *webrtc.DataChannel) error { return dc.Send(data) })
}

// SendText sends a text data channel message to one viewer (what a
// browser's onmessage gets as a string).
func (m *Master) SendText(viewerID, text string) error {
	return m.send(viewerID, func(dc *webrtc.DataChannel) error { return dc.SendText(text) })
}

func (m *Master) send(viewerID string, f func(*webrtc.DataChannel) error) error {
	s := m.session(viewerID)
	if s == nil {
		return fmt.Errorf("%w: %q", ErrUnknownViewer, viewerID)
	}
	return s.send(f)
}

// Broadcast sends a binary data channel message to every viewer whose data
// channel is open, and returns how many it was sent to. Viewers without an
// open data channel are skipped; send failures are joined in the error.
func (m *Master) Broadcast(data []byte) (int, error) {
	return m.broadcast(func(dc *webrtc.DataChannel) error { return dc.Send(data) })
}

// BroadcastText is Broadcast with a text message.
func (m *Master) BroadcastText(text string) (int, error) {
	return m.broadcast(func(dc *webrtc.DataChannel) error { return dc.SendText(text) })
}

func (m *Master) broadcast(f func(*webrtc.DataChannel) error) (int, error) {
	var errs []error
	n := 0
	for _, s := range m.current() {
		err := s.send(f)
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrNoDataChannel):
		default:
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// current returns the current sessions.
func (m *Master) current() []*session {
	m.mu.Lock()
	defer m.mu.Unlock()
	sessions := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		sessions = append(sessions, s)
	}
	return sessions
}

// Stats returns the statistics of each current session, by viewer client
// id. Signaling holds the master's own start-up steps.
func (m *Master) Stats() map[string]SessionStats {
	m.mu.Lock()
	timings := m.timings
	m.mu.Unlock()
	sessions := m.current()
	out := make(map[string]SessionStats, len(sessions))
	for _, s := range sessions {
		st := SessionStats{ClientID: s.id, Signaling: timings}
		s.stats(&st)
		out[s.id] = st
	}
	return out
}

// canReceive checks that where offer asks to receive media of a source's
// kind, it can take the source's codec, so that a viewer without H.265
// (say) is told so instead of getting a black picture. A viewer that asks
// for none of a kind is not refused.
func (m *Master) canReceive(offer webrtc.SessionDescription) error {
	parsed, err := offer.Unmarshal()
	if err != nil {
		return fmt.Errorf("%w: the offer does not parse: %w", ErrPeerConnection, err)
	}
	for _, src := range []media.Source{m.cfg.Video, m.cfg.Audio} {
		if src == nil {
			continue
		}
		kind := src.Kind().String()
		want := src.Codec().MimeType
		_, name, _ := strings.Cut(want, "/")
		var offered []string
		found := false
		for _, md := range parsed.MediaDescriptions {
			if md.MediaName.Media != kind {
				continue
			}
			if _, ok := md.Attribute("sendonly"); ok {
				continue
			}
			if _, ok := md.Attribute("inactive"); ok {
				continue
			}
			for _, a := range md.Attributes {
				if a.Key != "rtpmap" {
					continue
				}
				_, enc, _ := strings.Cut(a.Value, " ")
				enc, _, _ = strings.Cut(enc, "/")
				if !slices.Contains(offered, enc) {
					offered = append(offered, enc)
				}
				if strings.EqualFold(enc, name) {
					found = true
				}
			}
		}
		if !found && len(offered) > 0 {
			// A viewer that asks for no media of this kind (NoAudio, a
			// data-only viewer) is not refused: it gets what it asked for.
			what := kind + " codecs " + strings.Join(offered, ", ")
			return fmt.Errorf("%w: the master sends %s %s but the viewer's offer has %s; "+
				"send a codec the viewer has (for a camera, re-encode it, e.g. ffmpeg -c:v libx264 -bf 0) or use a viewer that decodes %s",
				ErrCodecNotSupported, name, kind, what, name)
		}
	}
	return nil
}
