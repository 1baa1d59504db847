package wire_test

import (
	"encoding/json"
	"fmt"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// A viewer's offer as the service forwards it to the master.
func Example() {
	payload, _ := wire.EncodePayload(map[string]string{"type": "offer", "sdp": "v=0"})
	frame, _ := json.Marshal(wire.ServiceMessage{
		MessageType:    wire.SDPOffer,
		MessagePayload: payload,
		SenderClientID: "viewer-1",
	})
	fmt.Println(string(frame))
	// Output:
	// {"messageType":"SDP_OFFER","messagePayload":"eyJzZHAiOiJ2PTAiLCJ0eXBlIjoib2ZmZXIifQ==","senderClientId":"viewer-1"}
}
