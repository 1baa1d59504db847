package localkvs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// waitTimeout is how long a test waits for an event; generous for -race on a loaded machine.
const waitTimeout = 15 * time.Second

// fastLimits lifts the connect rate so tests can open many connections.
func fastLimits() localkvs.Limits {
	return localkvs.Limits{ConnectsPerSecond: -1, SDPPerSecond: -1, ICEPerSecond: -1, ICEConfigPerSecond: -1}
}

func start(t *testing.T, cfg localkvs.Config) *localkvs.Server {
	t.Helper()
	srv, err := localkvs.Start(cfg, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

func httpClient(srv *localkvs.Server) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if pool := srv.CertPool(); pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: waitTimeout}
}

// kvsClient is a kinesisvideo client of srv signing with akid and secret.
func kvsClient(srv *localkvs.Server, akid, secret string) *kinesisvideo.Client {
	cfg := srv.AWSConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(akid, secret, "")
	return newKVS(cfg)
}

// devClient is a kinesisvideo client of srv as srv.AWSConfig sets it up.
func devClient(srv *localkvs.Server) *kinesisvideo.Client { return newKVS(srv.AWSConfig()) }

// newKVS makes a client of cfg that does not retry, and whose requests
// time out (keeping the HTTP client AWSConfig made, which trusts the CA).
func newKVS(cfg aws.Config) *kinesisvideo.Client {
	if c, ok := cfg.HTTPClient.(*http.Client); ok {
		c.Timeout = waitTimeout
	} else {
		cfg.HTTPClient = &http.Client{Timeout: waitTimeout}
	}
	return kinesisvideo.NewFromConfig(cfg, func(o *kinesisvideo.Options) { o.RetryMaxAttempts = 1 })
}

func mustCreate(t *testing.T, srv *localkvs.Server, name string) string {
	t.Helper()
	arn, err := srv.CreateChannel(context.Background(), name)
	if err != nil {
		t.Fatalf("CreateChannel(%q): %v", name, err)
	}
	return arn
}

// presign returns the signed WebSocket URL for arn; clientID "" means master.
func presign(t *testing.T, srv *localkvs.Server, arn, clientID string, at time.Time, secret string) string {
	t.Helper()
	p, err := sigv4.New(srv.Region(), sigv4.StaticCredentials(localkvs.DevAccessKeyID, secret, ""), sigv4.AllowInsecureEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	q := map[string]string{sigv4.ParamChannelARN: arn}
	if clientID != "" {
		q[sigv4.ParamClientID] = clientID
	}
	u, err := p.PresignURL(context.Background(), srv.WSSEndpoint(), q, at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// dialErr dials and returns the HTTP status of a refused upgrade.
func dialErr(srv *localkvs.Server, url string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: httpClient(srv)})
}

func dial(t *testing.T, srv *localkvs.Server, arn, clientID string) *websocket.Conn {
	t.Helper()
	c, _, err := dialErr(srv, presign(t, srv, arn, clientID, time.Now(), localkvs.DevSecretAccessKey))
	if err != nil {
		t.Fatalf("dial %q: %v", clientID, err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// refused dials expecting the upgrade to fail with status and code.
func refused(t *testing.T, srv *localkvs.Server, url string, status int, code string) {
	t.Helper()
	c, resp, err := dialErr(srv, url)
	if err == nil {
		c.CloseNow()
		t.Fatalf("dial succeeded, want HTTP %d %s", status, code)
	}
	if resp == nil {
		t.Fatalf("dial failed without a response: %v", err)
	}
	if resp.StatusCode != status || resp.Header.Get("X-Amzn-ErrorType") != code {
		t.Fatalf("refused with %d %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), status, code)
	}
}

func send(t *testing.T, c *websocket.Conn, m any) {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	sendRaw(t, c, b)
}

func sendRaw(t *testing.T, c *websocket.Conn, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// recvRaw reads one frame, failing the test after waitTimeout.
func recvRaw(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func recv(t *testing.T, c *websocket.Conn) wire.ServiceMessage {
	t.Helper()
	var m wire.ServiceMessage
	if err := json.Unmarshal(recvRaw(t, c), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// waitClosed reads until the connection closes and returns the close status.
func waitClosed(t *testing.T, c *websocket.Conn) (websocket.StatusCode, []wire.ServiceMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var got []wire.ServiceMessage
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("connection not closed within %s", waitTimeout)
			}
			return websocket.CloseStatus(err), got
		}
		var m wire.ServiceMessage
		json.Unmarshal(b, &m)
		got = append(got, m)
	}
}

func payload(t *testing.T, v any) string {
	t.Helper()
	p, err := wire.EncodePayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signedPost sends a data-plane request signed with aws-sdk-go-v2's v4 signer.
func signedPost(t *testing.T, srv *localkvs.Server, path string, body any, secret string) (int, string, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, srv.URL()+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	h := sha256.Sum256(b)
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: localkvs.DevAccessKeyID, SecretAccessKey: secret},
		req, hex.EncodeToString(h[:]), "kinesisvideo", srv.Region(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient(srv).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), rb
}

func isCode(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

var _ = strings.TrimSpace

// startClock starts a server on a fake clock that tests advance by hand.
func startClock(t *testing.T, cfg localkvs.Config) (*localkvs.Server, *localkvs.FakeClock) {
	t.Helper()
	clk := localkvs.NewFakeClock(time.Now())
	srv, err := localkvs.StartWithClock(cfg, "127.0.0.1:0", clk)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, clk
}

// roundTrip sends c a frame the server answers (an unknown action with a
// correlationId) and reads the answer: the server has handled everything c
// sent before, and c's read loop, timers included, runs. It counts as a
// message for the idle timeout.
func roundTrip(t *testing.T, c *websocket.Conn) {
	t.Helper()
	send(t, c, wire.ClientMessage{Action: "SYNC", MessagePayload: "x", CorrelationID: "sync"})
	expectStatus(t, c, "sync", "InvalidArgumentException")
}

// closed is how a connection ended: its close status and the frames it got before.
type closed struct {
	code   websocket.StatusCode
	frames []wire.ServiceMessage
}

// closedAsync reads c in a goroutine until it closes (or waitTimeout
// passes: code -1) and reports how. It never touches t.
func closedAsync(c *websocket.Conn) <-chan closed {
	out := make(chan closed, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		var r closed
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				r.code = websocket.CloseStatus(err)
				if ctx.Err() != nil {
					r.code = -1
				}
				out <- r
				return
			}
			var m wire.ServiceMessage
			json.Unmarshal(b, &m)
			r.frames = append(r.frames, m)
		}
	}()
	return out
}

// awaitClosed waits for what closedAsync reports.
func awaitClosed(t *testing.T, ch <-chan closed) closed {
	t.Helper()
	select {
	case r := <-ch:
		if r.code == -1 {
			t.Fatalf("connection not closed within %s", waitTimeout)
		}
		return r
	case <-time.After(2 * waitTimeout):
		t.Fatalf("connection not closed within %s", 2*waitTimeout)
	}
	return closed{}
}
