package signaling_test

// Fault injection: a tiny WebSocket server in the test sends what the real
// service never would (garbage frames, GO_AWAY on demand), stops answering
// pings, or holds a handshake. Everything else runs against localkvs.

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/signaling"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

const fakeARN = "arn:aws:kinesisvideo:us-west-2:000000000000:channel/fake/1700000000000"

type fakeConn struct {
	ws     *websocket.Conn
	query  url.Values
	frames chan string // frames from the client, read in the background
	ended  chan error  // the reader's terminal error
}

// read returns the next text frame the client sent.
func (f *fakeConn) read(t testing.TB) string {
	t.Helper()
	select {
	case s := <-f.frames:
		return s
	case err := <-f.ended:
		t.Fatalf("fake server connection ended: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("no frame from the client")
	}
	return ""
}

// end waits for the connection to end and returns why.
func (f *fakeConn) end(t testing.TB) error {
	t.Helper()
	select {
	case err := <-f.ended:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("connection did not end")
		return nil
	}
}

func (f *fakeConn) write(t testing.TB, typ websocket.MessageType, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := f.ws.Write(ctx, typ, []byte(s)); err != nil {
		t.Fatalf("fake server write: %v", err)
	}
}

type fakeServer struct {
	srv    *httptest.Server
	conns  chan *fakeConn
	gate   chan struct{} // when non-nil, each handshake waits for a token
	silent bool          // never read: pings and close frames go unanswered
	done   chan struct{}
}

func newFake(t testing.TB, gated bool) *fakeServer {
	return newFakeServer(t, gated, false)
}

func newFakeServer(t testing.TB, gated, silent bool) *fakeServer {
	f := &fakeServer{conns: make(chan *fakeConn, 16), done: make(chan struct{}), silent: silent}
	if gated {
		f.gate = make(chan struct{}, 16)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.gate != nil {
			select {
			case <-f.gate:
			case <-f.done:
				return
			case <-r.Context().Done():
				return
			}
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		fc := &fakeConn{ws: ws, query: r.URL.Query(), frames: make(chan string, 100), ended: make(chan error, 1)}
		if !f.silent {
			go func() {
				for {
					_, b, err := ws.Read(context.Background())
					if err != nil {
						fc.ended <- err
						return
					}
					fc.frames <- string(b)
				}
			}()
		}
		f.conns <- fc
		<-f.done
		ws.CloseNow()
	}))
	t.Cleanup(func() {
		close(f.done)
		f.srv.Close()
	})
	return f
}

func (f *fakeServer) accept(t testing.TB) *fakeConn {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(waitTimeout):
		t.Fatal("no connection to the fake server")
		return nil
	}
}

func (f *fakeServer) client(t testing.TB, role signaling.Role, clientID string, mods ...func(*signaling.Config)) *signaling.Client {
	t.Helper()
	cfg := signaling.Config{
		Role: role, ClientID: clientID, ChannelARN: fakeARN,
		ChannelEndpoint:       "ws://" + strings.TrimPrefix(f.srv.URL, "http://"),
		AllowInsecureEndpoint: true,
		Region:                "us-west-2",
		Credentials:           sigv4.StaticCredentials("AKIDEXAMPLE", "fake-secret", "fake-token"),
		ReconnectBaseDelay:    10 * time.Millisecond,
		ReconnectMaxDelay:     100 * time.Millisecond,
	}
	for _, m := range mods {
		m(&cfg)
	}
	c, err := signaling.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestWireFormat: the frames are byte for byte what the JS SDK sends, and
// the presigned query names the channel (and the viewer).
func TestWireFormat(t *testing.T) {
	f := newFake(t, false)
	v := f.client(t, signaling.RoleViewer, "viewer-1")
	open(t, v)
	fc := f.accept(t)
	if fc.query.Get(sigv4.ParamChannelARN) != fakeARN || fc.query.Get(sigv4.ParamClientID) != "viewer-1" {
		t.Fatalf("query = %v", fc.query)
	}
	if fc.query.Get(sigv4.ParamSignature) == "" || fc.query.Get(sigv4.ParamSecurityToken) != "fake-token" {
		t.Fatalf("query is not presigned: %v", fc.query)
	}

	// SDP: {"type":"offer","sdp":...}, with < > & left as they are (JSON.stringify).
	sdp := "v=0\r\na=x:<1>&2\r\n"
	must(t, v.SendSDPOffer(offer(sdp)))
	want := `{"action":"SDP_OFFER","messagePayload":"` + b64(`{"type":"offer","sdp":"v=0\r\na=x:<1>&2\r\n"}`) + `"}`
	if got := fc.read(t); got != want {
		t.Fatalf("offer frame:\n got %s\nwant %s", got, want)
	}
	must(t, v.SendICECandidate(cand(1), signaling.WithCorrelationID("corr-1")))
	want = `{"action":"ICE_CANDIDATE","messagePayload":"` +
		b64(`{"candidate":"candidate:1 1 udp 2130706431 192.0.2.1 50001 typ host","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"uf1"}`) +
		`","correlationId":"corr-1"}`
	if got := fc.read(t); got != want {
		t.Fatalf("candidate frame:\n got %s\nwant %s", got, want)
	}
	must(t, v.SendICECandidate(webrtc.ICECandidateInit{Candidate: "candidate:2"}))
	want = `{"action":"ICE_CANDIDATE","messagePayload":"` +
		b64(`{"candidate":"candidate:2","sdpMid":null,"sdpMLineIndex":null,"usernameFragment":null}`) + `"}`
	if got := fc.read(t); got != want {
		t.Fatalf("bare candidate frame:\n got %s\nwant %s", got, want)
	}

	m := f.client(t, signaling.RoleMaster, "")
	open(t, m)
	mc := f.accept(t)
	if _, ok := mc.query[sigv4.ParamClientID]; ok {
		t.Fatalf("a master's query has a client id: %v", mc.query)
	}
	must(t, m.SendSDPAnswer(answer("v=0\r\n"), signaling.WithRecipient("viewer-1"), signaling.WithCorrelationID("c.2")))
	want = `{"action":"SDP_ANSWER","messagePayload":"` + b64(`{"type":"answer","sdp":"v=0\r\n"}`) +
		`","recipientClientId":"viewer-1","correlationId":"c.2"}`
	if got := mc.read(t); got != want {
		t.Fatalf("answer frame:\n got %s\nwant %s", got, want)
	}
}

// TestUndecodableFramesAreDropped: garbage is logged and dropped, the
// connection stays up and later frames are delivered.
func TestUndecodableFramesAreDropped(t *testing.T) {
	f := newFake(t, false)
	var logs logBuffer
	m := f.client(t, signaling.RoleMaster, "", func(c *signaling.Config) { c.Logger = logs.logger() })
	rm := record(m)
	open(t, m)
	rm.expect(t, "open")
	fc := f.accept(t)

	for _, frame := range []string{
		`not json`,
		`{"messageType":"SDP_OFFER","messagePayload":"%%%not base64","senderClientId":"v1"}`,
		`{"messageType":"SDP_OFFER","messagePayload":"` + b64("not json") + `","senderClientId":"v1"}`,
		`{"messageType":"ICE_CANDIDATE","senderClientId":"v1"}`,
		`{"messageType":"SOMETHING_NEW","messagePayload":"` + b64(`{}`) + `"}`,
		`{"messageType":"STATUS_RESPONSE"}`,
	} {
		fc.write(t, websocket.MessageText, frame)
	}
	fc.write(t, websocket.MessageBinary, "\x00\x01")
	fc.write(t, websocket.MessageText, `{"messageType":"RECONNECT_ICE_SERVER"}`)
	fc.write(t, websocket.MessageText, `{"messageType":"SDP_OFFER","messagePayload":"`+b64(`{"type":"offer","sdp":"v=0"}`)+`","senderClientId":"v1"}`)
	fc.write(t, websocket.MessageText, `{"messageType":"STATUS_RESPONSE","statusResponse":{"correlationId":"x","success":false,"errorType":"InvalidArgumentException","statusCode":"400","description":"bad"}}`)

	rm.expect(t, "reconnectice")
	if got := rm.expect(t, "offer"); got.sender != "v1" || got.sd.SDP != "v=0" {
		t.Fatalf("got %v", got)
	}
	want := signaling.StatusResponse{CorrelationID: "x", ErrorType: "InvalidArgumentException", StatusCode: "400", Description: "bad"}
	if got := rm.expect(t, "status"); got.status != want {
		t.Fatalf("status = %+v", got.status)
	}
	// Still connected: a message goes through the same connection.
	must(t, m.SendSDPAnswer(answer("v=0"), signaling.WithRecipient("v1")))
	if got := fc.read(t); !strings.Contains(got, `"SDP_ANSWER"`) {
		t.Fatalf("fake got %s", got)
	}
	if m.State() != signaling.StateOpen {
		t.Fatalf("State = %v", m.State())
	}
	rm.none(t)
	if n := strings.Count(logs.String(), "level=WARN msg=\"signaling: dropping"); n != 7 {
		t.Errorf("%d drop warnings, want 7:\n%s", n, logs.String())
	}
	assertNoSecrets(t, "log", logs.String())
	if strings.Contains(logs.String(), "fake-token") || strings.Contains(logs.String(), "fake-secret") {
		t.Errorf("log holds a credential:\n%s", logs.String())
	}
}

// TestPingFailureReconnects: a service that stops answering pings counts as
// a dropped connection.
func TestPingFailureReconnects(t *testing.T) {
	f := newFakeServer(t, false, true)
	m := f.client(t, signaling.RoleMaster, "", func(c *signaling.Config) { c.PingInterval = 50 * time.Millisecond })
	rm := record(m)
	open(t, m)
	rm.expect(t, "open")
	f.accept(t) // never read: pings get no pong
	got := rm.expect(t, "reconnecting")
	if !errors.Is(got.err, signaling.ErrPingFailed) {
		t.Fatalf("got %v, want a reconnect caused by ErrPingFailed", got)
	}
	f.accept(t)
	rm.expect(t, "open")
}

// TestGoAwayMakeBeforeBreak: after GO_AWAY the old connection keeps serving
// until the new one is open, then the client closes it.
func TestGoAwayMakeBeforeBreak(t *testing.T) {
	f := newFake(t, true)
	m := f.client(t, signaling.RoleMaster, "")
	rm := record(m)
	f.gate <- struct{}{}
	open(t, m)
	rm.expect(t, "open")
	old := f.accept(t)

	old.write(t, websocket.MessageText, `{"messageType":"GO_AWAY"}`)
	rm.expect(t, "goaway")
	if got := rm.expect(t, "reconnecting"); !errors.Is(got.err, signaling.ErrGoAway) || got.attempt != 1 {
		t.Fatalf("got %v", got)
	}
	// The new handshake is held: the old connection still works both ways.
	if st := m.State(); st != signaling.StateOpen {
		t.Fatalf("State during the handover = %v, want open", st)
	}
	must(t, m.SendSDPAnswer(answer("v=0 via old"), signaling.WithRecipient("v1")))
	if got := old.read(t); !strings.Contains(got, "SDP_ANSWER") {
		t.Fatalf("old connection got %s", got)
	}
	old.write(t, websocket.MessageText, `{"messageType":"SDP_OFFER","messagePayload":"`+b64(`{"type":"offer","sdp":"late"}`)+`","senderClientId":"v1"}`)
	if got := rm.expect(t, "offer"); got.sd.SDP != "late" {
		t.Fatalf("got %v", got)
	}

	f.gate <- struct{}{}
	nc := f.accept(t)
	rm.expect(t, "open")
	// The client closes the old connection with a normal closure.
	if err := old.end(t); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("old connection ended with %v, want a normal closure", err)
	}
	must(t, m.SendSDPAnswer(answer("v=0 via new"), signaling.WithRecipient("v1")))
	if got := nc.read(t); !strings.Contains(got, "SDP_ANSWER") {
		t.Fatalf("new connection got %s", got)
	}
}

// TestCloseDuringOpen: Close while the handshake is pending stops Open.
func TestCloseDuringOpen(t *testing.T) {
	f := newFake(t, true)
	m := f.client(t, signaling.RoleMaster, "")
	rm := record(m)
	errc := make(chan error, 1)
	go func() { errc <- m.Open(context.Background()) }()
	deadline := time.Now().Add(waitTimeout)
	for m.State() != signaling.StateOpening {
		if time.Now().After(deadline) {
			t.Fatal("never opening")
		}
		time.Sleep(time.Millisecond)
	}
	if err := m.Open(context.Background()); !errors.Is(err, signaling.ErrAlreadyOpen) {
		t.Fatalf("Open while opening: %v, want ErrAlreadyOpen", err)
	}
	must(t, m.Close())
	if err := recv(t, "return of the interrupted Open", errc); !errors.Is(err, signaling.ErrClosed) {
		t.Fatalf("Open interrupted by Close: %v, want ErrClosed", err)
	}
	rm.expect(t, "close")
	rm.none(t)
}

// TestCloseFromHandler: Close may be called from a handler; events are
// delivered one at a time, in order, and a handler set late still gets the
// events queued after it was set.
func TestCloseFromHandler(t *testing.T) {
	f := newFake(t, false)
	m := f.client(t, signaling.RoleMaster, "")
	open(t, m)
	fc := f.accept(t)

	var mu sync.Mutex
	var seen []string
	inHandler := false
	closed := make(chan struct{})
	note := func(s string) {
		mu.Lock()
		if inHandler {
			t.Errorf("two handlers ran at once")
		}
		inHandler = true
		seen = append(seen, s)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		inHandler = false
		mu.Unlock()
	}
	m.OnICECandidate(func(c webrtc.ICECandidateInit, _ string) { note(c.Candidate) })
	m.OnSDPOffer(func(sd webrtc.SessionDescription, from string) {
		note(sd.SDP)
		if sd.SDP == "last" {
			if err := m.Close(); err != nil { // on the event goroutine: no t.Fatal here
				t.Errorf("Close from a handler: %v", err)
			}
		}
	})
	m.OnClose(func() { note("close"); close(closed) })
	for _, s := range []string{"first", "last"} {
		fc.write(t, websocket.MessageText, `{"messageType":"SDP_OFFER","messagePayload":"`+b64(`{"type":"offer","sdp":"`+s+`"}`)+`","senderClientId":"v1"}`)
		if s == "first" {
			for i := 0; i < 5; i++ {
				fc.write(t, websocket.MessageText, `{"messageType":"ICE_CANDIDATE","messagePayload":"`+b64(`{"candidate":"c`+string(rune('0'+i))+`"}`)+`","senderClientId":"v1"}`)
			}
		}
	}
	recv(t, "close event", closed)
	mu.Lock()
	defer mu.Unlock()
	want := []string{"first", "c0", "c1", "c2", "c3", "c4", "last", "close"}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", seen, want)
	}
}

// TestReplacedIsTheCloseCode: a connection is taken as replaced by its close
// code, wire.CloseReplaced, whatever the reason says: with that code the
// client reports ErrReplaced and never dials again; with another code a
// reason saying "replaced" is a drop like any other, and it reconnects.
func TestReplacedIsTheCloseCode(t *testing.T) {
	t.Run("replaced code, other reason", func(t *testing.T) {
		f := newFake(t, false)
		m := f.client(t, signaling.RoleMaster, "")
		rm := record(m)
		open(t, m)
		rm.expect(t, "open")
		fc := f.accept(t)
		_ = fc.ws.Close(wire.CloseReplaced, "taken over")
		got := rm.expect(t, "error")
		if !errors.Is(got.err, signaling.ErrReplaced) || websocket.CloseStatus(got.err) != wire.CloseReplaced {
			t.Fatalf("got %v, want ErrReplaced with close status %d", got, wire.CloseReplaced)
		}
		rm.expect(t, "close")
		rm.none(t)
		select {
		case <-f.conns:
			t.Fatal("the replaced client dialled again")
		case <-time.After(quietPeriod):
		}
		if st := m.State(); st != signaling.StateClosed {
			t.Fatalf("State = %v", st)
		}
	})
	t.Run("other code, replaced reason", func(t *testing.T) {
		f := newFake(t, false)
		m := f.client(t, signaling.RoleMaster, "")
		rm := record(m)
		open(t, m)
		rm.expect(t, "open")
		fc := f.accept(t)
		_ = fc.ws.Close(websocket.StatusPolicyViolation, "replaced by a newer connection")
		if got := rm.expect(t, "reconnecting"); errors.Is(got.err, signaling.ErrReplaced) {
			t.Fatalf("got %v: a reason alone must not count as replaced", got)
		}
		f.accept(t)
		rm.expect(t, "open")
	})
}
