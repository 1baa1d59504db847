package signaling_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// TestReconnectAfterGoAway: the service sends GO_AWAY ahead of the
// maximum connection duration; the client announces it and reconnects
// before the cut, and the old connection is dropped (one master only).
func TestReconnectAfterGoAway(t *testing.T) {
	lim := fastLimits()
	lim.MaxConnectionDuration, lim.GoAwayLead = time.Hour, time.Hour-1500*time.Millisecond
	e := startEnv(t, localkvs.Config{Limits: lim})
	master := e.client(t, signaling.RoleMaster, "")
	rm := record(master)
	open(t, master)
	rm.expect(t, "open")

	rm.expect(t, "goaway")
	rc := rm.expect(t, "reconnecting")
	if rc.attempt != 1 || !errors.Is(rc.err, signaling.ErrGoAway) {
		t.Fatalf("got %v, want attempt 1 caused by GO_AWAY", rc)
	}
	rm.expect(t, "open")
	if st := master.State(); st != signaling.StateOpen {
		t.Fatalf("State = %v after the GO_AWAY reconnect", st)
	}
	// The next GO_AWAY (1.5 s into the new connection) is handled the same way:
	// the client is not closed and not replaced by its own new connection.
	rm.expect(t, "goaway")
	rm.expect(t, "reconnecting")
	rm.expect(t, "open")
	must(t, master.Close())
	rm.expect(t, "close")
}

// TestReconnectAfterDrop: the service dies without GO_AWAY and comes back;
// master and viewer reconnect by themselves and exchange messages again.
func TestReconnectAfterDrop(t *testing.T) {
	e := startEnv(t, localkvs.Config{DataDir: t.TempDir()})
	master := e.client(t, signaling.RoleMaster, "")
	v := e.client(t, signaling.RoleViewer, "viewer-1")
	rm, rv := record(master), record(v)
	open(t, master)
	open(t, v)
	rm.expect(t, "open")
	rv.expect(t, "open")

	restart := e.crash(t)
	rm.expect(t, "reconnecting")
	rv.expect(t, "reconnecting")
	if err := v.SendSDPOffer(offer("v=0")); !errors.Is(err, signaling.ErrNotOpen) {
		t.Fatalf("send while reconnecting: %v, want ErrNotOpen", err)
	}
	restart()
	rm.waitFor(t, "open")
	rv.waitFor(t, "open")

	must(t, v.SendSDPOffer(offer("v=0 after")))
	if got := rm.waitFor(t, "offer"); got.sender != "viewer-1" || got.sd.SDP != "v=0 after" {
		t.Fatalf("master got %v", got)
	}
	must(t, master.SendSDPAnswer(answer("v=0 back"), signaling.WithRecipient("viewer-1")))
	if got := rv.waitFor(t, "answer"); got.sd.SDP != "v=0 back" {
		t.Fatalf("viewer got %v", got)
	}
}

// TestReconnectRetriesAccessDenied: during reconnects an HTTP 403 is
// retried (credentials may be refreshed), and each attempt signs afresh.
func TestReconnectRetriesAccessDenied(t *testing.T) {
	e := startEnv(t, localkvs.Config{DataDir: t.TempDir()})
	var bad atomic.Bool
	var retrieved atomic.Int32
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		retrieved.Add(1)
		secret := localkvs.DevSecretAccessKey
		if bad.Load() {
			secret = "expired-secret"
		}
		return aws.Credentials{AccessKeyID: localkvs.DevAccessKeyID, SecretAccessKey: secret}, nil
	})
	master := e.client(t, signaling.RoleMaster, "", func(c *signaling.Config) { c.Credentials = creds })
	rm := record(master)
	open(t, master)
	rm.expect(t, "open")

	bad.Store(true)
	restart := e.crash(t)
	restart()
	for {
		ev := rm.next(t)
		if ev.kind == "open" || ev.kind == "close" || ev.kind == "error" {
			t.Fatalf("got %v before any 403 was retried", ev)
		}
		if ev.kind == "reconnecting" && errors.Is(ev.err, signaling.ErrAccessDenied) {
			break // an attempt was refused with 403 and is retried
		}
	}
	rm.expect(t, "reconnecting") // and again
	bad.Store(false)
	rm.waitFor(t, "open")
	if n := retrieved.Load(); n < 4 {
		t.Fatalf("credentials retrieved %d times; each attempt must fetch them", n)
	}
}

// TestDisableReconnect: with reconnection off, a drop closes the client.
func TestDisableReconnect(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	master := e.client(t, signaling.RoleMaster, "", func(c *signaling.Config) { c.DisableReconnect = true })
	rm := record(master)
	open(t, master)
	rm.expect(t, "open")
	_ = e.crash(t)
	if got := rm.expect(t, "error"); !errors.Is(got.err, signaling.ErrConnectionLost) {
		t.Fatalf("got %v, want ErrConnectionLost", got)
	}
	rm.expect(t, "close")
	if st := master.State(); st != signaling.StateClosed {
		t.Fatalf("State = %v", st)
	}
	must(t, master.Close())
	rm.none(t)
}

// TestMaxReconnectAttempts: the client gives up after that many failures.
func TestMaxReconnectAttempts(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	master := e.client(t, signaling.RoleMaster, "", func(c *signaling.Config) { c.MaxReconnectAttempts = 3 })
	rm := record(master)
	open(t, master)
	rm.expect(t, "open")
	_ = e.crash(t) // never restarted
	for i := 1; i <= 3; i++ {
		got := rm.expect(t, "reconnecting")
		if got.attempt != i || got.delay < 0 || got.delay > 200*time.Millisecond {
			t.Fatalf("got %v, want attempt %d with a delay within [0, 200ms]", got, i)
		}
		if i > 1 && !errors.Is(got.err, signaling.ErrDial) {
			t.Fatalf("attempt %d cause = %v, want the previous ErrDial", i, got.err)
		}
	}
	if got := rm.expect(t, "error"); !errors.Is(got.err, signaling.ErrReconnectFailed) {
		t.Fatalf("got %v, want ErrReconnectFailed", got)
	}
	rm.expect(t, "close")
	if st := master.State(); st != signaling.StateClosed {
		t.Fatalf("State = %v", st)
	}
	// A client that gave up can be opened again (here it fails: no service).
	if err := master.Open(context.Background()); !errors.Is(err, signaling.ErrDial) {
		t.Fatalf("Open after giving up: %v", err)
	}
}

// TestReplacedDoesNotFightBack: a second master on the channel takes over;
// the first one stops instead of reconnecting and kicking the new one off.
// Same for a viewer whose ClientID is taken by a newer connection.
func TestReplacedDoesNotFightBack(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	m1 := e.client(t, signaling.RoleMaster, "")
	m2 := e.client(t, signaling.RoleMaster, "")
	r1, r2 := record(m1), record(m2)
	open(t, m1)
	r1.expect(t, "open")
	open(t, m2)
	r2.expect(t, "open")
	if got := r1.expect(t, "error"); !errors.Is(got.err, signaling.ErrReplaced) || websocket.CloseStatus(got.err) != wire.CloseReplaced {
		t.Fatalf("old master got %v (close status %d), want ErrReplaced from close code %d", got, websocket.CloseStatus(got.err), wire.CloseReplaced)
	}
	r1.expect(t, "close")
	if m1.State() != signaling.StateClosed || m2.State() != signaling.StateOpen {
		t.Fatalf("states: old %v, new %v", m1.State(), m2.State())
	}

	// The new master is the one viewers reach.
	v1 := e.client(t, signaling.RoleViewer, "viewer-1")
	rv1 := record(v1)
	open(t, v1)
	rv1.expect(t, "open")
	must(t, v1.SendSDPOffer(offer("v=0")))
	if got := r2.expect(t, "offer"); got.sender != "viewer-1" {
		t.Fatalf("new master got %v", got)
	}

	v1b := e.client(t, signaling.RoleViewer, "viewer-1")
	open(t, v1b)
	if got := rv1.expect(t, "error"); !errors.Is(got.err, signaling.ErrReplaced) || websocket.CloseStatus(got.err) != wire.CloseReplaced {
		t.Fatalf("old viewer got %v (close status %d), want ErrReplaced from close code %d", got, websocket.CloseStatus(got.err), wire.CloseReplaced)
	}
	rv1.expect(t, "close")
	// Neither replaced client comes back (no reconnecting, no open), and the
	// new master is left alone.
	r1.none(t)
	rv1.none(t)
	r2.none(t)
	if v1.State() != signaling.StateClosed || v1b.State() != signaling.StateOpen {
		t.Fatalf("viewer states: old %v, new %v", v1.State(), v1b.State())
	}
}

// TestReconnectTLS: against the service with TLS, the HTTPClient carrying
// the service's CA is used for the first dial and for reconnects.
func TestReconnectTLS(t *testing.T) {
	e := startEnv(t, localkvs.Config{TLS: true, DataDir: t.TempDir()})
	// Without the CA, the dial fails on the certificate.
	untrusting := e.client(t, signaling.RoleMaster, "", func(c *signaling.Config) { c.HTTPClient = nil })
	if err := untrusting.Open(context.Background()); !errors.Is(err, signaling.ErrDial) {
		t.Fatalf("Open without the CA: %v, want ErrDial", err)
	}

	master := e.client(t, signaling.RoleMaster, "")
	v := e.client(t, signaling.RoleViewer, "viewer-1")
	rm, rv := record(master), record(v)
	open(t, master)
	open(t, v)
	rm.expect(t, "open")
	rv.expect(t, "open")

	restart := e.crash(t)
	rm.expect(t, "reconnecting")
	restart()
	rm.waitFor(t, "open")
	rv.waitFor(t, "open")
	must(t, v.SendICECandidate(cand(1)))
	must(t, v.SendSDPOffer(offer("v=0 tls")))
	if got := rm.waitFor(t, "offer"); got.sd.SDP != "v=0 tls" || got.sender != "viewer-1" {
		t.Fatalf("master got %v", got)
	}
	rm.expect(t, "ice")
}

// TestCloseDuringReconnect: Close stops the reconnect loop for good.
func TestCloseDuringReconnect(t *testing.T) {
	e := startEnv(t, localkvs.Config{})
	master := e.client(t, signaling.RoleMaster, "")
	rm := record(master)
	open(t, master)
	rm.expect(t, "open")
	_ = e.crash(t)
	rm.expect(t, "reconnecting")
	if st := master.State(); st != signaling.StateReconnecting {
		t.Fatalf("State = %v, want reconnecting", st)
	}
	must(t, master.Close())
	rm.waitFor(t, "close")
	if st := master.State(); st != signaling.StateClosed {
		t.Fatalf("State = %v", st)
	}
	// Nothing else happens after the close event: no reconnect attempt, no open.
	rm.none(t)
}
