package awsjson

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Client signs and sends the JSON calls of one AWS service.
type Client struct {
	// HTTP sends the calls.
	HTTP *http.Client
	// Signer signs them with SigV4.
	Signer *v4.Signer
	// Config gives the Region and the Credentials they are signed with.
	Config aws.Config
	// Service is the SigV4 signing name, e.g. "kinesisvideo".
	Service string
}

// Step is what Post was doing when it failed.
type Step int

// The steps of Post.
const (
	// StepRequest is making the request (a bad endpoint URL).
	StepRequest Step = iota
	// StepCredentials is retrieving the credentials.
	StepCredentials
	// StepSigning is signing the request.
	StepSigning
	// StepSending is sending it (network errors, timeouts).
	StepSending
)

// Error is a failure of Post before any answer came.
type Error struct {
	Step Step
	Err  error
}

// Error returns the text of Err, after "retrieving credentials: " or
// "signing: " for those steps.
func (e *Error) Error() string {
	switch e.Step {
	case StepCredentials:
		return "retrieving credentials: " + e.Err.Error()
	case StepSigning:
		return "signing: " + e.Err.Error()
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Post POSTs payload (a JSON document) to endpoint+path, the endpoint's
// trailing slashes trimmed, signed at the time signAt. It returns the
// answer whatever its status (the caller closes its body), or an *Error.
func (c Client) Post(ctx context.Context, endpoint, path string, payload []byte, signAt time.Time) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(endpoint, "/")+path, bytes.NewReader(payload))
	if err != nil {
		return nil, &Error{StepRequest, err}
	}
	req.Header.Set("Content-Type", "application/json")
	creds, err := c.Config.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, &Error{StepCredentials, err}
	}
	sum := sha256.Sum256(payload)
	if err := c.Signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), c.Service, c.Config.Region, signAt); err != nil {
		return nil, &Error{StepSigning, err}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, &Error{StepSending, err}
	}
	return resp, nil
}

// ErrorCode returns the code of an error answer: its x-amzn-ErrorType
// header or, when the header is absent, the "__type" or "code" member of
// the JSON body (without a "namespace#" prefix), in either case without a
// ":suffix". A nil body reads the header only.
func ErrorCode(h http.Header, body []byte) string {
	code := h.Get("X-Amzn-Errortype")
	if code == "" && body != nil {
		var b struct {
			Type string `json:"__type"`
			Code string `json:"code"`
		}
		_ = json.Unmarshal(body, &b)
		code = b.Type
		if code == "" {
			code = b.Code
		}
		if i := strings.LastIndexByte(code, '#'); i >= 0 {
			code = code[i+1:]
		}
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	return code
}

// ErrorMessage returns the "message" (or "Message") member of the JSON
// body of an error answer, cut to 256 bytes.
func ErrorMessage(body []byte) string {
	var b struct {
		Lower string `json:"message"`
		Upper string `json:"Message"`
	}
	_ = json.Unmarshal(body, &b)
	m := b.Lower
	if m == "" {
		m = b.Upper
	}
	if len(m) > 256 {
		m = m[:256]
	}
	return m
}

// ErrorText is the text of a package's error answer:
// "<pkg>: <op>: HTTP <status>[ <code>][: <message>]".
func ErrorText(pkg, op string, status int, code, message string) string {
	s := fmt.Sprintf("%s: %s: HTTP %d", pkg, op, status)
	if code != "" {
		s += " " + code
	}
	if message != "" {
		s += ": " + message
	}
	return s
}

// NameOrARN returns the name and ARN members of a request naming a
// resource by s: s as the ARN when it starts with "arn:", else as the
// name; the other is nil.
func NameOrARN(s string) (name, arn *string) {
	if strings.HasPrefix(s, "arn:") {
		return nil, aws.String(s)
	}
	return aws.String(s), nil
}
