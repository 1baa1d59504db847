package localkvs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

func offer(t *testing.T, sdp string) string {
	return payload(t, map[string]string{"type": "offer", "sdp": sdp})
}

func ice(t *testing.T, c string) string {
	return payload(t, map[string]any{"candidate": c, "sdpMid": "0", "sdpMLineIndex": 0})
}

func TestRoutingBothWays(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		srv := start(t, localkvs.Config{TLS: tlsOn, Limits: fastLimits()})
		arn := mustCreate(t, srv, "route")
		master := dial(t, srv, arn, "")
		v1 := dial(t, srv, arn, "viewer-1")
		v2 := dial(t, srv, arn, "viewer-2")

		// viewer -> master: the service adds senderClientId.
		p := offer(t, "from v1")
		send(t, v1, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: p})
		m := recv(t, master)
		if m.MessageType != wire.SDPOffer || m.MessagePayload != p || m.SenderClientID != "viewer-1" || m.StatusResponse != nil {
			t.Fatalf("master got %+v", m)
		}
		// The C SDK's PascalCase keys, and a viewer's recipientClientId is ignored.
		p2 := ice(t, "candidate:1 1 udp 1 10.0.0.1 9 typ host")
		sendRaw(t, v2, []byte(`{"Action":"ICE_CANDIDATE","MessagePayload":"`+p2+`","RecipientClientId":"someone"}`))
		m = recv(t, master)
		if m.MessageType != wire.ICECandidate || m.MessagePayload != p2 || m.SenderClientID != "viewer-2" {
			t.Fatalf("master got %+v", m)
		}

		// master -> viewer by recipientClientId: no senderClientId key at all.
		a := payload(t, map[string]string{"type": "answer", "sdp": "to v2"})
		send(t, master, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: a, RecipientClientID: "viewer-2"})
		raw := recvRaw(t, v2)
		var keys map[string]any
		json.Unmarshal(raw, &keys)
		if len(keys) != 2 || keys["messageType"] != wire.SDPAnswer || keys["messagePayload"] != a {
			t.Fatalf("viewer-2 got %s, want exactly messageType and messagePayload", raw)
		}
		// viewer-1 got nothing meanwhile: the next frame it reads is the one sent to it.
		send(t, master, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: p2, RecipientClientID: "viewer-1"})
		if m := recv(t, v1); m.MessageType != wire.ICECandidate || m.SenderClientID != "" {
			t.Fatalf("viewer-1 got %+v", m)
		}
	}
}

func TestConnectRefusals(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "refuse")
	now := time.Now()
	t.Run("bad signature 403", func(t *testing.T) {
		refused(t, srv, presign(t, srv, arn, "v", now, "wrong-secret"), http.StatusForbidden, "AccessDeniedException")
	})
	t.Run("expired 403", func(t *testing.T) {
		refused(t, srv, presign(t, srv, arn, "v", now.Add(-6*time.Minute), localkvs.DevSecretAccessKey), http.StatusForbidden, "AccessDeniedException")
	})
	t.Run("tampered query 403", func(t *testing.T) {
		u := presign(t, srv, arn, "v", now, localkvs.DevSecretAccessKey)
		refused(t, srv, strings.Replace(u, "X-Amz-ClientId=v", "X-Amz-ClientId=w", 1), http.StatusForbidden, "AccessDeniedException")
	})
	t.Run("unsigned 403", func(t *testing.T) {
		refused(t, srv, srv.WSSEndpoint()+"/?X-Amz-ChannelARN="+arn, http.StatusForbidden, "AccessDeniedException")
	})
	t.Run("unknown channel 404", func(t *testing.T) {
		refused(t, srv, presign(t, srv, "arn:aws:kinesisvideo:us-west-2:000000000000:channel/none/1700000000000", "", now, localkvs.DevSecretAccessKey),
			http.StatusNotFound, "ResourceNotFoundException")
	})
	t.Run("missing channel ARN 400", func(t *testing.T) {
		refused(t, srv, presign(t, srv, "", "v", now, localkvs.DevSecretAccessKey), http.StatusBadRequest, "InvalidArgumentException")
	})
	t.Run("AWS_ client id 400", func(t *testing.T) {
		refused(t, srv, presign(t, srv, arn, "AWS_viewer", now, localkvs.DevSecretAccessKey), http.StatusBadRequest, "InvalidArgumentException")
	})
	t.Run("bad client id 400", func(t *testing.T) {
		refused(t, srv, presign(t, srv, arn, "a b", now, localkvs.DevSecretAccessKey), http.StatusBadRequest, "InvalidArgumentException")
	})
}

func TestLimitOneMasterPerChannel(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "masters")
	m1 := dial(t, srv, arn, "")
	m2 := dial(t, srv, arn, "")
	if code, _ := waitClosed(t, m1); code != wire.CloseReplaced {
		t.Fatalf("old master closed with %v", code)
	}
	v := dial(t, srv, arn, "v")
	p := offer(t, "x")
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: p})
	if m := recv(t, m2); m.MessagePayload != p {
		t.Fatalf("new master got %+v", m)
	}
}

func TestLimitMaxViewers(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "viewers")
	var vs []*websocket.Conn
	for i := range 10 {
		vs = append(vs, dial(t, srv, arn, "v"+string(rune('a'+i))))
	}
	refused(t, srv, presign(t, srv, arn, "v-eleven", time.Now(), localkvs.DevSecretAccessKey), http.StatusBadRequest, "ClientLimitExceededException")
	// The master does not count against the viewers.
	dial(t, srv, arn, "")
	// A viewer that leaves frees its slot.
	vs[0].Close(websocket.StatusNormalClosure, "")
	deadline := time.Now().Add(waitTimeout)
	for {
		c, _, err := dialErr(srv, presign(t, srv, arn, "v-eleven", time.Now(), localkvs.DevSecretAccessKey))
		if err == nil {
			c.CloseNow()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLimitViewerReconnectReplaces(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: localkvs.Limits{MaxViewers: 1, ConnectsPerSecond: -1}})
	arn := mustCreate(t, srv, "reconnect")
	master := dial(t, srv, arn, "")
	old := dial(t, srv, arn, "same")
	// At the limit, a reconnect with the same ClientId still gets in and replaces the old one.
	nw := dial(t, srv, arn, "same")
	if code, _ := waitClosed(t, old); code != wire.CloseReplaced {
		t.Fatalf("old connection closed with %v", code)
	}
	p := ice(t, "c")
	send(t, master, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: p, RecipientClientID: "same"})
	if m := recv(t, nw); m.MessagePayload != p {
		t.Fatalf("new viewer got %+v", m)
	}
}

func TestLimitConnectsPerSecond(t *testing.T) {
	// 0.1 per second: the bucket holds one connect and refills in 10 s, so
	// the second connect is refused however slow the machine is.
	srv := start(t, localkvs.Config{Limits: localkvs.Limits{ConnectsPerSecond: 0.1}})
	arn := mustCreate(t, srv, "rate")
	dial(t, srv, arn, "")
	refused(t, srv, presign(t, srv, arn, "v", time.Now(), localkvs.DevSecretAccessKey), http.StatusBadRequest, "ClientLimitExceededException")
	// The limit is per channel.
	other := mustCreate(t, srv, "rate-2")
	dial(t, srv, other, "v")
}

// expectStatus reads one frame and checks it is a failed STATUS_RESPONSE.
func expectStatus(t *testing.T, c *websocket.Conn, cid, errorType string) {
	t.Helper()
	raw := recvRaw(t, c)
	var m wire.ServiceMessage
	json.Unmarshal(raw, &m)
	if m.MessageType != wire.StatusResponse || m.StatusResponse == nil || m.StatusResponse.CorrelationID != cid ||
		m.StatusResponse.Success || m.StatusResponse.ErrorType != errorType || m.StatusResponse.StatusCode != "400" ||
		m.StatusResponse.Description == "" {
		t.Fatalf("got %s, want a failed STATUS_RESPONSE for %s with %s", raw, cid, errorType)
	}
	var keys map[string]any
	json.Unmarshal(raw, &keys)
	if len(keys) != 2 {
		t.Fatalf("STATUS_RESPONSE %s carries messagePayload or senderClientId", raw)
	}
}

func TestLimitMaxPayload(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "payload")
	master := dial(t, srv, arn, "")
	v := dial(t, srv, arn, "v")
	big := strings.Repeat("A", 10241)
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: big, CorrelationID: "too-big"})
	expectStatus(t, v, "too-big", "InvalidArgumentException")
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: big}) // no correlationId: dropped silently
	maxOK := strings.Repeat("A", 10240)
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: maxOK})
	if m := recv(t, master); m.MessagePayload != maxOK {
		t.Fatalf("master got a %d-byte payload, want the 10240-byte one", len(m.MessagePayload))
	}
}

func TestLimitSDPPerSecond(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: localkvs.Limits{ConnectsPerSecond: -1, SDPPerSecond: 0.1}})
	arn := mustCreate(t, srv, "sdp-rate")
	master := dial(t, srv, arn, "")
	v := dial(t, srv, arn, "v")
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: offer(t, "1"), CorrelationID: "1"})
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: offer(t, "2"), CorrelationID: "2"})
	expectStatus(t, v, "2", "ClientLimitExceededException")
	// ICE has its own budget.
	send(t, v, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: ice(t, "c")})
	if m := recv(t, master); m.MessageType != wire.SDPOffer {
		t.Fatalf("master got %+v", m)
	}
	if m := recv(t, master); m.MessageType != wire.ICECandidate {
		t.Fatalf("master got %+v", m)
	}
	// The master is limited too, per connection.
	send(t, master, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: offer(t, "a"), RecipientClientID: "v"})
	send(t, master, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: offer(t, "b"), RecipientClientID: "v", CorrelationID: "m2"})
	expectStatus(t, master, "m2", "ClientLimitExceededException")
}

func TestLimitICEPerSecond(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: localkvs.Limits{ConnectsPerSecond: -1, ICEPerSecond: 0.1}})
	arn := mustCreate(t, srv, "ice-rate")
	dial(t, srv, arn, "")
	v := dial(t, srv, arn, "v")
	send(t, v, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: ice(t, "1"), CorrelationID: "1"})
	send(t, v, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: ice(t, "2"), CorrelationID: "2"})
	expectStatus(t, v, "2", "ClientLimitExceededException")
}

// TestLimitIdleTimeout: the real 10-minute idle timeout, on a fake clock.
func TestLimitIdleTimeout(t *testing.T) {
	srv, clk := startClock(t, localkvs.Config{Limits: fastLimits()})
	idle := localkvs.DefaultIdleTimeout
	arn := mustCreate(t, srv, "idle")

	t.Run("messages keep it open", func(t *testing.T) {
		v := dial(t, srv, arn, "busy")
		roundTrip(t, v) // the timers are armed; a message at the start
		for range 4 {   // three idle periods, a message every 3/4 of one
			clk.Advance(idle * 3 / 4)
			roundTrip(t, v) // still open, and one more message
		}
		closing := closedAsync(v) // reads, so that pongs are received
		clk.Advance(idle - time.Second)
		ping(t, v) // a second short of the timeout: open (a ping is no message)
		select {
		case r := <-closing:
			t.Fatalf("closed with %v a second before the idle timeout", r.code)
		default:
		}
		clk.Advance(time.Second) // then silence closes it
		if r := awaitClosed(t, closing); r.code != websocket.StatusNormalClosure || len(r.frames) != 0 {
			t.Fatalf("closed with %v after %d frames", r.code, len(r.frames))
		}
	})

	t.Run("pings do not count", func(t *testing.T) {
		v := dial(t, srv, arn, "pinger")
		roundTrip(t, v)
		closing := closedAsync(v) // reads, so that pongs are received
		clk.Advance(idle / 2)
		ping(t, v)
		// The ping was answered half way; the timeout still counts from
		// the last message.
		clk.Advance(idle / 2)
		if r := awaitClosed(t, closing); r.code != websocket.StatusNormalClosure {
			t.Fatalf("closed with %v", r.code)
		}
	})
}

// ping pings c, whose frames another goroutine reads.
func ping(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
}

// TestLimitMaxConnectionDuration: the real hour and its one-minute GO_AWAY
// lead, on a fake clock.
func TestLimitMaxConnectionDuration(t *testing.T) {
	srv, clk := startClock(t, localkvs.Config{Limits: localkvs.Limits{
		ConnectsPerSecond: -1, IdleTimeout: 2 * localkvs.DefaultMaxConnectionDuration}})
	lead, max := localkvs.DefaultGoAwayLead, localkvs.DefaultMaxConnectionDuration
	arn := mustCreate(t, srv, "duration")
	v := dial(t, srv, arn, "v")
	roundTrip(t, v) // the timers are armed
	clk.Advance(max - lead - time.Second)
	roundTrip(t, v) // no GO_AWAY yet: the next frame is the answer
	clk.Advance(time.Second)
	if raw := recvRaw(t, v); string(raw) != `{"messageType":"GO_AWAY"}` {
		t.Fatalf("got %s, want a bare GO_AWAY", raw)
	}
	clk.Advance(lead - time.Second)
	roundTrip(t, v) // still open until the cut
	closing := closedAsync(v)
	clk.Advance(time.Second)
	if r := awaitClosed(t, closing); r.code != websocket.StatusNormalClosure || len(r.frames) != 0 {
		t.Fatalf("closed with %v after %d more frames", r.code, len(r.frames))
	}
}

func TestOfflineRecipientMessagesKept(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "offline")

	// viewer -> offline master; a newer offer replaces the pending one from the same sender.
	v := dial(t, srv, arn, "v")
	w := dial(t, srv, arn, "w")
	o1, o2, c1, wo := offer(t, "old"), offer(t, "new"), ice(t, "c1"), offer(t, "from w")
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: o1})
	send(t, w, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: wo, CorrelationID: "w1"})
	send(t, v, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: c1})
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: o2})
	// A round trip on v makes sure the server handled all of v's frames before the master connects.
	send(t, v, wire.ClientMessage{Action: "SYNC", MessagePayload: "x", CorrelationID: "sync"})
	expectStatus(t, v, "sync", "InvalidArgumentException")
	send(t, w, wire.ClientMessage{Action: "SYNC", MessagePayload: "x", CorrelationID: "sync"})
	expectStatus(t, w, "sync", "InvalidArgumentException")

	master := dial(t, srv, arn, "")
	// Order holds per sender (frames from two sockets may interleave either way).
	want := map[string][]wire.ServiceMessage{
		"w": {{MessageType: wire.SDPOffer, MessagePayload: wo, SenderClientID: "w"}},
		"v": {{MessageType: wire.ICECandidate, MessagePayload: c1, SenderClientID: "v"},
			{MessageType: wire.SDPOffer, MessagePayload: o2, SenderClientID: "v"}},
	}
	got := map[string][]wire.ServiceMessage{}
	for range 3 {
		m := recv(t, master)
		got[m.SenderClientID] = append(got[m.SenderClientID], m)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("kept messages %+v, want %+v", got, want)
	}

	// master -> viewer not connected yet.
	a := payload(t, map[string]string{"type": "answer", "sdp": "later"})
	send(t, master, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: a, RecipientClientID: "late"})
	send(t, master, wire.ClientMessage{Action: "SYNC", MessagePayload: "x", CorrelationID: "sync", RecipientClientID: "late"})
	expectStatus(t, master, "sync", "InvalidArgumentException")
	late := dial(t, srv, arn, "late")
	if m := recv(t, late); m.MessageType != wire.SDPAnswer || m.MessagePayload != a || m.SenderClientID != "" {
		t.Fatalf("late viewer got %+v", m)
	}
}

// TestOfflineMessagesExpireAfterTTL: a message kept for an offline master
// lives the channel's MessageTtlSeconds, on a fake clock.
func TestOfflineMessagesExpireAfterTTL(t *testing.T) {
	srv, clk := startClock(t, localkvs.Config{Limits: fastLimits()})
	kv := devClient(srv)
	arn := mustCreate(t, srv, "ttl")
	d, err := kv.DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	// The shortest TTL the API allows: 5 s.
	_, err = kv.UpdateSignalingChannel(context.Background(), &kinesisvideo.UpdateSignalingChannelInput{
		ChannelARN: aws.String(arn), CurrentVersion: d.ChannelInfo.Version,
		SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(5)},
	})
	if err != nil {
		t.Fatal(err)
	}
	v := dial(t, srv, arn, "v")
	stale, fresh := ice(t, "stale"), ice(t, "fresh")
	send(t, v, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: stale})
	roundTrip(t, v) // kept at t0
	clk.Advance(4 * time.Second)
	send(t, v, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: fresh})
	roundTrip(t, v)              // kept at t0+4s
	clk.Advance(1 * time.Second) // t0+5s: the first is 5 s old, the second 1 s
	master := dial(t, srv, arn, "")
	if m := recv(t, master); m.MessagePayload != fresh {
		t.Fatalf("master got %+v first, want only the message younger than the TTL", m)
	}
}

func TestStatusResponse(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "status")
	master := dial(t, srv, arn, "")
	// Failed without correlationId: dropped, nothing comes back.
	send(t, master, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: offer(t, "x")}) // no recipient
	// Failed with correlationId: a STATUS_RESPONSE, exactly as the real service writes it.
	send(t, master, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: offer(t, "x"), CorrelationID: "1697058567743"})
	raw := recvRaw(t, master)
	var m map[string]any
	json.Unmarshal(raw, &m)
	sr, _ := m["statusResponse"].(map[string]any)
	if len(m) != 2 || m["messageType"] != "STATUS_RESPONSE" || sr["correlationId"] != "1697058567743" ||
		sr["errorType"] != "InvalidArgumentException" || sr["statusCode"] != "400" || sr["success"] != false || sr["description"] == "" {
		t.Fatalf("got %s", raw)
	}
	// Missing payload and unknown actions too.
	send(t, master, map[string]string{"action": wire.ICECandidate, "recipientClientId": "v", "correlationId": "empty"})
	expectStatus(t, master, "empty", "InvalidArgumentException")
}

func TestMalformedFrameDropped(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "malformed")
	master := dial(t, srv, arn, "")
	v := dial(t, srv, arn, "v")
	sendRaw(t, v, []byte("this is not JSON"))
	sendRaw(t, v, []byte(`{"action": 42}`))
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	v.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	cancel()
	p := offer(t, "after garbage")
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: p})
	if m := recv(t, master); m.MessagePayload != p {
		t.Fatalf("master got %+v", m)
	}
}

func TestShutdownSendsGoAway(t *testing.T) {
	srv, err := localkvs.Start(localkvs.Config{Limits: fastLimits()}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	arn := mustCreate(t, srv, "shutdown")
	var closing []<-chan closed
	for _, id := range []string{"", "v1", "v2"} {
		closing = append(closing, closedAsync(dial(t, srv, arn, id)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, c := range closing {
		r := awaitClosed(t, c)
		if len(r.frames) != 1 || r.frames[0].MessageType != wire.GoAway || r.code != websocket.StatusGoingAway {
			t.Fatalf("got %+v then close %v, want GO_AWAY then 1001", r.frames, r.code)
		}
	}
	if _, err := srv.CreateChannel(context.Background(), "after"); err == nil {
		t.Fatal("CreateChannel after Shutdown succeeded")
	}
}

func TestDeleteChannelClosesConnections(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "deleted")
	master := dial(t, srv, arn, "")
	v := dial(t, srv, arn, "v")
	if _, err := devClient(srv).DeleteSignalingChannel(context.Background(), &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{master, v} {
		if code, _ := waitClosed(t, c); code != websocket.StatusNormalClosure {
			t.Fatalf("closed with %v", code)
		}
	}
	refused(t, srv, presign(t, srv, arn, "v", time.Now(), localkvs.DevSecretAccessKey), http.StatusNotFound, "ResourceNotFoundException")
}

func TestSlowClientDoesNotBlockOthers(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "slow")
	master := dial(t, srv, arn, "")
	slow := dial(t, srv, arn, "slow") // never reads until the end
	fast := dial(t, srv, arn, "fast")
	big := strings.Repeat("A", 10000)
	const n = 3000 // 30 MB to the slow viewer: more than its queue and the socket buffers
	got := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitTimeout)
		defer cancel()
		count := 0
		for count < n/10 {
			if _, _, err := fast.Read(ctx); err != nil {
				break
			}
			count++
		}
		got <- count
	}()
	for i := range n {
		send(t, master, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: big, RecipientClientID: "slow"})
		if i%10 == 0 {
			send(t, master, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: "small", RecipientClientID: "fast"})
		}
	}
	select {
	case c := <-got:
		if c != n/10 {
			t.Fatalf("the fast viewer got %d of %d messages", c, n/10)
		}
	case <-time.After(3 * waitTimeout): // its reader gives up after 2*waitTimeout
		t.Fatal("the fast viewer's reader never finished")
	}
	// The slow viewer was cut off: reading what was buffered ends in an error.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	frames := 0
	for {
		if _, _, err := slow.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the slow viewer was never disconnected")
			}
			break
		}
		frames++
	}
	if frames >= n {
		t.Fatalf("the slow viewer got all %d frames; it should have been cut off", frames)
	}
}

// frames reads c in a goroutine until it fails, handing each frame over;
// the channel is closed when the connection is. It never touches t, so it
// may outlive a failed test.
func frames(c *websocket.Conn) <-chan []byte {
	out := make(chan []byte, 64)
	go func() {
		defer close(out)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			out <- b
		}
	}()
	return out
}

// TestSlowRecipientDoesNotStallChannel: a master that does not read fills
// its TCP window, so the server's write to it blocks (in the goroutine of
// the viewer whose message it is). That stuck write must not hold up the
// rest of the channel: the master's own messages to another viewer still
// get through while the write to the master is provably still stuck.
func TestSlowRecipientDoesNotStallChannel(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	// The stuck write outlasts every wait of this test: it stays stuck
	// until the master reads.
	localkvs.SetInlineWriteTimeout(srv, 4*waitTimeout)
	arn := mustCreate(t, srv, "stall")
	master := dial(t, srv, arn, "") // reads nothing until the end
	sender := dial(t, srv, arn, "sender")
	other := dial(t, srv, arn, "other")
	senderIn, otherIn := frames(sender), frames(other)

	// The sender sends 10 frames of 10 KB to the master, then a probe that
	// the server answers with a STATUS_RESPONSE once its read loop for the
	// sender gets to it, again and again until a probe stays unanswered:
	// the write to the master is stuck then.
	next := make(chan bool)
	writeErr := make(chan error, 1)
	go func() {
		big := strings.Repeat("A", 10000)
		for batch := 0; <-next; batch++ {
			for range 10 {
				if err := write(sender, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: big}); err != nil {
					writeErr <- err
					return
				}
			}
			if err := write(sender, wire.ClientMessage{Action: "PROBE", MessagePayload: "x", CorrelationID: fmt.Sprint("probe-", batch)}); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	defer close(next)
	stuck := ""
	for batch := 0; stuck == ""; batch++ {
		if batch == 1000 { // 100 MB
			t.Fatal("the master's socket never filled")
		}
		next <- true
		probe := fmt.Sprint("probe-", batch)
		select {
		case b, ok := <-senderIn:
			if !ok || !strings.Contains(string(b), `"correlationId":"`+probe+`"`) {
				t.Fatalf("sender got %s (open %v), want the STATUS_RESPONSE of %s", b, ok, probe)
			}
		case err := <-writeErr:
			t.Fatalf("sending to the server: %v", err)
		case <-time.After(500 * time.Millisecond):
			// Unanswered: the read loop is blocked writing to the master
			// (a probe is answered within a millisecond otherwise; 500 ms
			// leaves room for a loaded machine).
			stuck = probe
		}
	}

	// The master is a recipient that does not read; the other viewer's
	// messages from the master must not wait for it.
	p := ice(t, "to the other viewer")
	send(t, master, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: p, RecipientClientID: "other"})
	select {
	case b := <-otherIn:
		if !strings.Contains(string(b), p) {
			t.Fatalf("other viewer got %s", b)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the other viewer got nothing in %s while the write to the master was stuck", waitTimeout)
	}
	// ... and the write to the master was still stuck then.
	select {
	case b := <-senderIn:
		t.Fatalf("the sender got %s: the write to the master was not stuck", b)
	default:
	}

	// Once the master reads, the stuck write completes and the sender's
	// read loop answers the probe: nothing was lost or cut.
	masterIn := frames(master)
	go func() {
		for range masterIn {
		}
	}()
	select {
	case b, ok := <-senderIn:
		if !ok || !strings.Contains(string(b), `"correlationId":"`+stuck+`"`) {
			t.Fatalf("sender got %s (open %v), want the STATUS_RESPONSE of %s", b, ok, stuck)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the write to the master did not complete within %s of the master reading", waitTimeout)
	}
}

// write sends m on c, for goroutines that must not call t.Fatal.
func write(c *websocket.Conn, m any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*waitTimeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, b)
}
