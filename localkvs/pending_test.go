package localkvs_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// bigPayload is a payload of n bytes of base64.
func bigPayload(n int) string { return strings.Repeat("A", n) }

// TestDefect6PendingExpireOnTimer: messages kept for recipients that never
// connect are dropped when their TTL passes, though no new message reaches
// the channel; nothing is kept after that.
func TestDefect6PendingExpireOnTimer(t *testing.T) {
	srv, clk := startClock(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "pending-ttl") // MessageTtlSeconds 60
	master := dial(t, srv, arn, "")
	for i := 0; i < 20; i++ {
		send(t, master, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: bigPayload(10000), RecipientClientID: "nobody-" + strconv.Itoa(i)})
	}
	roundTrip(t, master)
	if got := localkvs.PendingBytes(srv); got < 20*10000 {
		t.Fatalf("%d bytes kept for 20 offline recipients, want at least %d", got, 20*10000)
	}
	clk.Advance(61 * time.Second)
	if got := localkvs.PendingBytes(srv); got != 0 {
		t.Fatalf("%d bytes still kept after the TTL", got)
	}
	// A recipient that connects later gets nothing (the messages expired),
	// and one that connects in time gets its message.
	send(t, master, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: payload(t, map[string]string{"type": "answer", "sdp": "v=0\r\n"}), RecipientClientID: "late"})
	roundTrip(t, master)
	v := dial(t, srv, arn, "late")
	if m := recv(t, v); m.MessageType != wire.SDPAnswer {
		t.Fatalf("the recipient got %+v, want its kept answer", m)
	}
	if got := localkvs.PendingBytes(srv); got != 0 {
		t.Fatalf("%d bytes kept after delivery", got)
	}
}

// TestDefect6PendingCaps: undelivered messages are capped per channel and
// per process; past a cap a message is refused with a STATUS_RESPONSE
// (ClientLimitExceededException), and a delivered message frees its place.
func TestDefect6PendingCaps(t *testing.T) {
	lim := fastLimits()
	lim.PendingBytesPerChannel = 50_000
	lim.PendingBytes = 80_000
	srv := start(t, localkvs.Config{Limits: lim})
	arnA := mustCreate(t, srv, "pending-a")
	arnB := mustCreate(t, srv, "pending-b")
	masterA := dial(t, srv, arnA, "")
	masterB := dial(t, srv, arnB, "")
	// Channel A: four 10 KB messages fit in 50 KB (with their envelopes),
	// the fifth does not.
	for i := 0; i < 4; i++ {
		send(t, masterA, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: bigPayload(10000), RecipientClientID: "a-" + strconv.Itoa(i), CorrelationID: "a" + strconv.Itoa(i)})
	}
	send(t, masterA, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: bigPayload(10000), RecipientClientID: "a-4", CorrelationID: "a4"})
	expectStatus(t, masterA, "a4", "ClientLimitExceededException")
	if got := localkvs.PendingBytes(srv); got > 50_000 {
		t.Fatalf("%d bytes kept, more than the channel cap", got)
	}
	// Channel B: the process cap (80 KB) is reached first.
	for i := 0; i < 3; i++ {
		send(t, masterB, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: bigPayload(10000), RecipientClientID: "b-" + strconv.Itoa(i), CorrelationID: "b" + strconv.Itoa(i)})
	}
	send(t, masterB, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: bigPayload(10000), RecipientClientID: "b-3", CorrelationID: "b3"})
	expectStatus(t, masterB, "b3", "ClientLimitExceededException")
	if got := localkvs.PendingBytes(srv); got > 80_000 {
		t.Fatalf("%d bytes kept, more than the process cap", got)
	}
	// A recipient connecting takes its message and frees the space.
	v := dial(t, srv, arnA, "a-0")
	if m := recv(t, v); m.MessageType != wire.ICECandidate {
		t.Fatalf("a-0 got %+v", m)
	}
	send(t, masterB, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: bigPayload(1000), RecipientClientID: "b-4", CorrelationID: "b4"})
	roundTrip(t, masterB) // no STATUS_RESPONSE for b4: kept
	// Messages to connected recipients are never refused for the caps.
	send(t, masterA, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: bigPayload(10000), RecipientClientID: "a-0", CorrelationID: "live"})
	if m := recv(t, v); m.MessageType != wire.ICECandidate {
		t.Fatalf("a-0 got %+v", m)
	}
}
