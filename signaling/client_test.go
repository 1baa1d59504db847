package signaling_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

func TestOpenCloseAndDoubleOpen(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	c := e.client(t, signaling.RoleMaster, "")
	r := record(c)

	open(t, c)
	r.expect(t, "open")
	if c.State() != signaling.StateOpen {
		t.Fatalf("State = %v, want open", c.State())
	}
	if err := c.Open(context.Background()); !errors.Is(err, signaling.ErrAlreadyOpen) {
		t.Fatalf("second Open: %v, want ErrAlreadyOpen", err)
	}
	must(t, c.Close())
	r.expect(t, "close")
	if c.State() != signaling.StateClosed {
		t.Fatalf("State after Close = %v", c.State())
	}
	must(t, c.Close()) // no-op
	if err := c.SendSDPAnswer(answer("v=0"), signaling.WithRecipient("v")); !errors.Is(err, signaling.ErrNotOpen) {
		t.Fatalf("send after Close: %v, want ErrNotOpen", err)
	}

	// A closed client opens again.
	open(t, c)
	r.expect(t, "open")
	must(t, c.Close())
	r.expect(t, "close")
	r.none(t) // one close per Close, no reconnect
}

// TestOpenRefusals: the first Open does not retry; it reports why.
func TestOpenRefusals(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	t.Run("wrong secret", func(t *testing.T) {
		var logs logBuffer
		c := e.client(t, signaling.RoleMaster, "", func(cfg *signaling.Config) {
			cfg.Credentials = sigv4.StaticCredentials(localkvs.DevAccessKeyID, "not-the-secret", "a-session-token")
			cfg.Logger = logs.logger()
		})
		err := c.Open(context.Background())
		if !errors.Is(err, signaling.ErrAccessDenied) {
			t.Fatalf("Open: %v, want ErrAccessDenied", err)
		}
		if !strings.Contains(err.Error(), "403") {
			t.Errorf("error %q does not give the HTTP status", err)
		}
		var he *signaling.HandshakeError
		if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden || he.ErrorType != "AccessDeniedException" {
			t.Errorf("Open: %v: want a *signaling.HandshakeError with 403 AccessDeniedException, got %+v", err, he)
		}
		assertNoSecrets(t, "error", err.Error())
		if strings.Contains(err.Error(), "a-session-token") || strings.Contains(logs.String(), "a-session-token") {
			t.Errorf("session token leaked: %v\n%s", err, logs.String())
		}
		assertNoSecrets(t, "log", logs.String())
		if c.State() != signaling.StateClosed {
			t.Fatalf("State = %v", c.State())
		}
	})
	t.Run("clock offset", func(t *testing.T) {
		c := e.client(t, signaling.RoleMaster, "", func(cfg *signaling.Config) { cfg.SystemClockOffset = -time.Hour })
		if err := c.Open(context.Background()); !errors.Is(err, signaling.ErrAccessDenied) {
			t.Fatalf("Open signed an hour in the past: %v, want ErrAccessDenied", err)
		}
		c2 := e.client(t, signaling.RoleMaster, "", func(cfg *signaling.Config) { cfg.SystemClockOffset = time.Minute })
		if err := c2.Open(context.Background()); err != nil {
			t.Fatalf("Open with an offset within the skew allowed: %v", err)
		}
	})
	t.Run("unknown channel", func(t *testing.T) {
		c := e.client(t, signaling.RoleViewer, "v1", func(cfg *signaling.Config) {
			cfg.ChannelARN = strings.Replace(e.arn, "test-channel", "no-such-channel", 1)
		})
		err := c.Open(context.Background())
		if !errors.Is(err, signaling.ErrHandshake) || !strings.Contains(err.Error(), "404") {
			t.Fatalf("Open: %v, want ErrHandshake with 404", err)
		}
		var he *signaling.HandshakeError
		if !errors.As(err, &he) {
			t.Fatalf("Open: %v (%T), want a *signaling.HandshakeError in the chain", err, err)
		}
		if he.StatusCode != http.StatusNotFound || he.ErrorType != "ResourceNotFoundException" || !strings.Contains(he.Message, "no-such-channel") {
			t.Errorf("HandshakeError %+v: want 404 ResourceNotFoundException naming the channel", *he)
		}
		if he.ClientLimitExceeded() || errors.Is(err, signaling.ErrAccessDenied) {
			t.Errorf("a 404 reads as a client limit (%v) or as access denied (%v)", he.ClientLimitExceeded(), errors.Is(err, signaling.ErrAccessDenied))
		}
		assertNoSecrets(t, "HandshakeError.Message", he.Message)
	})
	t.Run("nothing listening", func(t *testing.T) {
		c := e.client(t, signaling.RoleMaster, "", func(cfg *signaling.Config) { cfg.ChannelEndpoint = "ws://127.0.0.1:1" })
		err := c.Open(context.Background())
		if !errors.Is(err, signaling.ErrDial) {
			t.Fatalf("Open: %v, want ErrDial", err)
		}
		assertNoSecrets(t, "error", err.Error())
	})
	t.Run("context cancelled", func(t *testing.T) {
		c := e.client(t, signaling.RoleMaster, "")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := c.Open(ctx)
		if err == nil || !errors.Is(err, context.Canceled) {
			t.Fatalf("Open with a cancelled context: %v, want context.Canceled", err)
		}
	})
}

// TestExchange: offers, answers and candidates both ways between a master
// and two viewers, with the sender ids the JS SDK gives.
func TestExchange(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	var logs logBuffer
	master := e.client(t, signaling.RoleMaster, "", func(c *signaling.Config) { c.Logger = logs.logger() })
	v1 := e.client(t, signaling.RoleViewer, "viewer-1", func(c *signaling.Config) { c.Logger = logs.logger() })
	v2 := e.client(t, signaling.RoleViewer, "viewer-2")
	rm, r1, r2 := record(master), record(v1), record(v2)
	open(t, master)
	open(t, v1)
	open(t, v2)
	rm.expect(t, "open")
	r1.expect(t, "open")
	r2.expect(t, "open")

	// viewer-1 -> master
	must(t, v1.SendSDPOffer(offer("v=0 offer-1\r\n")))
	must(t, v1.SendICECandidate(cand(1)))
	got := rm.expect(t, "offer")
	if got.sender != "viewer-1" || got.sd.SDP != "v=0 offer-1\r\n" || got.sd.Type != webrtc.SDPTypeOffer {
		t.Fatalf("master got %v", got)
	}
	gotc := rm.expect(t, "ice")
	if gotc.sender != "viewer-1" || !reflect.DeepEqual(gotc.cand, cand(1)) {
		t.Fatalf("master got %v, want candidate 1 from viewer-1", gotc)
	}

	// viewer-2 -> master, in between
	must(t, v2.SendSDPOffer(offer("v=0 offer-2\r\n"), signaling.WithCorrelationID("c-2")))
	if got := rm.expect(t, "offer"); got.sender != "viewer-2" || got.sd.SDP != "v=0 offer-2\r\n" {
		t.Fatalf("master got %v", got)
	}

	// master -> viewer-1 only
	must(t, master.SendSDPAnswer(answer("v=0 answer-1\r\n"), signaling.WithRecipient("viewer-1")))
	must(t, master.SendICECandidate(cand(2), signaling.WithRecipient("viewer-1"), signaling.WithCorrelationID("corr.2")))
	if got := r1.expect(t, "answer"); got.sender != "" || got.sd.SDP != "v=0 answer-1\r\n" || got.sd.Type != webrtc.SDPTypeAnswer {
		t.Fatalf("viewer-1 got %v", got)
	}
	if got := r1.expect(t, "ice"); got.sender != "" || !reflect.DeepEqual(got.cand, cand(2)) {
		t.Fatalf("viewer-1 got %v", got)
	}
	// master -> viewer-2, which then proves it got nothing meant for viewer-1.
	must(t, master.SendSDPAnswer(answer("v=0 answer-2\r\n"), signaling.WithRecipient("viewer-2")))
	if got := r2.expect(t, "answer"); got.sd.SDP != "v=0 answer-2\r\n" {
		t.Fatalf("viewer-2 got %v", got)
	}

	// A candidate with nil optional fields goes through as nulls.
	bare := webrtc.ICECandidateInit{Candidate: "candidate:9 1 udp 1 192.0.2.9 9 typ host"}
	must(t, v2.SendICECandidate(bare))
	if got := rm.expect(t, "ice"); got.sender != "viewer-2" || !reflect.DeepEqual(got.cand, bare) {
		t.Fatalf("master got %v, want %+v", got, bare)
	}
	rm.none(t)
	r1.none(t)
	assertNoSecrets(t, "log", logs.String())
	if !strings.Contains(logs.String(), e.srv.WSSEndpoint()) {
		t.Errorf("log does not name the endpoint:\n%s", logs.String())
	}
}

func TestSendValidation(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	master := e.client(t, signaling.RoleMaster, "")
	v := e.client(t, signaling.RoleViewer, "viewer-1")
	rm := record(master)
	open(t, master)
	open(t, v)
	rm.expect(t, "open")

	if err := v.SendSDPOffer(offer("v=0"), signaling.WithRecipient("someone")); !errors.Is(err, signaling.ErrRecipientForViewer) {
		t.Fatalf("viewer naming a recipient: %v, want ErrRecipientForViewer", err)
	}
	for _, id := range []string{"has space", strings.Repeat("x", 257), "semi;colon"} {
		if err := v.SendICECandidate(cand(1), signaling.WithCorrelationID(id)); !errors.Is(err, signaling.ErrInvalidCorrelationID) {
			t.Fatalf("correlation id %q: %v, want ErrInvalidCorrelationID", id, err)
		}
	}
	// 8000 bytes of SDP make more than 10240 bytes of base64.
	big := offer(strings.Repeat("a", 8000))
	err := v.SendSDPOffer(big)
	if !errors.Is(err, signaling.ErrPayloadTooLarge) || !strings.Contains(err.Error(), "10240") {
		t.Fatalf("large offer: %v, want ErrPayloadTooLarge naming the limit", err)
	}
	// Just under the limit goes through. The JSON around the SDP is
	// {"type":"offer","sdp":"..."}: 24 bytes; 7656 bytes of JSON make 10208
	// bytes of base64.
	fits := offer(strings.Repeat("b", 7656-24))
	must(t, v.SendSDPOffer(fits))
	// The refused messages never reached the master: the first offer it
	// gets is the one that fits.
	if got := rm.expect(t, "offer"); got.sd.SDP != fits.SDP {
		t.Fatalf("master got %d bytes of SDP, want %d", len(got.sd.SDP), len(fits.SDP))
	}
	rm.none(t)
}

// TestStatusResponse: the service answers a failed message that carried a
// correlation id with STATUS_RESPONSE.
func TestStatusResponse(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	master := e.client(t, signaling.RoleMaster, "")
	rm := record(master)
	open(t, master)
	rm.expect(t, "open")

	// The recipient id is not valid: the client leaves that to the service,
	// as the JS SDK does.
	must(t, master.SendSDPAnswer(answer("v=0"), signaling.WithRecipient("not a valid id"), signaling.WithCorrelationID("corr-1")))
	got := rm.expect(t, "status").status
	want := signaling.StatusResponse{CorrelationID: "corr-1", Success: false, ErrorType: "InvalidArgumentException", StatusCode: "400"}
	got.Description = ""
	if got != want {
		t.Fatalf("status = %+v, want %+v", got, want)
	}
	// Without a correlation id the failure is silent.
	must(t, master.SendSDPAnswer(answer("v=0"), signaling.WithRecipient("not a valid id")))
	must(t, master.SendSDPAnswer(answer("v=0"), signaling.WithCorrelationID("corr-2"))) // no recipient
	if got := rm.expect(t, "status"); got.status.CorrelationID != "corr-2" {
		t.Fatalf("got %v / %+v, want the status of corr-2 only", got, got.status)
	}
}

// TestEarlyICE: candidates that arrive before their sender's SDP are held
// and delivered right after it, in order, for the master (keyed by viewer)
// and for a viewer (keyed by "", the master).
func TestEarlyICE(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	master := e.client(t, signaling.RoleMaster, "")
	v := e.client(t, signaling.RoleViewer, "viewer-1")
	rm, rv := record(master), record(v)
	var pendingAtOffer, pendingAtAnswer []webrtc.ICECandidateInit
	master.OnSDPOffer(func(sd webrtc.SessionDescription, from string) {
		pendingAtOffer = master.PendingICECandidates(from)
		rm.ch <- event{kind: "offer", sd: sd, sender: from}
	})
	v.OnSDPAnswer(func(sd webrtc.SessionDescription, from string) {
		pendingAtAnswer = v.PendingICECandidates(from)
		rv.ch <- event{kind: "answer", sd: sd, sender: from}
	})
	open(t, master)
	open(t, v)
	rm.expect(t, "open")
	rv.expect(t, "open")

	for i := 1; i <= 3; i++ {
		must(t, v.SendICECandidate(cand(i)))
	}
	must(t, v.SendSDPOffer(offer("v=0 o")))
	must(t, v.SendICECandidate(cand(4)))
	if got := rm.expect(t, "offer"); got.sender != "viewer-1" {
		t.Fatalf("master got %v", got)
	}
	if !reflect.DeepEqual(pendingAtOffer, []webrtc.ICECandidateInit{cand(1), cand(2), cand(3)}) {
		t.Fatalf("pending at the offer = %v, want candidates 1-3", pendingAtOffer)
	}
	for i := 1; i <= 4; i++ {
		if got := rm.expect(t, "ice"); got.sender != "viewer-1" || !reflect.DeepEqual(got.cand, cand(i)) {
			t.Fatalf("master's ICE event %d: %v", i, got)
		}
	}
	if p := master.PendingICECandidates("viewer-1"); len(p) != 0 {
		t.Fatalf("still pending after release: %v", p)
	}

	// Viewer side: the master's candidates wait for the master's answer.
	must(t, master.SendICECandidate(cand(10), signaling.WithRecipient("viewer-1")))
	must(t, master.SendICECandidate(cand(11), signaling.WithRecipient("viewer-1")))
	must(t, master.SendSDPAnswer(answer("v=0 a"), signaling.WithRecipient("viewer-1")))
	rv.expect(t, "answer")
	if !reflect.DeepEqual(pendingAtAnswer, []webrtc.ICECandidateInit{cand(10), cand(11)}) {
		t.Fatalf("viewer's pending at the answer = %v", pendingAtAnswer)
	}
	for _, i := range []int{10, 11} {
		if got := rv.expect(t, "ice"); got.sender != "" || !reflect.DeepEqual(got.cand, cand(i)) {
			t.Fatalf("viewer's ICE event: %v, want candidate %d from the master", got, i)
		}
	}
}

// TestEarlyICECandidateBufferingDrain: with EarlyICECandidateBuffering the
// candidates stay buffered after the SDP until DrainPendingICECandidates.
func TestEarlyICECandidateBufferingDrain(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	master := e.client(t, signaling.RoleMaster, "", func(c *signaling.Config) { c.EarlyICECandidateBuffering = true })
	v := e.client(t, signaling.RoleViewer, "viewer-1")
	rm := record(master)
	open(t, master)
	open(t, v)
	rm.expect(t, "open")

	must(t, v.SendICECandidate(cand(1)))
	must(t, v.SendICECandidate(cand(2)))
	must(t, v.SendSDPOffer(offer("v=0 first")))
	must(t, v.SendICECandidate(cand(3)))
	must(t, v.SendSDPOffer(offer("v=0 second"))) // a marker: once delivered, candidate 3 was handled
	if got := rm.expect(t, "offer"); got.sd.SDP != "v=0 first" {
		t.Fatalf("got %v", got)
	}
	if got := rm.expect(t, "offer"); got.sd.SDP != "v=0 second" {
		t.Fatalf("got %v (no candidate may be delivered before the drain)", got)
	}
	want := []webrtc.ICECandidateInit{cand(1), cand(2), cand(3)}
	if p := master.PendingICECandidates("viewer-1"); !reflect.DeepEqual(p, want) {
		t.Fatalf("pending = %v, want candidates 1-3", p)
	}
	if p := master.PendingICECandidates("someone-else"); p != nil {
		t.Fatalf("pending for an unknown sender = %v", p)
	}

	master.DrainPendingICECandidates("viewer-1")
	for i := 1; i <= 3; i++ {
		if got := rm.expect(t, "ice"); !reflect.DeepEqual(got.cand, cand(i)) || got.sender != "viewer-1" {
			t.Fatalf("drained event %d: %v", i, got)
		}
	}
	// After the drain, candidates are delivered directly.
	must(t, v.SendICECandidate(cand(4)))
	if got := rm.expect(t, "ice"); !reflect.DeepEqual(got.cand, cand(4)) {
		t.Fatalf("got %v, want candidate 4", got)
	}
	if p := master.PendingICECandidates("viewer-1"); len(p) != 0 {
		t.Fatalf("pending after drain = %v", p)
	}
}

// TestDrainFromHandler: draining from the SDP handler (the usual place)
// delivers the candidates right after it, before later frames.
func TestDrainFromHandler(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	master := e.client(t, signaling.RoleMaster, "", func(c *signaling.Config) { c.EarlyICECandidateBuffering = true })
	v := e.client(t, signaling.RoleViewer, "viewer-1")
	rm := record(master)
	master.OnSDPOffer(func(sd webrtc.SessionDescription, from string) {
		rm.ch <- event{kind: "offer", sd: sd, sender: from}
		master.DrainPendingICECandidates(from)
	})
	open(t, master)
	open(t, v)
	rm.expect(t, "open")
	must(t, v.SendICECandidate(cand(1)))
	must(t, v.SendSDPOffer(offer("v=0")))
	must(t, v.SendICECandidate(cand(2)))
	must(t, v.SendICECandidate(cand(3)))
	rm.expect(t, "offer")
	for i := 1; i <= 3; i++ {
		if got := rm.expect(t, "ice"); !reflect.DeepEqual(got.cand, cand(i)) {
			t.Fatalf("event %d: %v", i, got)
		}
	}
}

// TestResetICECandidateState: a second SDP alone does not buffer again (as
// in the JS SDK); after a reset the sender's candidates wait for its next SDP.
func TestResetICECandidateState(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	master := e.client(t, signaling.RoleMaster, "")
	v := e.client(t, signaling.RoleViewer, "viewer-1")
	rm := record(master)
	var pendingAtOffer []webrtc.ICECandidateInit
	master.OnSDPOffer(func(sd webrtc.SessionDescription, from string) {
		pendingAtOffer = master.PendingICECandidates(from)
		rm.ch <- event{kind: "offer", sd: sd, sender: from}
	})
	open(t, master)
	open(t, v)
	rm.expect(t, "open")

	must(t, v.SendSDPOffer(offer("v=0 1")))
	must(t, v.SendICECandidate(cand(1)))
	must(t, v.SendSDPOffer(offer("v=0 2")))
	must(t, v.SendICECandidate(cand(2)))
	for _, want := range []string{"offer", "ice", "offer", "ice"} {
		rm.expect(t, want)
	}

	master.ResetICECandidateState("viewer-1")
	must(t, v.SendICECandidate(cand(3)))
	must(t, v.SendSDPOffer(offer("v=0 3")))
	if got := rm.expect(t, "offer"); got.sd.SDP != "v=0 3" {
		t.Fatalf("got %v; candidate 3 must wait for the offer after the reset", got)
	}
	if !reflect.DeepEqual(pendingAtOffer, []webrtc.ICECandidateInit{cand(3)}) {
		t.Fatalf("pending at the offer after reset = %v", pendingAtOffer)
	}
	if got := rm.expect(t, "ice"); !reflect.DeepEqual(got.cand, cand(3)) {
		t.Fatalf("got %v", got)
	}

	// Reset drops what is buffered.
	master.ResetICECandidateState("viewer-1")
	must(t, v.SendICECandidate(cand(4)))
	deadline := time.Now().Add(waitTimeout)
	for len(master.PendingICECandidates("viewer-1")) == 0 { // wait until candidate 4 is buffered
		if time.Now().After(deadline) {
			t.Fatal("candidate 4 never buffered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	master.ResetICECandidateState("viewer-1")
	if p := master.PendingICECandidates("viewer-1"); p != nil {
		t.Fatalf("pending after reset = %v", p)
	}
	must(t, v.SendSDPOffer(offer("v=0 after-drop")))
	must(t, v.SendICECandidate(cand(5)))
	if got := rm.expect(t, "offer"); got.sd.SDP != "v=0 after-drop" {
		t.Fatalf("got %v", got)
	}
	if got := rm.expect(t, "ice"); !reflect.DeepEqual(got.cand, cand(5)) {
		t.Fatalf("got %v, want candidate 5 (candidate 4 was dropped by the reset)", got)
	}
}

// offsetSigner records the signing times it is given.
type offsetSigner struct {
	p     *sigv4.Presigner
	times chan time.Time
}

func (s *offsetSigner) PresignURL(ctx context.Context, endpoint string, q map[string]string, t time.Time) (string, error) {
	s.times <- t
	return s.p.PresignURL(ctx, endpoint, q, t)
}

// TestRequestSignerAndClockOffset: a RequestSigner signs each connection,
// given time.Now() plus SystemClockOffset.
func TestRequestSignerAndClockOffset(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	p, err := sigv4.New(e.srv.Region(), sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""), sigv4.AllowInsecureEndpoint())
	must(t, err)
	s := &offsetSigner{p: p, times: make(chan time.Time, 10)}
	v := e.client(t, signaling.RoleViewer, "viewer-1", func(c *signaling.Config) {
		c.Credentials, c.RequestSigner = nil, s
		c.SystemClockOffset = 3 * time.Minute
	})
	before := time.Now()
	open(t, v)
	after := time.Now()
	signed := recv(t, "signing time", s.times)
	if signed.Before(before.Add(3*time.Minute)) || signed.After(after.Add(3*time.Minute)) {
		t.Fatalf("signed at %v, want now+3m (between %v and %v)", signed, before.Add(3*time.Minute), after.Add(3*time.Minute))
	}
}
