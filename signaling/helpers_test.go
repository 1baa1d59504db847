package signaling_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// waitTimeout bounds every wait for an event: generous, for -race on a
// loaded machine. Nothing asserts on speed.
const waitTimeout = 20 * time.Second

// fastLimits keeps the service's rate limits out of the way of tests that
// connect and send a lot; the limits themselves are localkvs's business.
func fastLimits() localkvs.Limits {
	return localkvs.Limits{ConnectsPerSecond: 1e6, SDPPerSecond: 1e6, ICEPerSecond: 1e6}
}

type env struct {
	srv *localkvs.Server
	arn string
	cfg localkvs.Config
}

// startEnv starts a local service on 127.0.0.1 with one channel.
func startEnv(t testing.TB, cfg localkvs.Config) *env {
	t.Helper()
	if cfg.Limits == (localkvs.Limits{}) {
		cfg.Limits = fastLimits()
	}
	srv, err := localkvs.Start(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("localkvs.Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	arn, err := srv.CreateChannel(ctx, "test-channel")
	if err != nil {
		t.Fatalf("CreateChannel: %v", err)
	}
	return &env{srv: srv, arn: arn, cfg: cfg}
}

// restart stops the service at once (no GO_AWAY) and returns a function that
// starts it again on the same address (same DataDir, so same channel and CA).
func (e *env) crash(t testing.TB) (restart func()) {
	t.Helper()
	addr := e.srv.Addr().String()
	if err := e.srv.Close(); err != nil {
		t.Logf("closing the service: %v", err)
	}
	return func() {
		t.Helper()
		deadline := time.Now().Add(waitTimeout)
		for {
			srv, err := localkvs.Start(e.cfg, addr)
			if err == nil {
				e.srv = srv
				t.Cleanup(func() { _ = srv.Close() })
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("restarting the service on %s: %v", addr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (e *env) config(role signaling.Role, clientID string) signaling.Config {
	cfg := signaling.Config{
		Role:                  role,
		ClientID:              clientID,
		ChannelARN:            e.arn,
		ChannelEndpoint:       e.srv.WSSEndpoint(),
		AllowInsecureEndpoint: strings.HasPrefix(e.srv.WSSEndpoint(), "ws://"),
		Region:                e.srv.Region(),
		Credentials:           sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
		ReconnectBaseDelay:    20 * time.Millisecond,
		ReconnectMaxDelay:     200 * time.Millisecond,
	}
	if pool := e.srv.CertPool(); pool != nil {
		cfg.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	return cfg
}

// client builds a client (not opened) and closes it at the end of the test.
func (e *env) client(t testing.TB, role signaling.Role, clientID string, mods ...func(*signaling.Config)) *signaling.Client {
	t.Helper()
	cfg := e.config(role, clientID)
	for _, m := range mods {
		m(&cfg)
	}
	c, err := signaling.New(cfg)
	if err != nil {
		t.Fatalf("signaling.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func open(t testing.TB, c *signaling.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
}

// event is one delivered event, recorded by a recorder.
type event struct {
	kind    string // open offer answer ice status goaway reconnectice reconnecting close error
	sd      webrtc.SessionDescription
	cand    webrtc.ICECandidateInit
	sender  string
	status  signaling.StatusResponse
	err     error
	attempt int
	delay   time.Duration
}

func (e event) String() string {
	switch e.kind {
	case "offer", "answer":
		return fmt.Sprintf("%s(%q from %q)", e.kind, e.sd.SDP, e.sender)
	case "ice":
		return fmt.Sprintf("ice(%q from %q)", e.cand.Candidate, e.sender)
	case "error":
		return fmt.Sprintf("error(%v)", e.err)
	case "reconnecting":
		return fmt.Sprintf("reconnecting(#%d after %v: %v)", e.attempt, e.delay, e.err)
	}
	return e.kind
}

type recorder struct {
	ch chan event
}

// record sets every handler of c to record into a buffered channel.
func record(c *signaling.Client) *recorder {
	r := &recorder{ch: make(chan event, 10000)}
	c.OnOpen(func() { r.ch <- event{kind: "open"} })
	c.OnClose(func() { r.ch <- event{kind: "close"} })
	c.OnError(func(err error) { r.ch <- event{kind: "error", err: err} })
	c.OnGoAway(func() { r.ch <- event{kind: "goaway"} })
	c.OnReconnectICEServer(func() { r.ch <- event{kind: "reconnectice"} })
	c.OnReconnecting(func(a int, d time.Duration, cause error) {
		r.ch <- event{kind: "reconnecting", attempt: a, delay: d, err: cause}
	})
	c.OnSDPOffer(func(sd webrtc.SessionDescription, from string) { r.ch <- event{kind: "offer", sd: sd, sender: from} })
	c.OnSDPAnswer(func(sd webrtc.SessionDescription, from string) { r.ch <- event{kind: "answer", sd: sd, sender: from} })
	c.OnICECandidate(func(ci webrtc.ICECandidateInit, from string) { r.ch <- event{kind: "ice", cand: ci, sender: from} })
	c.OnStatusResponse(func(s signaling.StatusResponse) { r.ch <- event{kind: "status", status: s} })
	return r
}

// next returns the next event, whatever it is.
func (r *recorder) next(t testing.TB) event {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(waitTimeout):
		t.Fatalf("no event within %v", waitTimeout)
		return event{}
	}
}

// expect returns the next event and fails unless it is of the given kind.
func (r *recorder) expect(t testing.TB, kind string) event {
	t.Helper()
	e := r.next(t)
	if e.kind != kind {
		t.Fatalf("next event is %v, want %s", e, kind)
	}
	return e
}

// waitFor skips events until one of the given kind.
func (r *recorder) waitFor(t testing.TB, kind string) event {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case e := <-r.ch:
			if e.kind == kind {
				return e
			}
			t.Logf("skipping %v while waiting for %s", e, kind)
		case <-deadline:
			t.Fatalf("no %s event within %v", kind, waitTimeout)
		}
	}
}

// quietPeriod is how long a negative check waits for an event that should
// not come: several times the longest reconnect delay of the tests' clients
// (200 ms), so a late reconnect or a late frame has time to show.
const quietPeriod = time.Second

// none fails if an event is recorded within quietPeriod.
func (r *recorder) none(t testing.TB) {
	t.Helper()
	select {
	case e := <-r.ch:
		t.Fatalf("unexpected event %v", e)
	case <-time.After(quietPeriod):
	}
}

// recv returns the next value of ch, failing the test after waitTimeout.
func recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("no %s within %v", what, waitTimeout)
		var zero T
		return zero
	}
}

func offer(sdp string) webrtc.SessionDescription {
	return webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}
}

func answer(sdp string) webrtc.SessionDescription {
	return webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}
}

func cand(i int) webrtc.ICECandidateInit {
	mid, idx, ufrag := "0", uint16(0), "uf"+fmt.Sprint(i)
	return webrtc.ICECandidateInit{
		Candidate:        fmt.Sprintf("candidate:%d 1 udp 2130706431 192.0.2.1 %d typ host", i, 50000+i),
		SDPMid:           &mid,
		SDPMLineIndex:    &idx,
		UsernameFragment: &ufrag,
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// logBuffer is a concurrency-safe buffer for a slog text handler.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// assertNoSecrets fails if s holds anything of a presigned URL or the secret.
func assertNoSecrets(t testing.TB, what, s string) {
	t.Helper()
	for _, bad := range []string{"X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", localkvs.DevSecretAccessKey} {
		if strings.Contains(s, bad) {
			t.Errorf("%s contains %q:\n%s", what, bad, s)
		}
	}
}
