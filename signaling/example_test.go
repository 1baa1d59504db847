package signaling_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// A master and a viewer exchange an offer, an answer and a candidate through
// the local KVS-compatible service. Against real KVS, take the channel ARN
// and the WSS endpoint from DescribeSignalingChannel and
// GetSignalingChannelEndpoint (see package channel) and the credentials from
// config.LoadDefaultConfig.
func Example() {
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	arn, err := srv.CreateChannel(ctx, "example")
	if err != nil {
		log.Fatal(err)
	}
	creds := sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, "")

	master, err := signaling.New(signaling.Config{
		Role:                  signaling.RoleMaster,
		ChannelARN:            arn,
		ChannelEndpoint:       srv.WSSEndpoint(), // ws:// here: the service runs without TLS
		AllowInsecureEndpoint: true,
		Region:                srv.Region(),
		Credentials:           creds,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer master.Close()
	// The master answers each viewer's offer, addressed by the viewer's id.
	master.OnSDPOffer(func(offer webrtc.SessionDescription, viewerID string) {
		fmt.Printf("master: %s from %s\n", offer.Type, viewerID)
		answer := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "v=0 ..."}
		if err := master.SendSDPAnswer(answer, signaling.WithRecipient(viewerID)); err != nil {
			log.Print(err)
		}
	})
	gotCandidate := make(chan struct{})
	master.OnICECandidate(func(c webrtc.ICECandidateInit, viewerID string) {
		fmt.Printf("master: candidate %q from %s\n", c.Candidate, viewerID)
		close(gotCandidate)
	})
	if err := master.Open(ctx); err != nil {
		log.Fatal(err)
	}

	viewer, err := signaling.New(signaling.Config{
		Role:                  signaling.RoleViewer,
		ClientID:              "viewer-1",
		ChannelARN:            arn,
		ChannelEndpoint:       srv.WSSEndpoint(),
		AllowInsecureEndpoint: true,
		Region:                srv.Region(),
		Credentials:           creds,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer viewer.Close()
	// The two clients deliver their events on their own goroutines; the
	// example waits for each side so that its output has one order.
	answered := make(chan string, 1)
	viewer.OnSDPAnswer(func(answer webrtc.SessionDescription, from string) {
		answered <- fmt.Sprintf("viewer: %s from the master (sender %q)", answer.Type, from)
	})
	if err := viewer.Open(ctx); err != nil {
		log.Fatal(err)
	}
	// A candidate sent before the offer is held by the master's client until
	// the offer has been delivered.
	if err := viewer.SendICECandidate(webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host"}); err != nil {
		log.Fatal(err)
	}
	if err := viewer.SendSDPOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0 ..."}); err != nil {
		log.Fatal(err)
	}
	select {
	case <-gotCandidate:
	case <-time.After(10 * time.Second):
		log.Fatal("the master got no candidate")
	}
	select {
	case a := <-answered:
		fmt.Println(a)
	case <-time.After(10 * time.Second):
		log.Fatal("the viewer got no answer")
	}
	// Output:
	// master: offer from viewer-1
	// master: candidate "candidate:1 1 udp 2130706431 192.0.2.1 50000 typ host" from viewer-1
	// viewer: answer from the master (sender "")
}
