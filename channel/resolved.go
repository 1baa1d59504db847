package channel

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// Timings are the durations of the steps of one Resolve call. A step served
// from the cache, or not needed, has a zero duration.
type Timings struct {
	Describe  time.Duration // DescribeSignalingChannel (all calls, the wait for ACTIVE included)
	Create    time.Duration // CreateSignalingChannel
	Endpoint  time.Duration // GetSignalingChannelEndpoint
	ICEConfig time.Duration // GetIceServerConfig
	Total     time.Duration // the whole Resolve call

	EndpointsCached bool // the ARN and endpoints came from the cache
	ICECached       bool // the ICE servers came from the cache
}

// Resolved is a channel ready to connect to: what the Usage steps of the
// official JavaScript SDK README gather before opening the signaling client
// and the peer connection. Resolve makes it; its methods read it.
//
// [Resolved.SignalingConfig] gives the signaling.Config of the channel and
// role, and [Resolved.WebRTCConfiguration] (or [Resolved.ICEConfiguration],
// which fetches expired TURN credentials first) the webrtc.Configuration of
// the peer connection.
//
// The channel's identity and endpoints never change. The ICE servers, their
// expiry, the clock offset and Timings().ICEConfig change only when
// RefreshICEServers or ICEConfiguration fetches the ICE servers again; every
// method is safe to call from any goroutine meanwhile, and the values it
// returns are copies.
type Resolved struct {
	// Set by Resolve, never changed.
	channelARN     string
	channelName    string
	role           Role
	region         string
	clientID       string
	wssEndpoint    string
	httpsEndpoint  string
	webrtcEndpoint string
	credentials    aws.CredentialsProvider
	httpClient     *http.Client
	resolver       *Resolver
	stunURL        string
	derive         bool

	mu          sync.Mutex // guards what a fetch of the ICE servers updates
	iceServers  []webrtc.ICEServer
	iceExpire   time.Time
	clockOffset time.Duration
	timings     Timings

	storageEndpoint string // the WEBRTC endpoint asked for later: storage.go
}

// ChannelARN returns the channel's ARN,
// arn:aws:kinesisvideo:<region>:<account>:channel/<name>/<epoch ms>.
func (r *Resolved) ChannelARN() string { return r.channelARN }

// ChannelName returns the channel's name.
func (r *Resolved) ChannelName() string { return r.channelName }

// Role returns the role the channel was resolved for (its endpoints and ICE
// servers are that role's).
func (r *Resolved) Role() Role { return r.role }

// Region returns the AWS region of the channel (the aws.Config's).
func (r *Resolved) Region() string { return r.region }

// ClientID returns Options.ClientID: the id sent to GetIceServerConfig, and
// a viewer's id on the signaling channel.
func (r *Resolved) ClientID() string { return r.clientID }

// WSSEndpoint returns the signaling endpoint of the role
// (wss://..., or ws://... for a local service without TLS).
func (r *Resolved) WSSEndpoint() string { return r.wssEndpoint }

// HTTPSEndpoint returns the data-plane endpoint of the role, where
// GetIceServerConfig is called.
func (r *Resolved) HTTPSEndpoint() string { return r.httpsEndpoint }

// WebRTCEndpoint returns the WEBRTC (storage session) endpoint: set only
// with Options.WebRTCEndpoint, and when the service has one.
func (r *Resolved) WebRTCEndpoint() string { return r.webrtcEndpoint }

// Credentials returns the aws.Config's credentials provider.
func (r *Resolved) Credentials() aws.CredentialsProvider { return r.credentials }

// HTTPClient returns the client that trusts the same CAs as the aws.Config
// (AWS_CA_BUNDLE; see the package's HTTPClient): the one that made the
// GetIceServerConfig calls, for the dial of the WSS endpoint.
func (r *Resolved) HTTPClient() *http.Client { return r.httpClient }

// ICEServers returns a copy of the ICE servers: one STUN server entry first
// (see below), then the TURN servers of GetIceServerConfig with their
// credentials.
//
// The STUN URL is Options.STUNURL when set. Otherwise, when the HTTPS
// endpoint is an AWS host (or no endpoint override is configured), it is
// the region's KVS STUN server, STUNURL(region, fips, dualStack). When the
// endpoints point elsewhere (a local KVS-compatible service through
// AWS_ENDPOINT_URL), no AWS hostname is used: the STUN URLs are the stun:
// URLs the service lists in its ICE config, or, when it lists none,
// stun:<host>:<port> of its UDP TURN URLs (a TURN server answers STUN
// binding requests).
func (r *Resolved) ICEServers() []webrtc.ICEServer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return cloneServers(r.iceServers)
}

// ICEServersExpire returns when the TURN credentials should be fetched
// again: the smallest TTL of the servers minus ResolverOptions.ICEGrace
// (30 s by default).
func (r *Resolved) ICEServersExpire() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.iceExpire
}

// ClockOffset returns server time minus local time, learned from the Date
// header of the responses, or 0 when the clocks agree within MaxClockSkew
// (5 min), as the C SDK does. Sign at time.Now()+ClockOffset()
// (signaling.Config.SystemClockOffset, which SignalingConfig fills).
func (r *Resolved) ClockOffset() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.clockOffset
}

// Timings returns the durations of the Resolve call that made r; ICEConfig
// is that of the latest fetch of the ICE servers.
func (r *Resolved) Timings() Timings {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.timings
}

// SignalingConfig returns the signaling.Config of the channel and role:
// Role, ChannelARN, ChannelEndpoint (the WSS endpoint), Region, ClientID (a
// viewer's; it stays empty for a master, which the service names by none,
// even when Options.ClientID was given for GetIceServerConfig),
// Credentials, SystemClockOffset (the clock offset now), HTTPClient, and
// AllowInsecureEndpoint when the WSS endpoint is a ws:// URL (a local
// service without TLS). The other fields are zero, for the defaults of
// signaling.New; set them (Logger, reconnect delays, ...) on the returned
// value:
//
//	cfg := res.SignalingConfig()
//	cfg.Logger = logger
//	client, err := signaling.New(cfg)
func (r *Resolved) SignalingConfig() signaling.Config {
	cfg := signaling.Config{
		Role:                  r.role,
		ChannelARN:            r.channelARN,
		ChannelEndpoint:       r.wssEndpoint,
		AllowInsecureEndpoint: strings.HasPrefix(r.wssEndpoint, "ws://"),
		Region:                r.region,
		Credentials:           r.credentials,
		SystemClockOffset:     r.ClockOffset(),
		HTTPClient:            r.httpClient,
	}
	if r.role == RoleViewer {
		cfg.ClientID = r.clientID
	}
	return cfg
}

// WebRTCConfiguration returns the peer connection configuration for a NAT
// traversal mode, from the ICE servers r holds now (see ICEConfiguration to
// fetch expired TURN credentials first).
func (r *Resolved) WebRTCConfiguration(mode NATTraversal) webrtc.Configuration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return buildConfiguration(r.iceServers, mode)
}

// ICEConfiguration is WebRTCConfiguration after fetching the ICE servers
// again when they have expired (ICEServersExpire has passed), from the
// resolver's cache when another Resolved of the same channel fetched them
// already. Call it for each new peer connection.
func (r *Resolved) ICEConfiguration(ctx context.Context, mode NATTraversal) (webrtc.Configuration, error) {
	if r.resolver == nil {
		return webrtc.Configuration{}, errNotResolved
	}
	if mode != NATTraversalDisabled && !r.resolver.now().Before(r.ICEServersExpire()) {
		if err := r.refresh(ctx, false); err != nil {
			return webrtc.Configuration{}, err
		}
	}
	return r.WebRTCConfiguration(mode), nil
}

// RefreshICEServers calls GetIceServerConfig again, now, and updates the
// ICE servers and their expiry (and the resolver's cache). Call it on
// RECONNECT_ICE_SERVER.
func (r *Resolved) RefreshICEServers(ctx context.Context) error { return r.refresh(ctx, true) }

// errNotResolved reports a Resolved built by hand rather than by Resolve.
var errNotResolved = fmt.Errorf("%w: this Resolved was not made by Resolve: it cannot fetch ICE servers", ErrInvalidArgument)

func (r *Resolved) refresh(ctx context.Context, force bool) error {
	if r.resolver == nil {
		return errNotResolved
	}
	res, _, d, err := r.resolver.iceServers(ctx, r.httpsEndpoint, r.channelARN, r.clientID, r.role, force)
	if err != nil {
		return err
	}
	r.setICE(orderServers(r.stunURL, res.servers, r.derive), res.expire, d)
	return nil
}

// setICE records a fetch of the ICE servers (d is 0 when they came from the
// resolver's cache).
func (r *Resolved) setICE(servers []webrtc.ICEServer, expire time.Time, d time.Duration) {
	offset := r.resolver.ClockOffset()
	r.mu.Lock()
	r.iceServers, r.iceExpire, r.clockOffset = servers, expire, offset
	if d > 0 {
		r.timings.ICEConfig = d
	}
	r.mu.Unlock()
}
