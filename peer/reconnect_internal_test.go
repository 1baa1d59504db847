package peer

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/tcpproxy"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

func setup(t *testing.T, viewerSignaling func(*signaling.Config)) (*Master, *Viewer, chan error) {
	t.Helper()
	srv, err := localkvs.Start(localkvs.Config{TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	awsCfg := srv.AWSConfig()
	settings := Settings{NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4}, IPFilter: func(ip net.IP) bool { return ip.IsLoopback() }}
	m, err := NewMaster(ctx, MasterConfig{
		ChannelConfig: ChannelConfig{AWS: awsCfg, Channel: "re", CreateIfMissing: true},
		Video:         media.DefaultVideo(media.Options{Loop: true}),
		Settings:      settings,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	left := make(chan error, 10)
	m.OnViewerLeft(func(_ string, reason error) {
		select { // never block the master's goroutine
		case left <- reason:
		default:
		}
	})
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := NewViewer(ctx, ViewerConfig{
		ChannelConfig: ChannelConfig{AWS: awsCfg, Channel: "re", Signaling: viewerSignaling},
		ClientID:      "re-viewer", NoAudio: true, Settings: settings,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WaitFirstFrame(ctx); err != nil {
		t.Fatal(err)
	}
	return m, v, left
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReofferOnReconnectICEServer runs what the viewer does on
// RECONNECT_ICE_SERVER (the local service cannot send one): fetch the ICE
// servers, a new peer connection, a new offer. The master replaces the
// session and media flows again.
func TestReofferOnReconnectICEServer(t *testing.T) {
	m, v, left := setup(t, nil)
	before := v.Stats()
	v.renegotiate(nil, true, ErrReconnectICEServer)
	select {
	case reason := <-left:
		if !errors.Is(reason, ErrSessionReplaced) {
			t.Errorf("old session left with %v, want ErrSessionReplaced", reason)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the master did not replace the session")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "frames on the new session", func() bool {
		return v.Stats().Keyframes > before.Keyframes && v.Stats().Frames >= before.Frames+10
	})
	if st := v.Stats(); st.Reoffers != 1 || st.PacketsReceived == 0 {
		t.Errorf("stats after re-offer: %s", st)
	}
	if len(m.Viewers()) != 1 {
		t.Errorf("master sessions %v", m.Viewers())
	}
}

// TestSignalingDropKeepsSession: the viewer's signaling connection drops
// and comes back; the peer connection stayed connected, so the viewer does
// not offer again and media keeps flowing.
func TestSignalingDropKeepsSession(t *testing.T) {
	var p *tcpproxy.Proxy
	_, v, left := setup(t, func(c *signaling.Config) {
		host := strings.TrimPrefix(c.ChannelEndpoint, "ws://")
		p = tcpproxy.Start(t, host)
		c.ChannelEndpoint = "ws://" + p.Addr()
		c.ReconnectBaseDelay = 10 * time.Millisecond
	})
	p.Cut()
	waitUntil(t, "the signaling reconnect", func() bool { return v.Stats().SignalingReconnects >= 1 })
	if v.Signaling().State() != signaling.StateOpen {
		t.Errorf("signaling state %s", v.Signaling().State())
	}
	start := v.Stats().Frames
	waitUntil(t, "frames after the reconnect", func() bool { return v.Stats().Frames >= start+10 })
	// A wrong re-offer goes at once when signaling is back, and the master
	// ends the old session as soon as the offer arrives: a second more on
	// loopback shows it.
	select {
	case reason := <-left:
		t.Errorf("the master ended the session: %v", reason)
	case <-time.After(time.Second):
	}
	if st := v.Stats(); st.Reoffers != 0 {
		t.Errorf("re-offers %d, want 0: the session was connected", st.Reoffers)
	}
}
