package peer_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// A master streams the embedded test clip through the local KVS-compatible
// service, and a viewer receives it.
func Example() {
	// Both peers run on this machine: the TURN relays must reach loopback peers.
	srv, err := localkvs.Start(localkvs.Config{TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// In a program: config.LoadDefaultConfig(ctx) with AWS_ENDPOINT_URL,
	// AWS_REGION and the keys in the environment (or real KVS).
	awsCfg := srv.AWSConfig()

	master, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsCfg, Channel: "front-door", CreateIfMissing: true},
		Video:         media.DefaultVideo(media.Options{Loop: true}),
		Audio:         media.DefaultAudio(media.Options{Loop: true}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer master.Close()
	if err := master.Start(ctx); err != nil {
		log.Fatal(err)
	}

	viewer, err := peer.NewViewer(ctx, peer.ViewerConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsCfg, Channel: "front-door"},
		ClientID:      "viewer-1",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer viewer.Close()
	if err := viewer.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := viewer.WaitFirstFrame(ctx); err != nil {
		log.Fatal(err)
	}
	// viewer.Stats() and master.Stats() give the timings and counters.
	fmt.Println("first frame received")
	// Output: first frame received
}
