package peer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// ChannelConfig says which signaling channel a Master or Viewer uses and
// how it gets there: either an already resolved channel (Resolved), or the
// AWS configuration and a channel name or ARN, which NewMaster and
// NewViewer resolve with package channel.
type ChannelConfig struct {
	// Resolved is a channel already resolved for the right role
	// (channel.RoleMaster for a Master, channel.RoleViewer for a Viewer).
	// When set, AWS, Channel, CreateIfMissing and Resolver are ignored.
	Resolved *channel.Resolved

	// AWS holds the region, the credentials provider and, for a
	// KVS-compatible service such as package localkvs, the endpoint
	// override (config.LoadDefaultConfig reads AWS_ENDPOINT_URL).
	AWS aws.Config
	// Channel is the signaling channel's name or ARN.
	Channel string
	// CreateIfMissing creates the channel (by name) when it does not exist.
	CreateIfMissing bool
	// Resolver, when set, resolves the channel with its caches; nil makes a
	// new channel.Resolver from AWS.
	Resolver *channel.Resolver
	// ResolveOptions are the other options of channel.Resolve; its
	// CreateIfMissing is ORed with the field above, its ClientID is set by
	// the Viewer.
	ResolveOptions channel.Options

	// NAT selects the ICE servers used: channel.STUNAndTURN (the default),
	// channel.TURNOnly, channel.STUNOnly or channel.NATTraversalDisabled.
	NAT channel.NATTraversal

	// Signaling, when set, is called with the signaling.Config built from
	// the resolved channel before signaling.New, to change reconnect
	// delays, timeouts or the logger. It must not change Role, ChannelARN
	// or ClientID.
	Signaling func(*signaling.Config)
}

// resolve returns the channel resolved for role, and the time spent.
func (c ChannelConfig) resolve(ctx context.Context, role channel.Role, clientID string, log *slog.Logger) (*channel.Resolved, error) {
	if c.Resolved != nil {
		if c.Resolved.Role() != role {
			return nil, fmt.Errorf("%w: ChannelConfig.Resolved is for role %s, want %s", ErrInvalidConfig, c.Resolved.Role(), role)
		}
		return c.Resolved, nil
	}
	if c.Channel == "" {
		return nil, fmt.Errorf("%w: ChannelConfig.Channel (a name or ARN) is required when Resolved is nil", ErrInvalidConfig)
	}
	r := c.Resolver
	if r == nil {
		var err error
		r, err = channel.NewResolver(c.AWS, channel.ResolverOptions{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrResolve, err)
		}
	}
	opts := c.ResolveOptions
	opts.CreateIfMissing = opts.CreateIfMissing || c.CreateIfMissing
	opts.ClientID = clientID
	res, err := r.Resolve(ctx, c.Channel, role, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrResolve, err)
	}
	return res, nil
}

// newSignaling builds the signaling client for res.
func (c ChannelConfig) newSignaling(res *channel.Resolved, clientID string, log *slog.Logger) (*signaling.Client, error) {
	cfg := res.SignalingConfig()
	cfg.ClientID, cfg.Logger = clientID, log
	if c.Signaling != nil {
		c.Signaling(&cfg)
		cfg.Role, cfg.ChannelARN, cfg.ClientID = res.Role(), res.ChannelARN(), clientID
	}
	sc, err := signaling.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignaling, err)
	}
	return sc, nil
}

// openError classifies a failed signaling Open.
func openError(err error) error {
	if he := (*signaling.HandshakeError)(nil); errors.As(err, &he) && he.ClientLimitExceeded() {
		return fmt.Errorf("%w: %w", ErrClientLimitExceeded, err)
	}
	return fmt.Errorf("%w: %w", ErrSignaling, err)
}

// iceConfig returns the webrtc.Configuration for a new peer connection,
// fetching expired TURN credentials first; on failure it falls back on the
// servers held.
func iceConfig(ctx context.Context, res *channel.Resolved, mode channel.NATTraversal, log *slog.Logger) webrtc.Configuration {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := res.ICEConfiguration(cctx, mode)
	if err != nil {
		log.Warn("peer: fetching ICE servers failed; using the ones held", "err", err)
		return res.WebRTCConfiguration(mode)
	}
	return cfg
}

// discard is a logger that drops everything.
var discard = slog.New(slog.DiscardHandler)

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return discard
	}
	return l
}

// resolveTimings are the control-plane steps of res, the start of a
// SignalingTimings.
func resolveTimings(res *channel.Resolved) SignalingTimings {
	t := res.Timings()
	return SignalingTimings{Describe: t.Describe, Create: t.Create, Endpoint: t.Endpoint, ICEConfig: t.ICEConfig}
}

// checkSources checks that the sources of a config (named config) are of
// their kind.
func checkSources(config string, video, audio media.Source) error {
	for _, s := range []struct {
		name string
		src  media.Source
		kind webrtc.RTPCodecType
	}{{"Video", video, webrtc.RTPCodecTypeVideo}, {"Audio", audio, webrtc.RTPCodecTypeAudio}} {
		if s.src != nil && s.src.Kind() != s.kind {
			return fmt.Errorf("%w: %s.%s is a %s source", ErrInvalidConfig, config, s.name, s.src.Kind())
		}
	}
	return nil
}

// setHandler sets the handler *h to f under mu (the hmu of a Master or a
// Viewer): what each OnXxx method of theirs does.
func setHandler[F any](mu *sync.RWMutex, h *F, f F) {
	mu.Lock()
	*h = f
	mu.Unlock()
}

// handler returns the handler *h, read under mu.
func handler[F any](mu *sync.RWMutex, h *F) F {
	mu.RLock()
	defer mu.RUnlock()
	return *h
}
