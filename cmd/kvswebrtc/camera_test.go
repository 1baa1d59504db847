package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/testcam"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// TestMasterFromRTSPCamera runs `kvswebrtc master --source rtsp://...
// --on-demand --record-viewers DIR` against an RTSP camera: the camera is
// pulled only once a viewer joins, `kvswebrtc viewer` gets its H.264, the
// progress line shows viewers, bitrate in and out and the camera state, and
// a viewer's microphone lands in DIR as Ogg. The camera's password is in
// no output.
func TestMasterFromRTSPCamera(t *testing.T) {
	srv := localForCLI(t)
	cam, err := testcam.Start(testcam.Config{User: "admin", Pass: "cam-secret-9"})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	mctx, stopMaster := context.WithCancel(ctx)
	defer stopMaster()
	dir := filepath.Join(t.TempDir(), "talkback")
	var mOut, mErr syncBuffer
	mDone := make(chan int, 1)
	go func() {
		mDone <- run(mctx, []string{"master", "--channel", "cli-cam", "--create", "--endpoint-url", srv.URL(),
			"--source", cam.URL(), "--on-demand", "--record-viewers", dir, "--stats-interval", "1s"}, &mOut, &mErr)
	}()
	waitUntil(t, "the master to start", func() bool {
		select {
		case code := <-mDone:
			t.Fatalf("master exited %d early: %s%s", code, mOut.String(), mErr.String())
		default:
		}
		return strings.Contains(mOut.String(), "master on arn:aws:kinesisvideo:")
	})
	if o := mOut.String(); !strings.Contains(o, "H264 video + opus audio") || !strings.Contains(o, "pulled while a viewer is connected") {
		t.Errorf("master output: %q", o)
	}
	if got := cam.Packets(); got == 0 {
		t.Log("(camera sends to no one until a session plays)")
	}
	waitUntil(t, "an idle progress line", func() bool { return strings.Contains(mOut.String(), "camera idle") })

	var vOut, vErr bytes.Buffer
	code := run(ctx, []string{"viewer", "--channel", "cli-cam", "--endpoint-url", srv.URL(), "--duration", "4s", "--client-id", "cli-cam-viewer"}, &vOut, &vErr)
	if code != 0 {
		t.Fatalf("viewer exited %d\nstdout:\n%s\nstderr:\n%s\nmaster:\n%s%s", code, vOut.String(), vErr.String(), mOut.String(), mErr.String())
	}
	if !strings.Contains(vOut.String(), "first frame after") {
		t.Errorf("viewer output:\n%s", vOut.String())
	}
	waitUntil(t, "a progress line with the viewer and the camera connected", func() bool {
		return regexp.MustCompile(`viewers 1  out [1-9][0-9]* kbit/s  in [1-9][0-9]* kbit/s  camera connected`).MatchString(mOut.String())
	})

	// A viewer that talks back: its audio goes to an Ogg file in dir.
	aws := srv.AWSConfig()
	v, err := peer.NewViewer(ctx, peer.ViewerConfig{
		ChannelConfig: peer.ChannelConfig{AWS: aws, Channel: "cli-cam"},
		ClientID:      "talker",
		Audio:         media.DefaultAudio(media.Options{Loop: true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WaitFirstFrame(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	v.Close()
	waitUntil(t, "the viewer's Ogg file", func() bool {
		m, _ := filepath.Glob(filepath.Join(dir, "talker-*.ogg"))
		if len(m) != 1 {
			return false
		}
		fi, err := os.Stat(m[0])
		return err == nil && fi.Size() > 1000
	})

	stopMaster()
	select {
	case code := <-mDone:
		if code != 0 {
			t.Fatalf("master exited %d: %s", code, mErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("master did not stop on context cancel")
	}
	for _, out := range []string{mOut.String(), mErr.String(), vOut.String(), vErr.String()} {
		if strings.Contains(out, "cam-secret-9") {
			t.Fatalf("the camera's password is in the output:\n%s", out)
		}
	}
}

// TestMasterSourceErrors: bad --source combinations and a camera with AAC
// audio get one clear line each.
func TestMasterSourceErrors(t *testing.T) {
	srv := localForCLI(t)
	aac, err := testcam.Start(testcam.Config{AAC: true})
	if err != nil {
		t.Fatal(err)
	}
	defer aac.Close()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--source", "rtsp://x/y", "--video", "a.ivf"}, 2, "alternatives"},
		{[]string{"--source", "rtsp://x/y", "--sdp", "f.sdp"}, 2, "--sdp goes with an rtp://"},
		{[]string{"--on-demand"}, 2, "--on-demand needs an RTSP camera"},
		{[]string{"--source", "rtsp://x/y", "--transport", "sctp"}, 2, "--transport"},
		{[]string{"--source", aac.URL()}, 1, "AAC"},
		{[]string{"--source", "rtp://127.0.0.1:5004"}, 1, "--sdp"},
	} {
		var o, e bytes.Buffer
		args := append([]string{"master", "--channel", "cli-bad", "--endpoint-url", srv.URL()}, c.args...)
		code := run(context.Background(), args, &o, &e)
		if code != c.code || !strings.Contains(e.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, e.String(), c.code, c.want)
		}
	}
}
