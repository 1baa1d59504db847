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
// and the peer connection.
//
// Its fields map one to one onto signaling.Config:
//
//	signaling.Config{
//		Role:                  signaling.Role(r.Role),
//		ChannelARN:            r.ChannelARN,
//		ChannelEndpoint:       r.WSSEndpoint,
//		Region:                r.Region,
//		ClientID:              r.ClientID, // viewer only
//		Credentials:           r.Credentials,
//		SystemClockOffset:     r.ClockOffset,
//		HTTPClient:            r.HTTPClient,
//		AllowInsecureEndpoint: r.Insecure(),
//	}
//
// and WebRTCConfiguration gives the webrtc.Configuration of the peer
// connection.
//
// ICEServers and ICEServersExpire change on RefreshICEServers and
// ICEConfiguration; when one goroutine may call those while others use r,
// read the servers through WebRTCConfiguration or ICEConfiguration only.
type Resolved struct {
	ChannelARN     string // arn:aws:kinesisvideo:<region>:<account>:channel/<name>/<ms>
	ChannelName    string
	Role           Role
	Region         string
	ClientID       string // Options.ClientID
	WSSEndpoint    string // signaling.Config.ChannelEndpoint
	HTTPSEndpoint  string // the data plane (GetIceServerConfig)
	WebRTCEndpoint string // only with Options.WebRTCEndpoint, and when the service has one

	// ICEServers: one STUN server entry first (see below), then the TURN
	// servers of GetIceServerConfig with their credentials.
	//
	// The STUN URL is Options.STUNURL when set. Otherwise, when the HTTPS
	// endpoint is an AWS host (or no endpoint override is configured), it is
	// the region's KVS STUN server, STUNURL(region, fips, dualStack). When
	// the endpoints point elsewhere (a local KVS-compatible service through
	// AWS_ENDPOINT_URL), no AWS hostname is used: the STUN URLs are the
	// stun: URLs the service lists in its ICE config, or, when it lists
	// none, stun:<host>:<port> of its UDP TURN URLs (a TURN server answers
	// STUN binding requests).
	ICEServers []webrtc.ICEServer
	// ICEServersExpire is when the TURN credentials should be fetched again:
	// the smallest TTL minus the grace period (30 s).
	ICEServersExpire time.Time
	// ClockOffset is server time minus local time, learned from the Date
	// header of the responses, or 0 when the clocks agree within
	// MaxClockSkew (5 min), as the C SDK does. Sign at time.Now()+ClockOffset
	// (signaling.Config.SystemClockOffset).
	ClockOffset time.Duration
	// Credentials is the aws.Config's credentials provider.
	Credentials aws.CredentialsProvider
	// HTTPClient trusts the same CAs as the aws.Config (AWS_CA_BUNDLE): for
	// signaling.Config.HTTPClient, to dial the WSS endpoint.
	HTTPClient *http.Client
	// Timings of the Resolve call that made r.
	Timings Timings

	mu       sync.Mutex
	resolver *Resolver
	stunURL  string
	derive   bool
}

// Insecure reports whether the WSS endpoint is a plain ws:// URL (a local
// service without TLS): the value for signaling.Config.AllowInsecureEndpoint.
func (r *Resolved) Insecure() bool { return strings.HasPrefix(r.WSSEndpoint, "ws://") }

// WebRTCConfiguration returns the peer connection configuration for a NAT
// traversal mode, from the ICE servers r holds now (see ICEConfiguration to
// fetch expired TURN credentials first).
func (r *Resolved) WebRTCConfiguration(mode NATTraversal) webrtc.Configuration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return buildConfiguration(r.ICEServers, mode)
}

// ICEConfiguration is WebRTCConfiguration after fetching the ICE servers
// again when they have expired (ICEServersExpire has passed), from the
// resolver's cache when another Resolved of the same channel fetched them
// already. Call it for each new peer connection.
func (r *Resolved) ICEConfiguration(ctx context.Context, mode NATTraversal) (webrtc.Configuration, error) {
	if r.resolver == nil {
		return webrtc.Configuration{}, errNotResolved
	}
	r.mu.Lock()
	fresh := r.resolver.now().Before(r.ICEServersExpire)
	r.mu.Unlock()
	if !fresh && mode != NATTraversalDisabled {
		if err := r.refresh(ctx, false); err != nil {
			return webrtc.Configuration{}, err
		}
	}
	return r.WebRTCConfiguration(mode), nil
}

// RefreshICEServers calls GetIceServerConfig again, now, and updates
// ICEServers and ICEServersExpire (and the resolver's cache). Call it on
// RECONNECT_ICE_SERVER.
func (r *Resolved) RefreshICEServers(ctx context.Context) error { return r.refresh(ctx, true) }

// errNotResolved reports a Resolved built by hand rather than by Resolve.
var errNotResolved = fmt.Errorf("%w: this Resolved was not made by Resolve: it cannot fetch ICE servers", ErrInvalidArgument)

func (r *Resolved) refresh(ctx context.Context, force bool) error {
	if r.resolver == nil {
		return errNotResolved
	}
	r.mu.Lock()
	arn, https, clientID, role := r.ChannelARN, r.HTTPSEndpoint, r.ClientID, r.Role
	r.mu.Unlock()
	res, _, d, err := r.resolver.iceServers(ctx, https, arn, clientID, role, force)
	if err != nil {
		return err
	}
	servers := orderServers(r.stunURL, res.servers, r.derive)
	r.mu.Lock()
	r.ICEServers = servers
	r.ICEServersExpire = res.expire
	r.ClockOffset = r.resolver.ClockOffset()
	if d > 0 {
		r.Timings.ICEConfig = d
	}
	r.mu.Unlock()
	return nil
}
