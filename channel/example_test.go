package channel_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// Resolve a channel on the local KVS-compatible service, creating it, then
// open its signaling client and get the peer connection's configuration.
func ExampleResolver_Resolve() {
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	// In a program: config.LoadDefaultConfig(ctx) with AWS_ENDPOINT_URL,
	// AWS_REGION and the keys in the environment.
	awsCfg := srv.AWSConfig()

	r, err := channel.NewResolver(awsCfg, channel.ResolverOptions{})
	if err != nil {
		log.Fatal(err)
	}
	res, err := r.Resolve(ctx, "front-door", channel.RoleViewer, channel.Options{
		CreateIfMissing: true,
		ClientID:        "viewer-1",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.ChannelName(), res.Role(), res.ClientID())

	// The signaling client of the channel, with a setting of our own.
	cfg := res.SignalingConfig()
	cfg.DialTimeout = 3 * time.Second
	client, err := signaling.New(cfg)
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Open(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	fmt.Println(cfg.ChannelEndpoint == srv.WSSEndpoint(), cfg.AllowInsecureEndpoint, client.State())

	// The peer connection's configuration, relayed through TURN only.
	pc := res.WebRTCConfiguration(channel.TURNOnly)
	fmt.Println(pc.ICETransportPolicy)
	// Output:
	// front-door VIEWER viewer-1
	// true true open
	// relay
}

// The STUN server of a region, in its plain, China, dual-stack and FIPS forms.
func ExampleSTUNURL() {
	fmt.Println(channel.STUNURL("us-west-2", false, false))
	fmt.Println(channel.STUNURL("cn-north-1", false, false))
	fmt.Println(channel.STUNURL("us-west-2", false, true))
	fmt.Println(channel.STUNURL("us-gov-west-1", true, false))
	// Output:
	// stun:stun.kinesisvideo.us-west-2.amazonaws.com:443
	// stun:stun.kinesisvideo.cn-north-1.amazonaws.com.cn:443
	// stun:stun.kinesisvideo.us-west-2.api.aws:443
	// stuns:stun.kinesisvideo-fips.us-gov-west-1.amazonaws.com:443
}
