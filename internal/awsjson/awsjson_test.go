package awsjson

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

func TestErrorCode(t *testing.T) {
	h := func(v string) http.Header {
		if v == "" {
			return http.Header{}
		}
		return http.Header{"X-Amzn-Errortype": {v}}
	}
	for _, c := range []struct {
		header, body, want string
		nilBody            bool
	}{
		{header: "AccessDeniedException:http://internal.amazon.com/", want: "AccessDeniedException"},
		{header: "ClientLimitExceededException", body: `{"__type":"Other"}`, want: "ClientLimitExceededException"},
		{body: `{"__type":"com.amazonaws.kinesisvideo#ResourceNotFoundException"}`, want: "ResourceNotFoundException"},
		{body: `{"code":"InvalidArgumentException:x"}`, want: "InvalidArgumentException"},
		{body: `not json`, want: ""},
		{nilBody: true, want: ""},
	} {
		var body []byte
		if !c.nilBody {
			body = []byte(c.body)
		}
		if got := ErrorCode(h(c.header), body); got != c.want {
			t.Errorf("ErrorCode(%q, %q) = %q, want %q", c.header, c.body, got, c.want)
		}
	}
}

func TestErrorMessage(t *testing.T) {
	if got := ErrorMessage([]byte(`{"Message":"upper"}`)); got != "upper" {
		t.Errorf("Message: got %q", got)
	}
	if got := ErrorMessage([]byte(`{"message":"lower","Message":"upper"}`)); got != "lower" {
		t.Errorf("message first: got %q", got)
	}
	if got := ErrorMessage([]byte(`{"message":"` + strings.Repeat("x", 300) + `"}`)); len(got) != 256 {
		t.Errorf("cut: got %d bytes", len(got))
	}
}

func TestErrorText(t *testing.T) {
	if got, want := ErrorText("channel", "GetIceServerConfig", 500, "", ""), "channel: GetIceServerConfig: HTTP 500"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got, want := ErrorText("archive", "GetMedia", 403, "AccessDeniedException", "no"), "archive: GetMedia: HTTP 403 AccessDeniedException: no"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestNameOrARN(t *testing.T) {
	if n, a := NameOrARN("cam"); aws.ToString(n) != "cam" || a != nil {
		t.Errorf("name: %v %v", n, a)
	}
	arn := "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam/1"
	if n, a := NameOrARN(arn); n != nil || aws.ToString(a) != arn {
		t.Errorf("ARN: %v %v", n, a)
	}
}

type failingCreds struct{}

func (failingCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, errors.New("no creds")
}

// TestPostSignsAndSteps: a call is signed for the service and region, with
// and each failure names its step.
func TestPostSignsAndSteps(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
	}))
	defer srv.Close()
	c := Client{
		HTTP: srv.Client(), Signer: v4.NewSigner(), Service: "kinesisvideo",
		Config: aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")},
	}
	resp, err := c.Post(context.Background(), srv.URL+"//", "/x", []byte(`{}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.URL.Path != "/x" || got.Header.Get("Content-Type") != "application/json" ||
		!strings.Contains(got.Header.Get("Authorization"), "/eu-west-1/kinesisvideo/aws4_request") {
		t.Errorf("request %s %v", got.URL.Path, got.Header)
	}

	step := func(err error) Step {
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("%v is not an *Error", err)
		}
		return e.Step
	}
	if _, err := c.Post(context.Background(), "http://[::1", "/x", nil, time.Now()); step(err) != StepRequest {
		t.Errorf("bad URL: %v", err)
	}
	bad := c
	bad.Config.Credentials = failingCreds{}
	if _, err := bad.Post(context.Background(), srv.URL, "/x", nil, time.Now()); step(err) != StepCredentials || err.Error() != "retrieving credentials: no creds" {
		t.Errorf("credentials: %v", err)
	}
	if _, err := c.Post(context.Background(), "http://127.0.0.1:1", "/x", nil, time.Now()); step(err) != StepSending {
		t.Errorf("send: %v", err)
	}
}
