package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/web"
)

func post(t *testing.T, u string, body any, header http.Header) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(http.MethodPost, u, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: status %d, body not JSON: %q", u, res.StatusCode, raw)
	}
	return res.StatusCode, out
}

func postJSON(t *testing.T, u string, body any) (int, map[string]any) {
	t.Helper()
	return post(t, u, body, nil)
}

func TestNewValidates(t *testing.T) {
	if _, err := web.New(web.Config{}); !errors.Is(err, web.ErrNoRegion) {
		t.Errorf("New without region: %v, want ErrNoRegion", err)
	}
	if _, err := web.New(web.Config{AWS: aws.Config{Region: "us-west-2"}}); !errors.Is(err, web.ErrNoCredentials) {
		t.Errorf("New without credentials: %v, want ErrNoCredentials", err)
	}
}

func TestServesPage(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	for path, want := range map[string]string{
		"/":                `id="start-master"`,
		"/js/app.js":       "window.kvsTest",
		"/js/signaling.js": "export class SignalingClient",
		"/js/session.js":   "export class Session",
		"/js/chart.js":     "export class StatsChart",
		"/js/log.js":       "export class Logger",
		"/app.css":         "#stats-chart",
		"/api/info":        `"region":"us-west-2"`,
	} {
		res, err := testClient.Get(st.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: status %d, body lacks %q", path, res.StatusCode, want)
		}
		if strings.HasSuffix(path, ".js") && !strings.Contains(res.Header.Get("Content-Type"), "javascript") {
			t.Errorf("GET %s: Content-Type %q, want JavaScript (ES modules need it)", path, res.Header.Get("Content-Type"))
		}
		if strings.Contains(string(body), localkvs.DevSecretAccessKey) {
			t.Errorf("GET %s: the secret key is in the body", path)
		}
	}
	res, err := testClient.Get(st.URL + "/nope.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.js: status %d, want 404", res.StatusCode)
	}
	code, out := post(t, st.URL+"/", "{}", nil)
	if code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d (%v), want 405", code, out)
	}
}

// TestConnectSignsAWorkingURL checks that the URL /api/connect hands out
// opens a signaling connection on the local service, for both roles, and
// that the answer holds no key.
func TestConnectSignsAWorkingURL(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	for _, req := range []map[string]any{
		{"channelName": "api-demo", "role": "master"},
		{"channelName": "api-demo", "role": "viewer", "clientId": "v-1", "natTraversal": "stunTurn"},
	} {
		code, out := post(t, st.URL+"/api/connect", req, nil)
		if code != http.StatusOK {
			t.Fatalf("connect %v: status %d: %v", req, code, out)
		}
		signed, _ := out["signedURL"].(string)
		arn, _ := out["channelARN"].(string)
		if !strings.HasPrefix(arn, "arn:aws:kinesisvideo:us-west-2:") || !strings.Contains(arn, ":channel/api-demo/") {
			t.Errorf("channelARN = %q", arn)
		}
		u, err := url.Parse(signed)
		if err != nil || u.Scheme != "ws" || !strings.HasPrefix(u.Host, "127.0.0.1:") {
			t.Fatalf("signedURL %q: want ws://127.0.0.1:PORT/...", signed)
		}
		q := u.Query()
		if q.Get("X-Amz-ChannelARN") != arn || q.Get("X-Amz-Signature") == "" {
			t.Errorf("signedURL query lacks the channel ARN or the signature: %v", q)
		}
		if got, want := q.Get("X-Amz-ClientId"), req["clientId"]; want != nil && got != want || want == nil && got != "" {
			t.Errorf("X-Amz-ClientId = %q for %v", got, req)
		}
		raw, _ := json.Marshal(out)
		if strings.Contains(string(raw), localkvs.DevSecretAccessKey) {
			t.Error("the answer holds the secret access key")
		}
		if _, ok := out["timings"].(map[string]any); !ok {
			t.Errorf("no timings in %v", out)
		}
		if p := out["iceTransportPolicy"]; p != "all" {
			t.Errorf("iceTransportPolicy = %v, want all", p)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := websocket.Dial(ctx, signed, nil)
		cancel()
		if err != nil {
			t.Fatalf("dial the signed URL (%v): %v", req["role"], err)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	// Reconnect reasons are accepted and still sign.
	for _, reason := range []string{"goAway", "closed", "reconnectIceServer"} {
		code, out := post(t, st.URL+"/api/connect", map[string]any{"channelName": "api-demo", "role": "master", "reason": reason}, nil)
		if code != http.StatusOK || out["signedURL"] == "" {
			t.Errorf("connect with reason %s: %d %v", reason, code, out)
		}
	}
}

func TestConnectNATTraversal(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	for nat, policy := range map[string]string{"stunTurn": "all", "turnOnly": "relay", "stunOnly": "all", "disabled": "all"} {
		code, out := post(t, st.URL+"/api/connect", map[string]any{"channelName": "nat", "role": "master", "natTraversal": nat}, nil)
		if code != http.StatusOK {
			t.Fatalf("natTraversal %s: %d %v", nat, code, out)
		}
		if out["iceTransportPolicy"] != policy {
			t.Errorf("natTraversal %s: iceTransportPolicy %v, want %s", nat, out["iceTransportPolicy"], policy)
		}
		servers, _ := out["iceServers"].([]any)
		if nat == "disabled" && len(servers) != 0 {
			t.Errorf("natTraversal disabled: iceServers %v, want none", servers)
		}
		for _, s := range servers {
			for _, u := range s.(map[string]any)["urls"].([]any) {
				us := u.(string)
				if nat == "turnOnly" && !strings.HasPrefix(us, "turn") || nat == "stunOnly" && !strings.HasPrefix(us, "stun") {
					t.Errorf("natTraversal %s: server URL %s", nat, us)
				}
				if strings.Contains(us, "amazonaws.com") {
					t.Errorf("natTraversal %s: an AWS STUN host for the local service: %s", nat, us)
				}
			}
		}
	}
}

func TestConnectRejectsBadInput(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	for _, tc := range []struct {
		body any
		want string
	}{
		{`{`, "not the expected JSON"},
		{map[string]any{"role": "master"}, "channelName is required"},
		{map[string]any{"channelName": "bad name", "role": "master"}, "channelName"},
		{map[string]any{"channelName": "c", "role": "boss"}, `role "boss"`},
		{map[string]any{"channelName": "c", "role": "viewer"}, "clientId is required"},
		{map[string]any{"channelName": "c", "role": "viewer", "clientId": "AWS_x"}, "AWS_"},
		{map[string]any{"channelName": "c", "role": "viewer", "clientId": "a/b"}, "clientId"},
		{map[string]any{"channelName": "c", "role": "master", "clientId": "m"}, "clientId must be empty"},
		{map[string]any{"channelName": "c", "role": "master", "natTraversal": "magic"}, "natTraversal"},
		{map[string]any{"channelName": "c", "role": "master", "reason": "why"}, "reason"},
	} {
		code, out := post(t, st.URL+"/api/connect", tc.body, nil)
		msg, _ := out["error"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
			t.Errorf("connect %v: %d %q, want 400 naming %q", tc.body, code, msg, tc.want)
		}
	}
	// Another site's page may not use the backend.
	code, out := post(t, st.URL+"/api/connect", map[string]any{"channelName": "c", "role": "master"},
		http.Header{"Origin": {"http://evil.example"}})
	if code != http.StatusForbidden {
		t.Errorf("cross-origin connect: %d %v, want 403", code, out)
	}
	code, _ = post(t, st.URL+"/api/connect", map[string]any{"channelName": "c", "role": "master"},
		http.Header{"Origin": {st.URL}})
	if code != http.StatusOK {
		t.Errorf("same-origin connect: %d, want 200", code)
	}
	code, _ = post(t, st.URL+"/api/nothing", "{}", nil)
	if code != http.StatusNotFound {
		t.Errorf("POST /api/nothing: %d, want 404", code)
	}
}

func TestCreateChannel(t *testing.T) {
	local, err := web.StartLocal(web.LocalConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	cfg := local.Config(nil)
	cfg.CreateIfMissing = false // as against real KVS: channels are made by the button
	srv, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptestServer(t, srv)

	code, out := post(t, hs+"/api/connect", map[string]any{"channelName": "made-by-button", "role": "master"}, nil)
	if code != http.StatusNotFound {
		t.Fatalf("connect to a missing channel: %d %v, want 404", code, out)
	}
	code, out = post(t, hs+"/api/channels", map[string]any{"channelName": "made-by-button"}, nil)
	if code != http.StatusOK || out["created"] != true {
		t.Fatalf("create: %d %v, want created", code, out)
	}
	arn := out["channelARN"]
	code, out = post(t, hs+"/api/channels", map[string]any{"channelName": "made-by-button"}, nil)
	if code != http.StatusOK || out["created"] != false || out["channelARN"] != arn {
		t.Errorf("create again: %d %v, want the same ARN, created false", code, out)
	}
	code, out = post(t, hs+"/api/connect", map[string]any{"channelName": "made-by-button", "role": "master"}, nil)
	if code != http.StatusOK || out["channelARN"] != arn {
		t.Errorf("connect after create: %d %v", code, out)
	}
	code, out = post(t, hs+"/api/channels", map[string]any{"channelName": ""}, nil)
	if code != http.StatusBadRequest {
		t.Errorf("create without a name: %d %v, want 400", code, out)
	}
}

func TestAllowedHosts(t *testing.T) {
	local, err := web.StartLocal(web.LocalConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	cfg := local.Config(nil)
	cfg.AllowedHosts = []string{"localhost", "127.0.0.1", "::1"}
	srv, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptestServer(t, srv)
	for host, want := range map[string]int{"": http.StatusOK, "localhost:3001": http.StatusOK, "rebound.example:3001": http.StatusForbidden} {
		req, _ := http.NewRequest(http.MethodGet, hs+"/api/info", nil)
		if host != "" {
			req.Host = host
		}
		res, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("Host %q: status %d, want %d", host, res.StatusCode, want)
		}
	}
}

// TestServeAndShutdown: Serve answers on its listener until Shutdown, then
// returns http.ErrServerClosed and the listener is closed; a Serve after
// Shutdown returns at once; ListenAndServe names an address it cannot use.
func TestServeAndShutdown(t *testing.T) {
	local, err := web.StartLocal(web.LocalConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	srv, err := web.New(local.Config(nil))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	res, err := testClient.Get("http://" + l.Addr().String() + "/api/info")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("GET /api/info: %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve returned %v after Shutdown, want http.ErrServerClosed", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	if _, err := testClient.Get("http://" + l.Addr().String() + "/"); err == nil {
		t.Error("the server still answers after Shutdown")
	}

	l2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l2); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve after Shutdown: %v, want http.ErrServerClosed", err)
	}
	busy, err := web.New(local.Config(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := busy.ListenAndServe(local.KVS.Addr().String()); err == nil || !strings.Contains(err.Error(), local.KVS.Addr().String()) {
		t.Errorf("ListenAndServe on a port in use: %v, want an error naming the address", err)
	}
}

// TestWrongCredentials: a backend with a key the service does not know
// reports access denied, and says nothing of the key.
func TestWrongCredentials(t *testing.T) {
	local, err := web.StartLocal(web.LocalConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	cfg := local.Config(nil)
	cfg.AWS.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIAUNKNOWNKEY000000", SecretAccessKey: "not-the-secret-xyz"}, nil
	})
	srv, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptestServer(t, srv)
	code, out := post(t, hs+"/api/connect", map[string]any{"channelName": "c", "role": "master"}, nil)
	if code != http.StatusForbidden {
		t.Errorf("connect with an unknown key: %d %v, want 403", code, out)
	}
	if strings.Contains(out["error"].(string), "not-the-secret-xyz") {
		t.Error("the error holds the secret")
	}
}
