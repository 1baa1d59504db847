package localkvs_test

// Tests of issue 13, "Hostile input and faults": each defect the audit found
// is reproduced here against the real server on 127.0.0.1, and so is what
// held. docs/security.md lists them.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
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
