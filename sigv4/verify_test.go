package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

type credFunc func() (string, string)

func (f credFunc) Retrieve(context.Context) (aws.Credentials, error) {
	id, s := f()
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: s}, nil
}

const (
	testKey    = "AKIDLOCAL"
	testSecret = "local-secret"
	testToken  = "tok/en+="
)

func lookup(id string) (string, bool) {
	if id == testKey {
		return testSecret, true
	}
	return "", false
}

func presigned(t *testing.T, endpoint string, at time.Time, token string, q map[string]string) (host, path string, query url.Values) {
	t.Helper()
	p, err := New("us-west-2", StaticCredentials(testKey, testSecret, token), AllowInsecureEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.PresignURL(context.Background(), endpoint, q, at)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host, u.EscapedPath(), u.Query()
}

func TestVerifyPresigned(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	v := &Verifier{Lookup: lookup, Region: "us-west-2", Now: func() time.Time { return now }}
	q := map[string]string{ParamChannelARN: "arn:aws:kinesisvideo:us-west-2:000000000000:channel/demo/1", ParamClientID: "viewer-1"}
	host, path, query := presigned(t, "ws://127.0.0.1:4566", now, testToken, q)
	id, err := v.VerifyPresigned(host, path, query)
	if err != nil {
		t.Fatalf("valid URL rejected: %v", err)
	}
	if id.AccessKeyID != testKey || id.SessionToken != testToken || !id.SignedAt.Equal(now) {
		t.Fatalf("identity: %+v", id)
	}

	with := func(k, val string) url.Values {
		c := url.Values{}
		for kk, vv := range query {
			c[kk] = append([]string(nil), vv...)
		}
		if val == "" {
			c.Del(k)
		} else {
			c.Set(k, val)
		}
		return c
	}
	cases := []struct {
		name  string
		v     *Verifier
		host  string
		query url.Values
		want  error
	}{
		{"unsigned", v, host, url.Values{ParamChannelARN: {"x"}}, ErrMissingAuth},
		{"algorithm", v, host, with(ParamAlgorithm, "AWS4-HMAC-SHA1"), ErrAlgorithm},
		{"scope terminator", v, host, with(ParamCredential, testKey+"/20261124/us-west-2/kinesisvideo/aws3"), ErrCredentialScope},
		{"scope region", v, host, with(ParamCredential, testKey+"/20261124/eu-west-1/kinesisvideo/aws4_request"), ErrCredentialScope},
		{"scope service", v, host, with(ParamCredential, testKey+"/20261124/us-west-2/s3/aws4_request"), ErrCredentialScope},
		{"scope shape", v, host, with(ParamCredential, testKey), ErrCredentialScope},
		{"signed headers", v, host, with(ParamSignedHeaders, "host;x-amz-date"), ErrSignedHeaders},
		{"date format", v, host, with(ParamDate, "2026-11-24"), ErrDate},
		{"date vs scope", v, host, with(ParamDate, "20261125T000000Z"), ErrDate},
		{"expires format", v, host, with(ParamExpires, "soon"), ErrMalformedAuth},
		{"missing signature", v, host, with(ParamSignature, ""), ErrMalformedAuth},
		{"bad hex signature", v, host, with(ParamSignature, "zz"), ErrMalformedAuth},
		{"tampered channel", v, host, with(ParamChannelARN, "arn:other"), ErrSignatureMismatch},
		{"tampered client id", v, host, with(ParamClientID, "viewer-2"), ErrSignatureMismatch},
		{"dropped token", v, host, with(ParamSecurityToken, ""), ErrSignatureMismatch},
		{"other host", v, "127.0.0.1:9999", query, ErrSignatureMismatch},
		{"unknown key", &Verifier{Lookup: func(string) (string, bool) { return "", false }, Now: v.Now}, host, query, ErrUnknownAccessKey},
		{"wrong secret", &Verifier{Lookup: func(string) (string, bool) { return "other", true }, Now: v.Now}, host, query, ErrSignatureMismatch},
		{"skew future", &Verifier{Lookup: lookup, Now: func() time.Time { return now.Add(-6 * time.Minute) }}, host, query, ErrClockSkew},
		// 6 minutes after signing, a 299-second URL has expired (the skew
		// bounds only a signing time in the future).
		{"skew past", &Verifier{Lookup: lookup, Now: func() time.Time { return now.Add(6 * time.Minute) }}, host, query, ErrExpired},
		{"expired", &Verifier{Lookup: lookup, MaxSkew: time.Hour, Now: func() time.Time { return now.Add(300 * time.Second) }}, host, query, ErrExpired},
	}
	for _, tc := range cases {
		_, err := tc.v.VerifyPresigned(tc.host, path, tc.query)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && (strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), query.Get(ParamSignature)) || strings.Contains(err.Error(), testToken)) {
			t.Errorf("%s: error leaks a secret: %v", tc.name, err)
		}
	}
	// Within the skew and before expiry is fine.
	ok := &Verifier{Lookup: lookup, Now: func() time.Time { return now.Add(4 * time.Minute) }}
	if _, err := ok.VerifyPresigned(host, path, query); err != nil {
		t.Errorf("4 minutes later: %v", err)
	}
}

// TestVerifySharedVectors checks the verifier against URLs the official JS
// SDK signed, at their own signing time.
func TestVerifySharedVectors(t *testing.T) {
	f := loadVectors(t)
	for i, vec := range f.Vectors {
		at, _ := time.Parse(time.RFC3339, vec.Date)
		u, err := url.Parse(vec.SignedURL)
		if err != nil {
			t.Fatal(err)
		}
		c := vec.Credentials
		v := &Verifier{
			Lookup:  func(id string) (string, bool) { return c.SecretAccessKey, id == c.AccessKeyID },
			Region:  vec.Region,
			Service: vec.Service,
			Now:     func() time.Time { return at.Add(time.Minute) },
		}
		id, err := v.VerifyPresigned(u.Host, u.EscapedPath(), u.Query())
		if err != nil {
			t.Errorf("vector %d: %v", i, err)
			continue
		}
		if id.SessionToken != c.SessionToken {
			t.Errorf("vector %d: token not reported", i)
		}
	}
}

func TestVerifyHeaders(t *testing.T) {
	now := time.Now().UTC()
	body := []byte(`{"ChannelName":"demo"}`)
	var gotErr error
	v := &Verifier{Lookup: lookup, Region: "us-west-2"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := new(bytes.Buffer)
		b.ReadFrom(r.Body)
		_, gotErr = v.VerifyHeaders(r, b.Bytes())
	}))
	defer srv.Close()

	send := func(secret string, mutate func(*http.Request)) error {
		req, _ := http.NewRequest("POST", srv.URL+"/describeSignalingChannel?x=a%20b", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		h := sha256.Sum256(body)
		err := v4.NewSigner().SignHTTP(context.Background(),
			aws.Credentials{AccessKeyID: testKey, SecretAccessKey: secret, SessionToken: testToken},
			req, hex.EncodeToString(h[:]), "kinesisvideo", "us-west-2", now)
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return gotErr
	}
	if err := send(testSecret, nil); err != nil {
		t.Fatalf("aws-sdk-go-v2 signed request rejected: %v", err)
	}
	if err := send("wrong", nil); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("wrong secret: %v", err)
	}
	if err := send(testSecret, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }); !errors.Is(err, ErrSignatureMismatch) {
		t.Errorf("tampered header: %v", err)
	}
	if err := send(testSecret, func(r *http.Request) { r.Header.Del("Authorization") }); !errors.Is(err, ErrMissingAuth) {
		t.Errorf("no auth: %v", err)
	}
	if err := send(testSecret, func(r *http.Request) { r.Header.Set("X-Amz-Date", "garbage") }); !errors.Is(err, ErrDate) {
		t.Errorf("bad date: %v", err)
	}
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	raw, err := os.ReadFile("testdata/sigv4-presign-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f
}
