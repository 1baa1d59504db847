package media_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/testcam"
	"github.com/kvswebrtc/kvswebrtc/media"
)

// nextWithin reads one sample from src, failing the test after d.
func nextWithin(t *testing.T, src media.Source, d time.Duration) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	s, err := src.Next(ctx)
	if err != nil {
		t.Fatalf("%s: Next: %v", src.Codec().MimeType, err)
	}
	if len(s.Data) == 0 || s.Duration <= 0 {
		t.Fatalf("%s: sample with %d bytes and duration %v", src.Codec().MimeType, len(s.Data), s.Duration)
	}
	return s.Data
}

// hasNAL reports whether an H.264 Annex-B access unit holds a NAL unit of type typ.
func hasNAL(au []byte, typ byte) bool {
	for i := 0; i+4 < len(au); i++ {
		if au[i] == 0 && au[i+1] == 0 && au[i+2] == 1 && au[i+3]&0x1f == typ {
			return true
		}
	}
	return false
}

func startCam(t *testing.T, cfg testcam.Config) *testcam.Camera {
	t.Helper()
	cam, err := testcam.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cam.Close)
	return cam
}

// TestOpenURLRTSP: H.264 + Opus from an RTSP camera with digest auth, over
// TCP and UDP: the first video sample is a key frame with SPS and PPS in
// band (the camera announces none in its SDP, so they must come from the
// stream), audio is Opus, and the URL's password is in no error or String.
func TestOpenURLRTSP(t *testing.T) {
	for _, transport := range []string{"tcp", "udp"} {
		t.Run(transport, func(t *testing.T) {
			cam := startCam(t, testcam.Config{User: "admin", Pass: "s3cret-pw", Digest: true, UDP: transport == "udp"})
			st, err := media.OpenURL(context.Background(), cam.URL(), media.URLOptions{Transport: transport})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if strings.Contains(st.String(), "s3cret-pw") {
				t.Fatalf("String() shows the password: %s", st)
			}
			if st.Video == nil || st.Audio == nil {
				t.Fatalf("video %v audio %v, want both", st.Video, st.Audio)
			}
			if got := st.Video.Codec().MimeType; got != webrtc.MimeTypeH264 {
				t.Fatalf("video codec %s", got)
			}
			if got := st.Audio.Codec().MimeType; got != webrtc.MimeTypeOpus {
				t.Fatalf("audio codec %s", got)
			}
			first := nextWithin(t, st.Video, 5*time.Second)
			if !hasNAL(first, 5) || !hasNAL(first, 7) || !hasNAL(first, 8) {
				t.Fatalf("first video sample is not an IDR with SPS and PPS in band")
			}
			for range 30 {
				nextWithin(t, st.Video, 2*time.Second)
			}
			for range 20 {
				nextWithin(t, st.Audio, 2*time.Second)
			}
			if s := st.Status(); s.State != media.LiveConnected || s.BytesIn == 0 {
				t.Fatalf("status %+v", s)
			}
		})
	}
}

// TestOpenURLAuthRefused: a wrong password fails with an error that names
// the refusal and does not hold the password.
func TestOpenURLAuthRefused(t *testing.T) {
	cam := startCam(t, testcam.Config{User: "admin", Pass: "right"})
	bad := strings.Replace(cam.URL(), ":right@", ":wrong-secret-42@", 1)
	_, err := media.OpenURL(context.Background(), bad, media.URLOptions{})
	if err == nil {
		t.Fatal("OpenURL with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), "wrong-secret-42") {
		t.Fatalf("error holds the password: %v", err)
	}
	if !strings.Contains(err.Error(), "401") && !strings.Contains(strings.ToLower(err.Error()), "auth") {
		t.Fatalf("error does not say the camera refused the credentials: %v", err)
	}
}

// TestOpenURLReconnects: the camera drops for a while and comes back on the
// same address; the Source blocks meanwhile (no error), reports
// reconnecting, and then carries on from a key frame.
func TestOpenURLReconnects(t *testing.T) {
	cam := startCam(t, testcam.Config{NoAudio: true})
	st, err := media.OpenURL(context.Background(), cam.URL(), media.URLOptions{
		Timeout: 2 * time.Second, ReconnectBaseDelay: 100 * time.Millisecond, ReconnectMaxDelay: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	states := make(chan media.LiveState, 64)
	st.OnStatus(func(s media.LiveStatus) {
		select {
		case states <- s.State:
		default:
		}
	})
	nextWithin(t, st.Video, 5*time.Second)
	cam.Stop()
	waitState(t, states, media.LiveReconnecting)
	// Drain what was queued before the drop.
	drain(st.Video)
	time.Sleep(time.Second)
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	waitState(t, states, media.LiveConnected)
	au := nextWithin(t, st.Video, 10*time.Second)
	if !hasNAL(au, 5) {
		t.Fatal("first sample after the reconnect is not a key frame")
	}
	for range 10 {
		nextWithin(t, st.Video, 2*time.Second)
	}
}

func drain(src media.Source) {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := src.Next(ctx)
		cancel()
		if err != nil {
			return
		}
	}
}

func waitState(t *testing.T, states <-chan media.LiveState, want media.LiveState) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case s := <-states:
			if s == want {
				return
			}
		case <-deadline:
			t.Fatalf("stream never became %v", want)
		}
	}
}

// TestOpenURLAAC: a camera with AAC audio fails with an error that names
// the codec and how to re-encode it; SkipUnsupported keeps the video.
func TestOpenURLAAC(t *testing.T) {
	cam := startCam(t, testcam.Config{AAC: true})
	_, err := media.OpenURL(context.Background(), cam.URL(), media.URLOptions{})
	if !errors.Is(err, media.ErrUnsupportedCodec) || !strings.Contains(err.Error(), "AAC") || !strings.Contains(err.Error(), "ffmpeg") {
		t.Fatalf("OpenURL: %v, want ErrUnsupportedCodec naming AAC and an ffmpeg re-encode", err)
	}
	st, err := media.OpenURL(context.Background(), cam.URL(), media.URLOptions{SkipUnsupported: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Video == nil || st.Audio != nil {
		t.Fatalf("video %v audio %v, want video only", st.Video, st.Audio)
	}
	nextWithin(t, st.Video, 5*time.Second)
}

// TestOpenURLOnDemand: an on-demand stream holds no session until Acquire,
// and hangs up on the last Release.
func TestOpenURLOnDemand(t *testing.T) {
	cam := startCam(t, testcam.Config{NoAudio: true})
	st, err := media.OpenURL(context.Background(), cam.URL(), media.URLOptions{OnDemand: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if s := st.Status().State; s != media.LiveIdle {
		t.Fatalf("state %v before Acquire, want idle", s)
	}
	st.Acquire()
	nextWithin(t, st.Video, 5*time.Second)
	st.Release()
	if s := st.Status().State; s != media.LiveIdle {
		t.Fatalf("state %v after Release, want idle", s)
	}
	st.Acquire()
	defer st.Release()
	drain(st.Video)
	if au := nextWithin(t, st.Video, 5*time.Second); !hasNAL(au, 5) {
		t.Fatal("first sample after a new Acquire is not a key frame")
	}
}

func TestOpenURLBadInput(t *testing.T) {
	for _, c := range []struct{ url, want string }{
		{"http://x/y", "rtsp://"},
		{"rtp://127.0.0.1:5004", "SDP"},
		{"rtsp://u:topsecret@127.0.0.1:1/x", "rtsp"},
	} {
		_, err := media.OpenURL(context.Background(), c.url, media.URLOptions{Timeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "topsecret") {
			t.Errorf("OpenURL(%q): %v, want an error naming %q without the password", media.RedactURL(c.url), err, c.want)
		}
	}
}

// ffmpegRTP runs ffmpeg sending a test pattern as RTP to 127.0.0.1 and
// returns the SDP file it wrote.
func ffmpegRTP(t *testing.T, port int, videoArgs ...string) string {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not installed (apt-get install -y ffmpeg)")
	}
	sdp := filepath.Join(t.TempDir(), "stream.sdp")
	args := append([]string{"-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30"},
		videoArgs...)
	args = append(args, "-an", "-f", "rtp", "-sdp_file", sdp, fmt.Sprintf("rtp://127.0.0.1:%d?pkt_size=1200", port))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log("ffmpeg: " + sc.Text())
		}
	}()
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(sdp); err == nil && strings.Contains(string(b), "m=video") {
			return sdp
		}
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg wrote no SDP file in 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
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

// TestOpenURLRTPFromFFmpeg: H.264 and H.265 sent by ffmpeg -f rtp with its
// -sdp_file: key frames with parameter sets in band.
func TestOpenURLRTPFromFFmpeg(t *testing.T) {
	for _, c := range []struct {
		name, mime string
		args       []string
		key        func([]byte) bool
	}{
		{"h264", webrtc.MimeTypeH264, []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0", "-g", "15"},
			func(b []byte) bool { return hasNAL(b, 5) && hasNAL(b, 7) }},
		{"h265", webrtc.MimeTypeH265, []string{"-c:v", "libx265", "-preset", "ultrafast", "-tune", "zerolatency", "-x265-params", "bframes=0:keyint=15:log-level=error"},
			func(b []byte) bool { return media.IsKeyframe(webrtc.MimeTypeH265, b) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			port := freeUDPPort(t)
			sdp := ffmpegRTP(t, port, c.args...)
			st, err := media.OpenURL(context.Background(), fmt.Sprintf("rtp://127.0.0.1:%d", port), media.URLOptions{SDP: sdp})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if got := st.Video.Codec().MimeType; got != c.mime {
				t.Fatalf("codec %s, want %s", got, c.mime)
			}
			if au := nextWithin(t, st.Video, 10*time.Second); !c.key(au) {
				t.Fatal("first sample is not a key frame with its parameter sets")
			}
			for range 30 {
				nextWithin(t, st.Video, 2*time.Second)
			}
		})
	}
}

// TestOpenURLBFrames: H.264 with B-frames is refused with ErrBFrames and
// an ffmpeg hint, not sent as a stream the browser shows badly.
func TestOpenURLBFrames(t *testing.T) {
	port := freeUDPPort(t)
	sdp := ffmpegRTP(t, port, "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "30")
	st, err := media.OpenURL(context.Background(), fmt.Sprintf("rtp://127.0.0.1:%d", port), media.URLOptions{SDP: sdp})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		_, err := st.Video.Next(ctx)
		if err == nil {
			continue
		}
		if !errors.Is(err, media.ErrBFrames) || !strings.Contains(err.Error(), "-bf 0") {
			t.Fatalf("Next: %v, want ErrBFrames with an ffmpeg hint", err)
		}
		return
	}
}

// TestOpenURLRTPVideoAndAudio: ffmpeg sends H.264 and Opus to two ports
// with one SDP file for both (the README's command): both Sources flow.
func TestOpenURLRTPVideoAndAudio(t *testing.T) {
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg not installed (apt-get install -y ffmpeg)")
	}
	vp, ap := freeUDPPort(t), freeUDPPort(t)
	sdp := filepath.Join(t.TempDir(), "av.sdp")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0", "-g", "15",
		"-f", "rtp", fmt.Sprintf("rtp://127.0.0.1:%d", vp),
		"-map", "1:a", "-c:a", "libopus", "-f", "rtp", "-sdp_file", sdp, fmt.Sprintf("rtp://127.0.0.1:%d", ap))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(sdp); err == nil && strings.Contains(string(b), "m=audio") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg wrote no SDP with audio")
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := media.OpenURL(context.Background(), fmt.Sprintf("rtp://127.0.0.1:%d", vp), media.URLOptions{SDP: sdp})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Video == nil || st.Audio == nil || st.Audio.Codec().MimeType != webrtc.MimeTypeOpus {
		t.Fatalf("video %v audio %v, want H.264 and Opus", st.Video, st.Audio)
	}
	for range 20 {
		nextWithin(t, st.Video, 5*time.Second)
		nextWithin(t, st.Audio, 5*time.Second)
	}
}
