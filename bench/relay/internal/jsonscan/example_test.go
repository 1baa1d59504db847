package jsonscan_test

import (
	"fmt"

	"github.com/kvswebrtc/kvswebrtc/bench/relay/internal/jsonscan"
)

func ExampleField() {
	frame := []byte(`{"action":"ICE_CANDIDATE","messagePayload":"e30=","recipientClientId":"viewer-1"}`)
	fmt.Printf("%s %s\n", jsonscan.Field(frame, []byte(`"action":"`)), jsonscan.Field(frame, []byte(`"recipientClientId":"`)))
	// Output: ICE_CANDIDATE viewer-1
}
