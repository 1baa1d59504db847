package localkvs_test

// What held in the audit of issue 13 ("Hostile input and faults"), kept
// holding by these tests and the ones they name (docs/security.md).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/coder/websocket"
	"github.com/pion/turn/v5"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// TestHeldSignedRequests: unsigned, wrong-secret, unknown-key,
// tampered-body, skewed, host-changed and path-replayed requests are
// refused with 403, and a deleted channel is 404.
func TestHeldSignedRequests(t *testing.T) {
	srv := start(t, localkvs.Config{})
	arn := mustCreate(t, srv, "held")
	body, _ := json.Marshal(map[string]string{"ChannelARN": arn})
	sign := func(path string, b []byte, akid, secret string, at time.Time) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
			req, hexSHA256(b), "kinesisvideo", srv.Region(), at); err != nil {
			t.Fatal(err)
		}
		return req
	}
	do := func(req *http.Request, b []byte) int {
		t.Helper()
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.ContentLength = int64(len(b))
		resp, err := httpClient(srv).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	now := time.Now()
	dev, devSecret := localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey
	unsigned, _ := http.NewRequest(http.MethodPost, srv.URL()+"/describeSignalingChannel", nil)
	hostChanged := sign("/describeSignalingChannel", body, dev, devSecret, now)
	hostChanged.Host = "kinesisvideo.us-west-2.amazonaws.com"
	replayed := sign("/describeSignalingChannel", body, dev, devSecret, now)
	replayed.URL.Path = "/deleteSignalingChannel"
	cases := []struct {
		name string
		req  *http.Request
		body []byte
	}{
		{"unsigned", unsigned, body},
		{"wrong secret", sign("/describeSignalingChannel", body, dev, "not-the-secret", now), body},
		{"unknown key", sign("/describeSignalingChannel", body, "AKIDUNKNOWN", devSecret, now), body},
		{"tampered body", sign("/describeSignalingChannel", body, dev, devSecret, now), []byte(`{"ChannelARN":"` + arn + `x"}`)},
		{"skewed 6 min behind", sign("/describeSignalingChannel", body, dev, devSecret, now.Add(-6*time.Minute)), body},
		{"skewed 6 min ahead", sign("/describeSignalingChannel", body, dev, devSecret, now.Add(6*time.Minute)), body},
		{"host changed", hostChanged, body},
		{"path replayed", replayed, body},
	}
	for _, c := range cases {
		if got := do(c.req, c.body); got != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", c.name, got)
		}
	}
	if got := do(sign("/describeSignalingChannel", body, dev, devSecret, now), body); got != http.StatusOK {
		t.Fatalf("the genuine request: %d", got)
	}
	// A deleted channel: 404 on the API and at the WebSocket.
	if got := do(sign("/deleteSignalingChannel", body, dev, devSecret, now), body); got != http.StatusOK {
		t.Fatalf("delete: %d", got)
	}
	if got := do(sign("/describeSignalingChannel", body, dev, devSecret, now), body); got != http.StatusNotFound {
		t.Errorf("describe a deleted channel: %d, want 404", got)
	}
	refused(t, srv, presign(t, srv, arn, "v", now, devSecret), http.StatusNotFound, "ResourceNotFoundException")
	// Expired and tampered presigned URLs: TestConnectRefusals.
}

// TestHeldNoSecretsInResponsesOrLogs: no secret key, session token,
// signature or TURN password appears in a response or in the debug log,
// for accepted and refused requests alike.
func TestHeldNoSecretsInResponsesOrLogs(t *testing.T) {
	var logs logBuffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logs.mu.Lock()
		defer logs.mu.Unlock()
		return logs.buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := start(t, localkvs.Config{Logger: log, Limits: fastLimits()})
	arn := mustCreate(t, srv, "secrets")
	const token = "session-token-SECRET-1234567890"
	var responses bytes.Buffer
	secrets := []string{localkvs.DevSecretAccessKey, token, "wrong-secret-SECRET"}

	// API calls, good and refused, with a session token.
	for _, secret := range []string{localkvs.DevSecretAccessKey, "wrong-secret-SECRET"} {
		b, _ := json.Marshal(map[string]string{"ChannelARN": arn, "ClientId": "v1"})
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/v1/get-ice-server-config", bytes.NewReader(b))
		v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: localkvs.DevAccessKeyID, SecretAccessKey: secret, SessionToken: token},
			req, hexSHA256(b), "kinesisvideo", srv.Region(), time.Now())
		secrets = append(secrets, signatureOf(req.Header.Get("Authorization")))
		resp, err := httpClient(srv).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(&responses, resp.Body)
		resp.Body.Close()
		for k, vs := range resp.Header {
			responses.WriteString(k + ": " + strings.Join(vs, ",") + "\n")
		}
	}
	// The TURN password handed out must not be logged (it is in the
	// response, for its client).
	turnPass := iceConfig(t, srv, arn, "")[0].Password
	// WebSockets, good and refused.
	good := presign(t, srv, arn, "v1", time.Now(), localkvs.DevSecretAccessKey)
	bad := presign(t, srv, arn, "v2", time.Now(), "wrong-secret-SECRET")
	for _, u := range []string{good, bad} {
		q := u[strings.Index(u, "X-Amz-Signature=")+len("X-Amz-Signature="):]
		secrets = append(secrets, q[:64])
		c, resp, err := dialErr(srv, u)
		if err == nil {
			c.CloseNow()
		} else if resp != nil {
			responses.WriteString(resp.Status)
		}
	}
	time.Sleep(100 * time.Millisecond) // the disconnect lines
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(responses.String(), s) {
			t.Errorf("a response carries a secret (%.6s...)", s)
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("the debug log carries a secret (%.6s...)", s)
		}
	}
	if strings.Contains(logs.String(), turnPass) {
		t.Error("the debug log carries a TURN password")
	}
	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Fatal("no debug log captured")
	}
}

func signatureOf(auth string) string {
	_, sig, _ := strings.Cut(auth, "Signature=")
	return sig
}

// TestHeldSlowHeaderCut: a connection that sends its request line and
// headers a byte at a time is cut 10 s after it opened (the real timeout,
// not a shortened one), and so is one that sends nothing.
func TestHeldSlowHeaderCut(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 10 s")
	}
	t.Parallel()
	srv := start(t, localkvs.Config{})
	idle := rawConn(t, srv)
	slow := rawConn(t, srv)
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for _, b := range []byte("POST /describeSignalingChannel HTTP/1.1\r\nHost: x\r\nX-Padding: " + strings.Repeat("a", 100)) {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	for _, c := range []net.Conn{idle, slow} {
		if !closedByServer(c, 20*time.Second) {
			t.Fatal("a slow-header connection is still open after 20 s")
		}
	}
	if d := time.Since(start); d < 9*time.Second {
		t.Fatalf("cut after %s, before the 10 s header timeout", d)
	}
}

// TestHeldLargeBodyAndFrame: a body over 1 MiB gets 413 (by its
// Content-Length, or once 1 MiB was read of a chunked one), and a 20 MB
// WebSocket frame closes the connection with 1009.
func TestHeldLargeBodyAndFrame(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "large")
	big := bytes.Repeat([]byte("x"), 50<<20)
	req := signedRequest(t, srv, "/describeSignalingChannel", big)
	req.ContentLength = -1 // chunked: the size is known only by reading
	req.Body = io.NopCloser(bytes.NewReader(big))
	resp, err := httpClient(srv).Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("a chunked 50 MB body: %d, want 413", resp.StatusCode)
		}
	} else if !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("a chunked 50 MB body: %v", err) // the server may close before the client is done sending
	}

	c := dial(t, srv, arn, "v1")
	done := closedAsync(c)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c.Write(ctx, websocket.MessageText, bytes.Repeat([]byte("a"), 20<<20))
	if r := awaitClosed(t, done); r.code != websocket.StatusMessageTooBig {
		t.Fatalf("20 MB frame: closed with %v, want 1009", r.code)
	}
}

// TestHeldTURNNoCredentials: an Allocate without credentials is refused
// (wrong, forged and expired ones: TestTURNRefusesBadCredentials).
func TestHeldTURNNoCredentials(t *testing.T) {
	srv := start(t, localkvs.Config{})
	arn := mustCreate(t, srv, "turn-none")
	server := turnHostPort(t, iceConfig(t, srv, arn, "")[0], "udp")
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: server, TURNServerAddr: server, Conn: conn, LoggerFactory: quietPion})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	if relay, err := c.Allocate(); err == nil {
		relay.Close()
		t.Fatal("an Allocate without credentials succeeded")
	}
}

var _ = wire.MaxPayload
