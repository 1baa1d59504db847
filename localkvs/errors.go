package localkvs

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// Errors returned by [New] and the Server's methods. Errors of the API
// (CreateChannel, ReconnectICEServer) match these with errors.Is; over HTTP
// they are the AWS error codes named below.
var (
	// ErrInvalidConfig: a Config field breaks a rule; the message names it.
	ErrInvalidConfig = errors.New("localkvs: invalid config")
	// ErrServerClosed: the server was shut down or closed.
	ErrServerClosed = errors.New("localkvs: server closed")
	// ErrStoreLocked: another process holds the channel store in DataDir.
	ErrStoreLocked = errors.New("localkvs: channel store is in use by another process")
	// ErrStoreDamaged: the channel store file in DataDir cannot be read (a
	// truncated, zeroed or garbled file); [RepairStore] keeps what it can.
	ErrStoreDamaged = errors.New("localkvs: channel store is damaged")
	// ErrInvalidArgument: a request argument breaks a rule (InvalidArgumentException).
	ErrInvalidArgument = errors.New("localkvs: invalid argument")
	// ErrResourceInUse: a channel with that name exists (ResourceInUseException).
	ErrResourceInUse = errors.New("localkvs: resource in use")
	// ErrNotFound: no such channel (ResourceNotFoundException).
	ErrNotFound = errors.New("localkvs: resource not found")
	// ErrVersionMismatch: CurrentVersion is not the channel's version (VersionMismatchException).
	ErrVersionMismatch = errors.New("localkvs: version mismatch")
	// ErrLimitExceeded: an account or channel limit was hit
	// (AccountChannelLimitExceededException, TagsPerResourceExceededLimitException,
	// ClientLimitExceededException).
	ErrLimitExceeded = errors.New("localkvs: limit exceeded")
)

// Error codes (x-amzn-ErrorType) the service returns (docs/protocol.md,
// "Control plane" and "Data plane").
const (
	codeAccessDenied        = "AccessDeniedException"
	codeInvalidArgument     = "InvalidArgumentException"
	codeNotFound            = "ResourceNotFoundException"
	codeInUse               = "ResourceInUseException"
	codeClientLimit         = "ClientLimitExceededException"
	codeVersionMismatch     = "VersionMismatchException"
	codeAccountChannelLimit = "AccountChannelLimitExceededException"
	codeTagsLimit           = "TagsPerResourceExceededLimitException"
	codeUnavailable         = "ServiceUnavailableException"
	codeInternal            = "InternalFailure"
)

// apiError is an error of the service API, one value from where it arises
// to the HTTP response: the status, the AWS error code and the message the
// response carries (the message is never rewritten on the way). For the Go
// API it unwraps to the package sentinel of its kind, so that
// errors.Is(err, ErrNotFound) and the like hold.
type apiError struct {
	status int
	code   string
	msg    string
	kind   error // ErrInvalidArgument, ErrNotFound, ...; nil when no sentinel matches
}

// Error is the sentinel's text and the message, e.g. "localkvs: resource
// not found: no signaling channel with ARN ...".
func (e *apiError) Error() string {
	if e.kind == nil {
		return "localkvs: " + e.code + ": " + e.msg
	}
	return e.kind.Error() + ": " + e.msg
}

// Unwrap returns the sentinel the error matches, or nil.
func (e *apiError) Unwrap() error { return e.kind }

func newAPIError(status int, code string, kind error, format string, a ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, a...), kind: kind}
}

// invalidArg is a 400 InvalidArgumentException (ErrInvalidArgument).
func invalidArg(format string, a ...any) *apiError {
	return newAPIError(http.StatusBadRequest, codeInvalidArgument, ErrInvalidArgument, format, a...)
}

// notFound is a 404 ResourceNotFoundException (ErrNotFound).
func notFound(format string, a ...any) *apiError {
	return newAPIError(http.StatusNotFound, codeNotFound, ErrNotFound, format, a...)
}

// noChannel is the notFound of a channel ARN with no channel.
func noChannel(arn string) *apiError {
	return notFound("no signaling channel with ARN %q", arn)
}

// inUse is a 400 ResourceInUseException (ErrResourceInUse).
func inUse(format string, a ...any) *apiError {
	return newAPIError(http.StatusBadRequest, codeInUse, ErrResourceInUse, format, a...)
}

// versionMismatch is a 400 VersionMismatchException (ErrVersionMismatch).
func versionMismatch(version string) *apiError {
	return newAPIError(http.StatusBadRequest, codeVersionMismatch, ErrVersionMismatch,
		"CurrentVersion %q is not the channel's current version", version)
}

// limitExceeded is a 400 with the limit's code (ErrLimitExceeded).
func limitExceeded(code, format string, a ...any) *apiError {
	return newAPIError(http.StatusBadRequest, code, ErrLimitExceeded, format, a...)
}

// errShuttingDown answers requests that arrive while the server stops.
var errShuttingDown = newAPIError(http.StatusServiceUnavailable, codeUnavailable, ErrServerClosed, "the server is shutting down")

// accessDenied is the 403 of a request whose signature does not verify.
// sigv4 errors never carry a secret or signature.
func accessDenied(err error) *apiError {
	msg := err.Error()
	if errors.Is(err, sigv4.ErrClockSkew) || errors.Is(err, sigv4.ErrExpired) {
		msg = "Signature expired: " + msg
	}
	return &apiError{status: http.StatusForbidden, code: codeAccessDenied, msg: msg}
}

// asAPIError returns err as the apiError it is, or reports false for an
// error that is not one of the API's (a failure of the store, say).
func asAPIError(err error) (*apiError, bool) {
	var ae *apiError
	ok := errors.As(err, &ae)
	return ae, ok
}

// errInternal answers an error that is not an apiError; what failed is
// logged, not sent.
var errInternal = newAPIError(http.StatusInternalServerError, codeInternal, nil, "internal error")
