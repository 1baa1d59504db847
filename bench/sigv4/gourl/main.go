// Command gourl prints the URL that the Go sigv4 presigner produces for the
// inputs of BenchmarkPresignURL (sigv4/bench_test.go), so bench/sigv4/run.sh
// can compare it byte for byte with the official JS SDK's URL.
//
// The credentials are fake, so printing the whole URL (signature included)
// is harmless here.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

func main() {
	p, err := sigv4.New("us-west-2", sigv4.StaticCredentials(
		"AKIA4F7WJQR7FMMWMNXI", "FakeSecretKey", "FakeSessionTokenFakeSessionTokenFakeSessionToken"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "gourl:", err)
		os.Exit(1)
	}
	q := map[string]string{
		sigv4.ParamChannelARN: "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-channel/1234567890123",
		sigv4.ParamClientID:   "viewer-0123456789",
	}
	at := time.Date(2019, 12, 1, 0, 0, 0, 0, time.UTC)
	u, err := p.PresignURL(context.Background(), "wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com", q, at)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gourl:", err)
		os.Exit(1)
	}
	fmt.Println(u)
}
