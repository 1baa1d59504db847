package localkvs_test

// Tests of issue 13, "Hostile input and faults": each defect the audit found
// is reproduced here against the real server on 127.0.0.1, and so is what
// held. docs/security.md lists them.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// signedRequest builds a control-plane request signed with the development
// key, as aws-sdk-go-v2 signs it.
func signedRequest(t *testing.T, srv *localkvs.Server, path string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	err = v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: localkvs.DevAccessKeyID, SecretAccessKey: localkvs.DevSecretAccessKey},
		req, hexSHA256(body), "kinesisvideo", srv.Region(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// replay sends the headers of req with another body.
func replay(t *testing.T, srv *localkvs.Server, req *http.Request, body []byte, extra http.Header) (int, string) {
	t.Helper()
	r2, err := http.NewRequest(req.Method, req.URL.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r2.Header = req.Header.Clone()
	for k, vs := range extra {
		r2.Header[k] = vs
	}
	resp, err := httpClient(srv).Do(r2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
}

// TestDefect1ForgedContentHash: a captured DeleteSignalingChannel of channel
// A, replayed with B's ARN in the body and an added X-Amz-Content-Sha256
// naming A's body, must not delete B; nor may UNSIGNED-PAYLOAD carry a body.
func TestDefect1ForgedContentHash(t *testing.T) {
	srv := start(t, localkvs.Config{})
	arnA := mustCreate(t, srv, "a")
	arnB := mustCreate(t, srv, "b")
	bodyA, _ := json.Marshal(map[string]string{"ChannelARN": arnA})
	bodyB, _ := json.Marshal(map[string]string{"ChannelARN": arnB})
	captured := signedRequest(t, srv, "/deleteSignalingChannel", bodyA)

	status, code := replay(t, srv, captured, bodyB, http.Header{"X-Amz-Content-Sha256": {hexSHA256(bodyA)}})
	if status != http.StatusForbidden || code != "AccessDeniedException" {
		t.Errorf("replay with a forged content hash: %d %s, want 403 AccessDeniedException", status, code)
	}
	status, code = replay(t, srv, captured, bodyB, http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}})
	if status != http.StatusForbidden {
		t.Errorf("replay with UNSIGNED-PAYLOAD: %d %s, want 403", status, code)
	}
	status, _ = replay(t, srv, captured, bodyB, nil)
	if status != http.StatusForbidden {
		t.Errorf("replay with a tampered body: %d, want 403", status)
	}
	if _, err := devClient(srv).DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arnB)}); err != nil {
		t.Fatalf("channel B is gone after the replays: %v", err)
	}
	// The genuine request still works.
	if status, _ := replay(t, srv, captured, bodyA, nil); status != http.StatusOK {
		t.Fatalf("genuine delete of A: %d", status)
	}
}

// preflight sends a CORS preflight for POST from origin.
func preflight(t *testing.T, srv *localkvs.Server, origin string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, srv.URL()+"/describeSignalingChannel", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization,content-type,x-amz-date,x-evil")
	resp, err := httpClient(srv).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestDefect2Origins: a page on a foreign origin gets no CORS grant and
// cannot open the signaling WebSocket (it would replace the real master);
// loopback origins (the test page on localhost:3001) and the origins named
// in Config.AllowedOrigins can; a client with no Origin (not a browser) can.
func TestDefect2Origins(t *testing.T) {
	srv := start(t, localkvs.Config{AllowedOrigins: []string{"https://app.example.com"}, Limits: fastLimits()})
	arn := mustCreate(t, srv, "origins")

	for _, o := range []string{"http://evil.example", "null", "http://localhost.evil.example", "http://127.0.0.1.nip.io:3001", "https://app.example.com:444", "file://"} {
		resp := preflight(t, srv, o)
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" || resp.StatusCode != http.StatusForbidden {
			t.Errorf("preflight from %s: %d, Access-Control-Allow-Origin %q; want 403 and no grant", o, resp.StatusCode, got)
		}
	}
	for _, o := range []string{"http://localhost:3001", "http://127.0.0.1:3001", "https://localhost", "http://[::1]:8080", "https://app.example.com", "HTTPS://APP.EXAMPLE.COM"} {
		resp := preflight(t, srv, o)
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != o || resp.StatusCode != http.StatusNoContent {
			t.Errorf("preflight from %s: %d, Access-Control-Allow-Origin %q; want 204 and the origin", o, resp.StatusCode, got)
		}
		if resp.Header.Get("Vary") != "Origin" {
			t.Errorf("preflight from %s: no Vary: Origin", o)
		}
	}

	// A signed request from a foreign page (a browser adds its Origin) is
	// refused although its signature is good.
	body, _ := json.Marshal(map[string]string{"ChannelARN": arn})
	req := signedRequest(t, srv, "/describeSignalingChannel", body)
	if status, _ := replay(t, srv, req, body, http.Header{"Origin": {"http://evil.example"}}); status != http.StatusForbidden {
		t.Errorf("signed call with Origin http://evil.example: %d, want 403", status)
	}
	if status, _ := replay(t, srv, req, body, http.Header{"Origin": {"http://localhost:3001"}}); status != http.StatusOK {
		t.Errorf("signed call with Origin http://localhost:3001: %d, want 200", status)
	}

	// The WebSocket: a foreign Origin is refused before the upgrade, and
	// the master connected is not replaced.
	master := dial(t, srv, arn, "")
	url := presign(t, srv, arn, "", time.Now(), localkvs.DevSecretAccessKey)
	wsDial := func(origin string) (int, error) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: httpClient(srv), HTTPHeader: h})
		if err == nil {
			c.CloseNow()
			return http.StatusSwitchingProtocols, nil
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, nil
	}
	if st, err := wsDial("http://evil.example"); st != http.StatusForbidden {
		t.Errorf("WebSocket from http://evil.example: %d %v, want 403", st, err)
	}
	roundTrip(t, master) // the real master is still connected
	for _, o := range []string{"http://localhost:3001", "https://app.example.com"} {
		if st, err := wsDial(o); st != http.StatusSwitchingProtocols {
			t.Errorf("WebSocket from %s: %d %v, want 101", o, st, err)
		}
	}
}

// rawConn opens a TCP connection to the server's HTTP port.
func rawConn(t *testing.T, srv *localkvs.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readResponse reads one HTTP response from c within waitTimeout.
func readResponse(t *testing.T, c net.Conn) *http.Response {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(waitTimeout))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// closedByServer reports whether the server closes c within d.
func closedByServer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1024)
	for {
		_, err := c.Read(buf)
		if err != nil {
			return !isTimeoutErr(err)
		}
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestDefect4UnauthenticatedBody: a request whose Authorization header
// nobody could have signed (unknown key, or none) is refused before its
// body is read, and the connection is closed: a client announcing a 1 MiB
// body and sending none holds no memory and no connection.
func TestDefect4UnauthenticatedBody(t *testing.T) {
	srv := start(t, localkvs.Config{})
	for _, auth := range []string{"", "AWS4-HMAC-SHA256 Credential=AKIDNOBODY/20260101/us-west-2/kinesisvideo/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + strings.Repeat("a", 64)} {
		c := rawConn(t, srv)
		req := "POST /describeSignalingChannel HTTP/1.1\r\nHost: " + srv.Addr().String() + "\r\nContent-Type: application/json\r\n" +
			"X-Amz-Date: " + time.Now().UTC().Format("20060102T150405Z") + "\r\nContent-Length: 1048575\r\n"
		if auth != "" {
			req += "Authorization: " + auth + "\r\n"
		}
		io.WriteString(c, req+"\r\n{")
		resp := readResponse(t, c)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("auth %q: status %d, want 403 before the body", auth, resp.StatusCode)
		}
		if !closedByServer(c, waitTimeout) {
			t.Errorf("auth %q: the connection stays open after the refusal", auth)
		}
	}
	// A body over the maximum is refused by its Content-Length at once.
	c := rawConn(t, srv)
	io.WriteString(c, "POST /describeSignalingChannel HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n")
	if resp := readResponse(t, c); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("50 MB Content-Length: %d, want 413", resp.StatusCode)
	}
}

// TestDefect4SlowBody: a signed-looking request whose body trickles in (a
// byte at a time) is cut when the body timeout passes.
func TestDefect4SlowBody(t *testing.T) {
	srv, err := localkvs.StartTuned(localkvs.Config{}, "127.0.0.1:0", func(s *localkvs.Server) {
		localkvs.SetHTTPTimeouts(s, 10*time.Second, 500*time.Millisecond, 30*time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	body := []byte(`{"ChannelName":"slow"}`)
	req := signedRequest(t, srv, "/describeSignalingChannel", body)
	c := rawConn(t, srv)
	var hdr strings.Builder
	hdr.WriteString("POST /describeSignalingChannel HTTP/1.1\r\nHost: " + req.Host + "\r\n")
	for k, vs := range req.Header {
		hdr.WriteString(k + ": " + vs[0] + "\r\n")
	}
	hdr.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	io.WriteString(c, hdr.String())
	stop := make(chan struct{})
	defer close(stop)
	go func() { // a byte every 200 ms: the 22-byte body would take 4.4 s
		for _, b := range body {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	resp := readResponse(t, c)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("slow body: status %d, want 408", resp.StatusCode)
	}
	if !closedByServer(c, waitTimeout) {
		t.Error("slow body: the connection stays open")
	}
}

// TestDefect4IdleKeepAlive: a keep-alive connection left idle after a
// request is closed after the idle timeout; one whose request was refused
// is closed at once.
func TestDefect4IdleKeepAlive(t *testing.T) {
	srv, err := localkvs.StartTuned(localkvs.Config{}, "127.0.0.1:0", func(s *localkvs.Server) {
		localkvs.SetHTTPTimeouts(s, 10*time.Second, 10*time.Second, 500*time.Millisecond)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	mustCreate(t, srv, "idle")
	body := []byte(`{"ChannelName":"idle"}`)
	req := signedRequest(t, srv, "/describeSignalingChannel", body)
	c := rawConn(t, srv)
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	if resp := readResponse(t, c); resp.StatusCode != http.StatusOK {
		t.Fatalf("describe: %d", resp.StatusCode)
	}
	if !closedByServer(c, waitTimeout) {
		t.Error("an idle keep-alive connection is not closed")
	}

	// A refused request (no signature) closes its connection.
	c = rawConn(t, srv)
	io.WriteString(c, "POST /describeSignalingChannel HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	resp := readResponse(t, c)
	if resp.StatusCode != http.StatusForbidden || !resp.Close {
		t.Errorf("unsigned: %d, Connection: close %v; want 403 and close", resp.StatusCode, resp.Close)
	}
	if !closedByServer(c, waitTimeout) {
		t.Error("the connection of a refused request stays open")
	}
}

// TestDefect4ConnectionCap: connections beyond Limits.MaxConnections wait
// instead of using up file descriptors; once the idle ones are cut (header
// timeout), a legitimate call gets through.
func TestDefect4ConnectionCap(t *testing.T) {
	const max = 20
	srv, err := localkvs.StartTuned(localkvs.Config{Limits: localkvs.Limits{MaxConnections: max}}, "127.0.0.1:0", func(s *localkvs.Server) {
		localkvs.SetHTTPTimeouts(s, time.Second, time.Second, time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for i := 0; i < 3*max; i++ { // idle connections that never send a request
		c, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
	deadline := time.Now().Add(waitTimeout)
	for localkvs.OpenConnections(srv) < max && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := localkvs.OpenConnections(srv); n != max {
		t.Fatalf("%d connections open, want the cap of %d", n, max)
	}
	// The flood is cut at the header timeout, a batch at a time; a
	// legitimate call waits its turn and succeeds.
	if _, err := srv.CreateChannel(context.Background(), "warmup"); err != nil {
		t.Fatal(err)
	}
	_, err = devClient(srv).DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("warmup")})
	if err != nil {
		t.Fatalf("a legitimate call behind the flood: %v", err)
	}
	if n := localkvs.OpenConnections(srv); n > max {
		t.Fatalf("%d connections open, more than the cap of %d", n, max)
	}
}
