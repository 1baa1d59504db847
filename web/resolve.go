package web

import (
	"context"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
)

// resolution is what /api/connect needs from the control plane.
type resolution struct {
	arn     string
	wss     string
	ice     webrtc.Configuration
	offset  time.Duration
	timings map[string]time.Duration
	cached  bool
}

// resolve runs the control-plane steps for one browser connect. reason is
// why the browser connects: "open" for the first time; "goAway" or
// "closed" make the resolver forget its cached endpoints first (as the C
// SDK describes the channel again on GO_AWAY); "reconnectIceServer" fetches
// fresh ICE servers.
func (s *Server) resolve(ctx context.Context, v *variant, name string, role channel.Role, clientID string, nat channel.NATTraversal, reason string) (resolution, error) {
	if reason == "goAway" || reason == "closed" {
		v.resolver.Invalidate(name, role)
	}
	r, err := v.resolver.Resolve(ctx, name, role, channel.Options{
		CreateIfMissing: s.cfg.CreateIfMissing,
		ClientID:        clientID,
		FIPS:            v.fips,
		DualStack:       v.dual,
	})
	if err != nil {
		return resolution{}, err
	}
	if reason == "reconnectIceServer" && nat != channel.NATTraversalDisabled {
		if err := r.RefreshICEServers(ctx); err != nil {
			return resolution{}, err
		}
	}
	ice, err := r.ICEConfiguration(ctx, nat)
	if err != nil {
		return resolution{}, err
	}
	t := r.Timings()
	return resolution{
		arn:    r.ChannelARN(),
		wss:    r.WSSEndpoint(),
		ice:    ice,
		offset: r.ClockOffset(),
		timings: map[string]time.Duration{
			"describeMs":  t.Describe,
			"createMs":    t.Create,
			"endpointMs":  t.Endpoint,
			"iceConfigMs": t.ICEConfig,
		},
		cached: t.EndpointsCached,
	}, nil
}

// createChannel creates a channel unless it exists; created reports which.
func (s *Server) createChannel(ctx context.Context, v *variant, name string) (arn string, created bool, err error) {
	r, err := v.resolver.Resolve(ctx, name, channel.RoleMaster, channel.Options{CreateIfMissing: true})
	if err != nil {
		return "", false, fmt.Errorf("web: create channel %q: %w", name, err)
	}
	return r.ChannelARN(), r.Timings().Create > 0, nil
}
