package localkvs_test

// Tests of issue 13, "Hostile input and faults": each defect the audit found
// is reproduced here against the real server on 127.0.0.1, and so is what
// held. docs/security.md lists them.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// signedRequest builds a control-plane request signed with the development
// key, as aws-sdk-go-v2 signs it.
func signedRequest(t *testing.T, srv *localkvs.Server, path string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	err = v4.NewSigner().SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: localkvs.DevAccessKeyID, SecretAccessKey: localkvs.DevSecretAccessKey},
		req, hexSHA256(body), "kinesisvideo", srv.Region(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// replay sends the headers of req with another body.
func replay(t *testing.T, srv *localkvs.Server, req *http.Request, body []byte, extra http.Header) (int, string) {
	t.Helper()
	r2, err := http.NewRequest(req.Method, req.URL.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r2.Header = req.Header.Clone()
	for k, vs := range extra {
		r2.Header[k] = vs
	}
	resp, err := httpClient(srv).Do(r2)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
}

// TestDefect1ForgedContentHash: a captured DeleteSignalingChannel of channel
// A, replayed with B's ARN in the body and an added X-Amz-Content-Sha256
// naming A's body, must not delete B; nor may UNSIGNED-PAYLOAD carry a body.
func TestDefect1ForgedContentHash(t *testing.T) {
	srv := start(t, localkvs.Config{})
	arnA := mustCreate(t, srv, "a")
	arnB := mustCreate(t, srv, "b")
	bodyA, _ := json.Marshal(map[string]string{"ChannelARN": arnA})
	bodyB, _ := json.Marshal(map[string]string{"ChannelARN": arnB})
	captured := signedRequest(t, srv, "/deleteSignalingChannel", bodyA)

	status, code := replay(t, srv, captured, bodyB, http.Header{"X-Amz-Content-Sha256": {hexSHA256(bodyA)}})
	if status != http.StatusForbidden || code != "AccessDeniedException" {
		t.Errorf("replay with a forged content hash: %d %s, want 403 AccessDeniedException", status, code)
	}
	status, code = replay(t, srv, captured, bodyB, http.Header{"X-Amz-Content-Sha256": {"UNSIGNED-PAYLOAD"}})
	if status != http.StatusForbidden {
		t.Errorf("replay with UNSIGNED-PAYLOAD: %d %s, want 403", status, code)
	}
	status, _ = replay(t, srv, captured, bodyB, nil)
	if status != http.StatusForbidden {
		t.Errorf("replay with a tampered body: %d, want 403", status)
	}
	if _, err := devClient(srv).DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arnB)}); err != nil {
		t.Fatalf("channel B is gone after the replays: %v", err)
	}
	// The genuine request still works.
	if status, _ := replay(t, srv, captured, bodyA, nil); status != http.StatusOK {
		t.Fatalf("genuine delete of A: %d", status)
	}
}
