package localkvs_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// BenchmarkClusterRelay: a viewer on node B sends ICE candidates to its
// master on node A, which reads them: one message per iteration, from the
// viewer's write to the master's read, across the two nodes' NATS servers
// (routes on 14671-14673). Run it with -cpuprofile to see where a relayed
// message's time goes.
func BenchmarkClusterRelay(b *testing.B) {
	tc := startCluster(b, "kvs-bench", 14671, fastLimits())
	ctx := context.Background()
	arn, err := tc.nodes[0].CreateChannel(ctx, "bench.relay")
	if err != nil {
		b.Fatal(err)
	}
	dial := func(srv *localkvs.Server, id string) *websocket.Conn {
		p, _ := sigv4.New(srv.Region(), sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""), sigv4.AllowInsecureEndpoint())
		q := map[string]string{sigv4.ParamChannelARN: arn}
		if id != "" {
			q[sigv4.ParamClientID] = id
		}
		u, _ := p.PresignURL(ctx, srv.WSSEndpoint(), q, time.Now())
		c, _, err := websocket.Dial(ctx, u, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.CloseNow() })
		return c
	}
	m := dial(tc.nodes[0], "")
	v := dial(tc.nodes[1], "v")
	msg := []byte(`{"action":"ICE_CANDIDATE","messagePayload":"eyJjYW5kaWRhdGUiOiJjIn0="}`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := v.Write(ctx, websocket.MessageText, msg); err != nil {
			b.Fatal(err)
		}
		_, data, err := m.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var got wire.ServiceMessage
		if json.Unmarshal(data, &got); got.MessageType != wire.ICECandidate {
			b.Fatalf("got %s", data)
		}
	}
}
