package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/coder/websocket"
)

// safeError carries a message scrubbed of the presigned URL. It unwraps to
// the package sentinel and to causes that cannot hold the URL (context
// errors, the inner error of a *url.Error), never to the raw dial error.
type safeError struct {
	msg    string
	causes []error
}

func (e *safeError) Error() string   { return e.msg }
func (e *safeError) Unwrap() []error { return e.causes }

var secretParams = regexp.MustCompile(`(X-Amz-(?:Signature|Security-Token|Credential)=)[^&\s"']*`)

// redact removes the presigned query (signature, token) from s.
func redact(s, signed string) string {
	if i := strings.IndexByte(signed, '?'); i >= 0 {
		q := signed[i+1:]
		if q != "" {
			s = strings.ReplaceAll(s, q, "<presigned query redacted>")
		}
	}
	return secretParams.ReplaceAllString(s, "${1}<redacted>")
}

// dialError turns a websocket.Dial failure into an error that names the
// cause without the presigned URL.
func dialError(err error, resp *http.Response, signed string) error {
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		sentinel := ErrHandshake
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			sentinel = ErrAccessDenied
		}
		detail := fmt.Sprintf("HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if t := resp.Header.Get("x-amzn-ErrorType"); t != "" {
			detail += " " + strings.SplitN(t, ":", 2)[0]
		}
		if msg := bodyMessage(resp); msg != "" {
			detail += ": " + msg
		}
		return &safeError{msg: sentinel.Error() + ": " + redact(detail, signed), causes: []error{sentinel}}
	}
	causes := []error{ErrDial}
	msg := redact(err.Error(), signed)
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		causes = append(causes, ue.Err)
	} else {
		for _, ce := range []error{context.DeadlineExceeded, context.Canceled} {
			if errors.Is(err, ce) {
				causes = append(causes, ce)
			}
		}
	}
	return &safeError{msg: ErrDial.Error() + ": " + msg, causes: causes}
}

// bodyMessage extracts the service's {"message": "..."} (or a short body).
func bodyMessage(resp *http.Response) string {
	if resp.Body == nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	var m struct {
		Message  string `json:"message"`
		Message2 string `json:"Message"`
	}
	if json.Unmarshal(b, &m) == nil {
		if m.Message != "" {
			return truncate(m.Message)
		}
		if m.Message2 != "" {
			return truncate(m.Message2)
		}
	}
	return truncate(strings.TrimSpace(string(b)))
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// isReplaced reports whether the service closed the connection because a
// newer connection with the same identity took over (see ErrReplaced).
func isReplaced(err error) bool {
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		return false
	}
	return strings.Contains(strings.ToLower(ce.Reason), "replaced")
}
