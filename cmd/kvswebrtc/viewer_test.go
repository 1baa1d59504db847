package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
)

// localForCLI starts the real local service (memory store, TURN on, the
// real limits) and clears the AWS environment, so that the commands fall
// back on the development key for its loopback endpoint.
func localForCLI(t *testing.T) *localkvs.Server {
	t.Helper()
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_REGION", "")
	srv, err := localkvs.Start(localkvs.Config{TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestMasterAndViewerCommands runs `kvswebrtc master` and `kvswebrtc
// viewer --record x.ivf` against a local service: the viewer gets media,
// the recording holds frames, the master reports the viewer and its stats,
// and both exit 0.
func TestMasterAndViewerCommands(t *testing.T) {
	srv := localForCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	mctx, stopMaster := context.WithCancel(ctx)
	defer stopMaster()
	var mOut, mErr syncBuffer
	mDone := make(chan int, 1)
	go func() {
		mDone <- run(mctx, []string{"master", "--channel", "cli-mv", "--create", "--endpoint-url", srv.URL(), "--stats-interval", "1s"}, &mOut, &mErr)
	}()
	waitUntil(t, "the master to start", func() bool {
		select {
		case code := <-mDone:
			t.Fatalf("master exited %d early: %s%s", code, mOut.String(), mErr.String())
		default:
		}
		return strings.Contains(mOut.String(), "master on arn:aws:kinesisvideo:")
	})
	if !strings.Contains(mOut.String(), "VP8 video + opus audio") {
		t.Errorf("master output: %q", mOut.String())
	}

	rec := filepath.Join(t.TempDir(), "got.ivf")
	var vOut, vErr bytes.Buffer
	code := run(ctx, []string{"viewer", "--channel", "cli-mv", "--endpoint-url", srv.URL(), "--duration", "4s",
		"--record", rec, "--client-id", "cli-viewer-1"}, &vOut, &vErr)
	vo := vOut.String()
	if code != 0 {
		t.Fatalf("viewer exited %d\nstdout:\n%s\nstderr:\n%s\nmaster:\n%s%s", code, vo, vErr.String(), mOut.String(), mErr.String())
	}
	for _, want := range []string{"viewer cli-viewer-1 on arn:", "first frame after", "summary: viewer cli-viewer-1", "time to first frame  ", "recorded", "candidate pair       host"} {
		if !strings.Contains(vo, want) {
			t.Errorf("viewer output lacks %q:\n%s", want, vo)
		}
	}
	if strings.Contains(vo, "\r") {
		t.Errorf("progress rewritten in place on a non-terminal:\n%q", vo)
	}
	if !strings.Contains(vErr.String(), "development key") {
		t.Errorf("no note about the development key: %q", vErr.String())
	}

	src, err := media.Open(rec, media.Options{})
	if err != nil {
		t.Fatalf("the recording does not open: %v", err)
	}
	frames := 0
	for {
		_, err := src.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the recording after %d frames: %v", frames, err)
		}
		frames++
	}
	src.Close()
	if frames < 10 {
		t.Fatalf("the recording holds %d frames", frames)
	}

	waitUntil(t, "the master's join and stats lines", func() bool {
		o := mOut.String()
		return strings.Contains(o, "viewer cli-viewer-1 joined (1 connected)") && strings.Contains(o, "session cli-viewer-1:")
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
	if !strings.Contains(mOut.String(), "master stopped") {
		t.Errorf("master output:\n%s", mOut.String())
	}
}

// TestViewerWithoutMaster: no master answers, so no media arrives; the
// viewer says that no master answered and how to start one, and exits 1
// after --duration.
func TestViewerWithoutMaster(t *testing.T) {
	srv := localForCLI(t)
	if code, _, errOut := runCmd("channel", "create", "--endpoint-url", srv.URL(), "cli-empty"); code != 0 {
		t.Fatalf("channel create: %d %s", code, errOut)
	}
	code, out, errOut := runCmd("viewer", "--channel", "cli-empty", "--endpoint-url", srv.URL(), "--duration", "2s")
	if code != 1 || !strings.Contains(errOut, `no master answered the offer on channel "cli-empty"`) || !strings.Contains(errOut, "start one: kvswebrtc master --channel cli-empty") {
		t.Fatalf("exit %d, stderr %q; want 1 and no master", code, errOut)
	}
	if !strings.Contains(out, "waiting for the master's answer") || !strings.Contains(out, "time to first frame  none") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestViewerAndMasterBadFlags(t *testing.T) {
	isolateAWS(t)
	const ep = "http://127.0.0.1:1"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"viewer"}, "--channel is required"},
		{[]string{"viewer", "--channel", "c", "--nat", "upnp"}, `--nat "upnp" is not stun-turn`},
		{[]string{"viewer", "--channel", "c", "--duration", "3"}, `invalid value "3" for flag --duration`},
		{[]string{"viewer", "--channel", "c", "--duration", "-2s"}, "--duration -2s must not be negative"},
		{[]string{"viewer", "--channel", "c", "--record", filepath.Join(t.TempDir(), "x.mp4")}, "--record"},
		{[]string{"viewer", "--channel", "c", "--endpoint-url", ep, "--client-id", "AWS_me"}, "ClientID"},
		{[]string{"master"}, "--channel is required"},
		{[]string{"master", "--channel", "c", "--max-viewers", "0"}, "--max-viewers 0 is not between 1 and 10"},
		{[]string{"master", "--channel", "c", "--max-viewers", "11"}, "--max-viewers 11 is not between 1 and 10"},
		{[]string{"master", "--channel", "c", "--nat", "x"}, `--nat "x"`},
		{[]string{"master", "--channel", "c", "--video", filepath.Join(t.TempDir(), "none.ivf")}, "--video"},
		{[]string{"master", "--channel", "c", "--audio", "clip.wav"}, "--audio"},
		{[]string{"master", "--channel", "c", "--stats-interval", "-1s"}, "--stats-interval"},
	} {
		code, _, errOut := runCmd(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestProgress: on a terminal the status line is rewritten in place and
// ordinary lines clear it first; elsewhere every status is a line.
func TestProgress(t *testing.T) {
	var b bytes.Buffer
	p := &progress{w: &b, tty: true}
	p.status("1s a")
	p.status("2s b")
	p.println("first frame")
	p.status("3s c")
	p.done()
	if want := "\r1s a\x1b[K\r2s b\x1b[K\r\x1b[Kfirst frame\n\r3s c\x1b[K\n"; b.String() != want {
		t.Fatalf("tty: %q, want %q", b.String(), want)
	}
	b.Reset()
	p = &progress{w: &b, tty: isTerminal(&b)}
	p.status("1s a")
	p.println("x")
	p.done()
	if b.String() != "1s a\nx\n" {
		t.Fatalf("plain: %q", b.String())
	}
}
