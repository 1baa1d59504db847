package main

import (
	"context"
	"encoding/json"
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
	go func() {
		done <- run(ctx, []string{"web", "--addr", addr, "--allow-endpoint-override", "--allow-region-change"}, &out, &errOut)
	}()
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
	// The page may name an endpoint; the region stays the local service's
	// one (no credentials: --local was chosen, so the flag is ignored).
	if resp, err = client.Get(base + "/api/info"); err != nil {
		t.Fatal(err)
	}
	var info struct{ RegionChangeable, EndpointOverride bool }
	err = json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if err != nil || !info.EndpointOverride || info.RegionChangeable {
		t.Fatalf("GET /api/info: %+v, %v; want an endpoint override and no region change", info, err)
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
	if !strings.Contains(errOut.String(), "--allow-region-change is ignored") {
		t.Errorf("no note that --allow-region-change is ignored: %q", errOut.String())
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
	if code, _, errOut := runCmd("web", "--local", "--allow-region-change"); code != 2 || !strings.Contains(errOut, "one region") {
		t.Fatalf("--local --allow-region-change: %d %q", code, errOut)
	}
}
