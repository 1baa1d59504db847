package peer_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/testcam"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// TestRTSPCameraSurvivesDrop: an RTSP camera (H.264 + Opus) reaches a Go
// viewer through the local service; the camera goes away for 3 s and comes
// back, and the viewer gets frames again on the same peer connection (no
// re-offer, no state change).
func TestRTSPCameraSurvivesDrop(t *testing.T) {
	srv := startService(t)
	cam, err := testcam.Start(testcam.Config{User: "cam", Pass: "pw-not-in-logs"})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	st, err := media.OpenURL(ctxT(t), cam.URL(), media.URLOptions{
		Timeout: 2 * time.Second, ReconnectBaseDelay: 100 * time.Millisecond, ReconnectMaxDelay: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	startMaster(t, srv, "rtsp", func(c *peer.MasterConfig) { c.Video, c.Audio = st.Video, st.Audio })
	reoffers := make(chan error, 4)
	states := make(chan webrtc.PeerConnectionState, 16)
	v := newViewer(t, srv, "rtsp", "viewer-rtsp", nil)
	v.OnReoffer(func(reason error) { send(reoffers, reason) })
	if err := v.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	firstFrame(t, v)
	v.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { send(states, s) })
	waitFor(t, "40 video frames and 20 audio packets", func() bool {
		s := v.Stats()
		return s.Frames >= 40 && s.AudioFrames >= 20
	})

	cam.Stop()
	waitFor(t, "the stream to see the camera gone", func() bool { return st.Status().State == media.LiveReconnecting })
	time.Sleep(3 * time.Second)
	before := v.Stats().Frames
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "30 more frames after the camera came back", func() bool { return v.Stats().Frames >= before+30 })
	select {
	case r := <-reoffers:
		t.Fatalf("the viewer re-offered (%v): the camera drop reached the peer connection", r)
	case s := <-states:
		t.Fatalf("the viewer's peer connection changed state to %v", s)
	default:
	}
}

// ffmpegRTP runs ffmpeg sending a test pattern as RTP to 127.0.0.1:port
// and returns the SDP file it wrote.
func ffmpegRTP(t *testing.T, port int, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg is not installed (.ci/run installs it)")
		}
		t.Skip("ffmpeg not installed (apt-get install -y ffmpeg)")
	}
	sdp := filepath.Join(t.TempDir(), "stream.sdp")
	all := append([]string{"-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"}, args...)
	all = append(all, "-an", "-f", "rtp", "-sdp_file", sdp, fmt.Sprintf("rtp://127.0.0.1:%d?pkt_size=1200", port))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, all...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	waitFor(t, "ffmpeg's SDP file", func() bool {
		b, err := os.ReadFile(sdp)
		return err == nil && strings.Contains(string(b), "m=video")
	})
	return sdp
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestH265FromRTP: ffmpeg sends H.265 over RTP to the master, which
// passes it through to a Go viewer that negotiates H.265; a viewer whose
// offer has no H.265 is refused with ErrCodecNotSupported.
func TestH265FromRTP(t *testing.T) {
	srv := startService(t)
	port := freeUDPPort(t)
	sdp := ffmpegRTP(t, port, "-c:v", "libx265", "-preset", "ultrafast", "-tune", "zerolatency", "-x265-params", "bframes=0:keyint=15:log-level=error")
	st, err := media.OpenURL(ctxT(t), fmt.Sprintf("rtp://127.0.0.1:%d", port), media.URLOptions{SDP: sdp})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := st.Video.Codec().MimeType; got != webrtc.MimeTypeH265 {
		t.Fatalf("source codec %s", got)
	}
	left := make(chan error, 4)
	m := startMaster(t, srv, "h265", func(c *peer.MasterConfig) { c.Video, c.Audio = st.Video, nil })
	m.OnViewerLeft(func(_ string, reason error) { send(left, reason) })

	var keys atomic.Int64
	v := startViewer(t, srv, "h265", "viewer-h265", func(c *peer.ViewerConfig) {
		c.NoAudio = true
		c.VideoSinks = []media.Sink{media.SinkFunc(func(f media.Frame) error {
			if f.Codec.MimeType != webrtc.MimeTypeH265 {
				return fmt.Errorf("frame of %s", f.Codec.MimeType)
			}
			if f.Keyframe && media.IsKeyframe(webrtc.MimeTypeH265, f.Sample.Data) {
				keys.Add(1)
			}
			return nil
		})}
	})
	firstFrame(t, v)
	waitFor(t, "30 H.265 frames with 2 key frames", func() bool { return v.Stats().Frames >= 30 && keys.Load() >= 2 })

	// A viewer that registers only H.264 for video.
	me := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, PayloadType: 102},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	h264only := newViewer(t, srv, "h265", "viewer-h264-only", func(c *peer.ViewerConfig) {
		c.NoAudio = true
		c.Settings = peer.Settings{API: api}
	})
	if err := h264only.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case reason := <-left:
		if !errors.Is(reason, peer.ErrCodecNotSupported) || !strings.Contains(reason.Error(), "H265") || !strings.Contains(reason.Error(), "H264") {
			t.Fatalf("viewer left with %v, want ErrCodecNotSupported naming H265 and the viewer's H264", reason)
		}
	case <-ctxT(t).Done():
		t.Fatal("the master did not refuse the viewer without H.265")
	}
}

// TestTwoWayAudio: a viewer sends the embedded Opus clip; the master's
// ViewerSinks write it to an Ogg file per viewer, which ffprobe reads as
// Opus of about the time it was sent.
func TestTwoWayAudio(t *testing.T) {
	srv := startService(t)
	dir := t.TempDir()
	recs := make(chan *media.Recorder, 2)
	startMaster(t, srv, "talkback", func(c *peer.MasterConfig) {
		c.ViewerSinks = func(id string, track *webrtc.TrackRemote) []media.Sink {
			if track.Kind() != webrtc.RTPCodecTypeAudio {
				return nil
			}
			r, err := media.NewRecorder(filepath.Join(dir, id+".ogg"))
			if err != nil {
				t.Errorf("NewRecorder: %v", err)
				return nil
			}
			send(recs, r)
			return []media.Sink{r}
		}
	})
	v := startViewer(t, srv, "talkback", "viewer-mic", func(c *peer.ViewerConfig) {
		c.Audio = media.DefaultAudio(media.Options{Loop: true})
	})
	firstFrame(t, v)
	var rec *media.Recorder
	select {
	case rec = <-recs:
	case <-ctxT(t).Done():
		t.Fatal("ViewerSinks was not called for the viewer's audio")
	}
	waitFor(t, "100 Opus packets (2 s) from the viewer", func() bool { return rec.Frames() >= 100 })
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "viewer-mic.ogg")
	// The master closes the sink when the session ends.
	waitFor(t, "the Ogg file to be closed", func() bool {
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "default=nw=1", path).CombinedOutput()
		return err == nil && strings.Contains(string(out), "codec_name=opus") && !strings.Contains(string(out), "duration=N/A")
	})
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "default=nw=1:nk=1", path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var secs float64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "%g", &secs); err != nil || secs < 1.5 {
		t.Fatalf("ffprobe duration %q, want >= 1.5 s", out)
	}
}
