package peer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/internal/backoff"
	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// DefaultDataChannelLabel is the label of the data channel a Viewer opens,
// the one the official JavaScript SDK's test page uses.
const DefaultDataChannelLabel = "kvsDataChannel"

// Defaults of the Viewer's automatic re-offer (ViewerConfig).
const (
	// DefaultReofferBaseDelay is the first automatic re-offer's maximum
	// delay; it doubles with each re-offer in a row.
	DefaultReofferBaseDelay = 500 * time.Millisecond
	// DefaultReofferMaxDelay caps the automatic re-offer's delay.
	DefaultReofferMaxDelay = 10 * time.Second
	// DefaultReofferAnswerTimeout is how long the viewer waits for an
	// answer before it offers again.
	DefaultReofferAnswerTimeout = 20 * time.Second
)

// ViewerConfig configures a [Viewer].
type ViewerConfig struct {
	// ChannelConfig names the channel (or holds it resolved for
	// channel.RoleViewer) and the NAT traversal mode.
	ChannelConfig

	// ClientID identifies the viewer on the channel
	// ([a-zA-Z0-9_.-]{1,256}, not starting with "AWS_"). Empty means a
	// random "viewer-<hex>".
	ClientID string

	// NoVideo and NoAudio leave out the receiving of video or audio.
	NoVideo, NoAudio bool
	// Video and Audio, when set, are sent to the master (the viewer's
	// camera and microphone); the viewer reads them in real time.
	Video, Audio media.Source

	// NonTrickle waits for ICE gathering to complete and sends one offer
	// that holds every candidate, instead of sending the offer at once and
	// the candidates as they are found (trickle ICE, the default).
	NonTrickle bool

	// NoDataChannel leaves out the data channel. DataChannelLabel is its
	// label; "" means DefaultDataChannelLabel.
	NoDataChannel    bool
	DataChannelLabel string

	// VideoSinks and AudioSinks receive the complete frames rebuilt from
	// the received tracks (media.Consume), from the first key frame on:
	// for example a media.Recorder. They are called on the track's
	// goroutine; a slow sink delays the next frame.
	VideoSinks, AudioSinks []media.Sink

	// Settings are the pion knobs of the peer connection.
	Settings Settings

	// DisableAutoReoffer turns off the automatic re-offer when the current
	// peer connection is lost while signaling is up (see [Viewer]): the
	// viewer then re-offers only after a signaling reconnect and on
	// RECONNECT_ICE_SERVER, and the application handles the rest.
	DisableAutoReoffer bool
	// ReofferBaseDelay and ReofferMaxDelay bound the automatic re-offer's
	// backoff: the n-th re-offer in a row waits a random time (full
	// jitter) up to min(ReofferMaxDelay, ReofferBaseDelay*2^(n-1)); the
	// count starts again once a peer connection connects. Zero means
	// DefaultReofferBaseDelay (500 ms) and DefaultReofferMaxDelay (10 s).
	ReofferBaseDelay, ReofferMaxDelay time.Duration
	// ReofferAnswerTimeout is how long the viewer waits for the master's
	// answer to an offer before it counts the session lost and offers
	// again (with the backoff above), so that a viewer whose master is
	// gone for longer than the channel's message TTL still finds the next
	// master. Zero means DefaultReofferAnswerTimeout (20 s). Unused with
	// DisableAutoReoffer.
	ReofferAnswerTimeout time.Duration

	// Logger receives the viewer's logs and is handed to the channel
	// resolver and the signaling client; nil means silence.
	Logger *slog.Logger
}

// Viewer is a viewer of a KVS signaling channel: it sends an SDP offer to
// the master, receives its media, optionally sends its own, and exchanges
// data channel messages with it.
//
// The viewer reads the received tracks itself (media.Consume): frames go
// to ViewerConfig's sinks and to OnFrame, from the first key frame of each
// track on, and the first video key frame ends the time to first frame.
//
// It re-establishes its session by itself, making a new peer connection
// and sending a new offer (the master replaces its old session with the
// new one):
//   - when the signaling connection comes back after a drop (OnOpen after
//     OnReconnecting) and the peer connection is not connected;
//   - on RECONNECT_ICE_SERVER, after fetching the ICE servers again;
//   - unless ViewerConfig.DisableAutoReoffer is set, when the current peer
//     connection is lost while signaling is up: it goes failed (ICE found
//     no path for Settings.ICEFailedTimeout after going disconnected, so
//     a short disconnection is ridden out), or closed by the remote (the
//     master closed its side), or its offer got no answer within
//     ViewerConfig.ReofferAnswerTimeout. These re-offers wait an
//     exponential backoff with full jitter (ReofferBaseDelay doubling up
//     to ReofferMaxDelay, from the start again once a peer connection
//     connects), so a master that is gone gets at most one offer per
//     backoff step; the service keeps only the newest offer for an
//     absent master, within the channel's message TTL, and hands it to
//     the next master that connects.
//
// One renegotiation runs at a time, and a re-offer whose session was
// already replaced by another path is dropped. Stats counts the
// re-offers; OnReoffer reports each with its reason.
type Viewer struct {
	cfg     ViewerConfig
	id      string
	log     *slog.Logger
	api     *webrtc.API
	res     *channel.Resolved
	sc      *signaling.Client
	media   outMedia // own media, if any
	vCount  media.Counter
	aCount  media.Counter
	dataIn  atomic.Uint64
	dataOut atomic.Uint64

	hmu     sync.RWMutex
	onTrack func(*webrtc.TrackRemote)
	onFrame func(media.Frame)
	onData  func(webrtc.DataChannelMessage)
	onState func(webrtc.PeerConnectionState)
	onReoff func(error)

	firstFrame chan struct{}
	ttff       atomic.Int64

	mu      sync.Mutex
	timings SignalingTimings
	start   time.Time
	started bool
	closed  bool
	ctx     context.Context
	cancel  context.CancelFunc
	cur     *viewerSession
	old     []*viewerSession // replaced sessions, closed once cur is connected or failed
	changed chan struct{}    // closed and replaced on each state change
	reconn  bool             // signaling is reconnecting
	reoffer int
	sigRec  int
	attempt int        // automatic re-offers since the last connected session
	negMu   sync.Mutex // one renegotiation at a time
	tracker            // goroutines Close waits for
}

// viewerSession is one peer connection of the viewer.
type viewerSession struct {
	pc      *webrtc.PeerConnection
	dc      *webrtc.DataChannel
	vt, at  *sendTrack
	started time.Time // the offer was sent
	guard   pcGuard

	offerSent     bool
	pendingLocal  []webrtc.ICECandidateInit
	remoteSet     bool
	pendingRemote []webrtc.ICECandidateInit
	offerToAnswer time.Duration
	iceConnect    time.Duration
	connect       time.Duration
	state         webrtc.PeerConnectionState
	lost          bool // an automatic re-offer is scheduled for it
}

// NewViewer resolves the channel as viewer (channel.Resolve, unless
// cfg.Resolved is set) and makes the signaling client, without
// connecting: set the handlers, then call Start.
func NewViewer(ctx context.Context, cfg ViewerConfig) (*Viewer, error) {
	id := cfg.ClientID
	if id == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		id = "viewer-" + hex.EncodeToString(b[:])
	}
	if err := wire.CheckClientID(id); err != nil {
		return nil, fmt.Errorf("%w: ViewerConfig.ClientID: %w", ErrInvalidConfig, err)
	}
	if cfg.NoVideo && cfg.NoAudio && cfg.NoDataChannel && cfg.Video == nil && cfg.Audio == nil {
		return nil, fmt.Errorf("%w: ViewerConfig asks for no video, no audio and no data channel: nothing to negotiate", ErrInvalidConfig)
	}
	for _, s := range []struct {
		name string
		src  media.Source
		kind webrtc.RTPCodecType
	}{{"Video", cfg.Video, webrtc.RTPCodecTypeVideo}, {"Audio", cfg.Audio, webrtc.RTPCodecTypeAudio}} {
		if s.src != nil && s.src.Kind() != s.kind {
			return nil, fmt.Errorf("%w: ViewerConfig.%s is a %s source", ErrInvalidConfig, s.name, s.src.Kind())
		}
	}
	if cfg.DataChannelLabel == "" {
		cfg.DataChannelLabel = DefaultDataChannelLabel
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"ReofferBaseDelay", cfg.ReofferBaseDelay}, {"ReofferMaxDelay", cfg.ReofferMaxDelay}, {"ReofferAnswerTimeout", cfg.ReofferAnswerTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("%w: ViewerConfig.%s must not be negative, got %v", ErrInvalidConfig, d.name, d.v)
		}
	}
	cfg.ReofferBaseDelay = orDefault(cfg.ReofferBaseDelay, DefaultReofferBaseDelay)
	cfg.ReofferMaxDelay = orDefault(cfg.ReofferMaxDelay, DefaultReofferMaxDelay)
	cfg.ReofferAnswerTimeout = orDefault(cfg.ReofferAnswerTimeout, DefaultReofferAnswerTimeout)
	if cfg.ReofferBaseDelay > cfg.ReofferMaxDelay {
		return nil, fmt.Errorf("%w: ViewerConfig.ReofferBaseDelay %v must not exceed ReofferMaxDelay %v", ErrInvalidConfig, cfg.ReofferBaseDelay, cfg.ReofferMaxDelay)
	}
	api, err := cfg.Settings.newAPI(cfg.NAT == channel.TURNOnly)
	if err != nil {
		return nil, err
	}
	log := logger(cfg.Logger).With("role", "viewer", "clientId", id)
	res, err := cfg.resolve(ctx, channel.RoleViewer, id, cfg.Logger)
	if err != nil {
		return nil, err
	}
	sc, err := cfg.newSignaling(res, id, cfg.Logger)
	if err != nil {
		return nil, err
	}
	v := &Viewer{
		cfg: cfg, id: id, log: log, api: api, res: res, sc: sc,
		firstFrame: make(chan struct{}),
		changed:    make(chan struct{}),
		timings: SignalingTimings{
			Describe: res.Timings().Describe, Create: res.Timings().Create,
			Endpoint: res.Timings().Endpoint, ICEConfig: res.Timings().ICEConfig,
		},
	}
	v.media = newOutMedia(cfg.Video, cfg.Audio, false)
	v.vCount.OnFirstFrame(func(f media.Frame) {
		v.mu.Lock()
		start := v.start
		v.mu.Unlock()
		d := f.Received.Sub(start)
		if d <= 0 {
			d = time.Since(start)
		}
		v.ttff.Store(int64(d))
		close(v.firstFrame)
		v.log.Info("peer: first frame", "after", d)
	})
	return v, nil
}

// ClientID returns the viewer's client id.
func (v *Viewer) ClientID() string { return v.id }

// Channel returns the resolved channel.
func (v *Viewer) Channel() *channel.Resolved { return v.res }

// Signaling returns the signaling client, for its state and its other
// events. Do not replace the handlers the Viewer set (OnSDPAnswer,
// OnICECandidate, OnReconnectICEServer, OnOpen, OnReconnecting, OnError).
func (v *Viewer) Signaling() *signaling.Client { return v.sc }

// OnTrack sets the handler called when a track from the master arrives.
// It is for information: the viewer reads the track itself (see OnFrame).
func (v *Viewer) OnTrack(f func(track *webrtc.TrackRemote)) {
	v.hmu.Lock()
	v.onTrack = f
	v.hmu.Unlock()
}

// OnFrame sets the handler called with each complete frame received (video
// frames, audio packets), from each track's first key frame on, on the
// track's goroutine.
func (v *Viewer) OnFrame(f func(media.Frame)) {
	v.hmu.Lock()
	v.onFrame = f
	v.hmu.Unlock()
}

// OnDataMessage sets the handler called for each data channel message from
// the master.
func (v *Viewer) OnDataMessage(f func(msg webrtc.DataChannelMessage)) {
	v.hmu.Lock()
	v.onData = f
	v.hmu.Unlock()
}

// OnConnectionStateChange sets the handler called when the peer
// connection's state changes.
func (v *Viewer) OnConnectionStateChange(f func(webrtc.PeerConnectionState)) {
	v.hmu.Lock()
	v.onState = f
	v.hmu.Unlock()
}

// OnReoffer sets the handler called when the viewer makes a new peer
// connection and offers again, before the offer is made, with the reason:
// an error wrapping ErrConnectionFailed (the session failed or was closed
// by the remote), ErrNoAnswer, ErrSignalingReconnected or
// ErrReconnectICEServer. It is called on its own goroutine.
func (v *Viewer) OnReoffer(f func(reason error)) {
	v.hmu.Lock()
	v.onReoff = f
	v.hmu.Unlock()
}

// Start connects to the signaling channel and sends the offer. It returns
// ErrClientLimitExceeded when the service refuses the connection because
// the channel has its maximum of viewers (or connects came too fast),
// ErrSignaling for other signaling failures, ErrPeerConnection when the
// offer cannot be made, ErrStarted on a second call and ErrClosed after
// Close. The time to first frame counts from the call.
func (v *Viewer) Start(ctx context.Context) error {
	v.mu.Lock()
	switch {
	case v.closed:
		v.mu.Unlock()
		return ErrClosed
	case v.started:
		v.mu.Unlock()
		return ErrStarted
	}
	v.started = true
	v.start = time.Now()
	v.ctx, v.cancel = context.WithCancel(context.Background())
	v.mu.Unlock()

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

	t0 := time.Now()
	if err := v.sc.Open(ctx); err != nil {
		v.cancel()
		return openError(err)
	}
	v.mu.Lock()
	v.timings.Connect = time.Since(t0)
	v.mu.Unlock()

	v.media.run(v.ctx, &v.tracker, v.log)
	v.negMu.Lock()
	err := v.offer(ctx)
	v.negMu.Unlock()
	return err
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
	v.hmu.RLock()
	f := v.onReoff
	v.hmu.RUnlock()
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
			v.mu.Lock()
			done := v.closed || v.cur != s || s.remoteSet
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
				v.mu.Lock()
				answered := s.remoteSet
				v.mu.Unlock()
				if !answered {
					v.lost(s, fmt.Errorf("%w within %v", ErrNoAnswer, v.cfg.ReofferAnswerTimeout))
				}
				return
			}
		}
	})
}

// offer makes a new peer connection (closing the old one) and sends its
// offer.
func (v *Viewer) offer(ctx context.Context) error {
	pc, err := v.api.NewPeerConnection(iceConfig(ctx, v.res, v.cfg.NAT, v.log))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPeerConnection, err)
	}
	s := &viewerSession{pc: pc}
	fail := func(err error) error {
		_ = pc.Close()
		return err
	}
	for _, k := range []struct {
		kind webrtc.RTPCodecType
		no   bool
		src  media.Source
		dst  **sendTrack
	}{{webrtc.RTPCodecTypeVideo, v.cfg.NoVideo, v.cfg.Video, &s.vt}, {webrtc.RTPCodecTypeAudio, v.cfg.NoAudio, v.cfg.Audio, &s.at}} {
		switch {
		case k.src != nil:
			track, err := webrtc.NewTrackLocalStaticSample(k.src.Codec(), k.kind.String(), v.id)
			if err != nil {
				return fail(fmt.Errorf("%w: %s track: %w", ErrPeerConnection, k.kind, err))
			}
			dir := webrtc.RTPTransceiverDirectionSendrecv
			if k.no {
				dir = webrtc.RTPTransceiverDirectionSendonly
			}
			tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: dir})
			if err != nil {
				return fail(fmt.Errorf("%w: adding the %s track: %w", ErrPeerConnection, k.kind, err))
			}
			*k.dst = &sendTrack{TrackLocalStaticSample: track}
			sender := tr.Sender()
			v.goRun(func() { drainRTCP(sender) })
		case !k.no:
			if _, err := pc.AddTransceiverFromKind(k.kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return fail(fmt.Errorf("%w: adding a %s transceiver: %w", ErrPeerConnection, k.kind, err))
			}
		}
	}
	if !v.cfg.NoDataChannel {
		dc, err := pc.CreateDataChannel(v.cfg.DataChannelLabel, nil)
		if err != nil {
			return fail(fmt.Errorf("%w: data channel: %w", ErrPeerConnection, err))
		}
		s.dc = dc
		dc.OnMessage(v.dataMessage)
	}
	pc.OnDataChannel(func(dc *webrtc.DataChannel) { dc.OnMessage(v.dataMessage) }) // one the master opens
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { v.track(track) })
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil || v.cfg.NonTrickle {
			return
		}
		init := c.ToJSON()
		v.mu.Lock()
		if !s.offerSent {
			s.pendingLocal = append(s.pendingLocal, init)
			v.mu.Unlock()
			return
		}
		current := v.cur == s
		v.mu.Unlock()
		if !current {
			return
		}
		if err := v.sc.SendICECandidate(init); err != nil {
			v.log.Debug("peer: sending a candidate failed", "err", err)
		}
	})
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		if st != webrtc.ICEConnectionStateConnected {
			return
		}
		v.mu.Lock()
		if s.iceConnect == 0 && !s.started.IsZero() {
			s.iceConnect = time.Since(s.started)
		}
		v.mu.Unlock()
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) { v.stateChange(s, st) })

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
	// Make before break: the old peer connection goes on until the new
	// one is connected (or fails), or until the master replaces it.
	if v.cur != nil {
		v.old = append(v.old, v.cur)
	}
	v.cur = s
	v.notifyLocked()
	v.mu.Unlock()
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
	v.mu.Lock()
	s.started = time.Now()
	v.mu.Unlock()
	v.watchAnswer(s)
	if err := v.sc.SendSDPOffer(offer); err != nil {
		return fmt.Errorf("%w: sending the offer: %w", ErrSignaling, err)
	}
	v.mu.Lock()
	s.offerSent = true
	pending := s.pendingLocal
	s.pendingLocal = nil
	current := v.cur == s
	v.mu.Unlock()
	if current {
		for _, c := range pending {
			if err := v.sc.SendICECandidate(c); err != nil {
				v.log.Debug("peer: sending a candidate failed", "err", err)
			}
		}
	}
	v.log.Debug("peer: offer sent", "trickle", !v.cfg.NonTrickle)
	return nil
}

// retire takes an old session's tracks out of the media and closes it.
func (v *Viewer) retire(s *viewerSession) {
	v.media.remove(s.vt, s.at)
	v.goRun(func() { _ = s.guard.close(s.pc) })
}

func (v *Viewer) notifyLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

func (v *Viewer) stateChange(s *viewerSession, st webrtc.PeerConnectionState) {
	v.mu.Lock()
	s.state = st
	current := v.cur == s
	if st == webrtc.PeerConnectionStateConnected && s.connect == 0 && !s.started.IsZero() {
		s.connect = time.Since(s.started)
	}
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
		v.media.add(s.vt, s.at)
	}
	v.hmu.RLock()
	f := v.onState
	v.hmu.RUnlock()
	if f != nil {
		f(st)
	}
}

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
	if err := s.pc.SetRemoteDescription(answer); err != nil {
		v.log.Warn("peer: applying the answer failed", "err", err)
		return
	}
	v.mu.Lock()
	s.remoteSet = true
	if !s.started.IsZero() {
		s.offerToAnswer = time.Since(s.started)
	}
	pending := s.pendingRemote
	s.pendingRemote = nil
	v.mu.Unlock()
	for _, c := range pending {
		if err := s.pc.AddICECandidate(c); err != nil {
			v.log.Debug("peer: remote candidate refused", "err", err)
		}
	}
}

func (v *Viewer) handleCandidate(c webrtc.ICECandidateInit) {
	v.mu.Lock()
	s := v.cur
	if s == nil {
		v.mu.Unlock()
		return
	}
	if !s.remoteSet {
		s.pendingRemote = append(s.pendingRemote, c)
		v.mu.Unlock()
		return
	}
	v.mu.Unlock()
	if err := s.pc.AddICECandidate(c); err != nil {
		v.log.Debug("peer: remote candidate refused", "err", err)
	}
}

func (v *Viewer) dataMessage(msg webrtc.DataChannelMessage) {
	v.dataIn.Add(1)
	v.hmu.RLock()
	f := v.onData
	v.hmu.RUnlock()
	if f != nil {
		f(msg)
	}
}

// track reads a received track until it ends.
func (v *Viewer) track(track *webrtc.TrackRemote) {
	v.hmu.RLock()
	onTrack := v.onTrack
	v.hmu.RUnlock()
	if onTrack != nil {
		onTrack(track)
	}
	video := track.Kind() == webrtc.RTPCodecTypeVideo
	sinks := []media.Sink{&v.aCount}
	cfgSinks := v.cfg.AudioSinks
	if video {
		sinks = []media.Sink{&v.vCount}
		cfgSinks = v.cfg.VideoSinks
	}
	sinks = append(sinks, cfgSinks...)
	sinks = append(sinks, media.SinkFunc(func(f media.Frame) error {
		v.hmu.RLock()
		fn := v.onFrame
		v.hmu.RUnlock()
		if fn != nil {
			fn(f)
		}
		return nil
	}))
	gate := media.FromKeyframe(sinks...)
	v.mu.Lock()
	ctx := v.ctx
	v.mu.Unlock()
	v.goRun(func() {
		if err := media.Consume(ctx, track, gate); err != nil && !errors.Is(err, context.Canceled) {
			v.log.Debug("peer: track ended", "kind", track.Kind(), "err", err)
		}
	})
}

// Send sends a binary message on the viewer's data channel. It returns
// ErrNoDataChannel when the channel is not open (yet).
func (v *Viewer) Send(data []byte) error {
	return v.send(func(dc *webrtc.DataChannel) error { return dc.Send(data) })
}

// SendText sends a text message on the viewer's data channel.
func (v *Viewer) SendText(text string) error {
	return v.send(func(dc *webrtc.DataChannel) error { return dc.SendText(text) })
}

func (v *Viewer) send(f func(*webrtc.DataChannel) error) error {
	v.mu.Lock()
	var dc *webrtc.DataChannel
	if v.cur != nil {
		dc = v.cur.dc
	}
	v.mu.Unlock()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return ErrNoDataChannel
	}
	if err := f(dc); err != nil {
		return fmt.Errorf("%w: data channel send: %w", ErrPeerConnection, err)
	}
	v.dataOut.Add(1)
	return nil
}

// WaitConnected waits until the current peer connection is connected. It
// returns ErrConnectionFailed if it fails or closes first, ErrClosed after
// Close, ErrNotStarted before Start, or ctx.Err().
func (v *Viewer) WaitConnected(ctx context.Context) error {
	for {
		v.mu.Lock()
		closed, started, ch := v.closed, v.started, v.changed
		st := webrtc.PeerConnectionStateNew
		if v.cur != nil {
			st = v.cur.state
		}
		v.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case !started:
			return ErrNotStarted
		case st == webrtc.PeerConnectionStateConnected:
			return nil
		case st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed:
			return fmt.Errorf("%w: peer connection %s", ErrConnectionFailed, st)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitFirstFrame waits for the first complete video key frame and returns
// the time to first frame (from Start). It returns ctx.Err() if ctx ends
// first.
func (v *Viewer) WaitFirstFrame(ctx context.Context) (time.Duration, error) {
	select {
	case <-v.firstFrame:
		return time.Duration(v.ttff.Load()), nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Stats returns the viewer's statistics: its current session's, and the
// counts of re-offers and signaling reconnects.
func (v *Viewer) Stats() ViewerStats {
	v.mu.Lock()
	st := ViewerStats{Reoffers: v.reoffer, SignalingReconnects: v.sigRec}
	st.ClientID = v.id
	st.Signaling = v.timings
	s := v.cur
	var pc *webrtc.PeerConnection
	var guard *pcGuard
	if s != nil {
		guard = &s.guard
		st.Started = s.started
		st.OfferToAnswer, st.ICEConnect, st.Connect = s.offerToAnswer, s.iceConnect, s.connect
		pc = s.pc
		st.FramesSent, st.BytesSent = sent(s.vt, s.at)
	}
	v.mu.Unlock()
	st.TimeToFirstFrame = time.Duration(v.ttff.Load())
	st.Frames, st.Keyframes, st.AudioFrames = v.vCount.Frames(), v.vCount.Keyframes(), v.aCount.Frames()
	st.DataMessagesSent, st.DataMessagesReceived = v.dataOut.Load(), v.dataIn.Load()
	collectPC(pc, guard, &st.SessionStats)
	return st
}

// Close closes the peer connection and the signaling connection, stops
// the viewer's own media and waits for its goroutines.
func (v *Viewer) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	sessions := v.old
	if v.cur != nil {
		sessions = append(sessions, v.cur)
	}
	v.old = nil
	cancel := v.cancel
	v.notifyLocked()
	v.mu.Unlock()
	err := v.sc.Close()
	for _, s := range sessions {
		v.retire(s)
	}
	if cancel != nil {
		cancel()
	}
	v.wait()
	return err
}
