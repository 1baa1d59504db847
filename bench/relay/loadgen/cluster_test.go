package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// TestSmokeCluster runs the relay load and the recovery run against three
// in-process cluster nodes (routes on 14641-14643); the recovery run's
// "kill" closes node 2 (Close: its connections cut without GO_AWAY).
func TestSmokeCluster(t *testing.T) {
	var routes []string
	for i := 0; i < 3; i++ {
		routes = append(routes, fmt.Sprintf("127.0.0.1:%d", 14641+i))
	}
	var urls []string
	var nodes []*localkvs.Server
	for i := 0; i < 3; i++ {
		srv, err := localkvs.Start(localkvs.Config{Cluster: localkvs.ClusterConfig{
			Name: "loadgen-test", Listen: routes[i], Routes: routes, NodeName: fmt.Sprint("n", i+1)}}, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		nodes = append(nodes, srv)
		urls = append(urls, srv.URL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range nodes {
		if err := n.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cfg := smoke(urls[0], false)
	cfg.wssFor = func(p *peer) string { return wssOf(spreadNode(urls, p)) }
	res, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkSmoke(t, res)

	rec, err := runRecovery(ctx, recoveryConfig{endpoints: urls, region: localkvs.DefaultRegion, channels: 3, viewers: 2, rate: 8,
		before: time.Second, after: 2 * time.Second, log: testWriter{t}, kill: func(i int) error { return nodes[i].Close() }})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Clients == 0 || rec.Reconnected != rec.Clients || rec.OnlineLost != 0 || rec.OnlineSent == 0 {
		t.Fatalf("recovery: %+v", rec)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("%s", p); return len(p), nil }
