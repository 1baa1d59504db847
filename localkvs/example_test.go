package localkvs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"regexp"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// Start a local service, create a channel with the AWS SDK, and relay an
// SDP offer from a viewer to the master over the signaling WebSocket.
func Example() {
	ctx := context.Background()
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown(ctx)

	// The control plane is the one aws-sdk-go-v2 knows.
	awsCfg := srv.AWSConfig()
	kv := kinesisvideo.NewFromConfig(awsCfg)
	out, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("front-door")})
	if err != nil {
		log.Fatal(err)
	}
	arn := aws.ToString(out.ChannelARN)

	// Signaling: presigned WebSocket URLs, no X-Amz-ClientId for the master.
	signer, _ := sigv4.New(srv.Region(), awsCfg.Credentials, sigv4.AllowInsecureEndpoint())
	connect := func(clientID string) *websocket.Conn {
		q := map[string]string{sigv4.ParamChannelARN: arn}
		if clientID != "" {
			q[sigv4.ParamClientID] = clientID
		}
		u, err := signer.PresignURL(ctx, srv.WSSEndpoint(), q, time.Now())
		if err != nil {
			log.Fatal(err)
		}
		c, _, err := websocket.Dial(ctx, u, nil)
		if err != nil {
			log.Fatal(err)
		}
		return c
	}
	master := connect("")
	defer master.CloseNow()
	viewer := connect("viewer-1")
	defer viewer.CloseNow()

	payload, _ := wire.EncodePayload(map[string]string{"type": "offer", "sdp": "v=0\r\n"})
	frame, _ := json.Marshal(wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: payload})
	viewer.Write(ctx, websocket.MessageText, frame)

	_, b, err := master.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var m wire.ServiceMessage
	json.Unmarshal(b, &m)
	fmt.Println(m.MessageType, "from", m.SenderClientID)
	// Output: SDP_OFFER from viewer-1
}

// AWSConfig points aws-sdk-go-v2 at the server: region, endpoint,
// credentials and, with TLS, an HTTP client that trusts the server's CA.
func ExampleServer_AWSConfig() {
	ctx := context.Background()
	srv, err := localkvs.Start(localkvs.Config{TLS: true}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	kv := kinesisvideo.NewFromConfig(srv.AWSConfig())
	if _, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("garage")}); err != nil {
		log.Fatal(err)
	}
	d, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("garage")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(aws.ToString(d.ChannelInfo.ChannelName), d.ChannelInfo.ChannelStatus)
	// Output: garage ACTIVE
}

// The embedded TURN/STUN server listens on the service's IP; its URIs are
// what GetIceServerConfig lists, with per-channel credentials.
func ExampleServer_TURNURLs() {
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	port := regexp.MustCompile(`:\d+\?`)
	for _, u := range srv.TURNURLs() {
		fmt.Println(port.ReplaceAllString(u, ":PORT?"))
	}
	// Output:
	// turn:127.0.0.1:PORT?transport=udp
	// turn:127.0.0.1:PORT?transport=tcp
}

// RECONNECT_ICE_SERVER can be sent to a channel's clients at will, to test
// how they handle it.
func ExampleServer_ReconnectICEServer() {
	ctx := context.Background()
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	arn, err := srv.CreateChannel(ctx, "porch")
	if err != nil {
		log.Fatal(err)
	}
	signer, _ := sigv4.New(srv.Region(), srv.AWSConfig().Credentials, sigv4.AllowInsecureEndpoint())
	u, err := signer.PresignURL(ctx, srv.WSSEndpoint(), map[string]string{sigv4.ParamChannelARN: arn}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	master, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer master.CloseNow()

	if err := srv.ReconnectICEServer(ctx, arn); err != nil {
		log.Fatal(err)
	}
	_, b, err := master.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output: {"messageType":"RECONNECT_ICE_SERVER"}
}
