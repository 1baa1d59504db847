package faultws_test

import (
	"context"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/faultws"
)

// A service that sends GO_AWAY every 50 ms: a client should connect again.
func Example() {
	srv := faultws.New(faultws.Mode{GoAwayEvery: 50 * time.Millisecond})
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, srv.Endpoint(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	_, frame, err := c.Read(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(frame), srv.Opens())
	// Output: {"messageType":"GO_AWAY"} 1
}
