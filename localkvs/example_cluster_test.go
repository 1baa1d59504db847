package localkvs_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// Three nodes of one service, each with an embedded NATS server; the three
// NATS servers form a JetStream cluster over their routes. A channel made
// on one node is there on the others, and a master on one node talks to
// viewers on the others (docs/cluster.md).
func ExampleClusterConfig() {
	routes := []string{"127.0.0.1:14661", "127.0.0.1:14662", "127.0.0.1:14663"}
	var nodes []*localkvs.Server
	for i, listen := range routes {
		srv, err := localkvs.Start(localkvs.Config{
			Cluster: localkvs.ClusterConfig{
				Name:     "example",
				Listen:   listen,
				Routes:   routes,
				NodeName: fmt.Sprintf("node-%d", i+1),
			},
		}, "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		defer srv.Close()
		nodes = append(nodes, srv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range nodes {
		if err := n.WaitReady(ctx); err != nil { // JetStream has its quorum
			log.Fatal(err)
		}
	}
	arn, err := nodes[0].CreateChannel(ctx, "front.door")
	if err != nil {
		log.Fatal(err)
	}
	kv := kinesisvideo.NewFromConfig(nodes[2].AWSConfig())
	out, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("node 3 describes", aws.ToString(out.ChannelInfo.ChannelName))
	resp, err := http.Get(nodes[1].URL() + "/readyz")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println("node 2 /readyz:", resp.StatusCode)
	// Output:
	// node 3 describes front.door
	// node 2 /readyz: 200
}

// WaitReady returns once the server takes requests: at once for a single
// server, once JetStream has its buckets for a cluster node.
func ExampleServer_WaitReady() {
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if err := srv.WaitReady(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready")
	// Output: ready
}
