package localkvs_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// countHandler is a slog.Handler that counts the records at info level and
// above.
type countHandler struct{ n atomic.Int64 }

func (h *countHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *countHandler) Handle(context.Context, slog.Record) error    { h.n.Add(1); return nil }
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *countHandler) WithGroup(string) slog.Handler                { return h }

// TestDefect7GarbageFlood: one connection sending bad frames as fast as it
// can neither floods the log (a few lines per connection, with the count
// of the ones left out) nor stays connected: it is closed with 1008.
func TestDefect7GarbageFlood(t *testing.T) {
	for _, kind := range []string{"not json", "binary", "bad correlationId", "no payload"} {
		t.Run(kind, func(t *testing.T) {
			h := &countHandler{}
			srv := start(t, localkvs.Config{Logger: slog.New(h), Limits: fastLimits()})
			arn := mustCreate(t, srv, "garbage")
			c := dial(t, srv, arn, "viewer-1")
			before := h.n.Load()
			done := closedAsync(c)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			sent := 0
			for ; sent < 5000; sent++ {
				var err error
				switch kind {
				case "not json":
					err = c.Write(ctx, websocket.MessageText, []byte("{not json"))
				case "binary":
					err = c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
				case "bad correlationId":
					err = c.Write(ctx, websocket.MessageText, []byte(`{"action":"ICE_CANDIDATE","messagePayload":"eA==","correlationId":"bad id!"}`))
				case "no payload":
					err = c.Write(ctx, websocket.MessageText, []byte(`{"action":"ICE_CANDIDATE"}`))
				}
				if err != nil {
					break
				}
			}
			time.Sleep(200 * time.Millisecond) // let the server read what was sent
			lines := h.n.Load() - before
			if lines > 30 {
				t.Errorf("%d log lines for one connection's %d bad frames, want a few", lines, sent)
			}
			select {
			case r := <-done:
				if r.code != websocket.StatusPolicyViolation {
					t.Errorf("after %d bad frames the connection closed with %v, want 1008", sent, r.code)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("the connection is still open after %d bad frames", sent)
			}
			if sent >= 5000 {
				t.Errorf("the connection took all %d bad frames", sent)
			}
			t.Logf("%s: %d frames sent, %d log lines", kind, sent, lines)
		})
	}
}

// TestGarbageBelowThreshold: a client that sends a few bad frames among
// good ones stays connected, and its good messages are relayed.
func TestGarbageBelowThreshold(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "some-garbage")
	master := dial(t, srv, arn, "")
	v := dial(t, srv, arn, "viewer-1")
	for i := 0; i < 20; i++ {
		sendRaw(t, v, []byte("{not json"))
	}
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: payload(t, map[string]string{"type": "offer", "sdp": "v=0\r\n"})})
	if m := recv(t, master); m.MessageType != wire.SDPOffer {
		t.Fatalf("master got %+v", m)
	}
	roundTrip(t, v)
}

// TestInvalidUTF8Closes1007 (issue 13, item 9): a text frame that is not
// UTF-8 closes the connection with 1007 (invalid frame payload data), as
// RFC 6455 section 8.1 asks.
func TestInvalidUTF8Closes1007(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "utf8")
	c := dial(t, srv, arn, "viewer-1")
	done := closedAsync(c)
	sendRaw(t, c, []byte("{\"action\":\"SDP_OFFER\",\"messagePayload\":\"\xff\xfe\"}"))
	if r := awaitClosed(t, done); r.code != websocket.StatusInvalidFramePayloadData {
		t.Fatalf("closed with %v, want 1007", r.code)
	}
}
