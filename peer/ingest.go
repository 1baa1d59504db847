package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// WebRTC ingestion: the Master sends its media to the KVS media server,
// which records it into the channel's Kinesis video stream
// (docs/protocol.md, "Streams and storage"). It works as the official
// JavaScript SDK's test page (and the C SDK's state machine) do:
//
//   - after the signaling connection opens, and again after every
//     reconnect (a drop, GO_AWAY) and after RECONNECT_ICE_SERVER, the
//     master calls JoinStorageSession;
//   - the media server's SDP offer comes with no sender client id; the
//     master answers it (its answer and candidates name no recipient);
//   - with no offer, the join is called again, DefaultJoinRetryInterval
//     plus a jittered backoff apart (channel.JoinRetryDelay), at most
//     DefaultMaxJoinRetries times, and only for errors worth it
//     (channel.RetryableJoinError);
//   - a peer connection not connected within DefaultIngestConnectTimeout,
//     or that fails later, makes the master join again, until
//     DefaultMaxIngestFailures failures within ten minutes, when it gives
//     up (OnIngestion reports IngestGaveUp);
//   - the signaling client buffers early ICE candidates
//     (signaling.Config.EarlyICECandidateBuffering): they are released
//     once the remote description is set, and the media server's state is
//     reset before every join (ResetICECandidateState), as the JS SDK 2.9.0
//     does in this mode.
//
// Ingestion needs H.264 video and Opus audio (no data channel); KVS stores
// H.264 and AAC, converting the Opus; the local service keeps Opus.

// Ingestion is the WebRTC ingestion mode of a Master.
type Ingestion int

// The ingestion modes.
const (
	// IngestOff serves viewers only (the default).
	IngestOff Ingestion = iota
	// IngestOn joins the storage session; NewMaster fails when the channel
	// has no media storage enabled, or the sources are not H.264 and Opus.
	IngestOn
	// IngestAuto asks DescribeMediaStorageConfiguration, as the official
	// test page's "auto" choice: ingestion is on when the channel's media
	// storage is enabled.
	IngestAuto
)

// String returns "off", "on" or "auto", as ParseIngestion reads them.
func (i Ingestion) String() string {
	switch i {
	case IngestOff:
		return "off"
	case IngestOn:
		return "on"
	case IngestAuto:
		return "auto"
	}
	return fmt.Sprintf("Ingestion(%d)", int(i))
}

// ParseIngestion reads "off", "on" (or "true") and "auto".
func ParseIngestion(s string) (Ingestion, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "off", "false":
		return IngestOff, nil
	case "on", "true":
		return IngestOn, nil
	case "auto":
		return IngestAuto, nil
	}
	return 0, fmt.Errorf("%w: ingestion %q: want off, on or auto", ErrInvalidConfig, s)
}

// Defaults of the ingestion mode, those of the official JavaScript SDK's
// test page.
const (
	// DefaultJoinRetryInterval is the base wait between JoinStorageSession
	// calls that brought no offer.
	DefaultJoinRetryInterval = 6 * time.Second
	// DefaultMaxJoinRetries is how many times a join is retried for one
	// connection attempt.
	DefaultMaxJoinRetries = 5
	// DefaultIngestConnectTimeout is how long the peer connection with the
	// media server may take to connect before the master joins again.
	DefaultIngestConnectTimeout = 30 * time.Second
	// DefaultMaxIngestFailures is how many failed peer connections within
	// ten minutes make the master give up.
	DefaultMaxIngestFailures = 5
)

// Errors of the ingestion mode.
var (
	// ErrIngestionMedia reports sources that WebRTC ingestion cannot take:
	// it needs H.264 video and Opus audio.
	ErrIngestionMedia = errors.New("peer: WebRTC ingestion needs H.264 video and Opus audio")
	// ErrNoMediaStorage reports IngestOn on a channel whose media storage
	// is not enabled.
	ErrNoMediaStorage = errors.New("peer: the channel has no media storage enabled (kvswebrtc channel storage --stream NAME)")
	// ErrIngestGaveUp is the error of IngestGaveUp.
	ErrIngestGaveUp = errors.New("peer: WebRTC ingestion gave up")
)

// IngestionState is what an IngestionEvent reports.
type IngestionState int

// The ingestion states.
const (
	// IngestJoining: JoinStorageSession is being called (Attempt counts).
	IngestJoining IngestionState = iota
	// IngestOffered: the media server's offer came and was answered.
	IngestOffered
	// IngestConnected: media flows to the media server; it records.
	IngestConnected
	// IngestDisconnected: the peer connection with the media server ended
	// (Err says why); the master joins again.
	IngestDisconnected
	// IngestGaveUp: the master stopped ingesting (Err says why); it keeps
	// serving viewers.
	IngestGaveUp
)

// String names the state.
func (s IngestionState) String() string {
	switch s {
	case IngestJoining:
		return "joining"
	case IngestOffered:
		return "offered"
	case IngestConnected:
		return "connected"
	case IngestDisconnected:
		return "disconnected"
	case IngestGaveUp:
		return "gave up"
	}
	return fmt.Sprintf("IngestionState(%d)", int(s))
}

// IngestionEvent is a step of the ingestion, for Master.OnIngestion.
type IngestionEvent struct {
	State   IngestionState
	Attempt int   // IngestJoining: 1 for the first call of a connection attempt
	Err     error // IngestDisconnected, IngestGaveUp; a failed join for IngestJoining retries
}

// ingest runs a Master's ingestion.
type ingest struct {
	m   *Master
	log *slog.Logger

	retryInterval  time.Duration
	maxRetries     int
	connectTimeout time.Duration
	maxFailures    int

	mu       sync.Mutex
	run      int // incremented by each (re)join; a join loop of an older run stops
	open     bool
	offered  bool
	sess     *session
	failures []time.Time
	gaveUp   bool
	stopped  bool
	onEvent  func(IngestionEvent)
	ctx      context.Context
	cancel   context.CancelFunc
}

// prepareIngest decides the ingestion mode of cfg for res (asking
// DescribeMediaStorageConfiguration for IngestAuto), checks the sources,
// and makes the signaling client buffer early ICE candidates. It returns
// nil when ingestion is off.
func prepareIngest(ctx context.Context, cfg *MasterConfig, res *channel.Resolved, log *slog.Logger) (*ingest, error) {
	if cfg.Ingestion == IngestOff {
		return nil, nil
	}
	if cfg.Ingestion != IngestOn && cfg.Ingestion != IngestAuto {
		return nil, fmt.Errorf("%w: MasterConfig.Ingestion %d is not IngestOff, IngestOn or IngestAuto", ErrInvalidConfig, cfg.Ingestion)
	}
	ms, err := res.MediaStorage(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResolve, err)
	}
	if !ms.Enabled {
		if cfg.Ingestion == IngestAuto {
			log.Info("peer: media storage is not enabled on the channel; not ingesting")
			return nil, nil
		}
		return nil, fmt.Errorf("%w: channel %q", ErrNoMediaStorage, res.ChannelName())
	}
	if err := checkIngestSources(cfg.Video, cfg.Audio); err != nil {
		return nil, err
	}
	prev := cfg.Signaling
	cfg.Signaling = func(c *signaling.Config) {
		if prev != nil {
			prev(c)
		}
		c.EarlyICECandidateBuffering = true
	}
	log.Info("peer: WebRTC ingestion on", "stream", ms.StreamARN)
	return &ingest{
		log: log.With("ingest", true), retryInterval: DefaultJoinRetryInterval, maxRetries: DefaultMaxJoinRetries,
		connectTimeout: DefaultIngestConnectTimeout, maxFailures: DefaultMaxIngestFailures,
	}, nil
}

// checkIngestSources refuses sources that are not H.264 video and Opus
// audio, saying what ingestion needs.
func checkIngestSources(video, audio media.Source) error {
	describe := func(s media.Source) string {
		if s == nil {
			return "none"
		}
		return s.Codec().MimeType
	}
	okVideo := video != nil && strings.EqualFold(video.Codec().MimeType, webrtc.MimeTypeH264)
	okAudio := audio != nil && strings.EqualFold(audio.Codec().MimeType, webrtc.MimeTypeOpus)
	if okVideo && okAudio {
		return nil
	}
	return fmt.Errorf("%w (constrained baseline to high profile, at most 1920x1920, and Opus, both; no data channel): "+
		"MasterConfig.Video is %s and MasterConfig.Audio is %s; for a camera, re-encode (ffmpeg -c:v libx264 -bf 0 -c:a libopus)",
		ErrIngestionMedia, describe(video), describe(audio))
}

// install sets the signaling handlers of the ingestion mode; Start calls
// it before Open, after setting the master's own handlers.
func (g *ingest) install(m *Master, bctx context.Context) {
	if g == nil {
		return
	}
	g.m = m
	g.ctx, g.cancel = context.WithCancel(bctx)
	sc := m.sc
	sc.OnSDPOffer(func(offer webrtc.SessionDescription, sender string) {
		if sender == "" {
			g.handleOffer(offer)
			return
		}
		m.handleOffer(offer, sender)
		sc.DrainPendingICECandidates(sender) // early buffering is on for the viewers too
	})
	sc.OnICECandidate(func(c webrtc.ICECandidateInit, sender string) {
		if sender == "" {
			g.mu.Lock()
			s := g.sess
			g.mu.Unlock()
			if s != nil {
				s.remoteCandidate(c)
			}
			return
		}
		m.handleCandidate(c, sender)
	})
	sc.OnOpen(func() { g.rejoin("signaling connection open") })
	sc.OnReconnecting(func(attempt int, delay time.Duration, cause error) {
		g.mu.Lock()
		g.open = false
		g.run++
		g.mu.Unlock()
		m.log.Info("peer: signaling reconnecting", "attempt", attempt, "delay", delay, "cause", cause)
	})
	sc.OnReconnectICEServer(func() {
		m.goRun(func() {
			ctx, cancel := context.WithTimeout(g.ctx, 10*time.Second)
			defer cancel()
			if err := m.res.RefreshICEServers(ctx); err != nil {
				m.log.Warn("peer: refreshing ICE servers after RECONNECT_ICE_SERVER failed", "err", err)
			}
			g.rejoin("RECONNECT_ICE_SERVER")
		})
	})
}

// emit reports an event to the OnIngestion handler.
func (g *ingest) emit(ev IngestionEvent) {
	g.mu.Lock()
	f := g.onEvent
	g.mu.Unlock()
	if f != nil {
		f(ev)
	}
}

// rejoin starts a new connection attempt: the media server's early ICE
// state is reset and JoinStorageSession is called until an offer comes.
func (g *ingest) rejoin(why string) {
	g.mu.Lock()
	if g.stopped || g.gaveUp {
		g.mu.Unlock()
		return
	}
	g.run++
	run := g.run
	g.open = true
	g.offered = false
	g.mu.Unlock()
	g.m.sc.ResetICECandidateState("")
	g.log.Info("peer: joining the storage session", "why", why)
	g.m.goRun(func() { g.joinLoop(run) })
}

// current reports whether run is still the attempt in force.
func (g *ingest) current(run int) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return run == g.run && g.open && !g.offered && !g.stopped && !g.gaveUp
}

// joinLoop calls JoinStorageSession until an offer comes, as the official
// test page's callJoinStorageSessionUntilSDPOfferReceived.
func (g *ingest) joinLoop(run int) {
	for attempt := 1; g.current(run); attempt++ {
		g.emit(IngestionEvent{State: IngestJoining, Attempt: attempt})
		ctx, cancel := context.WithTimeout(g.ctx, g.retryInterval)
		err := g.m.res.JoinStorageSession(ctx)
		cancel()
		if err != nil {
			if g.ctx.Err() != nil {
				return
			}
			if !channel.RetryableJoinError(err) {
				g.giveUp(fmt.Errorf("JoinStorageSession: %w", err))
				return
			}
			g.log.Warn("peer: JoinStorageSession failed; retrying", "attempt", attempt, "err", err)
		}
		if attempt > g.maxRetries {
			if g.current(run) {
				g.giveUp(fmt.Errorf("no offer from the media server after %d JoinStorageSession calls", attempt))
			}
			return
		}
		d := channel.JoinRetryDelay(attempt, rand.Float64())
		d = d - DefaultJoinRetryInterval + g.retryInterval
		select {
		case <-g.ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// dropSession ends the current session and sets *flag (g.gaveUp or
// g.offered), under g.mu, unless the ingestion has stopped or given up:
// then it reports false and does nothing.
func (g *ingest) dropSession(flag *bool) bool {
	g.mu.Lock()
	if g.stopped || g.gaveUp {
		g.mu.Unlock()
		return false
	}
	*flag = true
	s := g.sess
	g.sess = nil
	g.mu.Unlock()
	if s != nil {
		g.endSession(s)
	}
	return true
}

func (g *ingest) giveUp(err error) {
	if !g.dropSession(&g.gaveUp) {
		return
	}
	err = fmt.Errorf("%w: %w", ErrIngestGaveUp, err)
	g.log.Error("peer: WebRTC ingestion stopped", "err", err)
	g.emit(IngestionEvent{State: IngestGaveUp, Err: err})
}

// handleOffer answers the media server's offer with a new peer
// connection; it runs on the signaling event goroutine.
func (g *ingest) handleOffer(offer webrtc.SessionDescription) {
	m := g.m
	received := time.Now()
	if !g.dropSession(&g.offered) {
		return
	}
	s := &session{m: m, id: ""}
	err := s.open(linkConfig{
		api:    m.api,
		config: iceConfig(g.ctx, m.res, m.cfg.NAT, m.log),
		log:    g.log,
		peerID: "",
		video:  m.cfg.Video, audio: m.cfg.Audio, streamID: "kvswebrtc",
		sendCandidate: func(c webrtc.ICECandidateInit) { m.out.put(outMsg{cand: c}) },
		dataSent:      &s.dataSent, dataRecv: &s.dataRecv,
		started: received,
		t:       &m.tracker,
		onState: func(st webrtc.PeerConnectionState) { g.stateChange(s, st) },
	})
	if err != nil {
		g.failed(nil, fmt.Errorf("the media server's offer: %w", err))
		return
	}
	g.mu.Lock()
	g.sess = s
	g.mu.Unlock()
	if err := s.answer(offer); err != nil {
		g.failed(s, fmt.Errorf("answering the media server: %w", err))
		return
	}
	m.sc.DrainPendingICECandidates("")
	g.log.Info("peer: answered the media server", "took", time.Since(received))
	g.emit(IngestionEvent{State: IngestOffered})
	timeout := g.connectTimeout
	m.goRun(func() {
		select {
		case <-g.ctx.Done():
		case <-time.After(timeout):
			if s.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
				g.failed(s, fmt.Errorf("the peer connection with the media server did not connect within %s", timeout))
			}
		}
	})
}

func (g *ingest) stateChange(s *session, st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		if !s.join() {
			return
		}
		g.log.Info("peer: connected to the media server: recording", "after", s.connectTime())
		g.emit(IngestionEvent{State: IngestConnected})
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
		g.failed(s, fmt.Errorf("%w: peer connection with the media server %s", ErrConnectionFailed, st))
	}
}

// failed handles the end of the session s (nil: none was made): unless it
// was replaced already, it counts a failure and joins again, or gives up
// after maxFailures in ten minutes.
func (g *ingest) failed(s *session, reason error) {
	g.mu.Lock()
	if s != nil && g.sess != s {
		g.mu.Unlock()
		if s != nil {
			g.endSession(s)
		}
		return // an old session, replaced by a newer offer
	}
	g.sess = nil
	stopped := g.stopped || g.gaveUp
	now := time.Now()
	if !stopped {
		keep := g.failures[:0]
		for _, t := range g.failures {
			if now.Sub(t) < 10*time.Minute {
				keep = append(keep, t)
			}
		}
		g.failures = append(keep, now)
	}
	n := len(g.failures)
	g.mu.Unlock()
	if s != nil {
		g.endSession(s)
	}
	if stopped {
		return
	}
	g.log.Warn("peer: lost the storage session", "reason", reason, "failures", n)
	g.emit(IngestionEvent{State: IngestDisconnected, Err: reason})
	if n >= g.maxFailures {
		g.giveUp(fmt.Errorf("%d failed connections to the media server within ten minutes; last: %w", n, reason))
		return
	}
	g.rejoin("the storage session was lost")
}

// endSession takes s out of the media and closes its peer connection.
func (g *ingest) endSession(s *session) {
	if !s.markEnded() {
		return
	}
	s.detach(g.m.media)
	g.m.closePC(s)
}

// stop ends the ingestion (Master.Close).
func (g *ingest) stop() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.stopped = true
	s := g.sess
	g.sess = nil
	g.mu.Unlock()
	if g.cancel != nil {
		g.cancel()
	}
	if s != nil {
		g.endSession(s)
	}
}

// Ingesting reports whether the master is in WebRTC ingestion mode (and
// has not given up).
func (m *Master) Ingesting() bool {
	g := m.ingest
	if g == nil {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.gaveUp && !g.stopped
}

// OnIngestion sets the handler called at each step of the WebRTC
// ingestion (joining, offered, connected, disconnected, gave up). It is
// called from the master's goroutines and must not block for long.
func (m *Master) OnIngestion(f func(IngestionEvent)) {
	if g := m.ingest; g != nil {
		g.mu.Lock()
		g.onEvent = f
		g.mu.Unlock()
	}
}

// IngestionStats returns the statistics of the session with the media
// server, and false when there is none.
func (m *Master) IngestionStats() (SessionStats, bool) {
	g := m.ingest
	if g == nil {
		return SessionStats{}, false
	}
	g.mu.Lock()
	s := g.sess
	g.mu.Unlock()
	if s == nil {
		return SessionStats{}, false
	}
	m.mu.Lock()
	timings := m.timings
	m.mu.Unlock()
	st := SessionStats{ClientID: "", Signaling: timings}
	s.stats(&st)
	return st, true
}
