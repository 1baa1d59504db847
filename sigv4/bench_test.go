package sigv4

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// BenchmarkPresignURL measures one viewer URL with a session token, the
// common case for a device on temporary credentials.
func BenchmarkPresignURL(b *testing.B) {
	p, _ := New("us-west-2", StaticCredentials("AKIA4F7WJQR7FMMWMNXI", "FakeSecretKey", "FakeSessionTokenFakeSessionTokenFakeSessionToken"))
	q := map[string]string{
		ParamChannelARN: "arn:aws:kinesisvideo:us-west-2:123456789012:channel/demo-channel/1234567890123",
		ParamClientID:   "viewer-0123456789",
	}
	at := time.Date(2019, 12, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.PresignURL(ctx, "wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com", q, at); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPresigned(b *testing.B) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p, _ := New("us-west-2", StaticCredentials(testKey, testSecret, ""), AllowInsecureEndpoint())
	s, _ := p.PresignURL(context.Background(), "ws://127.0.0.1:4566", map[string]string{ParamChannelARN: "arn:aws:kinesisvideo:us-west-2:000000000000:channel/demo/1"}, now)
	u, _ := url.Parse(s)
	v := &Verifier{Lookup: lookup, Now: func() time.Time { return now }}
	q := u.Query()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyPresigned(u.Host, "/", q); err != nil {
			b.Fatal(err)
		}
	}
}
