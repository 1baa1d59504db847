package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// DefaultMaxViewers is the number of viewers a Master serves at once
// unless MasterConfig.MaxViewers says otherwise: the KVS limit per channel.
const DefaultMaxViewers = 10

// MasterConfig configures a [Master].
type MasterConfig struct {
	// ChannelConfig names the channel (or holds it resolved) and the NAT
	// traversal mode.
	ChannelConfig

	// Video and Audio are the media sent to every viewer; either may be
	// nil. The Master reads each once, in real time, and shares the samples
	// among the viewers (a looping source, media.Options.Loop, never ends).
	// It does not close them.
	Video, Audio media.Source

	// MaxViewers is the number of viewer sessions served at once; an offer
	// from another viewer is refused (no answer; OnViewerLeft reports
	// ErrTooManyViewers). 0 means DefaultMaxViewers (10).
	MaxViewers int

	// DisableFastStart turns off the cache of the current group of
	// pictures. With it (the default), a viewer that connects gets at once
	// the video since the last key frame, so its first frame decodes with
	// no wait; without it, the viewer waits for the source's next key
	// frame.
	DisableFastStart bool

	// Settings are the pion knobs of the peer connections.
	Settings Settings

	// Logger receives the master's logs and is handed to the channel
	// resolver and the signaling client; nil means silence.
	Logger *slog.Logger
}

// Master is the master side of a KVS signaling channel: it answers the
// offers of up to MaxViewers viewers, one pion PeerConnection per viewer
// client id, sends them all the same media, and exchanges data channel
// messages with each.
//
// A new offer from a viewer client id that has a session replaces that
// session (the old peer connection is closed). A session ends when its
// peer connection fails or is closed (ICE failed after
// Settings.ICEFailedTimeout, DTLS closed by the viewer); OnViewerLeft
// reports it.
//
// Signaling reconnects are the signaling client's job (see package
// signaling): connected sessions go on while it reconnects, and new offers
// are answered once it is back. On RECONNECT_ICE_SERVER the master fetches
// the ICE servers again for the sessions that follow.
//
// Handlers (OnX) may be set at any time; they are called from pion's and
// the signaling client's goroutines, possibly at the same time for
// different viewers, and must not block for long.
type Master struct {
	cfg     MasterConfig
	log     *slog.Logger
	api     *webrtc.API
	res     *channel.Resolved
	sc      *signaling.Client
	out     *outbox
	timings SignalingTimings

	media outMedia

	hmu      sync.RWMutex
	onJoined func(viewerID string)
	onLeft   func(viewerID string, reason error)
	onTrack  func(viewerID string, track *webrtc.TrackRemote)
	onData   func(viewerID string, msg webrtc.DataChannelMessage)

	mu       sync.Mutex
	sessions map[string]*session
	started  bool
	closed   bool
	cancel   context.CancelFunc
	tracker  // goroutines Close waits for
}

// session is the master's peer connection with one viewer.
type session struct {
	m       *Master
	id      string
	pc      *webrtc.PeerConnection
	vt, at  *sendTrack
	started time.Time
	guard   pcGuard

	mu            sync.Mutex
	answered      bool
	pendingLocal  []webrtc.ICECandidateInit
	remoteSet     bool
	pendingRemote []webrtc.ICECandidateInit
	dc            *webrtc.DataChannel
	joined        bool
	ended         bool
	offerToAnswer time.Duration
	iceConnect    time.Duration
	connect       time.Duration

	dataSent, dataRecv atomic.Uint64
}

// NewMaster resolves the channel as master (channel.Resolve, unless
// cfg.Resolved is set) and makes the signaling client, without connecting:
// set the handlers, then call Start.
func NewMaster(ctx context.Context, cfg MasterConfig) (*Master, error) {
	if cfg.MaxViewers < 0 {
		return nil, fmt.Errorf("%w: MasterConfig.MaxViewers must not be negative, got %d", ErrInvalidConfig, cfg.MaxViewers)
	}
	if cfg.MaxViewers == 0 {
		cfg.MaxViewers = DefaultMaxViewers
	}
	for _, s := range []struct {
		name string
		src  media.Source
		kind webrtc.RTPCodecType
	}{{"Video", cfg.Video, webrtc.RTPCodecTypeVideo}, {"Audio", cfg.Audio, webrtc.RTPCodecTypeAudio}} {
		if s.src != nil && s.src.Kind() != s.kind {
			return nil, fmt.Errorf("%w: MasterConfig.%s is a %s source", ErrInvalidConfig, s.name, s.src.Kind())
		}
	}
	log := logger(cfg.Logger).With("role", "master")
	api, err := cfg.Settings.newAPI(cfg.NAT == channel.TURNOnly)
	if err != nil {
		return nil, err
	}
	res, err := cfg.resolve(ctx, channel.RoleMaster, "", cfg.Logger)
	if err != nil {
		return nil, err
	}
	sc, err := cfg.newSignaling(res, "", cfg.Logger)
	if err != nil {
		return nil, err
	}
	m := &Master{
		cfg: cfg, log: log, api: api, res: res, sc: sc,
		timings: SignalingTimings{
			Describe: res.Timings().Describe, Create: res.Timings().Create,
			Endpoint: res.Timings().Endpoint, ICEConfig: res.Timings().ICEConfig,
		},
		sessions: map[string]*session{},
	}
	m.out = newOutbox(sc, log)
	m.media = newOutMedia(cfg.Video, cfg.Audio, !cfg.DisableFastStart)
	return m, nil
}

// Channel returns the resolved channel.
func (m *Master) Channel() *channel.Resolved { return m.res }

// Signaling returns the signaling client, for its state and its other
// events. Do not replace the handlers the Master set (OnSDPOffer,
// OnICECandidate, OnReconnectICEServer, OnOpen, OnReconnecting, OnError).
func (m *Master) Signaling() *signaling.Client { return m.sc }

// OnViewerJoined sets the handler called when a viewer's peer connection
// is connected (media then flows to it).
func (m *Master) OnViewerJoined(f func(viewerID string)) {
	m.hmu.Lock()
	m.onJoined = f
	m.hmu.Unlock()
}

// OnViewerLeft sets the handler called once when a viewer's session ends,
// whether or not it had joined, with the reason: ErrSessionReplaced,
// ErrConnectionFailed, ErrTooManyViewers (an offer refused), ErrClosed
// (Master.Close), or an ErrPeerConnection or ErrSignaling error when the
// offer could not be answered.
func (m *Master) OnViewerLeft(f func(viewerID string, reason error)) {
	m.hmu.Lock()
	m.onLeft = f
	m.hmu.Unlock()
}

// OnTrack sets the handler called for each track a viewer sends. The
// handler owns the track: it should read it (media.Consume does) until it
// ends. Without a handler the master reads and discards viewers' media.
// It runs on its own goroutine.
func (m *Master) OnTrack(f func(viewerID string, track *webrtc.TrackRemote)) {
	m.hmu.Lock()
	m.onTrack = f
	m.hmu.Unlock()
}

// OnDataMessage sets the handler called for each data channel message from
// a viewer.
func (m *Master) OnDataMessage(f func(viewerID string, msg webrtc.DataChannelMessage)) {
	m.hmu.Lock()
	m.onData = f
	m.hmu.Unlock()
}

func (m *Master) handlers() (joined func(string), left func(string, error),
	track func(string, *webrtc.TrackRemote), data func(string, webrtc.DataChannelMessage),
) {
	m.hmu.RLock()
	defer m.hmu.RUnlock()
	return m.onJoined, m.onLeft, m.onTrack, m.onData
}

// Start connects to the signaling channel and starts reading the media
// sources. It returns ErrClientLimitExceeded or ErrSignaling when the
// connection fails, ErrStarted on a second call, ErrClosed after Close.
func (m *Master) Start(ctx context.Context) error {
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return ErrClosed
	case m.started:
		m.mu.Unlock()
		return ErrStarted
	}
	m.started = true
	bctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.mu.Unlock()

	m.goRun(func() { m.out.run(bctx) })
	m.sc.OnSDPOffer(m.handleOffer)
	m.sc.OnICECandidate(m.handleCandidate)
	m.sc.OnReconnectICEServer(func() {
		m.goRun(func() {
			ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
			defer cancel()
			if err := m.res.RefreshICEServers(ctx); err != nil {
				m.log.Warn("peer: refreshing ICE servers after RECONNECT_ICE_SERVER failed", "err", err)
			}
		})
	})
	m.sc.OnReconnecting(func(attempt int, delay time.Duration, cause error) {
		m.log.Info("peer: signaling reconnecting", "attempt", attempt, "delay", delay, "cause", cause)
	})
	m.sc.OnError(func(err error) { m.log.Warn("peer: signaling error", "err", err) })

	t0 := time.Now()
	if err := m.sc.Open(ctx); err != nil {
		cancel()
		return openError(err)
	}
	m.mu.Lock()
	m.timings.Connect = time.Since(t0)
	m.mu.Unlock()

	m.media.run(bctx, &m.tracker, m.log)
	m.log.Info("peer: master started", "channel", m.res.ChannelARN())
	return nil
}

// Close ends every session (OnViewerLeft with ErrClosed), closes the
// signaling connection and stops reading the sources. It waits for the
// peer connections to close.
func (m *Master) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	cancel := m.cancel
	sessions := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	err := m.sc.Close()
	for _, s := range sessions {
		m.end(s, ErrClosed)
	}
	if cancel != nil {
		cancel()
	}
	m.wait()
	return err
}

// Viewers returns the client ids of the current sessions.
func (m *Master) Viewers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.sessions))
	for id := range m.sessions {
		ids = append(ids, id)
	}
	return ids
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
	pc, err := m.api.NewPeerConnection(iceConfig(context.Background(), m.res, m.cfg.NAT, m.log))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPeerConnection, err)
	}
	s := &session{m: m, id: id, pc: pc, started: started}
	for _, t := range []struct {
		src  media.Source
		dst  **sendTrack
		kind string
	}{{m.cfg.Video, &s.vt, "video"}, {m.cfg.Audio, &s.at, "audio"}} {
		if t.src == nil {
			continue
		}
		track, err := webrtc.NewTrackLocalStaticSample(t.src.Codec(), t.kind, "kvswebrtc")
		if err != nil {
			_ = pc.Close()
			return nil, fmt.Errorf("%w: %s track: %w", ErrPeerConnection, t.kind, err)
		}
		sender, err := pc.AddTrack(track)
		if err != nil {
			_ = pc.Close()
			return nil, fmt.Errorf("%w: adding the %s track: %w", ErrPeerConnection, t.kind, err)
		}
		*t.dst = &sendTrack{TrackLocalStaticSample: track}
		m.goRun(func() { drainRTCP(sender) })
	}
	pc.OnICECandidate(s.localCandidate)
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		if st == webrtc.ICEConnectionStateConnected {
			s.mu.Lock()
			if s.iceConnect == 0 {
				s.iceConnect = time.Since(s.started)
			}
			s.mu.Unlock()
		}
	})
	pc.OnConnectionStateChange(s.stateChange)
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		_, _, onTrack, _ := m.handlers()
		if onTrack != nil {
			m.goRun(func() { onTrack(id, track) })
			return
		}
		m.goRun(func() { drainRTP(track) })
	})
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		s.mu.Lock()
		if s.dc == nil {
			s.dc = dc
		}
		s.mu.Unlock()
		dc.OnMessage(func(msg webrtc.DataChannelMessage) {
			s.dataRecv.Add(1)
			if _, _, _, onData := m.handlers(); onData != nil {
				onData(id, msg)
			}
		})
	})
	return s, nil
}

// answer applies the offer and sends the answer, then the candidates
// gathered meanwhile.
func (s *session) answer(offer webrtc.SessionDescription) error {
	if err := s.pc.SetRemoteDescription(offer); err != nil {
		return fmt.Errorf("%w: applying the offer: %w", ErrPeerConnection, err)
	}
	s.mu.Lock()
	s.remoteSet = true
	pending := s.pendingRemote
	s.pendingRemote = nil
	s.mu.Unlock()
	for _, c := range pending {
		if err := s.pc.AddICECandidate(c); err != nil {
			s.m.log.Debug("peer: remote candidate refused", "viewer", s.id, "err", err)
		}
	}
	ans, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("%w: creating the answer: %w", ErrPeerConnection, err)
	}
	if err := s.pc.SetLocalDescription(ans); err != nil {
		return fmt.Errorf("%w: applying the answer: %w", ErrPeerConnection, err)
	}
	s.m.out.put(outMsg{sdp: &ans, recipient: s.id})
	s.mu.Lock()
	s.answered = true
	s.offerToAnswer = time.Since(s.started)
	local := s.pendingLocal
	s.pendingLocal = nil
	s.mu.Unlock()
	for _, c := range local {
		s.sendCandidate(c)
	}
	return nil
}

// localCandidate sends a gathered candidate to the viewer, or keeps it
// until the answer has gone.
func (s *session) localCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return // gathering complete
	}
	init := c.ToJSON()
	s.mu.Lock()
	if !s.answered {
		s.pendingLocal = append(s.pendingLocal, init)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.sendCandidate(init)
}

func (s *session) sendCandidate(c webrtc.ICECandidateInit) {
	s.m.out.put(outMsg{cand: c, recipient: s.id})
}

// handleCandidate applies a viewer's candidate, or keeps it until the
// offer is applied.
func (m *Master) handleCandidate(c webrtc.ICECandidateInit, viewerID string) {
	s := m.session(viewerID)
	if s == nil {
		m.log.Debug("peer: candidate from a viewer with no session; dropped", "viewer", viewerID)
		return
	}
	s.mu.Lock()
	if !s.remoteSet {
		s.pendingRemote = append(s.pendingRemote, c)
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	if err := s.pc.AddICECandidate(c); err != nil {
		m.log.Debug("peer: remote candidate refused", "viewer", viewerID, "err", err)
	}
}

func (s *session) stateChange(st webrtc.PeerConnectionState) {
	m := s.m
	switch st {
	case webrtc.PeerConnectionStateConnected:
		s.mu.Lock()
		if s.joined || s.ended {
			s.mu.Unlock()
			return
		}
		s.joined = true
		s.connect = time.Since(s.started)
		s.mu.Unlock()
		m.media.add(s.vt, s.at)
		m.log.Info("peer: viewer joined", "viewer", s.id, "after", s.connect)
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
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	s.mu.Unlock()
	m.mu.Lock()
	if m.sessions[s.id] == s {
		delete(m.sessions, s.id)
	}
	m.mu.Unlock()
	m.media.remove(s.vt, s.at)
	m.closePC(s)
	m.log.Info("peer: viewer left", "viewer", s.id, "reason", reason)
	if _, left, _, _ := m.handlers(); left != nil {
		left(s.id, reason)
	}
}

func (m *Master) closePC(s *session) {
	m.goRun(func() {
		if err := s.guard.close(s.pc); err != nil {
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

func (s *session) send(f func(*webrtc.DataChannel) error) error {
	s.mu.Lock()
	dc := s.dc
	s.mu.Unlock()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return fmt.Errorf("%w: viewer %q", ErrNoDataChannel, s.id)
	}
	if err := f(dc); err != nil {
		return fmt.Errorf("%w: data channel send to %q: %w", ErrPeerConnection, s.id, err)
	}
	s.dataSent.Add(1)
	return nil
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
	m.mu.Lock()
	sessions := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	var errs []error
	n := 0
	for _, s := range sessions {
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

// Stats returns the statistics of each current session, by viewer client
// id. Signaling holds the master's own start-up steps.
func (m *Master) Stats() map[string]SessionStats {
	m.mu.Lock()
	sessions := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		sessions = append(sessions, s)
	}
	timings := m.timings
	m.mu.Unlock()
	out := make(map[string]SessionStats, len(sessions))
	for _, s := range sessions {
		st := SessionStats{ClientID: s.id, Started: s.started, Signaling: timings}
		s.mu.Lock()
		st.OfferToAnswer, st.ICEConnect, st.Connect = s.offerToAnswer, s.iceConnect, s.connect
		s.mu.Unlock()
		st.FramesSent, st.BytesSent = sent(s.vt, s.at)
		st.DataMessagesSent, st.DataMessagesReceived = s.dataSent.Load(), s.dataRecv.Load()
		collectPC(s.pc, &s.guard, &st)
		out[s.id] = st
	}
	return out
}

// drainRTCP reads a sender's RTCP so that the interceptors (NACK, reports)
// see it, until the sender stops.
func drainRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}

// drainRTP reads and drops a track nobody wants.
func drainRTP(track *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := track.Read(buf); err != nil {
			return
		}
	}
}
