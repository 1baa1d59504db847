package peer_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// clipFrames returns the SHA-256 of each frame of the embedded VP8 clip.
func clipFrames(t *testing.T) map[[32]byte]bool {
	t.Helper()
	src := media.DefaultVideo(media.Options{})
	defer src.Close()
	set := map[[32]byte]bool{}
	for {
		s, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		set[sha256.Sum256(s.Data)] = true
	}
	if len(set) < media.DefaultVideoFrames/2 {
		t.Fatalf("clip has %d distinct frames", len(set))
	}
	return set
}

// TestMediaReachesViewer: a Go master streams the embedded clip to a Go
// viewer through the local service; the viewer records IVF, and every
// recorded frame is one of the clip's frames, whole, key frame first.
func TestMediaReachesViewer(t *testing.T) {
	srv := startService(t)
	m := startMaster(t, srv, "media", nil)
	joined := make(chan string, 1)
	m.OnViewerJoined(func(id string) { send(joined, id) })

	path := filepath.Join(t.TempDir(), "received.ivf")
	rec, err := media.NewRecorder(path)
	if err != nil {
		t.Fatal(err)
	}
	v := startViewer(t, srv, "media", "viewer-a", func(c *peer.ViewerConfig) { c.VideoSinks = []media.Sink{rec} })
	ttff := firstFrame(t, v)
	if ttff <= 0 {
		t.Errorf("time to first frame %v, want > 0", ttff)
	}
	select {
	case id := <-joined:
		if id != "viewer-a" {
			t.Errorf("OnViewerJoined(%q), want viewer-a", id)
		}
	case <-ctxT(t).Done():
		t.Fatal("OnViewerJoined not called")
	}
	// A bit more than one key-frame interval of the clip (30 frames), and
	// audio too.
	waitFor(t, "45 video frames and 20 audio packets", func() bool {
		st := v.Stats()
		return st.Frames >= 45 && st.AudioFrames >= 20
	})

	st := v.Stats()
	if st.Keyframes < 2 {
		t.Errorf("keyframes %d, want >= 2", st.Keyframes)
	}
	if st.PacketsReceived == 0 || st.BytesReceived == 0 || len(st.Streams) != 2 ||
		st.Streams[0].Kind != "video" || st.Streams[0].Packets == 0 || st.Streams[1].Kind != "audio" || st.Streams[1].Packets == 0 {
		t.Errorf("inbound RTP counters: %+v, want video and audio packets", st.Streams)
	}
	if st.Local.Type != "host" || st.Remote.Address != "127.0.0.1" {
		t.Errorf("selected pair local %v remote %v, want host candidates on 127.0.0.1", st.Local, st.Remote)
	}
	if st.OfferToAnswer <= 0 || st.ICEConnect <= 0 || st.Connect <= 0 || st.Signaling.Connect <= 0 {
		t.Errorf("timings missing: %s", st)
	}
	if st.Signaling.Describe <= 0 || st.Signaling.Endpoint <= 0 {
		t.Errorf("resolve timings missing: %+v", st.Signaling)
	}
	if s := st.String(); !strings.Contains(s, "viewer-a") || !strings.Contains(s, "first-frame") {
		t.Errorf("String() = %q", s)
	}
	ms := m.Stats()
	if got := ms["viewer-a"]; got.FramesSent == 0 || got.State != webrtc.PeerConnectionStateConnected {
		t.Errorf("master stats for viewer-a: %s", got)
	}
	if !strings.Contains(peer.FormatMasterStats(ms), "viewer-a") {
		t.Error("FormatMasterStats does not name the viewer")
	}

	if err := v.Close(); err != nil {
		t.Errorf("Viewer.Close: %v", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	// Every recorded frame parses, is one of the clip's frames, and the
	// first is a key frame.
	want := clipFrames(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatalf("recorded IVF header: %v", err)
	}
	if string(hdr.FourCC[:]) != "VP80" {
		t.Errorf("FourCC %q", hdr.FourCC)
	}
	n := 0
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if n == 0 && frame[0]&1 != 0 {
			t.Error("first recorded frame is not a VP8 key frame")
		}
		if !want[sha256.Sum256(frame)] {
			t.Fatalf("frame %d (%d bytes) is not a frame of the clip: a frame boundary was lost", n, len(frame))
		}
		n++
	}
	if n < 45 || uint64(n) != rec.Frames() {
		t.Errorf("recorded %d frames, recorder counted %d, want >= 45 and equal", n, rec.Frames())
	}
}

// TestTenViewersAndEleventh: ten viewers at once all get media; the
// eleventh is refused by the service, and Start says why.
func TestTenViewersAndEleventh(t *testing.T) {
	srv := startService(t)
	m := startMaster(t, srv, "ten", nil)
	var mu sync.Mutex
	joined := map[string]bool{}
	m.OnViewerJoined(func(id string) { mu.Lock(); joined[id] = true; mu.Unlock() })

	viewers := make([]*peer.Viewer, 10)
	for i := range viewers {
		viewers[i] = newViewer(t, srv, "ten", fmt.Sprintf("v%02d", i), nil)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(viewers))
	ctx := ctxT(t)
	for i, v := range viewers {
		wg.Go(func() { errs[i] = v.Start(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("viewer %d Start: %v", i, err)
		}
	}
	for _, v := range viewers {
		firstFrame(t, v)
	}
	for _, v := range viewers {
		start := v.Stats().Frames
		waitFor(t, v.ClientID()+" frames flowing", func() bool { return v.Stats().Frames >= start+10 })
	}
	mu.Lock()
	if len(joined) != 10 {
		t.Errorf("OnViewerJoined for %d viewers, want 10", len(joined))
	}
	mu.Unlock()
	if got := m.Viewers(); len(got) != 10 {
		t.Errorf("Master.Viewers() = %v", got)
	}

	eleventh := newViewer(t, srv, "ten", "v10", nil)
	err := eleventh.Start(ctxT(t))
	if !errors.Is(err, peer.ErrClientLimitExceeded) {
		t.Fatalf("11th viewer Start = %v, want ErrClientLimitExceeded", err)
	}
	if !strings.Contains(err.Error(), "ClientLimitExceeded") {
		t.Errorf("error does not name the service's code: %v", err)
	}
	// The ten still get media.
	for _, v := range viewers[:3] {
		start := v.Stats().Frames
		waitFor(t, v.ClientID()+" frames still flowing", func() bool { return v.Stats().Frames >= start+5 })
	}
}

// TestViewerReplacesItself: a viewer that comes back with the same client
// id, while its old session still runs, replaces it on the master and
// media flows again; after a clean close and restart too.
func TestViewerReplacesItself(t *testing.T) {
	srv := startService(t)
	m := startMaster(t, srv, "again", nil)
	left := make(chan error, 10)
	m.OnViewerLeft(func(id string, reason error) {
		if id == "same" {
			send(left, reason)
		}
	})

	v1 := startViewer(t, srv, "again", "same", nil)
	firstFrame(t, v1)

	v2 := startViewer(t, srv, "again", "same", nil)
	firstFrame(t, v2)
	select {
	case reason := <-left:
		if !errors.Is(reason, peer.ErrSessionReplaced) {
			t.Errorf("old session left with %v, want ErrSessionReplaced", reason)
		}
	case <-ctxT(t).Done():
		t.Fatal("OnViewerLeft not called for the replaced session")
	}
	if got := m.Viewers(); !slices.Equal(got, []string{"same"}) {
		t.Errorf("Master.Viewers() = %v, want [same]", got)
	}
	v1.Close()

	// Close, then start again with the same id.
	if err := v2.Close(); err != nil {
		t.Fatal(err)
	}
	v3 := startViewer(t, srv, "again", "same", nil)
	firstFrame(t, v3)
	start := v3.Stats().Frames
	waitFor(t, "frames flowing to the restarted viewer", func() bool { return v3.Stats().Frames >= start+10 })
}

// TestDataChannel: viewer -> master -> viewer echo, master Broadcast to
// all viewers, and the master receiving a viewer's own media.
func TestDataChannel(t *testing.T) {
	srv := startService(t)
	m := startMaster(t, srv, "data", func(c *peer.MasterConfig) { c.Audio = nil })
	echoErrs := make(chan error, 10)
	m.OnDataMessage(func(id string, msg webrtc.DataChannelMessage) {
		if err := m.SendText(id, "echo:"+id+":"+string(msg.Data)); err != nil {
			send(echoErrs, err)
		}
	})
	var counters sync.Map
	m.OnTrack(func(id string, track *webrtc.TrackRemote) {
		c := &media.Counter{}
		counters.Store(id+"/"+track.Kind().String(), c)
		_ = media.Consume(context.Background(), track, c)
	})

	type got struct {
		text   string
		isText bool
	}
	inbox := map[string]chan got{}
	var viewers []*peer.Viewer
	for _, id := range []string{"d1", "d2"} {
		ch := make(chan got, 10)
		inbox[id] = ch
		v := newViewer(t, srv, "data", id, func(c *peer.ViewerConfig) {
			c.NoAudio = true
			if id == "d1" {
				c.Audio = media.DefaultAudio(media.Options{Loop: true})
			}
		})
		v.OnDataMessage(func(msg webrtc.DataChannelMessage) { send(ch, got{string(msg.Data), msg.IsString}) })
		if err := v.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		viewers = append(viewers, v)
	}
	for _, v := range viewers {
		if err := v.WaitConnected(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		// The data channel opens just after the connection.
		waitFor(t, v.ClientID()+" data channel open", func() bool { return !errors.Is(v.SendText("ping"), peer.ErrNoDataChannel) })
	}
	for _, v := range viewers {
		select {
		case g := <-inbox[v.ClientID()]:
			if want := "echo:" + v.ClientID() + ":ping"; g.text != want || !g.isText {
				t.Errorf("viewer %s got %q (text %v), want %q", v.ClientID(), g.text, g.isText, want)
			}
		case <-ctxT(t).Done():
			t.Fatalf("viewer %s: no echo", v.ClientID())
		}
	}
	n, err := m.Broadcast([]byte("to all"))
	if err != nil || n != 2 {
		t.Fatalf("Broadcast = %d, %v; want 2, nil", n, err)
	}
	for _, v := range viewers {
		select {
		case g := <-inbox[v.ClientID()]:
			if g.text != "to all" || g.isText {
				t.Errorf("viewer %s got %q (text %v), want binary \"to all\"", v.ClientID(), g.text, g.isText)
			}
		case <-ctxT(t).Done():
			t.Fatalf("viewer %s: no broadcast", v.ClientID())
		}
	}
	if err := m.Send("nobody", []byte("x")); !errors.Is(err, peer.ErrUnknownViewer) {
		t.Errorf("Send to an unknown viewer = %v, want ErrUnknownViewer", err)
	}
	// d1 sends audio to the master.
	waitFor(t, "the master receiving d1's audio", func() bool {
		c, ok := counters.Load("d1/audio")
		return ok && c.(*media.Counter).Frames() >= 20
	})
	// The master's OnTrack comes with a track's first packet, which a
	// viewer sends as soon as it is connected: d2 has been connected for
	// as long as d1's 20 audio packets (400 ms) took, and more.
	if _, ok := counters.Load("d2/audio"); ok {
		t.Error("d2 sent no media, but the master got a track from it")
	}
	select {
	case err := <-echoErrs:
		t.Errorf("Master.SendText: %v", err)
	default:
	}
	if st := m.Stats()["d1"]; st.DataMessagesReceived < 1 || st.DataMessagesSent < 2 || st.PacketsReceived == 0 {
		t.Errorf("master stats for d1: %s", st)
	}
}

// TestNonTrickle: a viewer that sends one offer with all its candidates
// connects as well.
func TestNonTrickle(t *testing.T) {
	srv := startService(t)
	startMaster(t, srv, "full", nil)
	v := startViewer(t, srv, "full", "nt", func(c *peer.ViewerConfig) { c.NonTrickle = true })
	firstFrame(t, v)
}

// TestTURNOnly: media through the service's TURN server only.
func TestTURNOnly(t *testing.T) {
	srv := startService(t)
	m := startMaster(t, srv, "relay", func(c *peer.MasterConfig) {
		c.NAT = channel.TURNOnly
		c.Settings.IPFilter = nil // relay candidates come from the TURN server
	})
	hasTURN := false
	for _, s := range m.Channel().WebRTCConfiguration(channel.TURNOnly).ICEServers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:") {
				hasTURN = true
			}
		}
	}
	if !hasTURN {
		t.Fatal("the service's ICE server list has no turn: URL")
	}
	v := startViewer(t, srv, "relay", "relayed", func(c *peer.ViewerConfig) {
		c.NAT = channel.TURNOnly
		c.Settings.IPFilter = nil
	})
	firstFrame(t, v)
	st := v.Stats()
	if st.Local.Type != "relay" {
		t.Errorf("selected local candidate %v, want relay", st.Local)
	}
	start := st.Frames
	waitFor(t, "frames through TURN", func() bool { return v.Stats().Frames >= start+10 })
}

// TestConfigErrors: bad configurations are refused with a clear error.
func TestConfigErrors(t *testing.T) {
	srv := startService(t)
	ctx := ctxT(t)
	base := peer.ChannelConfig{AWS: awsConfig(srv), Channel: "cfg", CreateIfMissing: true}
	cases := []struct {
		name string
		make func() error
		want error
		says string
	}{
		{"viewer id", func() error {
			_, err := peer.NewViewer(ctx, peer.ViewerConfig{ChannelConfig: base, ClientID: "AWS_x"})
			return err
		}, peer.ErrInvalidConfig, "ClientID"},
		{"viewer id chars", func() error {
			_, err := peer.NewViewer(ctx, peer.ViewerConfig{ChannelConfig: base, ClientID: "a b"})
			return err
		}, peer.ErrInvalidConfig, "ClientID"},
		{"nothing to negotiate", func() error {
			_, err := peer.NewViewer(ctx, peer.ViewerConfig{ChannelConfig: base, NoAudio: true, NoVideo: true, NoDataChannel: true})
			return err
		}, peer.ErrInvalidConfig, "nothing"},
		{"negative re-offer delay", func() error {
			_, err := peer.NewViewer(ctx, peer.ViewerConfig{ChannelConfig: base, ReofferMaxDelay: -time.Second})
			return err
		}, peer.ErrInvalidConfig, "ReofferMaxDelay"},
		{"re-offer base over max", func() error {
			_, err := peer.NewViewer(ctx, peer.ViewerConfig{ChannelConfig: base, ReofferBaseDelay: time.Minute})
			return err
		}, peer.ErrInvalidConfig, "ReofferBaseDelay"},
		{"audio as video", func() error {
			_, err := peer.NewMaster(ctx, peer.MasterConfig{ChannelConfig: base, Video: media.DefaultAudio(media.Options{})})
			return err
		}, peer.ErrInvalidConfig, "Video"},
		{"max viewers", func() error {
			_, err := peer.NewMaster(ctx, peer.MasterConfig{ChannelConfig: base, MaxViewers: -1})
			return err
		}, peer.ErrInvalidConfig, "MaxViewers"},
		{"no channel", func() error {
			_, err := peer.NewMaster(ctx, peer.MasterConfig{ChannelConfig: peer.ChannelConfig{AWS: awsConfig(srv)}})
			return err
		}, peer.ErrInvalidConfig, "Channel"},
		{"missing channel", func() error {
			_, err := peer.NewMaster(ctx, peer.MasterConfig{ChannelConfig: peer.ChannelConfig{AWS: awsConfig(srv), Channel: "absent"}})
			return err
		}, channel.ErrChannelNotFound, "not found"},
		{"settings", func() error {
			_, err := peer.Settings{ICEFailedTimeout: -1}.NewAPI()
			return err
		}, peer.ErrInvalidConfig, "ICEFailedTimeout"},
		{"nack history", func() error {
			_, err := peer.Settings{NACKHistory: 100}.NewAPI()
			return err
		}, peer.ErrInvalidConfig, "NACKHistory"},
	}
	for _, c := range cases {
		err := c.make()
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: err = %v, want %v naming %q", c.name, err, c.want, c.says)
		}
	}
	// A master resolved for the wrong role.
	v, err := peer.NewViewer(ctx, peer.ViewerConfig{ChannelConfig: base, ClientID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = peer.NewMaster(ctx, peer.MasterConfig{ChannelConfig: peer.ChannelConfig{Resolved: v.Channel()}})
	if !errors.Is(err, peer.ErrInvalidConfig) {
		t.Errorf("master with a viewer's Resolved: %v", err)
	}
	// Start twice, and after Close.
	m := startMaster(t, srv, "cfg", nil)
	if err := m.Start(ctx); !errors.Is(err, peer.ErrStarted) {
		t.Errorf("second Start = %v", err)
	}
	m.Close()
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	v.Close()
	if err := v.Start(ctx); !errors.Is(err, peer.ErrClosed) {
		t.Errorf("Start after Close = %v", err)
	}
	if err := v.WaitConnected(ctx); !errors.Is(err, peer.ErrClosed) {
		t.Errorf("WaitConnected after Close = %v", err)
	}
}
