package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWebServesPageOnLocal: with no AWS credentials, `kvswebrtc web` starts
// the embedded service and serves the page and its signing backend.
func TestWebServesPageOnLocal(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"web", "--addr", addr}, &out, &errOut) }()
	client := &http.Client{Timeout: 20 * time.Second}

	base := "http://" + addr
	var resp *http.Response
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err = client.Get(base + "/"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("page never came up: %v\n%s", err, errOut.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "<html") {
		t.Fatalf("GET /: %d %.200s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("POST", base+"/api/connect", strings.NewReader(`{"channelName":"cli-web","role":"VIEWER","clientId":"v1","natTraversal":"stun-turn"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", base)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "signedURL") {
		t.Fatalf("POST /api/connect: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("kvswebrtc web did not stop on cancel: %s", errOut.String())
	}
	if !strings.Contains(errOut.String(), "embedded local") || !strings.Contains(out.String(), "?view=viewer") {
		t.Fatalf("output: %q / %q", out.String(), errOut.String())
	}
}

func TestWebRefusesRemoteAndConflicts(t *testing.T) {
	if code, _, errOut := runCmd("web", "--addr", "0.0.0.0:3001"); code != 2 || !strings.Contains(errOut, "--allow-remote") {
		t.Fatalf("%d %q", code, errOut)
	}
	if code, _, errOut := runCmd("web", "--local", "--endpoint-url", "http://127.0.0.1:1"); code != 2 || !strings.Contains(errOut, "exclude") {
		t.Fatalf("%d %q", code, errOut)
	}
}
