package signaling

import (
	"testing"

	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// FuzzServiceFrame hands arbitrary frames from the service to the client's
// frame decoder (issue 13): it must not panic, whatever the frame, and the
// events it queues are delivered. Seed corpus: testdata/fuzz/FuzzServiceFrame.
func FuzzServiceFrame(f *testing.F) {
	for _, seed := range []string{
		`{"messageType":"SDP_OFFER","messagePayload":"eyJ0eXBlIjoib2ZmZXIiLCJzZHAiOiJ2PTBcclxuIn0=","senderClientId":"viewer-1"}`,
		`{"messageType":"ICE_CANDIDATE","messagePayload":"eyJjYW5kaWRhdGUiOiJjYW5kaWRhdGU6MSAxIHVkcCAxIDEyNy4wLjAuMSA5IHR5cCBob3N0Iiwic2RwTWlkIjoiMCIsInNkcE1MaW5lSW5kZXgiOjB9"}`,
		`{"messageType":"STATUS_RESPONSE","statusResponse":{"correlationId":"c","success":false,"errorType":"X","statusCode":"400","description":"d"}}`,
		`{"messageType":"STATUS_RESPONSE"}`,
		`{"messageType":"GO_AWAY"}`, `{"messageType":"RECONNECT_ICE_SERVER"}`,
		`{"messageType":"SDP_ANSWER","messagePayload":"!!"}`,
		`{"messageType":"SDP_ANSWER","messagePayload":"bnVsbA=="}`,
		`{"messageType":"X"}`, `{`, `null`,
	} {
		f.Add([]byte(seed))
	}
	c, err := New(Config{
		ChannelARN:            "arn:aws:kinesisvideo:us-west-2:000000000000:channel/fuzz/1",
		ChannelEndpoint:       "ws://127.0.0.1:1",
		Region:                "us-west-2",
		Role:                  RoleMaster,
		Credentials:           sigv4.StaticCredentials("AKID", "secret", ""),
		AllowInsecureEndpoint: true,
	})
	if err != nil {
		f.Fatal(err)
	}
	delivered := make(chan struct{}, 1)
	c.OnStatusResponse(func(StatusResponse) {})
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &session{goAway: make(chan struct{}, 1)}
		c.handleFrame(s, data)
		c.disp.push(func() { delivered <- struct{}{} })
		<-delivered // every event queued so far was delivered without a panic
	})
}
