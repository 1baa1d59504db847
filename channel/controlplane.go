package channel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/internal/awsjson"
)

// The control-plane calls of a Resolve: DescribeSignalingChannel,
// CreateSignalingChannel and GetSignalingChannelEndpoint (docs/protocol.md,
// "Control plane"), and the mapping of their errors onto this package's.

// endpointsFor returns the channel ARN and endpoints, from the cache when
// fresh.
func (r *Resolver) endpointsFor(ctx context.Context, channel string, role Role, opts Options, t *Timings) (endpointEntry, error) {
	key := endpointKey(r.controlPlane, r.awsCfg.Region, channel, role)
	r.mu.Lock()
	e, ok := r.endpoints[key]
	r.mu.Unlock()
	if ok && fresh(r.now(), e.CachedAt, r.opts.EndpointTTL) && (!opts.WebRTCEndpoint || e.HasWebRTC) {
		t.EndpointsCached = true
		return e, nil
	}
	info, err := r.describeOrCreate(ctx, channel, opts, t)
	if err != nil {
		return endpointEntry{}, err
	}
	e = endpointEntry{
		Key: key, ControlPlane: r.controlPlane, Region: r.awsCfg.Region, Channel: channel, Role: role,
		ChannelARN: aws.ToString(info.ChannelARN), ChannelName: aws.ToString(info.ChannelName),
		HasWebRTC: opts.WebRTCEndpoint,
	}
	protocols := []types.ChannelProtocol{types.ChannelProtocolWss, types.ChannelProtocolHttps}
	if opts.WebRTCEndpoint {
		protocols = append(protocols, types.ChannelProtocolWebrtc)
	}
	start := time.Now()
	ectx, cancel := context.WithTimeout(ctx, r.opts.APITimeout)
	out, err := r.kv.GetSignalingChannelEndpoint(ectx, &kinesisvideo.GetSignalingChannelEndpointInput{
		ChannelARN: info.ChannelARN,
		SingleMasterChannelEndpointConfiguration: &types.SingleMasterChannelEndpointConfiguration{
			Protocols: protocols,
			Role:      types.ChannelRole(role),
		},
	})
	cancel()
	t.Endpoint = time.Since(start)
	if err != nil {
		return endpointEntry{}, apiError(ErrEndpoint, e.ChannelARN, err)
	}
	for _, it := range out.ResourceEndpointList {
		switch it.Protocol {
		case types.ChannelProtocolWss:
			e.WSSEndpoint = aws.ToString(it.ResourceEndpoint)
		case types.ChannelProtocolHttps:
			e.HTTPSEndpoint = aws.ToString(it.ResourceEndpoint)
		case types.ChannelProtocolWebrtc:
			e.WebRTCEndpoint = aws.ToString(it.ResourceEndpoint)
		}
	}
	if e.WSSEndpoint == "" || e.HTTPSEndpoint == "" {
		return endpointEntry{}, fmt.Errorf("%w: channel %q: the answer lacks the WSS or HTTPS endpoint (WSS %q, HTTPS %q)", ErrEndpoint, e.ChannelARN, e.WSSEndpoint, e.HTTPSEndpoint)
	}
	e.CachedAt = r.now()
	r.mu.Lock()
	r.endpoints[key] = e
	r.mu.Unlock()
	r.persist()
	return e, nil
}

func (r *Resolver) describe(ctx context.Context, channel string) (*types.ChannelInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.APITimeout)
	defer cancel()
	in := &kinesisvideo.DescribeSignalingChannelInput{}
	in.ChannelName, in.ChannelARN = awsjson.NameOrARN(channel)
	out, err := r.kv.DescribeSignalingChannel(ctx, in)
	if err != nil {
		return nil, err
	}
	if out.ChannelInfo == nil || aws.ToString(out.ChannelInfo.ChannelARN) == "" {
		return nil, fmt.Errorf("the answer has no ChannelInfo.ChannelARN")
	}
	return out.ChannelInfo, nil
}

// describeOrCreate describes the channel, creates it when missing and
// allowed, and waits until it is ACTIVE.
func (r *Resolver) describeOrCreate(ctx context.Context, channel string, opts Options, t *Timings) (*types.ChannelInfo, error) {
	start := time.Now()
	info, err := r.describe(ctx, channel)
	t.Describe += time.Since(start)
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) && opts.CreateIfMissing && !strings.HasPrefix(channel, "arn:") {
		in := &kinesisvideo.CreateSignalingChannelInput{
			ChannelName: aws.String(channel),
			ChannelType: types.ChannelTypeSingleMaster,
		}
		if opts.MessageTTL > 0 {
			in.SingleMasterConfiguration = &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(int32(opts.MessageTTL / time.Second))}
		}
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, r.opts.APITimeout)
		_, cerr := r.kv.CreateSignalingChannel(cctx, in)
		cancel()
		t.Create = time.Since(start)
		var inUse *types.ResourceInUseException
		if cerr != nil && !errors.As(cerr, &inUse) { // in use: created meanwhile by someone else
			return nil, apiError(ErrCreate, channel, cerr)
		}
		r.log().Info("channel: created signaling channel", "channel", channel)
		start = time.Now()
		info, err = r.describe(ctx, channel)
		t.Describe += time.Since(start)
	}
	if err != nil {
		return nil, apiError(ErrDescribe, channel, err)
	}
	// Wait for ACTIVE (a new channel is CREATING for a moment).
	deadline := time.Now().Add(r.opts.ActiveTimeout)
	backoff := 100 * time.Millisecond
	for info.ChannelStatus != types.StatusActive && info.ChannelStatus != "" {
		if info.ChannelStatus == types.StatusDeleting {
			return nil, fmt.Errorf("%w: channel %q is %s", ErrChannelNotActive, channel, info.ChannelStatus)
		}
		if time.Now().Add(backoff).After(deadline) {
			return nil, fmt.Errorf("%w: channel %q still %s after %v", ErrChannelNotActive, channel, info.ChannelStatus, r.opts.ActiveTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: channel %q: %w", ErrDescribe, channel, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
		start := time.Now()
		info, err = r.describe(ctx, aws.ToString(info.ChannelARN))
		t.Describe += time.Since(start)
		if err != nil {
			return nil, apiError(ErrDescribe, channel, err)
		}
	}
	return info, nil
}

// apiError wraps a control-plane error with the step's sentinel and the
// matching kind sentinel, keeping the SDK error in the chain.
func apiError(step error, channel string, err error) error {
	var (
		nf     *types.ResourceNotFoundException
		denied *types.AccessDeniedException
		notAut *types.NotAuthorizedException
		limit  *types.ClientLimitExceededException
		resp   *awshttp.ResponseError
	)
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("%w: %w: %q: %w", step, ErrChannelNotFound, channel, err)
	case errors.As(err, &denied), errors.As(err, &notAut):
		return fmt.Errorf("%w: %w: %q: %w", step, ErrAccessDenied, channel, err)
	case errors.As(err, &limit):
		return fmt.Errorf("%w: %w: %q: %w", step, ErrThrottled, channel, err)
	case errors.As(err, &resp) && (resp.HTTPStatusCode() == 401 || resp.HTTPStatusCode() == 403):
		return fmt.Errorf("%w: %w: %q: %w", step, ErrAccessDenied, channel, err)
	case errors.As(err, &resp) && resp.HTTPStatusCode() == 429:
		return fmt.Errorf("%w: %w: %q: %w", step, ErrThrottled, channel, err)
	}
	return fmt.Errorf("%w: %q: %w", step, channel, err)
}
