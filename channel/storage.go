package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/internal/awsjson"
	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// WebRTC ingestion (docs/protocol.md, "Streams and storage"): a channel's
// media storage configuration names a Kinesis video stream; the master
// calls JoinStorageSession on the channel's WEBRTC endpoint and the KVS
// media server then sends it an SDP offer over signaling. The
// kinesisvideowebrtcstorage calls are signed with aws-sdk-go-v2's
// aws/signer/v4 and sent with net/http, as GetIceServerConfig is (that Go
// module is not used). The streams themselves (CreateStream,
// DescribeStream, ...) are calls of aws-sdk-go-v2's kinesisvideo client,
// used as it is.

// Errors of the storage calls, besides ErrInvalidArgument,
// ErrChannelNotFound, ErrAccessDenied and ErrThrottled.
var (
	// ErrMediaStorage wraps a failed DescribeMediaStorageConfiguration or
	// UpdateMediaStorageConfiguration call.
	ErrMediaStorage = errors.New("channel: media storage configuration call failed")
	// ErrJoinStorageSession wraps a failed JoinStorageSession or
	// JoinStorageSessionAsViewer call (an *APIError for an answer of the
	// service).
	ErrJoinStorageSession = errors.New("channel: JoinStorageSession failed")
	// ErrNoMediaStorage reports a channel whose media storage is not
	// enabled: it has no WEBRTC endpoint and cannot be joined.
	ErrNoMediaStorage = errors.New("channel: the signaling channel has no media storage enabled")
)

// MediaStorage is a channel's media storage configuration.
type MediaStorage struct {
	// Enabled is true when the channel's media is recorded (Status ENABLED).
	Enabled bool
	// StreamARN is the Kinesis video stream the media goes to.
	StreamARN string
}

// MediaStorage returns the media storage configuration of a channel (by
// name or ARN) with DescribeMediaStorageConfiguration. Errors wrap
// ErrMediaStorage, and ErrChannelNotFound or ErrAccessDenied when they
// apply.
func (r *Resolver) MediaStorage(ctx context.Context, channel string) (MediaStorage, error) {
	in := &kinesisvideo.DescribeMediaStorageConfigurationInput{}
	in.ChannelName, in.ChannelARN = awsjson.NameOrARN(channel)
	ctx, cancel := context.WithTimeout(ctx, r.opts.APITimeout)
	defer cancel()
	out, err := r.kv.DescribeMediaStorageConfiguration(ctx, in)
	if err != nil {
		return MediaStorage{}, apiError(ErrMediaStorage, channel, err)
	}
	var ms MediaStorage
	if c := out.MediaStorageConfiguration; c != nil {
		ms.Enabled = c.Status == types.MediaStorageConfigurationStatusEnabled
		ms.StreamARN = aws.ToString(c.StreamARN)
	}
	return ms, nil
}

// SetMediaStorage sets the media storage configuration of a channel (by
// ARN) with UpdateMediaStorageConfiguration: enabled with the stream
// StreamARN, or disabled. The service refuses a stream without data
// retention (NoDataRetentionException) and a stream already used by
// another channel (ResourceInUseException); the aws-sdk-go-v2 typed error
// stays in the chain. Errors wrap ErrMediaStorage.
func (r *Resolver) SetMediaStorage(ctx context.Context, channelARN string, ms MediaStorage) error {
	if _, err := wire.ParseChannelARN(channelARN); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	cfg := &types.MediaStorageConfiguration{Status: types.MediaStorageConfigurationStatusDisabled}
	if ms.Enabled {
		if ms.StreamARN == "" {
			return fmt.Errorf("%w: MediaStorage.StreamARN is required to enable media storage", ErrInvalidArgument)
		}
		cfg.Status = types.MediaStorageConfigurationStatusEnabled
	}
	if ms.StreamARN != "" {
		cfg.StreamARN = aws.String(ms.StreamARN)
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.APITimeout)
	defer cancel()
	_, err := r.kv.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
		ChannelARN: aws.String(channelARN), MediaStorageConfiguration: cfg,
	})
	if err != nil {
		return apiError(ErrMediaStorage, channelARN, err)
	}
	return nil
}

// webrtcEndpoint asks GetSignalingChannelEndpoint for the WEBRTC endpoint
// of a channel and role. The service answers InvalidArgumentException for a
// channel without media storage; that becomes ErrNoMediaStorage.
func (r *Resolver) webrtcEndpoint(ctx context.Context, channelARN string, role Role) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.APITimeout)
	defer cancel()
	out, err := r.kv.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{
		ChannelARN: aws.String(channelARN),
		SingleMasterChannelEndpointConfiguration: &types.SingleMasterChannelEndpointConfiguration{
			Protocols: []types.ChannelProtocol{types.ChannelProtocolWebrtc},
			Role:      types.ChannelRole(role),
		},
	})
	var ia *types.InvalidArgumentException
	if errors.As(err, &ia) {
		return "", fmt.Errorf("%w: %q: %w", ErrNoMediaStorage, channelARN, err)
	}
	if err != nil {
		return "", apiError(ErrEndpoint, channelARN, err)
	}
	for _, it := range out.ResourceEndpointList {
		if it.Protocol == types.ChannelProtocolWebrtc && aws.ToString(it.ResourceEndpoint) != "" {
			return aws.ToString(it.ResourceEndpoint), nil
		}
	}
	return "", fmt.Errorf("%w: channel %q: the answer has no WEBRTC endpoint", ErrEndpoint, channelARN)
}

// StorageEndpoint returns the WEBRTC (storage session) endpoint of the
// channel: the one Resolve got with Options.WebRTCEndpoint, or else asked
// for now (and kept). It fails with ErrNoMediaStorage when the channel has
// no media storage enabled.
func (r *Resolved) StorageEndpoint(ctx context.Context) (string, error) {
	if r.webrtcEndpoint != "" {
		return r.webrtcEndpoint, nil
	}
	r.mu.Lock()
	ep := r.storageEndpoint
	r.mu.Unlock()
	if ep != "" {
		return ep, nil
	}
	if r.resolver == nil {
		return "", errNotResolved
	}
	ep, err := r.resolver.webrtcEndpoint(ctx, r.channelARN, r.role)
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.storageEndpoint = ep
	r.mu.Unlock()
	return ep, nil
}

// MediaStorage returns the channel's media storage configuration
// (Resolver.MediaStorage).
func (r *Resolved) MediaStorage(ctx context.Context) (MediaStorage, error) {
	if r.resolver == nil {
		return MediaStorage{}, errNotResolved
	}
	return r.resolver.MediaStorage(ctx, r.channelARN)
}

// JoinStorageSession asks the KVS media server to join the channel's
// storage session as the master's peer: POST /joinStorageSession
// {"channelArn"} on the WEBRTC endpoint. It returns when the service has
// accepted the call (200, empty body); the media server's SDP offer then
// comes over the master's signaling connection, with no sender client id.
// Each call makes one offer; the most recent join wins.
//
// Errors wrap ErrJoinStorageSession; an answer of the service is an
// *APIError (errors.As), which also matches ErrAccessDenied (403),
// ErrChannelNotFound (404: the channel or its stream is gone), ErrThrottled
// (ClientLimitExceededException) or ErrInvalidArgument (400, e.g. no media
// storage configured). ErrNoMediaStorage reports a channel without media
// storage found before the call.
func (r *Resolved) JoinStorageSession(ctx context.Context) error {
	if r.role != RoleMaster {
		return fmt.Errorf("%w: JoinStorageSession is the master's; this channel was resolved as %s (use JoinStorageSessionAsViewer)", ErrInvalidArgument, r.role)
	}
	return r.join(ctx, "JoinStorageSession", "/joinStorageSession", map[string]string{"channelArn": r.channelARN})
}

// JoinStorageSessionAsViewer is JoinStorageSession for a viewer: POST
// /joinStorageSessionAsViewer {"channelArn", "clientId"}, with the client
// id of the resolved viewer (Options.ClientID).
func (r *Resolved) JoinStorageSessionAsViewer(ctx context.Context) error {
	if r.role != RoleViewer || r.clientID == "" {
		return fmt.Errorf("%w: JoinStorageSessionAsViewer needs a channel resolved as VIEWER with Options.ClientID", ErrInvalidArgument)
	}
	return r.join(ctx, "JoinStorageSessionAsViewer", "/joinStorageSessionAsViewer",
		map[string]string{"channelArn": r.channelARN, "clientId": r.clientID})
}

func (r *Resolved) join(ctx context.Context, op, path string, body map[string]string) error {
	if r.resolver == nil {
		return errNotResolved
	}
	ep, err := r.StorageEndpoint(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrJoinStorageSession, err)
	}
	payload, _ := json.Marshal(body)
	_, err = r.resolver.postSigned(ctx, op, ep, path, payload)
	return err
}

// postSigned POSTs payload to endpoint+path (op's HTTPS data plane),
// signed with SigV4 for kinesisvideo at the local clock plus the learned
// offset, within Options.APITimeout, and returns the body of a 2xx answer.
// Other answers are *APIError values for op; every error wraps
// opSentinel(op).
func (r *Resolver) postSigned(ctx context.Context, op, endpoint, path string, payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.APITimeout)
	defer cancel()
	c := awsjson.Client{HTTP: r.httpClient, Signer: r.signer, Config: r.awsCfg, Service: "kinesisvideo"}
	resp, err := c.Post(ctx, endpoint, path, payload, r.now().Add(r.ClockOffset()))
	if err != nil {
		var pe *awsjson.Error
		if errors.As(err, &pe) && pe.Step == awsjson.StepRequest {
			return nil, fmt.Errorf("%w: %s %q: %w", opSentinel(op), endpointKind(op), endpoint, pe.Err)
		}
		return nil, fmt.Errorf("%w: %w", opSentinel(op), err)
	}
	defer resp.Body.Close()
	r.observeDate(resp.Header)
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %w", opSentinel(op), err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &APIError{Operation: op, StatusCode: resp.StatusCode, Code: awsjson.ErrorCode(resp.Header, data), Message: awsjson.ErrorMessage(data)}
	}
	return data, nil
}

// opSentinel is the sentinel an operation's failures wrap.
func opSentinel(op string) error {
	switch op {
	case "JoinStorageSession", "JoinStorageSessionAsViewer":
		return ErrJoinStorageSession
	}
	return ErrICEConfig
}

// endpointKind names the endpoint of op in its errors: the signaling
// channel's HTTPS endpoint for GetIceServerConfig, else the WEBRTC one.
func endpointKind(op string) string {
	if op == "GetIceServerConfig" {
		return "HTTPS endpoint"
	}
	return "endpoint"
}

// RetryableJoinError reports whether a failed JoinStorageSession is worth
// retrying, as the official JavaScript SDK's test page decides:
// ClientLimitExceededException (unless the session already has its maximum
// of viewers), network errors, timeouts and HTTP 5xx. Authorization errors
// and bad arguments are not.
func RetryableJoinError(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Code == "ClientLimitExceededException":
			return !strings.Contains(strings.ToLower(ae.Message), "maximum number of viewers")
		case ae.StatusCode >= 500:
			return true
		}
		return false
	}
	if errors.Is(err, ErrNoMediaStorage) || errors.Is(err, ErrInvalidArgument) || errors.Is(err, ErrAccessDenied) {
		return false
	}
	return !errors.Is(err, context.Canceled) // network errors and timeouts
}

// JoinRetryDelay is the wait before the n-th retry (from 1) of a join that
// got no offer, as the official JavaScript SDK's test page computes it:
// 6 s plus a random part of up to 200^(n-1) ms, at most 10 s; rnd is a
// uniform number in [0, 1).
func JoinRetryDelay(n int, rnd float64) time.Duration {
	extra := 1.0
	for i := 1; i < n; i++ {
		extra *= 200
		if extra > 10000 {
			break
		}
	}
	return 6*time.Second + time.Duration(min(rnd*extra, 10000)*float64(time.Millisecond))
}
