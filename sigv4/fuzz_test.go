package sigv4

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Fuzz targets of the verifier (issue 13): whatever a client sends, the
// verifier returns an error or an identity, never panics, never puts the
// secret into an error, and accepts a request only as it was signed. Seed
// corpora: testdata/fuzz/FuzzVerifyPresigned, testdata/fuzz/FuzzVerifyHeaders.

var fuzzNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// FuzzVerifyPresigned verifies arbitrary presigned queries, hosts and paths.
func FuzzVerifyPresigned(f *testing.F) {
	p, err := New("us-west-2", StaticCredentials(testKey, testSecret, testToken), AllowInsecureEndpoint())
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := p.PresignURL(context.Background(), "ws://127.0.0.1:4566",
		map[string]string{ParamChannelARN: "arn:aws:kinesisvideo:us-west-2:000000000000:channel/demo/1", ParamClientID: "viewer-1"}, fuzzNow)
	if err != nil {
		f.Fatal(err)
	}
	gu, _ := url.Parse(genuine)
	f.Add(gu.RawQuery, gu.Host, gu.EscapedPath())
	f.Add(strings.Replace(gu.RawQuery, "viewer-1", "viewer-2", 1), gu.Host, "/")
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb", "h", "/")
	v := &Verifier{Lookup: lookup, Region: "us-west-2", Now: func() time.Time { return fuzzNow.Add(time.Minute) }}
	other := &Verifier{Lookup: func(string) (string, bool) { return "another-secret", true }, Now: v.Now}
	f.Fuzz(func(t *testing.T, rawQuery, host, path string) {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		id, err := v.VerifyPresigned(host, path, q)
		if err != nil {
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error carries the secret: %v", err)
			}
			return
		}
		if id.AccessKeyID != testKey {
			t.Fatalf("accepted for key %q", id.AccessKeyID)
		}
		if _, err := other.VerifyPresigned(host, path, q); err == nil {
			t.Fatalf("the same URL verifies under another secret: %q", rawQuery)
		}
		if host != gu.Host {
			t.Fatalf("accepted for host %q, signed for %q", host, gu.Host)
		}
	})
}

// FuzzVerifyHeaders verifies requests whose method, path, Authorization,
// date, payload hash header and body are arbitrary. A request carrying the
// genuine signature of one body may pass only with that very body, method
// and path.
func FuzzVerifyHeaders(f *testing.F) {
	body := `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:000000000000:channel/a/1"}`
	req, _ := http.NewRequest("POST", "http://127.0.0.1:4566/deleteSignalingChannel", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret},
		req, sha256Hex([]byte(body)), "kinesisvideo", "us-west-2", fuzzNow); err != nil {
		f.Fatal(err)
	}
	auth, date := req.Header.Get("Authorization"), req.Header.Get("X-Amz-Date")
	f.Add("POST", "/deleteSignalingChannel", auth, date, "", body)
	f.Add("POST", "/deleteSignalingChannel", auth, date, sha256Hex([]byte(body)), `{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:000000000000:channel/b/2"}`)
	f.Add("POST", "/deleteSignalingChannel", auth, date, "UNSIGNED-PAYLOAD", "")
	f.Add("GET", "/", "AWS4-HMAC-SHA256 Credential=x", date, "", "")
	v := &Verifier{Lookup: lookup, Region: "us-west-2", Now: func() time.Time { return fuzzNow.Add(time.Minute) }}
	f.Fuzz(func(t *testing.T, method, path, authz, amzDate, contentHash, b string) {
		if !strings.HasPrefix(path, "/") {
			return
		}
		r, err := http.NewRequest(method, "http://127.0.0.1:4566"+path, bytes.NewReader([]byte(b)))
		if err != nil {
			return
		}
		r.Host = "127.0.0.1:4566"
		r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		r.Header.Set("Authorization", authz)
		r.Header.Set("X-Amz-Date", amzDate)
		if contentHash != "" {
			r.Header.Set("X-Amz-Content-Sha256", contentHash)
		}
		_ = v.PrecheckHeaders(r)
		_, err = v.VerifyHeaders(r, []byte(b))
		if err != nil {
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error carries the secret: %v", err)
			}
			return
		}
		if b != body || method != "POST" || r.URL.EscapedPath() != "/deleteSignalingChannel" {
			t.Fatalf("a signature of one request verified another: %s %s %q", method, path, b)
		}
	})
}
