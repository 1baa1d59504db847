package localkvs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// BenchmarkRelay measures one viewer->master relay (send, route, receive),
// with one channel per parallel goroutine.
func BenchmarkRelay(b *testing.B) {
	srv, err := localkvs.Start(localkvs.Config{Limits: localkvs.Limits{ConnectsPerSecond: -1, SDPPerSecond: -1, ICEPerSecond: -1}}, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	p, _ := sigv4.New(srv.Region(), sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""), sigv4.AllowInsecureEndpoint())
	connect := func(arn, id string) *websocket.Conn {
		q := map[string]string{sigv4.ParamChannelARN: arn}
		if id != "" {
			q[sigv4.ParamClientID] = id
		}
		u, _ := p.PresignURL(ctx, srv.WSSEndpoint(), q, time.Now())
		c, _, err := websocket.Dial(ctx, u, nil)
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	pl, _ := wire.EncodePayload(map[string]any{"candidate": "candidate:1 1 udp 2122260223 192.168.1.10 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0})
	frame, _ := json.Marshal(wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: pl})
	var n atomic.Int32
	b.SetBytes(int64(len(frame)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		arn, err := srv.CreateChannel(ctx, fmt.Sprint("bench-", n.Add(1)))
		if err != nil {
			b.Error(err)
			return
		}
		m, v := connect(arn, ""), connect(arn, "v")
		defer m.CloseNow()
		defer v.CloseNow()
		for pb.Next() {
			if err := v.Write(ctx, websocket.MessageText, frame); err != nil {
				b.Error(err)
				return
			}
			if _, _, err := m.Read(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
