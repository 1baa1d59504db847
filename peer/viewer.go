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
	runState
	ctx     context.Context
	cancel  context.CancelFunc
	cur     *viewerSession
	old     []*viewerSession // the connected session cur replaces (at most one), closed once cur is connected or failed
	changed chan struct{}    // closed and replaced on each state change
	reconn  bool             // signaling is reconnecting
	reoffer int
	sigRec  int
	attempt int        // automatic re-offers since the last connected session
	negMu   sync.Mutex // one renegotiation at a time
	tracker            // goroutines Close waits for
}

// NewViewer resolves the channel as viewer (channel.Resolve, unless
// cfg.Resolved is set) and makes the signaling client, without
// connecting: set the handlers, then call Start.
func NewViewer(ctx context.Context, cfg ViewerConfig) (*Viewer, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	id := cfg.ClientID
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
		media:      newOutMedia(cfg.Video, cfg.Audio, false),
		firstFrame: make(chan struct{}),
		changed:    make(chan struct{}),
		timings:    resolveTimings(res),
	}
	v.vCount.OnFirstFrame(v.gotFirstFrame)
	return v, nil
}

// ClientID returns the viewer's client id.
func (v *Viewer) ClientID() string { return v.id }

// Channel returns the resolved channel.
func (v *Viewer) Channel() *channel.Resolved { return v.res }

// Signaling returns a view of the viewer's signaling client: its state
// and the events the viewer leaves alone (GO_AWAY, STATUS_RESPONSE,
// close). The handlers the viewer sets cannot be replaced through it.
func (v *Viewer) Signaling() SignalingView { return SignalingView{v.sc} }

// OnTrack sets the handler called when a track from the master arrives.
// It is for information: the viewer reads the track itself (see OnFrame).
func (v *Viewer) OnTrack(f func(track *webrtc.TrackRemote)) {
	setHandler(&v.hmu, &v.onTrack, f)
}

// OnFrame sets the handler called with each complete frame received (video
// frames, audio packets), from each track's first key frame on, on the
// track's goroutine.
func (v *Viewer) OnFrame(f func(media.Frame)) {
	setHandler(&v.hmu, &v.onFrame, f)
}

// OnDataMessage sets the handler called for each data channel message from
// the master.
func (v *Viewer) OnDataMessage(f func(msg webrtc.DataChannelMessage)) {
	setHandler(&v.hmu, &v.onData, f)
}

// OnConnectionStateChange sets the handler called when the peer
// connection's state changes.
func (v *Viewer) OnConnectionStateChange(f func(webrtc.PeerConnectionState)) {
	setHandler(&v.hmu, &v.onState, f)
}

// OnReoffer sets the handler called when the viewer makes a new peer
// connection and offers again, before the offer is made, with the reason:
// an error wrapping ErrConnectionFailed (the session failed or was closed
// by the remote), ErrNoAnswer, ErrSignalingReconnected or
// ErrReconnectICEServer. It is called on its own goroutine.
func (v *Viewer) OnReoffer(f func(reason error)) {
	setHandler(&v.hmu, &v.onReoff, f)
}

// Start connects to the signaling channel and sends the offer. It returns
// ErrClientLimitExceeded when the service refuses the connection because
// the channel has its maximum of viewers (or connects came too fast),
// ErrSignaling for other signaling failures, ErrPeerConnection when the
// offer cannot be made, ErrStarted on a second call and ErrClosed after
// Close. A signaling connection that drops right after it opened is no
// error: the viewer offers once signaling is back. The time to first frame
// counts from the call.
func (v *Viewer) Start(ctx context.Context) error {
	v.mu.Lock()
	if err := v.begin(); err != nil {
		v.mu.Unlock()
		return err
	}
	v.start = time.Now()
	v.ctx, v.cancel = context.WithCancel(context.Background())
	v.mu.Unlock()

	v.handleSignaling()
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
	if (errors.Is(err, signaling.ErrNotOpen) || errors.Is(err, signaling.ErrSend)) && v.sc.State() != signaling.StateClosed {
		// The service dropped the connection that just opened (the send
		// found it reconnecting, or its write failed on the closed
		// socket): the offer goes out again when signaling is back
		// (OnOpen), or after ReofferAnswerTimeout. The client may be open
		// again already (its reconnect can take milliseconds): then
		// OnOpen, which came after v.cur was set, has queued that offer.
		// Only a closed client is an error here.
		v.log.Info("peer: signaling dropped before the offer went out; it is sent again once signaling is back")
		return nil
	}
	return err
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
	s := v.cur
	v.mu.Unlock()
	if s == nil {
		return ErrNoDataChannel
	}
	return s.send(f)
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
	v.mu.Unlock()
	if s != nil {
		s.stats(&st.SessionStats)
	}
	st.TimeToFirstFrame = time.Duration(v.ttff.Load())
	st.Frames, st.Keyframes, st.AudioFrames = v.vCount.Frames(), v.vCount.Keyframes(), v.aCount.Frames()
	st.DataMessagesSent, st.DataMessagesReceived = v.dataOut.Load(), v.dataIn.Load() // across sessions
	return st
}

// Close closes the peer connection and the signaling connection, stops
// the viewer's own media and waits for its goroutines.
func (v *Viewer) Close() error {
	v.mu.Lock()
	if !v.finish() {
		v.mu.Unlock()
		return nil
	}
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
