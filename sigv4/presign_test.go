package sigv4

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

type vectorFile struct {
	Source  string `json:"source"`
	Vectors []struct {
		Region      string `json:"region"`
		Service     string `json:"service"`
		Credentials struct {
			AccessKeyID     string `json:"accessKeyId"`
			SecretAccessKey string `json:"secretAccessKey"`
			SessionToken    string `json:"sessionToken"`
		} `json:"credentials"`
		Endpoint    string            `json:"endpoint"`
		QueryParams map[string]string `json:"queryParams"`
		Date        string            `json:"date"`
		SignedURL   string            `json:"signedURL"`
	} `json:"vectors"`
}

// TestSharedVectors reproduces every URL the official JS SDK produced.
func TestSharedVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/sigv4-presign-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) != 40 {
		t.Fatalf("want 40 vectors, file has %d", len(f.Vectors))
	}
	for i, v := range f.Vectors {
		c := v.Credentials
		p, err := New(v.Region, StaticCredentials(c.AccessKeyID, c.SecretAccessKey, c.SessionToken), WithService(v.Service))
		if err != nil {
			t.Fatal(err)
		}
		at, err := time.Parse(time.RFC3339, v.Date)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.PresignURL(context.Background(), v.Endpoint, v.QueryParams, at)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if got != v.SignedURL {
			t.Errorf("vector %d (%s %s):\n got %s\nwant %s", i, v.Region, v.Endpoint, got, v.SignedURL)
		}
	}
}

// TestOfficialVectors are the JS SDK's own unit-test vectors.
func TestOfficialVectors(t *testing.T) {
	at := time.Date(2019, 12, 1, 0, 0, 0, 0, time.UTC)
	q := map[string]string{"X-Amz-TestParam": "test-param-value"}
	for _, tc := range []struct {
		token, sig, url string
	}{
		{"FakeSessionToken", "fc268038be276315822b4f73eafd28ee3a5632a2a35fdb0a88db9a42b13d6c92",
			"wss://kvs.awsamazon.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA4F7WJQR7FMMWMNXI%2F20191201%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Date=20191201T000000Z&X-Amz-Expires=299&X-Amz-Security-Token=FakeSessionToken&X-Amz-Signature=fc268038be276315822b4f73eafd28ee3a5632a2a35fdb0a88db9a42b13d6c92&X-Amz-SignedHeaders=host&X-Amz-TestParam=test-param-value"},
		{"", "be1e78950d956a8a9a1997417099ddbd7455619f3d08c4ad20e1e272179ca695",
			"wss://kvs.awsamazon.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA4F7WJQR7FMMWMNXI%2F20191201%2Fus-west-2%2Fkinesisvideo%2Faws4_request&X-Amz-Date=20191201T000000Z&X-Amz-Expires=299&X-Amz-Signature=be1e78950d956a8a9a1997417099ddbd7455619f3d08c4ad20e1e272179ca695&X-Amz-SignedHeaders=host&X-Amz-TestParam=test-param-value"},
	} {
		p, err := New("us-west-2", StaticCredentials("AKIA4F7WJQR7FMMWMNXI", "FakeSecretKey", tc.token))
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.PresignURL(context.Background(), "wss://kvs.awsamazon.com", q, at)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "X-Amz-Signature="+tc.sig+"&") {
			t.Errorf("token %q: signature mismatch in %s", tc.token, got)
		}
		if got != tc.url {
			t.Errorf("token %q:\n got %s\nwant %s", tc.token, got, tc.url)
		}
	}
}

func TestPresignRefusesBadEndpoints(t *testing.T) {
	p, _ := New("us-west-2", StaticCredentials("AKID", "SECRET", ""))
	ctx := context.Background()
	for _, tc := range []struct {
		endpoint string
		want     error
	}{
		{"https://kvs.example.com", ErrEndpointScheme},
		{"ws://127.0.0.1:4566", ErrEndpointScheme},
		{"kvs.example.com", ErrEndpointScheme},
		{"wss://kvs.example.com/?a=b", ErrEndpointQuery},
		{"wss://", ErrEndpointHost},
		{"wss:///path", ErrEndpointHost},
	} {
		_, err := p.PresignURL(ctx, tc.endpoint, nil, time.Now())
		if !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.endpoint, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.endpoint) {
			t.Errorf("%q: error %q does not name the endpoint", tc.endpoint, err)
		}
	}
	insecure, _ := New("us-west-2", StaticCredentials("AKID", "SECRET", ""), AllowInsecureEndpoint())
	u, err := insecure.PresignURL(ctx, "ws://127.0.0.1:4566", map[string]string{ParamChannelARN: "arn"}, time.Now())
	if err != nil || !strings.HasPrefix(u, "ws://127.0.0.1:4566/?X-Amz-Algorithm=") {
		t.Fatalf("ws:// with AllowInsecureEndpoint: %q, %v", u, err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New("", StaticCredentials("a", "b", "")); !errors.Is(err, ErrNoRegion) {
		t.Errorf("empty region: %v", err)
	}
	if _, err := New("us-west-2", nil); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("nil credentials: %v", err)
	}
	p, _ := New("us-west-2", StaticCredentials("", "secret", ""))
	if _, err := p.PresignURL(context.Background(), "wss://h", nil, time.Now()); !errors.Is(err, ErrEmptyAccessKey) {
		t.Errorf("empty access key: %v", err)
	}
}

// TestPresignRefreshesCredentials shows that a provider is asked on every
// call, so rotating credentials take effect without a new Presigner, and the
// cached signing key is not reused across secrets.
func TestPresignRefreshesCredentials(t *testing.T) {
	n := 0
	keys := []struct{ id, secret string }{{"AKID1", "secret-one"}, {"AKID2", "secret-two"}}
	prov := credFunc(func() (string, string) { k := keys[n%2]; n++; return k.id, k.secret })
	p, _ := New("us-west-2", prov)
	at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	u1, _ := p.PresignURL(context.Background(), "wss://h", nil, at)
	u2, _ := p.PresignURL(context.Background(), "wss://h", nil, at)
	ref2, _ := New("us-west-2", StaticCredentials("AKID2", "secret-two", ""))
	want2, _ := ref2.PresignURL(context.Background(), "wss://h", nil, at)
	if !strings.Contains(u1, "AKID1") || u2 != want2 {
		t.Fatalf("provider not consulted per call:\n%s\n%s\nwant %s", u1, u2, want2)
	}
}

func TestPresignRefusesSignatureInQuery(t *testing.T) {
	p, _ := New("us-west-2", StaticCredentials("AKID", "SECRET", ""))
	_, err := p.PresignURL(context.Background(), "wss://h", map[string]string{ParamSignature: "x"}, time.Now())
	if err == nil || !strings.Contains(err.Error(), ParamSignature) {
		t.Fatalf("got %v", err)
	}
}
