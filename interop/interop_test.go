// Package interop_test runs clients nobody here wrote against the local
// service with TLS: the official KVS WebRTC JS SDK (npm package
// amazon-kinesis-video-streams-webrtc, pinned in package-lock.json) in Node
// and in Chromium, talking to our Go SignalingClient and Go peers in both
// directions, and the AWS SDK for JavaScript v3 on the control plane.
package interop_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

const waitFor = 20 * time.Second

var npmOnce sync.Once
var npmErr error

// requireNode makes sure node and the pinned npm packages are there,
// running `npm ci` on first use. Outside CI a machine without Node skips.
func requireNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed; the interop test needs Node.js 20+ in CI")
		}
		t.Skip("node is not installed")
	}
	npmOnce.Do(func() {
		installed := true
		for _, pkg := range []string{"amazon-kinesis-video-streams-webrtc", "ws", "@aws-sdk/client-kinesis-video", "@aws-sdk/client-kinesis-video-signaling", "@aws-sdk/client-kinesis-video-webrtc-storage", "@aws-sdk/client-kinesis-video-media", "@aws-sdk/client-kinesis-video-archived-media"} {
			if _, err := os.Stat("node_modules/" + pkg + "/package.json"); err != nil {
				installed = false
			}
		}
		if installed {
			return
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
		out, err := cmd.CombinedOutput()
		if err != nil {
			npmErr = fmt.Errorf("npm ci: %v\n%s", err, out)
		}
	})
	if npmErr != nil {
		t.Fatal(npmErr)
	}
}

// jsEvent is one line the Node side prints.
type jsEvent struct {
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
	Sender  string          `json:"sender"`
	Message string          `json:"message"`
	Version string          `json:"version"`
}

// jsClient is the official SignalingClient running in a Node child process.
type jsClient struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  *json.Encoder
	events chan jsEvent
}

func startJS(t *testing.T, env map[string]string) *jsClient {
	t.Helper()
	cmd := exec.Command("node", "jsclient.js")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &jsClient{t: t, cmd: cmd, stdin: json.NewEncoder(stdin), events: make(chan jsEvent, 256)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev jsEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Logf("node printed a non-event line: %s", sc.Text())
				continue
			}
			c.events <- ev
		}
		close(c.events)
	}()
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("node stderr:\n%s", stderr.String())
		}
	})
	return c
}

// next waits for the next event of the given kind, failing on an error event.
func (c *jsClient) next(kind string) jsEvent {
	c.t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				c.t.Fatalf("node exited while waiting for %q", kind)
			}
			if ev.Event == "error" {
				c.t.Fatalf("JS SDK error while waiting for %q: %s", kind, ev.Message)
			}
			if ev.Event == kind {
				return ev
			}
			if ev.Event != "sent" && ev.Event != "ready" {
				c.t.Fatalf("waiting for %q, JS SDK emitted %q", kind, ev.Event)
			}
		case <-timeout:
			c.t.Fatalf("timed out waiting for JS event %q", kind)
		}
	}
}

func (c *jsClient) send(cmd string, payload any, recipient string) {
	c.t.Helper()
	if err := c.stdin.Encode(map[string]any{"cmd": cmd, "payload": payload, "recipient": recipient}); err != nil {
		c.t.Fatal(err)
	}
	c.next("sent")
}

// env is the local service, with TLS, and a channel on it.
type env struct {
	srv    *localkvs.Server
	arn    string
	caFile string
}

func setup(t *testing.T) env {
	t.Helper()
	requireNode(t)
	srv, err := localkvs.Start(localkvs.Config{TLS: true, TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	arn, err := srv.CreateChannel(context.Background(), "interop")
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return env{srv: srv, arn: arn, caFile: ca}
}

func (e env) jsEnv(role, clientID string) map[string]string {
	return map[string]string{
		"KVS_ROLE":              role,
		"KVS_CHANNEL_ARN":       e.arn,
		"KVS_ENDPOINT":          e.srv.WSSEndpoint(),
		"KVS_REGION":            e.srv.Region(),
		"KVS_CLIENT_ID":         clientID,
		"AWS_ACCESS_KEY_ID":     localkvs.DevAccessKeyID,
		"AWS_SECRET_ACCESS_KEY": localkvs.DevSecretAccessKey,
		"AWS_SESSION_TOKEN":     "interop-session-token",
		"NODE_EXTRA_CA_CERTS":   e.caFile,
	}
}

// goClient opens our SignalingClient against the TLS service and records its
// events on channels.
type goEvent struct {
	kind   string
	sdp    webrtc.SessionDescription
	cand   webrtc.ICECandidateInit
	sender string
}

func (e env) goClient(t *testing.T, role signaling.Role, clientID string) (*signaling.Client, chan goEvent) {
	t.Helper()
	c, err := signaling.New(signaling.Config{
		Role:            role,
		ChannelARN:      e.arn,
		ChannelEndpoint: e.srv.WSSEndpoint(),
		Region:          e.srv.Region(),
		ClientID:        clientID,
		Credentials:     sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, "interop-session-token"),
		HTTPClient:      &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(e.srv)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan goEvent, 64)
	c.OnSDPOffer(func(d webrtc.SessionDescription, s string) { events <- goEvent{kind: "offer", sdp: d, sender: s} })
	c.OnSDPAnswer(func(d webrtc.SessionDescription, s string) { events <- goEvent{kind: "answer", sdp: d, sender: s} })
	c.OnICECandidate(func(ci webrtc.ICECandidateInit, s string) { events <- goEvent{kind: "candidate", cand: ci, sender: s} })
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := c.Open(ctx); err != nil {
		t.Fatalf("Go %s open: %v", role, err)
	}
	t.Cleanup(func() { c.Close() })
	return c, events
}

func nextGo(t *testing.T, events chan goEvent, kind string) goEvent {
	t.Helper()
	select {
	case ev := <-events:
		if ev.kind != kind {
			t.Fatalf("Go client got %q, want %q", ev.kind, kind)
		}
		return ev
	case <-time.After(waitFor):
		t.Fatalf("timed out waiting for Go event %q", kind)
	}
	return goEvent{}
}

// realSDP returns an offer and an answer made by two pion peers, and a few
// of their ICE candidates, so the payloads are the real thing.
func realSDP(t *testing.T) (offer, answer webrtc.SessionDescription, cands []webrtc.ICECandidateInit) {
	t.Helper()
	a, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := a.CreateDataChannel("kvs", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err = a.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetRemoteDescription(offer); err != nil {
		t.Fatal(err)
	}
	answer, err = b.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	mline := uint16(0)
	mid := "0"
	ufrag := "abcd"
	cands = []webrtc.ICECandidateInit{
		{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", SDPMid: &mid, SDPMLineIndex: &mline, UsernameFragment: &ufrag},
		{Candidate: "candidate:2 1 udp 1694498815 203.0.113.7 50001 typ srflx raddr 127.0.0.1 rport 50000", SDPMid: &mid, SDPMLineIndex: &mline},
	}
	return offer, answer, cands
}

// jsSDP decodes the RTCSessionDescription the JS SDK emitted.
func jsSDP(t *testing.T, raw json.RawMessage) webrtc.SessionDescription {
	t.Helper()
	var d webrtc.SessionDescription
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("JS SDP payload %s: %v", raw, err)
	}
	return d
}

func jsCandidate(t *testing.T, raw json.RawMessage) webrtc.ICECandidateInit {
	t.Helper()
	var c webrtc.ICECandidateInit
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("JS candidate payload %s: %v", raw, err)
	}
	return c
}

// TestJSMasterGoViewer: the official SDK is the master, our client the viewer.
// The viewer sends a candidate before its offer, so the JS SDK's own early-ICE
// buffering is exercised against the service's routing.
func TestJSMasterGoViewer(t *testing.T) {
	e := setup(t)
	offer, answer, cands := realSDP(t)

	js := startJS(t, e.jsEnv("MASTER", ""))
	if v := js.next("ready").Version; v != "2.9.0" {
		t.Logf("JS SDK version %q", v)
	}
	js.next("open")

	viewer, events := e.goClient(t, signaling.RoleViewer, "go-viewer-1")
	if err := viewer.SendICECandidate(cands[0]); err != nil {
		t.Fatal(err)
	}
	if err := viewer.SendSDPOffer(offer); err != nil {
		t.Fatal(err)
	}
	if err := viewer.SendICECandidate(cands[1]); err != nil {
		t.Fatal(err)
	}

	got := js.next("sdpOffer")
	if got.Sender != "go-viewer-1" {
		t.Errorf("JS master saw sender %q, want go-viewer-1", got.Sender)
	}
	if d := jsSDP(t, got.Payload); d.Type != webrtc.SDPTypeOffer || d.SDP != offer.SDP {
		t.Errorf("JS master got a different offer: type %v, %d bytes (sent %d)", d.Type, len(d.SDP), len(offer.SDP))
	}
	for i, want := range cands {
		ev := js.next("iceCandidate")
		c := jsCandidate(t, ev.Payload)
		if c.Candidate != want.Candidate || ev.Sender != "go-viewer-1" {
			t.Errorf("JS candidate %d: %q from %q, want %q from go-viewer-1", i, c.Candidate, ev.Sender, want.Candidate)
		}
	}

	// The master answers and trickles its candidates to the viewer.
	js.send("sendSdpAnswer", map[string]string{"type": "answer", "sdp": answer.SDP}, "go-viewer-1")
	js.send("sendIceCandidate", map[string]any{"candidate": cands[0].Candidate, "sdpMid": "0", "sdpMLineIndex": 0}, "go-viewer-1")

	a := nextGo(t, events, "answer")
	if a.sdp.Type != webrtc.SDPTypeAnswer || a.sdp.SDP != answer.SDP || a.sender != "" {
		t.Errorf("Go viewer got answer type %v sender %q, %d bytes (want %d)", a.sdp.Type, a.sender, len(a.sdp.SDP), len(answer.SDP))
	}
	c := nextGo(t, events, "candidate")
	if c.cand.Candidate != cands[0].Candidate || c.cand.SDPMid == nil || *c.cand.SDPMid != "0" || c.sender != "" {
		t.Errorf("Go viewer got candidate %+v from %q", c.cand, c.sender)
	}
}

// TestGoMasterJSViewer: our client is the master, the official SDK the viewer.
func TestGoMasterJSViewer(t *testing.T) {
	e := setup(t)
	offer, answer, cands := realSDP(t)

	master, events := e.goClient(t, signaling.RoleMaster, "")

	js := startJS(t, e.jsEnv("VIEWER", "js-viewer-1"))
	js.next("ready")
	js.next("open")
	js.send("sendSdpOffer", map[string]string{"type": "offer", "sdp": offer.SDP}, "")
	js.send("sendIceCandidate", map[string]any{"candidate": cands[1].Candidate, "sdpMid": "0", "sdpMLineIndex": 0}, "")

	o := nextGo(t, events, "offer")
	if o.sender != "js-viewer-1" || o.sdp.Type != webrtc.SDPTypeOffer || o.sdp.SDP != offer.SDP {
		t.Errorf("Go master got offer type %v from %q, %d bytes (sent %d)", o.sdp.Type, o.sender, len(o.sdp.SDP), len(offer.SDP))
	}
	c := nextGo(t, events, "candidate")
	if c.sender != "js-viewer-1" || c.cand.Candidate != cands[1].Candidate {
		t.Errorf("Go master got candidate %q from %q", c.cand.Candidate, c.sender)
	}

	// Candidate before answer: the JS viewer must buffer it until the answer.
	if err := master.SendICECandidate(cands[0], signaling.WithRecipient("js-viewer-1")); err != nil {
		t.Fatal(err)
	}
	if err := master.SendSDPAnswer(answer, signaling.WithRecipient("js-viewer-1")); err != nil {
		t.Fatal(err)
	}
	got := js.next("sdpAnswer")
	if got.Sender != "" {
		t.Errorf("JS viewer saw sender %q for the master's answer, want none", got.Sender)
	}
	if d := jsSDP(t, got.Payload); d.Type != webrtc.SDPTypeAnswer || d.SDP != answer.SDP {
		t.Errorf("JS viewer got a different answer: %v, %d bytes", d.Type, len(d.SDP))
	}
	ev := js.next("iceCandidate")
	jc := jsCandidate(t, ev.Payload)
	if jc.Candidate != cands[0].Candidate || jc.UsernameFragment == nil || *jc.UsernameFragment != "abcd" {
		t.Errorf("JS viewer got candidate %+v", jc)
	}
}

// TestJSMasterJSViewerThroughService: two official clients talk through our
// service alone, as they would through KVS.
func TestJSMasterJSViewerThroughService(t *testing.T) {
	e := setup(t)
	offer, answer, _ := realSDP(t)
	master := startJS(t, e.jsEnv("MASTER", ""))
	master.next("ready")
	master.next("open")
	viewer := startJS(t, e.jsEnv("VIEWER", "js-viewer-2"))
	viewer.next("ready")
	viewer.next("open")

	viewer.send("sendSdpOffer", map[string]string{"type": "offer", "sdp": offer.SDP}, "")
	o := master.next("sdpOffer")
	if o.Sender != "js-viewer-2" || jsSDP(t, o.Payload).SDP != offer.SDP {
		t.Fatalf("master got offer from %q", o.Sender)
	}
	master.send("sendSdpAnswer", map[string]string{"type": "answer", "sdp": answer.SDP}, "js-viewer-2")
	a := viewer.next("sdpAnswer")
	if jsSDP(t, a.Payload).SDP != answer.SDP {
		t.Fatal("viewer got a different answer")
	}
}

// TestJSBadCredentialsRefused: a JS client signing with an unknown key is
// refused at the handshake and reports the error.
func TestJSBadCredentialsRefused(t *testing.T) {
	e := setup(t)
	envv := e.jsEnv("VIEWER", "js-viewer-3")
	envv["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
	js := startJS(t, envv)
	js.next("ready")
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-js.events:
			if !ok {
				t.Fatal("node exited before reporting the refusal")
			}
			switch ev.Event {
			case "open":
				t.Fatal("service accepted a connection signed with the wrong secret")
			case "error", "close":
				return
			}
		case <-timeout:
			t.Fatal("no error or close from the JS client")
		}
	}
}

func tlsConfig(srv *localkvs.Server) *tls.Config {
	return &tls.Config{RootCAs: srv.CertPool(), MinVersion: tls.VersionTLS12}
}
