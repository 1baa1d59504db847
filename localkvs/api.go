package localkvs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// Error codes (x-amzn-ErrorType) the service returns.
const (
	codeAccessDenied        = "AccessDeniedException"
	codeInvalidArgument     = "InvalidArgumentException"
	codeNotFound            = "ResourceNotFoundException"
	codeInUse               = "ResourceInUseException"
	codeClientLimit         = "ClientLimitExceededException"
	codeVersionMismatch     = "VersionMismatchException"
	codeAccountChannelLimit = "AccountChannelLimitExceededException"
	codeTagsLimit           = "TagsPerResourceExceededLimitException"
)

const maxBody = 1 << 20

// apiError is an error with its HTTP status and AWS error code.
type apiError struct {
	status int
	code   string
	msg    string
	err    error // a package ErrX value, for errors.Is
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func (e *apiError) Unwrap() error { return e.err }

func invalidArg(format string, a ...any) error {
	msg := fmt.Sprintf(format, a...)
	return &apiError{http.StatusBadRequest, codeInvalidArgument, msg, fmt.Errorf("%w: %s", ErrInvalidArgument, msg)}
}

// toAPIError maps a package error to its status and code.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	msg := err.Error()
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "localkvs:") {
		// strip "localkvs: <kind>: " down to the detail
		if j := strings.Index(msg[i+2:], ": "); j >= 0 {
			msg = msg[i+2+j+2:]
		}
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return &apiError{http.StatusNotFound, codeNotFound, msg, err}
	case errors.Is(err, ErrResourceInUse):
		return &apiError{http.StatusBadRequest, codeInUse, msg, err}
	case errors.Is(err, ErrVersionMismatch):
		return &apiError{http.StatusBadRequest, codeVersionMismatch, msg, err}
	case errors.Is(err, ErrInvalidArgument):
		return &apiError{http.StatusBadRequest, codeInvalidArgument, msg, err}
	case errors.Is(err, ErrLimitExceeded):
		return &apiError{http.StatusBadRequest, codeAccountChannelLimit, msg, err}
	}
	return &apiError{http.StatusInternalServerError, "InternalFailure", "internal error", err}
}

// writeError writes an AWS REST-JSON error: the code in x-amzn-ErrorType
// (where aws-sdk-go-v2's deserializers read it) and {"message": msg}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalFailure", "encoding the response failed")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// authError turns a signature verification error into the AccessDenied
// response text. sigv4 errors never carry a secret or signature.
func authError(err error) string {
	if errors.Is(err, sigv4.ErrClockSkew) || errors.Is(err, sigv4.ErrExpired) {
		return "Signature expired: " + err.Error()
	}
	return err.Error()
}

type apiHandler func(ctx context.Context, r *http.Request, body []byte) (any, error)

func (s *Server) apiHandlers() map[string]apiHandler {
	return map[string]apiHandler{
		"/createsignalingchannel":        s.apiCreate,
		"/describesignalingchannel":      s.apiDescribe,
		"/listsignalingchannels":         s.apiList,
		"/updatesignalingchannel":        s.apiUpdate,
		"/deletesignalingchannel":        s.apiDelete,
		"/getsignalingchannelendpoint":   s.apiEndpoint,
		"/tagresource":                   s.apiTag,
		"/untagresource":                 s.apiUntag,
		"/listtagsforresource":           s.apiListTags,
		"/v1/get-ice-server-config":      s.apiICEConfig,
		"/v1/send-alexa-offer-to-master": s.apiAlexaOffer,
		"/_admin/reconnect-ice-server":   s.apiReconnectICE,
	}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, codeInvalidArgument, "reading the request body failed")
		return
	}
	if len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, codeInvalidArgument, "request body is larger than 1 MiB")
		return
	}
	id, err := s.verifier.VerifyHeaders(r, body)
	if err != nil {
		s.log.Info("localkvs: request refused", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusForbidden, codeAccessDenied, authError(err))
		return
	}
	h := s.handlers[strings.ToLower(r.URL.Path)]
	if h == nil {
		writeError(w, http.StatusNotFound, "UnknownOperationException", "unknown operation "+r.URL.Path)
		return
	}
	out, err := h(r.Context(), r, body)
	if err != nil {
		ae := toAPIError(err)
		s.log.Debug("localkvs: api error", "path", r.URL.Path, "code", ae.code, "msg", ae.msg, "key", id.AccessKeyID)
		writeError(w, ae.status, ae.code, ae.msg)
		return
	}
	s.log.Debug("localkvs: api call", "path", r.URL.Path, "key", id.AccessKeyID)
	writeJSON(w, out)
}

func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return invalidArg("the request body is not valid JSON for this operation: %v", err)
	}
	return nil
}

func validName(field, name string) error {
	if name == "" {
		return invalidArg("%s is required", field)
	}
	if !wire.ValidName(name) {
		return invalidArg("%s %q: want %s", field, name, wire.NameRule)
	}
	return nil
}

func validARN(field, arn string) error {
	if arn == "" {
		return invalidArg("%s is required", field)
	}
	if len(arn) > 1024 {
		return invalidArg("%s is %d characters, more than 1024", field, len(arn))
	}
	if _, err := wire.ParseARN(arn); err != nil {
		return invalidArg("%s %v", field, err)
	}
	return nil
}

func validClientID(id string) error {
	if err := wire.CheckClientID(id); err != nil {
		return invalidArg("%v", err)
	}
	return nil
}
