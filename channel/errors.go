package channel

import (
	"errors"

	"github.com/kvswebrtc/kvswebrtc/internal/awsjson"
)

// Errors returned by this package. Test for them with errors.Is; the
// aws-sdk-go-v2 typed error of a control-plane call (for example
// *types.ResourceNotFoundException from service/kinesisvideo/types) stays in
// the chain and can be taken out with errors.As.
var (
	// ErrInvalidArgument reports bad input: an unknown role, a malformed
	// channel name, ARN or client id, a bad option.
	ErrInvalidArgument = errors.New("channel: invalid argument")
	// ErrNoRegion reports an aws.Config without a Region.
	ErrNoRegion = errors.New("channel: aws.Config has no Region (set AWS_REGION or config.WithRegion)")
	// ErrNoCredentials reports an aws.Config without a credentials provider.
	ErrNoCredentials = errors.New("channel: aws.Config has no Credentials")
	// ErrChannelNotFound reports a channel that does not exist (and was not
	// created because Options.CreateIfMissing was false, or because it was
	// named by ARN).
	ErrChannelNotFound = errors.New("channel: signaling channel not found")
	// ErrChannelNotActive reports a channel that is being deleted, or that
	// did not become ACTIVE in time after it was created.
	ErrChannelNotActive = errors.New("channel: signaling channel is not ACTIVE")
	// ErrAccessDenied reports a call refused for its credentials
	// (AccessDeniedException, NotAuthorizedException, HTTP 401/403).
	ErrAccessDenied = errors.New("channel: access denied")
	// ErrThrottled reports ClientLimitExceededException or HTTP 429.
	ErrThrottled = errors.New("channel: request rate limit exceeded")
	// ErrDescribe wraps a failed DescribeSignalingChannel call.
	ErrDescribe = errors.New("channel: DescribeSignalingChannel failed")
	// ErrCreate wraps a failed CreateSignalingChannel call.
	ErrCreate = errors.New("channel: CreateSignalingChannel failed")
	// ErrEndpoint wraps a failed GetSignalingChannelEndpoint call, or an
	// answer that lacks the WSS or HTTPS endpoint.
	ErrEndpoint = errors.New("channel: GetSignalingChannelEndpoint failed")
	// ErrICEConfig wraps a failed GetIceServerConfig call or an answer that
	// cannot be decoded.
	ErrICEConfig = errors.New("channel: GetIceServerConfig failed")
)

// APIError is a failed call to the HTTPS data plane (GetIceServerConfig,
// JoinStorageSession, JoinStorageSessionAsViewer): the
// HTTP status, the code from the x-amzn-ErrorType header and the message of
// the JSON body. It never holds a signature or a credential.
//
// It unwraps to ErrICEConfig (ErrJoinStorageSession for the storage calls)
// and, when the code or status says so, to ErrAccessDenied,
// ErrChannelNotFound, ErrThrottled or ErrInvalidArgument.
type APIError struct {
	Operation  string // "GetIceServerConfig", "JoinStorageSession", "JoinStorageSessionAsViewer"
	StatusCode int    // HTTP status
	Code       string // x-amzn-ErrorType, without the ":<namespace>" suffix; "" when absent
	Message    string // "message" of the JSON body, cut to 256 bytes
}

// Error implements error.
func (e *APIError) Error() string {
	return awsjson.ErrorText("channel", e.Operation, e.StatusCode, e.Code, e.Message)
}

// Unwrap returns the sentinel errors this failure matches.
func (e *APIError) Unwrap() []error {
	errs := []error{opSentinel(e.Operation)}
	switch {
	case e.Code == "AccessDeniedException" || e.Code == "NotAuthorizedException" ||
		e.Code == "UnrecognizedClientException" || e.Code == "InvalidSignatureException" ||
		e.StatusCode == 401 || e.StatusCode == 403:
		errs = append(errs, ErrAccessDenied)
	case e.Code == "ResourceNotFoundException" || e.StatusCode == 404:
		errs = append(errs, ErrChannelNotFound)
	case e.Code == "ClientLimitExceededException" || e.Code == "ThrottlingException" || e.StatusCode == 429:
		errs = append(errs, ErrThrottled)
	case e.Code == "InvalidArgumentException":
		errs = append(errs, ErrInvalidArgument)
	}
	return errs
}
