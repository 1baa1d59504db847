package media

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// newLoopbackAPI is a pion API whose peers meet over 127.0.0.1 only.
func newLoopbackAPI(t *testing.T) *webrtc.API {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}

	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// connect runs offer and answer between two peers, with full ICE
// gathering instead of trickle.
func connect(t *testing.T, offerer, answerer *webrtc.PeerConnection) {
	t.Helper()
	exchange := func(from, to *webrtc.PeerConnection, create func() (webrtc.SessionDescription, error)) {
		desc, err := create()
		if err != nil {
			t.Fatal(err)
		}
		gathered := webrtc.GatheringCompletePromise(from)
		if err := from.SetLocalDescription(desc); err != nil {
			t.Fatal(err)
		}
		receive(t, gathered, "ICE gathering")
		if err := to.SetRemoteDescription(*from.LocalDescription()); err != nil {
			t.Fatal(err)
		}
	}
	exchange(offerer, answerer, func() (webrtc.SessionDescription, error) { return offerer.CreateOffer(nil) })
	exchange(answerer, offerer, func() (webrtc.SessionDescription, error) { return answerer.CreateAnswer(nil) })
}

// TestPionLoopback sends the embedded clips from a real pion peer to
// another over UDP on 127.0.0.1, and checks what the receiver counts and
// records.
func TestPionLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for a couple of seconds")
	}
	api := newLoopbackAPI(t)
	master, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	viewer, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()

	video, audio := DefaultVideo(Options{Loop: true}), DefaultAudio(Options{Loop: true})
	var tracks []*webrtc.TrackLocalStaticSample
	for _, src := range []Source{video, audio} {
		track, err := webrtc.NewTrackLocalStaticSample(src.Codec(), KindOf(src.Codec()).String(), "clip")
		if err != nil {
			t.Fatal(err)
		}
		sender, err := master.AddTrack(track)
		if err != nil {
			t.Fatal(err)
		}
		go func() { // RTCP must be read for the interceptors (NACK, reports) to work
			buf := make([]byte, 1500)
			for {
				if _, _, err := sender.Read(buf); err != nil {
					return
				}
			}
		}()
		tracks = append(tracks, track)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		videoCount, audioCount Counter
		firstFrames            int
		wg                     sync.WaitGroup
		consumeErrs            = make(chan error, 2)
	)
	rec, err := NewRecorder(filepath.Join(t.TempDir(), "received.ivf"))
	if err != nil {
		t.Fatal(err)
	}
	videoCount.OnFirstFrame(func(Frame) { firstFrames++ })
	viewer.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		sinks := []Sink{&audioCount}
		if track.Kind() == webrtc.RTPCodecTypeVideo {
			sinks = []Sink{&videoCount, rec}
		}
		wg.Go(func() { consumeErrs <- Consume(ctx, track, sinks...) })
	})
	connected := make(chan struct{})
	var once sync.Once
	master.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	connect(t, master, viewer)
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("peers did not connect")
	}

	start := time.Now()
	streams := make(chan error, 2)
	for i, src := range []Source{video, audio} {
		b := NewBroadcaster(src)
		b.Add(tracks[i])
		go func() { streams <- b.Run(ctx) }()
	}

	deadline := time.After(15 * time.Second)
	for videoCount.Frames() < 40 || audioCount.Frames() < 50 {
		select {
		case <-deadline:
			t.Fatalf("after 15 s: %d video frames, %d audio packets", videoCount.Frames(), audioCount.Frames())
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	for range 2 {
		if err := receive(t, streams, "Broadcaster.Run to return after cancel"); !errors.Is(err, context.Canceled) {
			t.Errorf("Broadcaster.Run = %v, want context.Canceled", err)
		}
	}
	for range 2 {
		if err := receive(t, consumeErrs, "Consume to return after cancel"); !errors.Is(err, context.Canceled) {
			t.Errorf("Consume = %v, want context.Canceled", err)
		}
	}
	wg.Wait() // both returned
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}

	first, ok := videoCount.FirstFrame()
	if !ok || first.Before(start) || firstFrames != 1 {
		t.Errorf("first frame at %v (ok %v, %d calls), stream started at %v", first, ok, firstFrames, start)
	}
	if videoCount.Keyframes() == 0 {
		t.Error("no key frame counted")
	}
	if rec.Frames() == 0 || rec.Frames() > videoCount.Frames() {
		t.Errorf("recorded %d frames of %d counted", rec.Frames(), videoCount.Frames())
	}

	// The file plays back frames of the clip, whole.
	clip := map[[32]byte]bool{}
	for _, s := range readAll(t, DefaultVideo(Options{})) {
		clip[sha256.Sum256(s.Data)] = true
	}
	back, err := Open(rec.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	got := readAll(t, back)
	if uint64(len(got)) != rec.Frames() {
		t.Errorf("file holds %d frames, recorder wrote %d", len(got), rec.Frames())
	}
	for i, s := range got {
		if !clip[sha256.Sum256(s.Data)] {
			t.Fatalf("frame %d of the recording is not a frame of the clip", i)
		}
	}
	t.Logf("%d video frames (%d bytes), %d audio packets; first frame %v after the stream started",
		videoCount.Frames(), videoCount.Bytes(), audioCount.Frames(), first.Sub(start))
}
