package barerelay_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/bench/relay/internal/barerelay"
)

// A viewer's offer reaches the master with the viewer's id added, and the
// master's answer reaches the viewer it names.
func Example() {
	srv := httptest.NewServer(barerelay.New())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := "ws" + strings.TrimPrefix(srv.URL, "http") + "/?X-Amz-ChannelARN=ch1"
	master, _, err := websocket.Dial(ctx, base, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer master.CloseNow()
	viewer, _, err := websocket.Dial(ctx, base+"&X-Amz-ClientId=v1", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer viewer.CloseNow()

	// The relay registers a connection just after its upgrade, and drops a
	// frame for an absent recipient: the viewer offers until the master has
	// one. The master answers what it received, so the viewer is registered.
	got1 := make(chan struct{})
	go func() {
		for {
			_ = viewer.Write(ctx, websocket.MessageText, []byte(`{"action":"SDP_OFFER","messagePayload":"b2ZmZXI="}`))
			select {
			case <-got1:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	_, got, err := master.Read(ctx)
	close(got1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(got))
	_ = master.Write(ctx, websocket.MessageText, []byte(`{"action":"SDP_ANSWER","messagePayload":"YW5zd2Vy","recipientClientId":"v1"}`))
	_, got, err = viewer.Read(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(got))
	// Output:
	// {"messageType":"SDP_OFFER","messagePayload":"b2ZmZXI=","senderClientId":"v1"}
	// {"messageType":"SDP_ANSWER","messagePayload":"YW5zd2Vy"}
}
