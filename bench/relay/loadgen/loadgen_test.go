package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/bench/relay/internal/barerelay"
	"github.com/kvswebrtc/kvswebrtc/bench/relay/internal/jsonscan"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// smoke is a tiny load: 2 channels x (1 master + 2 viewers) for a second.
func smoke(server string, bare bool) config {
	return config{
		Server: server, Bare: bare, Channels: 2, Viewers: 2, Rate: 40,
		Warmup: 200 * time.Millisecond, Duration: time.Second, Drain: 15 * time.Second,
		Payload: 512, SDPEvery: 3, DialConcurrency: 4, Senders: 2,
	}
}

func checkSmoke(t *testing.T, res *result) {
	t.Helper()
	if res.Held != 6 || res.HeldEnd != 6 || res.Failed != 0 {
		t.Errorf("connections: held %d at start, %d at end, %d failed; want 6, 6, 0", res.Held, res.HeldEnd, res.Failed)
	}
	if res.Sent == 0 || res.Received != res.Sent {
		t.Errorf("messages: %d sent, %d received; want all of a non-zero number", res.Sent, res.Received)
	}
	if res.Errors != 0 {
		t.Errorf("%d errors, first: %s", res.Errors, res.ErrorSample)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("latency p50 %s, p99 %s, max %s are not ordered", res.P50, res.P99, res.Max)
	}
}

func TestSmokeLocalKVS(t *testing.T) {
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := run(ctx, smoke(srv.URL(), false))
	if err != nil {
		t.Fatal(err)
	}
	checkSmoke(t, res)
}

func TestSmokeBare(t *testing.T) {
	srv := httptest.NewServer(barerelay.New())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := run(ctx, smoke("ws"+strings.TrimPrefix(srv.URL, "http"), true))
	if err != nil {
		t.Fatal(err)
	}
	checkSmoke(t, res)
	var out bytes.Buffer
	cfg := smoke("", true)
	report(&out, &cfg, res)
	if !strings.Contains(out.String(), "connections held:  6 of 6") {
		t.Errorf("report does not show the connections held:\n%s", out.String())
	}
}

func TestFlagsRejected(t *testing.T) {
	for _, args := range [][]string{
		{"-channels", "0"},
		{"-payload", "20000"},
		{"-rate", "-1"},
		{"stray"},
	} {
		var stderr bytes.Buffer
		if code := mainArgs(args, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, stderr.String())
		}
	}
}

func TestFrameRoundTrip(t *testing.T) {
	body := bodyB64(actionOffer, 700)
	frame := appendClientFrame(nil, actionOffer, body, "", 123456789*time.Nanosecond)
	// The service rewrites the client frame; build what it sends.
	payload := jsonscan.Field(frame, []byte(`"messagePayload":"`))
	svc := []byte(`{"messageType":"SDP_OFFER","messagePayload":"` + string(payload) + `","senderClientId":"viewer-1"}`)
	f, err := parseServiceFrame(svc)
	if err != nil {
		t.Fatal(err)
	}
	if f.sent != 123456789*time.Nanosecond || string(f.sender) != "viewer-1" || string(f.typ) != actionOffer {
		t.Errorf("parsed %+v", f)
	}
	raw, err := base64.StdEncoding.DecodeString(string(payload))
	if err != nil || !json.Valid(raw) {
		t.Errorf("payload is not base64 of JSON (%v): %q", err, raw)
	}
	if n := len(payload); n < 650 || n > 750 {
		t.Errorf("payload of %d bytes, want about 700", n)
	}
}
