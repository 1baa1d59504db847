package peer_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/internal/tcpproxy"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/peer"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// These tests run the session re-establishment of package peer end to end,
// through the real local service and its real messages: the application
// writes no reconnect logic.

// iceCalls counts the GetIceServerConfig calls made through its client.
type iceCalls struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *iceCalls) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v1/get-ice-server-config" {
		c.n.Add(1)
	}
	return c.next.RoundTrip(r)
}

// countingResolver returns a channel.Resolver whose GetIceServerConfig
// calls are counted.
func countingResolver(t *testing.T, srv *localkvs.Server) (*channel.Resolver, *iceCalls) {
	t.Helper()
	calls := &iceCalls{next: http.DefaultTransport}
	r, err := channel.NewResolver(awsConfig(srv), channel.ResolverOptions{HTTPClient: &http.Client{Transport: calls}})
	if err != nil {
		t.Fatal(err)
	}
	return r, calls
}

// leftReasons returns a channel fed with the reasons OnViewerLeft gives
// for viewer id.
func leftReasons(m *peer.Master, id string) chan error {
	ch := make(chan error, 16)
	m.OnViewerLeft(func(v string, reason error) {
		if v == id {
			send(ch, reason)
		}
	})
	return ch
}

// TestReconnectICEServerEndToEnd: the service sends RECONNECT_ICE_SERVER to
// the channel's connections. The viewer fetches the ICE servers again,
// makes a new peer connection and offers again; the master fetches its ICE
// servers again and replaces the viewer's session; media flows on the new
// session.
func TestReconnectICEServerEndToEnd(t *testing.T) {
	srv := startService(t)
	mres, mcalls := countingResolver(t, srv)
	vres, vcalls := countingResolver(t, srv)
	m := startMaster(t, srv, "rice", func(c *peer.MasterConfig) { c.Resolver = mres })
	left := leftReasons(m, "rice-viewer")
	v := startViewer(t, srv, "rice", "rice-viewer", func(c *peer.ViewerConfig) {
		c.Resolver = vres
		c.NoAudio = true
	})
	firstFrame(t, v)
	if st := v.Stats(); st.Reoffers != 0 {
		t.Fatalf("re-offers before the event: %d", st.Reoffers)
	}
	mBefore, vBefore := mcalls.n.Load(), vcalls.n.Load()
	if vBefore == 0 {
		t.Fatal("the counting client saw no GetIceServerConfig call of the viewer")
	}

	event := time.Now()
	if err := srv.ReconnectICEServer(ctxT(t), m.Channel().ChannelARN()); err != nil {
		t.Fatalf("ReconnectICEServer: %v", err)
	}
	select {
	case reason := <-left:
		if !errors.Is(reason, peer.ErrSessionReplaced) {
			t.Fatalf("the old session left with %v, want ErrSessionReplaced", reason)
		}
	case <-ctxT(t).Done():
		t.Fatalf("the master did not replace the viewer's session\n%s", v.Stats())
	}
	// The old session is out of the master's media now: frames counted from
	// here come from the new session.
	start := v.Stats().Frames
	if err := v.WaitConnected(ctxT(t)); err != nil {
		t.Fatalf("the new session did not connect: %v", err)
	}
	waitFor(t, "frames on the new session", func() bool { return v.Stats().Frames >= start+15 })
	waitFor(t, "the master's GetIceServerConfig call", func() bool { return mcalls.n.Load() > mBefore })

	st := v.Stats()
	if got := vcalls.n.Load(); got <= vBefore {
		t.Errorf("viewer GetIceServerConfig calls %d, want more than %d", got, vBefore)
	}
	if st.Reoffers != 1 {
		t.Errorf("re-offers %d, want 1", st.Reoffers)
	}
	if st.SignalingReconnects != 0 {
		t.Errorf("signaling reconnects %d, want 0: RECONNECT_ICE_SERVER keeps the connection", st.SignalingReconnects)
	}
	if !st.Started.After(event) || st.State != webrtc.PeerConnectionStateConnected || st.PacketsReceived == 0 {
		t.Errorf("the current session is not the new one:\n%s", st)
	}
	ms, ok := m.Stats()["rice-viewer"]
	if !ok || !ms.Started.After(event) || ms.FramesSent == 0 {
		t.Errorf("master session after the event (found %v):\n%s", ok, ms)
	}
	if got := m.Viewers(); len(got) != 1 {
		t.Errorf("master sessions %v, want one", got)
	}
}

// viaProxy routes a viewer's signaling connection through a new proxy,
// with quick reconnects.
func viaProxy(t *testing.T, p **tcpproxy.Proxy) func(*signaling.Config) {
	return func(c *signaling.Config) {
		*p = tcpproxy.Start(t, strings.TrimPrefix(c.ChannelEndpoint, "ws://"))
		c.ChannelEndpoint = "ws://" + (*p).Addr()
		c.ReconnectBaseDelay = 10 * time.Millisecond
		c.ReconnectMaxDelay = 100 * time.Millisecond
	}
}

// TestSignalingBackWhilePeerConnectionDown: the viewer's signaling
// connection drops and stays down; meanwhile its master goes away (the
// peer connection is lost) and a new master starts on the channel. When
// signaling comes back, the peer connection is not connected, so the viewer
// offers again by itself and gets media from the new master.
func TestSignalingBackWhilePeerConnectionDown(t *testing.T) {
	srv := startService(t)
	m1 := startMaster(t, srv, "down", nil)
	var p *tcpproxy.Proxy
	v := newViewer(t, srv, "down", "down-viewer", func(c *peer.ViewerConfig) {
		c.Signaling = viaProxy(t, &p)
		c.NoAudio = true
		// Notice the lost peer quickly.
		c.Settings.ICEDisconnectedTimeout = time.Second
		c.Settings.ICEFailedTimeout = time.Second
		c.Settings.ICEKeepaliveInterval = 200 * time.Millisecond
	})
	lost := make(chan webrtc.PeerConnectionState, 16)
	v.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st != webrtc.PeerConnectionStateConnected && st != webrtc.PeerConnectionStateConnecting &&
			st != webrtc.PeerConnectionStateNew {
			send(lost, st)
		}
	})
	if err := v.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	firstFrame(t, v)

	// The network to the signaling service goes down.
	p.Refuse(true)
	p.Cut()
	waitFor(t, "the viewer's signaling reconnecting", func() bool {
		return v.Signaling().State() == signaling.StateReconnecting
	})

	// The master goes away: the viewer's peer connection is lost.
	if err := m1.Close(); err != nil {
		t.Fatalf("closing the first master: %v", err)
	}
	select {
	case st := <-lost:
		t.Logf("the viewer's peer connection is %s", st)
	case <-ctxT(t).Done():
		t.Fatal("the viewer's peer connection stayed connected after the master closed")
	}
	// A re-offer would come at most ICEFailedTimeout (1 s) after the
	// connection went disconnected, when it goes failed, plus the first
	// backoff (at most DefaultReofferBaseDelay, 500 ms): 3 s sees it even on
	// a loaded machine.
	holds(t, 3*time.Second, "the viewer acted before signaling was back", func() bool {
		st := v.Stats()
		return st.Reoffers == 0 && st.SignalingReconnects == 0
	})

	// A new master starts; then the network comes back.
	m2 := startMaster(t, srv, "down", nil)
	joined := make(chan string, 4)
	m2.OnViewerJoined(func(id string) { send(joined, id) })
	start := v.Stats().Frames
	p.Refuse(false)

	select {
	case id := <-joined:
		if id != "down-viewer" {
			t.Errorf("the new master was joined by %q", id)
		}
	case <-ctxT(t).Done():
		t.Fatalf("the viewer did not reach the new master after signaling came back\n%s", v.Stats())
	}
	waitFor(t, "frames from the new master", func() bool { return v.Stats().Frames >= start+15 })
	st := v.Stats()
	if st.Reoffers != 1 || st.SignalingReconnects != 1 {
		t.Errorf("re-offers %d and signaling reconnects %d, want 1 and 1", st.Reoffers, st.SignalingReconnects)
	}
	if st.State != webrtc.PeerConnectionStateConnected {
		t.Errorf("viewer state %s", st.State)
	}
	if ms := m2.Stats()["down-viewer"]; ms.FramesSent == 0 {
		t.Errorf("the new master sent nothing to the viewer:\n%s", ms)
	}
}

// TestGoAway: the service limits connections to a few seconds and sends
// GO_AWAY before the cut. The master's and the viewer's signaling clients
// reconnect on it, again and again; the peer connection is untouched and
// media keeps flowing; a viewer that comes after the master reconnected
// still gets through to it.
func TestGoAway(t *testing.T) {
	srv, err := localkvs.Start(localkvs.Config{TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}, Limits: localkvs.Limits{
		ConnectsPerSecond: -1, ICEConfigPerSecond: -1,
		// GO_AWAY 1.5 s after each connect; the cut 3 s later.
		MaxConnectionDuration: 4500 * time.Millisecond, GoAwayLead: 3 * time.Second,
	}}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	m := startMaster(t, srv, "goaway", func(c *peer.MasterConfig) { c.Audio = nil })
	var masterGoAways atomic.Int64
	m.Signaling().OnGoAway(func() { masterGoAways.Add(1) })
	left := leftReasons(m, "ga-1")
	v1 := startViewer(t, srv, "goaway", "ga-1", func(c *peer.ViewerConfig) { c.NoAudio = true })
	firstFrame(t, v1)
	start := v1.Stats().Frames

	// A connection gets one GO_AWAY: a second one came on a new
	// connection, so the master reconnected at least once.
	waitFor(t, "two GO_AWAYs to the master", func() bool { return masterGoAways.Load() >= 2 })
	waitFor(t, "two signaling reconnects of the viewer", func() bool { return v1.Stats().SignalingReconnects >= 2 })
	waitFor(t, "frames across the reconnects", func() bool { return v1.Stats().Frames >= start+60 })
	if st := v1.Stats(); st.Reoffers != 0 || st.State != webrtc.PeerConnectionStateConnected {
		t.Errorf("viewer after GO_AWAYs: re-offers %d (want 0), state %s", st.Reoffers, st.State)
	}
	if s := m.Signaling().State(); s != signaling.StateOpen {
		t.Errorf("master signaling state %s, want open", s)
	}

	// A new viewer joins the master that reconnected.
	v2 := startViewer(t, srv, "goaway", "ga-2", func(c *peer.ViewerConfig) { c.NoAudio = true })
	firstFrame(t, v2)
	start2 := v2.Stats().Frames
	waitFor(t, "frames to the second viewer", func() bool { return v2.Stats().Frames >= start2+15 })
	// The session of ga-1 would end within a second of a wrong re-offer
	// (the master replaces it when the offer comes) or of its peer
	// connection closing; an ICE failure would have stopped the frames
	// waited for above.
	never(t, left, time.Second, "the first viewer's session ended")
	if got := len(m.Viewers()); got != 2 {
		t.Errorf("master sessions %v, want two", m.Viewers())
	}
}

// reofferReasons returns a channel fed with the reasons OnReoffer gives.
func reofferReasons(v *peer.Viewer) chan error {
	ch := make(chan error, 64)
	v.OnReoffer(func(reason error) {
		select {
		case ch <- reason:
		default:
		}
	})
	return ch
}

// masterRestart streams from a first master to a viewer, closes that
// master (its Close ends the DTLS session: the viewer's peer connection is
// lost while its signaling stays up) and starts a second master on the
// channel. It returns the service, the viewer and the second master once
// the viewer's peer connection is lost, and the reasons OnReoffer gave.
func masterRestart(t *testing.T, ch, id string, mod func(*peer.ViewerConfig)) (*localkvs.Server, *peer.Viewer, *peer.Master, chan error) {
	t.Helper()
	srv := startService(t)
	m1 := startMaster(t, srv, ch, func(c *peer.MasterConfig) { c.Audio = nil })
	v := newViewer(t, srv, ch, id, func(c *peer.ViewerConfig) {
		c.NoAudio = true
		c.Settings.ICEDisconnectedTimeout = time.Second
		c.Settings.ICEFailedTimeout = time.Second
		c.Settings.ICEKeepaliveInterval = 200 * time.Millisecond
		if mod != nil {
			mod(c)
		}
	})
	lost := make(chan webrtc.PeerConnectionState, 16)
	v.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed || st == webrtc.PeerConnectionStateClosed ||
			st == webrtc.PeerConnectionStateDisconnected {
			send(lost, st)
		}
	})
	reasons := reofferReasons(v)
	if err := v.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	firstFrame(t, v)
	if err := m1.Close(); err != nil {
		t.Fatalf("closing the first master: %v", err)
	}
	select {
	case st := <-lost:
		t.Logf("the viewer's peer connection is %s", st)
	case <-ctxT(t).Done():
		t.Fatal("the viewer's peer connection stayed connected after the master closed")
	}
	m2 := startMaster(t, srv, ch, func(c *peer.MasterConfig) { c.Audio = nil })
	return srv, v, m2, reasons
}

// TestAutoReofferAfterMasterRestart: the master goes away and a new one
// starts on the channel while the viewer's signaling connection stays up.
// The viewer notices its lost peer connection, offers again by itself and
// gets media from the new master.
func TestAutoReofferAfterMasterRestart(t *testing.T) {
	_, v, m2, reasons := masterRestart(t, "restart", "restart-viewer", func(c *peer.ViewerConfig) {
		c.ReofferBaseDelay = 50 * time.Millisecond
		c.ReofferMaxDelay = 200 * time.Millisecond
	})
	start := v.Stats().Frames
	waitFor(t, "the new master's session with the viewer", func() bool {
		return m2.Stats()["restart-viewer"].FramesSent > 0
	})
	waitFor(t, "frames from the new master", func() bool {
		st := v.Stats()
		return st.Frames >= start+15 && st.State == webrtc.PeerConnectionStateConnected
	})
	st := v.Stats()
	if st.Reoffers < 1 || st.SignalingReconnects != 0 {
		t.Errorf("re-offers %d and signaling reconnects %d, want >= 1 and 0\n%s", st.Reoffers, st.SignalingReconnects, st)
	}
	if s := v.Signaling().State(); s != signaling.StateOpen {
		t.Errorf("viewer signaling state %s, want open", s)
	}
	if len(reasons) == 0 {
		t.Error("OnReoffer was not called")
	}
	for len(reasons) > 0 {
		if r := <-reasons; !errors.Is(r, peer.ErrConnectionFailed) && !errors.Is(r, peer.ErrNoAnswer) {
			t.Errorf("re-offer reason %v, want ErrConnectionFailed or ErrNoAnswer", r)
		}
	}
}

// TestDisableAutoReoffer: with ViewerConfig.DisableAutoReoffer the viewer
// keeps the old behaviour: a peer connection lost while signaling is up
// stays lost, and the new master never hears from the viewer.
func TestDisableAutoReoffer(t *testing.T) {
	srv, v, m2, reasons := masterRestart(t, "norestart", "norestart-viewer", func(c *peer.ViewerConfig) {
		c.DisableAutoReoffer = true
		// Were the re-offer on, it would go at once.
		c.ReofferBaseDelay = time.Millisecond
		c.ReofferMaxDelay = time.Millisecond
	})
	if err := v.WaitConnected(ctxT(t)); !errors.Is(err, peer.ErrConnectionFailed) {
		t.Fatalf("WaitConnected = %v, want ErrConnectionFailed", err)
	}
	// A second viewer reaches the new master and gets media: the channel
	// works, and time enough has passed for a re-offer of the first one.
	v2 := startViewer(t, srv, "norestart", "norestart-2", func(c *peer.ViewerConfig) { c.NoAudio = true })
	firstFrame(t, v2)
	start := v2.Stats().Frames
	waitFor(t, "frames to the second viewer", func() bool { return v2.Stats().Frames >= start+15 })

	st := v.Stats()
	if st.Reoffers != 0 || len(reasons) != 0 {
		t.Errorf("re-offers %d (OnReoffer %d), want 0 with DisableAutoReoffer", st.Reoffers, len(reasons))
	}
	if st.State == webrtc.PeerConnectionStateConnected {
		t.Errorf("the first viewer is connected again:\n%s", st)
	}
	if got := m2.Viewers(); len(got) != 1 || got[0] != "norestart-2" {
		t.Errorf("new master's sessions %v, want only norestart-2", got)
	}
}

// TestReofferUnanswered: a viewer starts on a channel with no master. Its
// offers get no answer, so it offers again after ReofferAnswerTimeout,
// with backoff; once a master starts, the newest offer reaches it and
// media flows.
func TestReofferUnanswered(t *testing.T) {
	srv := startService(t)
	v := newViewer(t, srv, "unanswered", "unanswered-viewer", func(c *peer.ViewerConfig) {
		c.CreateIfMissing = true
		c.NoAudio = true
		c.ReofferAnswerTimeout = 500 * time.Millisecond
		c.ReofferBaseDelay = 10 * time.Millisecond
		c.ReofferMaxDelay = 100 * time.Millisecond
		c.Settings.ICEDisconnectedTimeout = time.Second
		c.Settings.ICEFailedTimeout = time.Second
		c.Settings.ICEKeepaliveInterval = 200 * time.Millisecond
	})
	reasons := reofferReasons(v)
	if err := v.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		select {
		case r := <-reasons:
			if !errors.Is(r, peer.ErrNoAnswer) {
				t.Fatalf("re-offer %d with no master: reason %v, want ErrNoAnswer", i+1, r)
			}
		case <-ctxT(t).Done():
			t.Fatalf("re-offer %d with no master did not come\n%s", i+1, v.Stats())
		}
	}
	if st := v.Stats(); st.SignalingReconnects != 0 || st.Reoffers < 2 {
		t.Errorf("re-offers %d, signaling reconnects %d", st.Reoffers, st.SignalingReconnects)
	}

	startMaster(t, srv, "unanswered", func(c *peer.MasterConfig) { c.Audio = nil })
	firstFrame(t, v)
	start := v.Stats().Frames
	waitFor(t, "frames from the master", func() bool {
		st := v.Stats()
		return st.Frames >= start+15 && st.State == webrtc.PeerConnectionStateConnected
	})
}
