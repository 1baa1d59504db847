package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoWithWeb runs the demo with 2 viewers for a few seconds, with the
// test page on a free port: every viewer prints its time to first frame,
// the summary lists them, the page answers, and the exit code is 0.
func TestDemoWithWeb(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--viewers", "2", "--duration", "6s", "--web", "--web-addr", "127.0.0.1:0"}, &out, &errOut)
	}()

	urlRe := regexp.MustCompile(`open (http://localhost:\d+/)\?view=viewer&channelName=demo`)
	var page string
	waitUntil(t, "the test page URL", func() bool {
		if m := urlRe.FindStringSubmatch(out.String()); m != nil {
			page = m[1]
			return true
		}
		return false
	})
	resp, err := http.Get(page)
	if err != nil {
		t.Fatalf("GET %s: %v", page, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Fatalf("GET %s: %d %.200s", page, resp.StatusCode, body)
	}

	var code int
	select {
	case code = <-done:
	case <-time.After(50 * time.Second):
		t.Fatalf("demo did not end after its --duration; output:\n%s", out.String())
	}
	o := out.String()
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, o, errOut.String())
	}
	for _, id := range []string{"viewer-1", "viewer-2"} {
		if !regexp.MustCompile(id + `: first frame after \d+ms`).MatchString(o) {
			t.Errorf("no time to first frame for %s:\n%s", id, o)
		}
		if !regexp.MustCompile(`(?m)^` + id + `\s+\d+ms\s+[1-9]\d*\s+[1-9]\d*\s+\d+\s+\d+\s+\S+`).MatchString(o) {
			t.Errorf("no summary row with frames and bytes for %s:\n%s", id, o)
		}
	}
	if strings.Contains(o, "viewer-3") || !strings.Contains(o, "OK: every viewer (2) received video") {
		t.Errorf("summary:\n%s", o)
	}
}

func TestDemoBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--viewers", "0"}, "--viewers 0 is not between 1 and 10"},
		{[]string{"--viewers", "11"}, "--viewers 11 is not between 1 and 10"},
		{[]string{"--duration", "soon"}, `invalid value "soon" for flag --duration`},
		{[]string{"--duration", "-1s"}, "--duration -1s must not be negative"},
		{[]string{"--nat", "upnp"}, `--nat "upnp" is not stun-turn, turn-only, stun-only or disabled`},
		{[]string{"--web", "--web-addr", "0.0.0.0:3001"}, "not a loopback address"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		code, _, errOut := runCmd(append([]string{"demo"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("demo %v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// waitUntil polls cond every 20 ms for up to 30 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestDemoStaggersPastConnectLimit: a master and 4 viewers are 5 connects,
// more than the 3 a second the (real-limit) embedded service accepts at
// once; the demo's staggered starts get every viewer in without a refusal.
func TestDemoStaggersPastConnectLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errOut syncBuffer
	code := run(ctx, []string{"demo", "--viewers", "4", "--duration", "6s", "--nat", "disabled"}, &out, &errOut)
	o := out.String()
	if code != 0 {
		t.Fatalf("demo exited %d\nstdout:\n%s\nstderr:\n%s", code, o, errOut.String())
	}
	if strings.Contains(o, "client limit exceeded") || !strings.Contains(o, "OK: every viewer (4) received video") {
		t.Fatalf("output:\n%s", o)
	}
	if !strings.Contains(o, "viewer-4: first frame after") || !strings.Contains(o, "NAT disabled") {
		t.Fatalf("output:\n%s", o)
	}
}

// TestDemoWebRunsUntilCancel: with --web and no --duration the demo runs
// until its context is cancelled (Ctrl-C), then prints the summary.
func TestDemoWebRunsUntilCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--viewers", "1", "--web", "--web-addr", "127.0.0.1:0"}, &out, &errOut)
	}()
	waitUntil(t, "viewer-1's first frame", func() bool {
		select {
		case code := <-done:
			t.Fatalf("demo exited %d before it was cancelled:\n%s%s", code, out.String(), errOut.String())
		default:
		}
		return strings.Contains(out.String(), "viewer-1: first frame after")
	})
	if !strings.Contains(out.String(), "running until Ctrl-C") {
		t.Errorf("output:\n%s", out.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(out.String(), "OK: every viewer (1) received video") {
			t.Fatalf("exit %d:\n%s%s", code, out.String(), errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop on cancel")
	}
}
