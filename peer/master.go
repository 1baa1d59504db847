package peer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// DefaultMaxViewers is the number of viewers a Master serves at once
// unless MasterConfig.MaxViewers says otherwise: the KVS limit per channel
// (docs/protocol.md, "Limits").
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

	// ViewerSinks, when set, is called for each track a viewer sends (its
	// microphone, say: two-way audio) and returns where its frames go, such
	// as a media.Recorder writing an Ogg file per viewer. The master reads
	// the track with media.Consume until the session ends, then closes each
	// sink that is an io.Closer. When it returns no sink, the track goes to
	// OnTrack if set, else it is read and dropped.
	ViewerSinks func(viewerID string, track *webrtc.TrackRemote) []media.Sink

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

	// Ingestion sends the media to the channel's Kinesis video stream
	// through the KVS media server (WebRTC ingestion, see ingest.go):
	// IngestOff (the default), IngestOn, or IngestAuto (on when the
	// channel's media storage is enabled). It needs H.264 Video and Opus
	// Audio.
	Ingestion Ingestion
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
	runState
	cancel  context.CancelFunc
	tracker // goroutines Close waits for

	ingest *ingest // WebRTC ingestion; nil when off
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
	if err := checkSources("MasterConfig", cfg.Video, cfg.Audio); err != nil {
		return nil, err
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
	ing, err := prepareIngest(ctx, &cfg, res, log)
	if err != nil {
		return nil, err
	}
	sc, err := cfg.newSignaling(res, "", cfg.Logger)
	if err != nil {
		return nil, err
	}
	m := &Master{
		cfg: cfg, log: log, api: api, res: res, sc: sc,
		timings:  resolveTimings(res),
		sessions: map[string]*session{},
	}
	m.out = newOutbox(sc, log)
	m.ingest = ing
	m.media = newOutMedia(cfg.Video, cfg.Audio, !cfg.DisableFastStart)
	return m, nil
}

// Channel returns the resolved channel.
func (m *Master) Channel() *channel.Resolved { return m.res }

// Signaling returns a view of the master's signaling client: its state
// and the events the master leaves alone (GO_AWAY, STATUS_RESPONSE,
// close). The handlers the master sets cannot be replaced through it.
func (m *Master) Signaling() SignalingView { return SignalingView{m.sc} }

// OnViewerJoined sets the handler called when a viewer's peer connection
// is connected (media then flows to it).
func (m *Master) OnViewerJoined(f func(viewerID string)) {
	setHandler(&m.hmu, &m.onJoined, f)
}

// OnViewerLeft sets the handler called once when a viewer's session ends,
// whether or not it had joined, with the reason: ErrSessionReplaced,
// ErrConnectionFailed, ErrTooManyViewers (an offer refused), ErrClosed
// (Master.Close), or an ErrPeerConnection or ErrSignaling error when the
// offer could not be answered.
func (m *Master) OnViewerLeft(f func(viewerID string, reason error)) {
	setHandler(&m.hmu, &m.onLeft, f)
}

// OnTrack sets the handler called for each track a viewer sends. The
// handler owns the track: it should read it (media.Consume does) until it
// ends. Without a handler the master reads and discards viewers' media.
// It runs on its own goroutine.
func (m *Master) OnTrack(f func(viewerID string, track *webrtc.TrackRemote)) {
	setHandler(&m.hmu, &m.onTrack, f)
}

// OnDataMessage sets the handler called for each data channel message from
// a viewer.
func (m *Master) OnDataMessage(f func(viewerID string, msg webrtc.DataChannelMessage)) {
	setHandler(&m.hmu, &m.onData, f)
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
	if err := m.begin(); err != nil {
		m.mu.Unlock()
		return err
	}
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
	m.ingest.install(m, bctx) // WebRTC ingestion: its own handlers (ingest.go)

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
	if !m.finish() {
		m.mu.Unlock()
		return nil
	}
	cancel := m.cancel
	sessions := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	m.ingest.stop()
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
