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

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// HandshakeError is the error Open (and a reconnect attempt) returns when
// the service answers the WebSocket handshake with an HTTP status other
// than 101. Test for it with errors.As; it also matches errors.Is with
// ErrAccessDenied (HTTP 401 and 403) or ErrHandshake (any other status).
// Its fields never hold the presigned URL, signature or token.
type HandshakeError struct {
	// StatusCode is the HTTP status of the refusal (400, 403, 404, ...).
	StatusCode int
	// ErrorType is the service's x-amzn-ErrorType without its ":" suffix,
	// such as "ClientLimitExceededException"; "" when the header is absent.
	ErrorType string
	// Message is the "message" of the JSON body (or a short plain body),
	// cut to 200 bytes; "" when there is none.
	Message string
}

// Error names the status, the error type and the message.
func (e *HandshakeError) Error() string {
	s := fmt.Sprintf("%s: HTTP %d %s", e.sentinel().Error(), e.StatusCode, http.StatusText(e.StatusCode))
	if e.ErrorType != "" {
		s += " " + e.ErrorType
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns ErrAccessDenied for HTTP 401 and 403, else ErrHandshake.
func (e *HandshakeError) Unwrap() error { return e.sentinel() }

// ClientLimitExceeded reports whether the service refused the connection
// because a channel limit was reached (too many viewers, or too many
// connects a second): x-amzn-ErrorType ClientLimitExceededException.
func (e *HandshakeError) ClientLimitExceeded() bool {
	return e.ErrorType == "ClientLimitExceededException"
}

func (e *HandshakeError) sentinel() error {
	if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
		return ErrAccessDenied
	}
	return ErrHandshake
}

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
		return &HandshakeError{
			StatusCode: resp.StatusCode,
			ErrorType:  strings.SplitN(resp.Header.Get("x-amzn-ErrorType"), ":", 2)[0],
			Message:    redact(bodyMessage(resp), signed),
		}
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

// isReplaced reports whether the service closed the connection with
// wire.CloseReplaced: a newer connection with the same identity took over
// (see ErrReplaced).
func isReplaced(err error) bool {
	return websocket.CloseStatus(err) == wire.CloseReplaced
}
