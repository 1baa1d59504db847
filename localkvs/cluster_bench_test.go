//go:build unix

package localkvs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"syscall"
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

// BenchmarkClusterThroughput: 50 channels, each with a master on node A
// and a viewer (on A: SameNode; on B: AcrossNodes) writing ICE candidates
// as fast as the master reads them. It reports msg/s and the CPU time of
// the whole test process (servers, NATS and clients) per message: the
// difference between the two is what crossing the nodes costs.
func BenchmarkClusterThroughput(b *testing.B) {
	tc := startCluster(b, "kvs-tp", 14681, fastLimits())
	for _, bc := range []struct {
		name   string
		viewer int
	}{{"SameNode", 0}, {"AcrossNodes", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			const pairs = 50
			type pair struct{ m, v *websocket.Conn }
			var ps []pair
			for i := 0; i < pairs; i++ {
				arn, err := tc.nodes[0].CreateChannel(ctx, fmt.Sprintf("tp.%s.%d.%d", bc.name, b.N, i))
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
				ps = append(ps, pair{dial(tc.nodes[0], ""), dial(tc.nodes[bc.viewer], "v")})
			}
			msg := []byte(`{"action":"ICE_CANDIDATE","messagePayload":"eyJjYW5kaWRhdGUiOiJjIn0="}`)
			per := b.N/pairs + 1
			b.ResetTimer()
			cpu0, t0 := processCPU(), time.Now()
			var wg sync.WaitGroup
			for _, p := range ps {
				wg.Add(2)
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if err := p.v.Write(ctx, websocket.MessageText, msg); err != nil {
							b.Error(err)
							return
						}
					}
				}()
				go func() {
					defer wg.Done()
					for i := 0; i < per; i++ {
						if _, _, err := p.m.Read(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			n := float64(per * pairs)
			b.ReportMetric(n/time.Since(t0).Seconds(), "msg/s")
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/n, "cpu-us/msg")
		})
	}
}

// processCPU is the CPU time of this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
