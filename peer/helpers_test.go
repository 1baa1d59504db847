package peer_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// wait bounds every wait for an event; generous for -race on a loaded
// 2-core machine.
const wait = 30 * time.Second

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// startService starts the real local service on 127.0.0.1. The connect and
// GetIceServerConfig rates are lifted so that tests may start 11 viewers
// at once; everything else is the real service's limits.
func startService(t *testing.T) *localkvs.Server {
	t.Helper()
	srv, err := localkvs.Start(localkvs.Config{
		Limits: localkvs.Limits{ConnectsPerSecond: -1, ICEConfigPerSecond: -1},
		// Both peers are on 127.0.0.1: the TURN relays must reach loopback peers.
		TURN: localkvs.TURNConfig{AllowLoopbackPeers: true},
	}, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("localkvs.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func awsConfig(srv *localkvs.Server) aws.Config { return srv.AWSConfig() }

// loopback keeps the peers on 127.0.0.1 (UDP over IPv4).
func loopback() peer.Settings {
	return peer.Settings{
		NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4},
		IPFilter:     func(ip net.IP) bool { return ip.IsLoopback() },
	}
}

// startMaster starts a master on the channel streaming the embedded clips.
func startMaster(t *testing.T, srv *localkvs.Server, ch string, mod func(*peer.MasterConfig)) *peer.Master {
	t.Helper()
	cfg := peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsConfig(srv), Channel: ch, CreateIfMissing: true},
		Video:         media.DefaultVideo(media.Options{Loop: true}),
		Audio:         media.DefaultAudio(media.Options{Loop: true}),
		Settings:      loopback(),
	}
	if mod != nil {
		mod(&cfg)
	}
	m, err := peer.NewMaster(ctxT(t), cfg)
	if err != nil {
		t.Fatalf("NewMaster: %v", err)
	}
	if err := m.Start(ctxT(t)); err != nil {
		t.Fatalf("Master.Start: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// newViewer makes (not starts) a viewer on the channel.
func newViewer(t *testing.T, srv *localkvs.Server, ch, id string, mod func(*peer.ViewerConfig)) *peer.Viewer {
	t.Helper()
	cfg := peer.ViewerConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsConfig(srv), Channel: ch},
		ClientID:      id,
		Settings:      loopback(),
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := peer.NewViewer(ctxT(t), cfg)
	if err != nil {
		t.Fatalf("NewViewer(%s): %v", id, err)
	}
	t.Cleanup(func() { v.Close() })
	return v
}

func startViewer(t *testing.T, srv *localkvs.Server, ch, id string, mod func(*peer.ViewerConfig)) *peer.Viewer {
	t.Helper()
	v := newViewer(t, srv, ch, id, mod)
	if err := v.Start(ctxT(t)); err != nil {
		t.Fatalf("Viewer(%s).Start: %v", id, err)
	}
	return v
}

func firstFrame(t *testing.T, v *peer.Viewer) time.Duration {
	t.Helper()
	d, err := v.WaitFirstFrame(ctxT(t))
	if err != nil {
		t.Fatalf("viewer %s: no first frame: %v\n%s", v.ClientID(), err, v.Stats())
	}
	return d
}

// waitFor polls cond (every 20 ms) until it holds or the wait ends.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send hands v to ch without blocking: handlers run on pion's and the
// signaling client's goroutines, and a test that stopped reading must not
// hang the peers. Values past ch's buffer are dropped.
func send[T any](ch chan<- T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// never fails the test if ch delivers a value within d: d is how long an
// event that must not happen is given to show up late (each caller says
// why its d is enough).
func never[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Errorf("%s: %v", what, v)
	case <-time.After(d):
	}
}

// holds fails the test if cond stops holding within d (polled every
// 20 ms): see never.
func holds(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Errorf("within %v: %s", d, what)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
