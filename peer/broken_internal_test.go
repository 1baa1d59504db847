package peer

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/faultws"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// brokenViewer starts a viewer whose control plane is a real local service
// and whose signaling endpoint is the broken srv, with quick reconnects.
func brokenViewer(t *testing.T, srv *faultws.Server, nonTrickle bool) (*Viewer, error) {
	t.Helper()
	kvs, err := localkvs.Start(localkvs.Config{TURN: localkvs.TURNConfig{Disabled: true}}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kvs.Close() })
	if _, err := kvs.CreateChannel(context.Background(), "broken"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	v, err := NewViewer(ctx, ViewerConfig{
		ChannelConfig: ChannelConfig{AWS: kvs.AWSConfig(), Channel: "broken", Signaling: func(c *signaling.Config) {
			c.ChannelEndpoint = srv.Endpoint()
			c.ReconnectBaseDelay = 5 * time.Millisecond
			c.ReconnectMaxDelay = 40 * time.Millisecond
		}},
		ClientID: "broken-viewer", NoAudio: true, NonTrickle: nonTrickle,
		Settings: Settings{NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4}, IPFilter: func(ip net.IP) bool { return ip.IsLoopback() }},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, v.Start(ctx)
}

// sessions is how many peer connections the viewer holds (current and
// parked).
func (v *Viewer) sessions() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := len(v.old)
	if v.cur != nil {
		n++
	}
	return n
}

// TestDefect5ViewerRetriesFirstOpen: a service that closes the connection
// right after the first open does not make Start fail ("not open (state
// reconnecting)"): the viewer goes on, and offers once signaling is back.
func TestDefect5ViewerRetriesFirstOpen(t *testing.T) {
	srv := faultws.Start(t, faultws.Mode{})
	// Non-trickle: the offer waits for ICE gathering, by when the service
	// has closed the connection for sure.
	v, err := brokenViewer(t, srv, true)
	if err != nil {
		t.Fatalf("Start against a service that drops the first connection: %v", err)
	}
	waitUntil(t, "reconnects", func() bool { return srv.Opens() >= 3 })
	if n := v.sessions(); n > 2 {
		t.Errorf("%d peer connections held", n)
	}
}

// TestDefect5ViewerClosesSupersededSessions: each time signaling comes back
// the viewer offers again with a new peer connection; the ones it replaces
// before they ever connected are closed, not parked until some session
// connects (against a broken service, never).
func TestDefect5ViewerClosesSupersededSessions(t *testing.T) {
	srv := faultws.Start(t, faultws.Mode{CloseAfter: 150 * time.Millisecond})
	v, err := brokenViewer(t, srv, false)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitUntil(t, "ten reconnects", func() bool { return srv.Opens() >= 10 })
	if st := v.Stats(); st.Reoffers < 5 {
		t.Fatalf("%d re-offers after %d connections, want one per reconnect", st.Reoffers, srv.Opens())
	}
	if n := v.sessions(); n > 2 {
		t.Fatalf("%d peer connections held after %d re-offers, want at most 2 (the current one and one connected)", n, v.Stats().Reoffers)
	}
}
