package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestVerifyHeadersBodyHash: the payload hash is part of what is signed, so
// VerifyHeaders must hash the body it is given and compare it with the hash
// in the canonical request. An X-Amz-Content-Sha256 header the signer did not
// sign must not let a captured signature carry another body (issue 13,
// defect 1), and UNSIGNED-PAYLOAD must not carry any body at all.
func TestVerifyHeadersBodyHash(t *testing.T) {
	now := time.Now().UTC()
	bodyA := []byte(`{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:000000000000:channel/a/1"}`)
	bodyB := []byte(`{"ChannelARN":"arn:aws:kinesisvideo:us-west-2:000000000000:channel/b/2"}`)
	v := &Verifier{Lookup: lookup, Region: "us-west-2"}
	var gotErr error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(bytes.Buffer)
		b.ReadFrom(r.Body)
		_, gotErr = v.VerifyHeaders(r, b.Bytes())
	}))
	defer srv.Close()

	// sign signs a request with body and payloadHash (what the signer put
	// in the canonical request), optionally signing X-Amz-Content-Sha256
	// too, then sends sent as the body after mutate.
	do := func(body []byte, payloadHash string, signHashHeader bool, sent []byte, mutate func(*http.Request)) error {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/deleteSignalingChannel", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		if signHashHeader {
			req.Header.Set("X-Amz-Content-Sha256", payloadHash)
		}
		err := v4.NewSigner().SignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req, payloadHash, "kinesisvideo", "us-west-2", now)
		if err != nil {
			t.Fatal(err)
		}
		// Replay: the captured headers with another body.
		req2, _ := http.NewRequest("POST", srv.URL+"/deleteSignalingChannel", bytes.NewReader(sent))
		req2.Header = req.Header.Clone()
		if mutate != nil {
			mutate(req2)
		}
		resp, err := http.DefaultClient.Do(req2)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return gotErr
	}

	if err := do(bodyA, sha256Hex(bodyA), false, bodyA, nil); err != nil {
		t.Fatalf("genuine request refused: %v", err)
	}
	if err := do(bodyA, sha256Hex(bodyA), true, bodyA, nil); err != nil {
		t.Fatalf("genuine request with a signed X-Amz-Content-Sha256 refused: %v", err)
	}
	// Tampered body without the header trick: the signature fails.
	if err := do(bodyA, sha256Hex(bodyA), false, bodyB, nil); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("tampered body: got %v, want ErrSignatureMismatch", err)
	}
	// The replay of defect 1: body B plus an unsigned header naming A's hash.
	addHash := func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", sha256Hex(bodyA)) }
	if err := do(bodyA, sha256Hex(bodyA), false, bodyB, addHash); !errors.Is(err, ErrPayloadHashMismatch) {
		t.Errorf("body B with A's hash in an unsigned header: got %v, want ErrPayloadHashMismatch", err)
	}
	// The same with the header signed: still B is not what was signed.
	if err := do(bodyA, sha256Hex(bodyA), true, bodyB, nil); !errors.Is(err, ErrPayloadHashMismatch) {
		t.Errorf("body B with A's signed hash: got %v, want ErrPayloadHashMismatch", err)
	}
	// UNSIGNED-PAYLOAD, signed or not, carries no body.
	if err := do(bodyA, "UNSIGNED-PAYLOAD", true, bodyB, nil); !errors.Is(err, ErrPayloadHashMismatch) {
		t.Errorf("UNSIGNED-PAYLOAD with a body: got %v, want ErrPayloadHashMismatch", err)
	}
	if err := do(bodyA, "UNSIGNED-PAYLOAD", false, bodyA, func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") }); !errors.Is(err, ErrPayloadHashMismatch) {
		t.Errorf("unsigned UNSIGNED-PAYLOAD header: got %v, want ErrPayloadHashMismatch", err)
	}
	// A malformed hash header is a mismatch too, and an upper-case one is
	// not the hash that was signed.
	if err := do(bodyA, sha256Hex(bodyA), false, bodyA, func(r *http.Request) { r.Header.Set("X-Amz-Content-Sha256", "zz") }); !errors.Is(err, ErrPayloadHashMismatch) {
		t.Errorf("malformed hash header: got %v, want ErrPayloadHashMismatch", err)
	}
}

// TestPrecheckHeaders: the checks that need no body refuse what nobody with
// a known key could have signed, and pass a genuine request.
func TestPrecheckHeaders(t *testing.T) {
	now := time.Now().UTC()
	v := &Verifier{Lookup: lookup, Region: "us-west-2"}
	signed := func(akid string, at time.Time) *http.Request {
		req, _ := http.NewRequest("POST", "http://127.0.0.1:4566/describeSignalingChannel", nil)
		err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: "x"},
			req, sha256Hex(nil), "kinesisvideo", "us-west-2", at)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	if err := v.PrecheckHeaders(signed(testKey, now)); err != nil {
		t.Fatalf("genuine shape refused: %v", err)
	}
	cases := []struct {
		name string
		r    *http.Request
		want error
	}{
		{"unknown key", signed("AKIDUNKNOWN", now), ErrUnknownAccessKey},
		{"skewed", signed(testKey, now.Add(-time.Hour)), ErrClockSkew},
	}
	noAuth := signed(testKey, now)
	noAuth.Header.Del("Authorization")
	cases = append(cases, struct {
		name string
		r    *http.Request
		want error
	}{"no auth", noAuth, ErrMissingAuth})
	for _, h := range []struct{ name, auth string }{
		{"garbage", "Bearer x"},
		{"no fields", "AWS4-HMAC-SHA256 "},
		{"short signature", "AWS4-HMAC-SHA256 Credential=" + testKey + "/" + now.Format("20060102") + "/us-west-2/kinesisvideo/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd"},
	} {
		r := signed(testKey, now)
		r.Header.Set("Authorization", h.auth)
		_ = r
		if err := v.PrecheckHeaders(r); err == nil {
			t.Errorf("%s: accepted", h.name)
		}
	}
	for _, c := range cases {
		if err := v.PrecheckHeaders(c.r); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
}

// TestVerifyPresignedLongExpiry (issue 13, item 9): a presigned URL with an
// X-Amz-Expires longer than the clock-skew allowance is good until it
// expires, as on AWS: the skew bounds a signing time in the future, the
// expiry one in the past.
func TestVerifyPresignedLongExpiry(t *testing.T) {
	signedAt := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	req, _ := http.NewRequest("GET", "http://127.0.0.1:4566/?X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A000000000000%3Achannel%2Fdemo%2F1&X-Amz-Expires=3600", nil)
	u, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret},
		req, emptySHA256, "kinesisvideo", "us-west-2", signedAt)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	at := func(d time.Duration) error {
		v := &Verifier{Lookup: lookup, Region: "us-west-2", Now: func() time.Time { return signedAt.Add(d) }}
		_, err := v.VerifyPresigned(pu.Host, pu.EscapedPath(), pu.Query())
		return err
	}
	if err := at(10 * time.Minute); err != nil {
		t.Errorf("10 minutes into a 1-hour URL: %v", err)
	}
	if err := at(59 * time.Minute); err != nil {
		t.Errorf("59 minutes into a 1-hour URL: %v", err)
	}
	if err := at(61 * time.Minute); !errors.Is(err, ErrExpired) {
		t.Errorf("61 minutes into a 1-hour URL: %v, want ErrExpired", err)
	}
	if err := at(-6 * time.Minute); !errors.Is(err, ErrClockSkew) {
		t.Errorf("signed 6 minutes in the future: %v, want ErrClockSkew", err)
	}
}
