package signaling_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/faultws"
	"github.com/kvswebrtc/kvswebrtc/signaling"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// brokenClient is a viewer client of a faultws server with quick backoff.
func brokenClient(t *testing.T, srv *faultws.Server) (*signaling.Client, *attempts) {
	t.Helper()
	c, err := signaling.New(signaling.Config{
		ChannelARN:            "arn:aws:kinesisvideo:us-west-2:000000000000:channel/broken/1",
		ChannelEndpoint:       srv.Endpoint(),
		Region:                "us-west-2",
		Role:                  signaling.RoleViewer,
		ClientID:              "viewer-1",
		Credentials:           sigv4.StaticCredentials("AKID", "secret", ""),
		AllowInsecureEndpoint: true,
		ReconnectBaseDelay:    5 * time.Millisecond,
		ReconnectMaxDelay:     80 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	a := &attempts{}
	c.OnReconnecting(func(attempt int, _ time.Duration, _ error) { a.add(attempt) })
	return c, a
}

// attempts records the attempt numbers OnReconnecting reports.
type attempts struct {
	mu sync.Mutex
	n  []int
}

func (a *attempts) add(n int) {
	a.mu.Lock()
	a.n = append(a.n, n)
	a.mu.Unlock()
}

func (a *attempts) get() []int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]int(nil), a.n...)
}

// waitAttempts waits until at least n reconnect attempts were announced.
func (a *attempts) wait(t *testing.T, n int) []int {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for len(a.get()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("only %d reconnect attempts within %s", len(a.get()), waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return a.get()
}

// TestDefect5BackoffGrowsAgainstBrokenServer: against a service that closes
// every connection right after it opens (or sends GO_AWAY every few
// milliseconds, or a frame too large to read), the dial succeeds each time
// but the connection never proves itself, so the backoff keeps growing: the
// k-th reconnect is attempt k, not attempt 1 over and over.
func TestDefect5BackoffGrowsAgainstBrokenServer(t *testing.T) {
	for name, mode := range map[string]faultws.Mode{
		"close at once":   {},
		"GO_AWAY storm":   {GoAwayEvery: 2 * time.Millisecond},
		"frame too large": {HugeFrame: 1 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			srv := faultws.Start(t, mode)
			c, a := brokenClient(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := c.Open(ctx); err != nil {
				t.Fatalf("Open: %v", err)
			}
			got := a.wait(t, 6)
			for i, n := range got[:6] {
				if n != i+1 {
					t.Fatalf("reconnect attempts %v: want 1, 2, 3, ... (the backoff resets only after a connection proved itself)", got)
				}
			}
		})
	}
}

// TestBackoffResetsAfterAMessage: a connection on which a message arrived
// proved itself; the next reconnect starts from attempt 1 again.
func TestBackoffResetsAfterAMessage(t *testing.T) {
	srv := faultws.Start(t, faultws.Mode{
		Message:    `{"messageType":"ICE_CANDIDATE","messagePayload":"eyJjYW5kaWRhdGUiOiIifQ==","senderClientId":""}`,
		CloseAfter: 20 * time.Millisecond,
	})
	c, a := brokenClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Open(ctx); err != nil {
		t.Fatalf("Open: %v", err)
	}
	for i, n := range a.wait(t, 4)[:4] {
		if n != 1 {
			t.Fatalf("attempt %d announced as %d, want 1 each time after a message", i+1, n)
		}
	}
}
