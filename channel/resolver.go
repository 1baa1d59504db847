package channel

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/smithy-go/middleware"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// Role is the role a client takes on a signaling channel; it is the same
// type as signaling.Role.
type Role = wire.Role

// The two roles of a single-master channel.
const (
	RoleMaster = wire.RoleMaster // the channel's one master ("MASTER")
	RoleViewer = wire.RoleViewer // one of its viewers ("VIEWER")
)

// Defaults, after the official C SDK.
const (
	// DefaultEndpointTTL is how long the channel ARN and endpoints stay cached.
	DefaultEndpointTTL = 10 * time.Hour
	// DefaultICEGrace is taken off the smallest TTL of the ICE servers: they
	// are fetched again that long before the TURN credentials expire.
	DefaultICEGrace = 30 * time.Second
	// DefaultAPITimeout bounds each HTTPS call.
	DefaultAPITimeout = 5 * time.Second
	// DefaultActiveTimeout bounds the wait for a created channel to be ACTIVE.
	DefaultActiveTimeout = 15 * time.Second
	// MaxClockSkew is the clock difference the service tolerates. When the
	// Date header of a response is further than this from the local clock,
	// the difference becomes the clock offset.
	MaxClockSkew = wire.MaxClockSkew
)

// Options are the per-call choices of Resolve.
type Options struct {
	// CreateIfMissing creates a SINGLE_MASTER channel when the channel,
	// given by name, does not exist.
	CreateIfMissing bool
	// MessageTTL is the MessageTtlSeconds of a channel this call creates:
	// 0 (the service default, 60 s) or 5..120 s in whole seconds.
	MessageTTL time.Duration
	// ClientID is sent as ClientId to GetIceServerConfig and returned in
	// Resolved.ClientID (the viewer's id for signaling.Config.ClientID).
	// Optional; [a-zA-Z0-9_.-]{1,256}, not starting with "AWS_".
	ClientID string
	// WebRTCEndpoint asks GetSignalingChannelEndpoint for the WEBRTC
	// (storage session) endpoint too.
	WebRTCEndpoint bool
	// FIPS selects the FIPS STUN server (stuns:stun.kinesisvideo-fips...).
	// It is also on when the aws.Config asks for FIPS endpoints
	// (AWS_USE_FIPS_ENDPOINT=true or use_fips_endpoint in the profile).
	FIPS bool
	// DualStack selects the dual-stack STUN server (...api.aws). It is also
	// on when the aws.Config asks for dual-stack endpoints
	// (AWS_USE_DUALSTACK_ENDPOINT=true or use_dualstack_endpoint).
	DualStack bool
	// STUNURL replaces the STUN server chosen by the rules of
	// Resolved.ICEServers; it must start with "stun:" or "stuns:".
	STUNURL string
}

// ResolverOptions are the settings of a Resolver; the zero value is valid.
type ResolverOptions struct {
	// CacheFile, when set, keeps the endpoint cache in this JSON file too,
	// so that a new Resolver (or a new process) starts warm. Written
	// atomically (temporary file and rename). ICE servers (TURN
	// credentials) are never written to disk. An unreadable or corrupt file
	// is logged and ignored.
	CacheFile string
	// EndpointTTL is how long endpoints stay cached; 0 means
	// DefaultEndpointTTL (10 h).
	EndpointTTL time.Duration
	// ICEGrace is taken off the smallest ICE server TTL; 0 means
	// DefaultICEGrace (30 s).
	ICEGrace time.Duration
	// APITimeout bounds each HTTPS call; 0 means DefaultAPITimeout (5 s).
	APITimeout time.Duration
	// ActiveTimeout bounds the wait for a created channel to be ACTIVE; 0
	// means DefaultActiveTimeout (15 s).
	ActiveTimeout time.Duration
	// HTTPClient makes the GetIceServerConfig calls and is returned as
	// Resolved.HTTPClient; nil means HTTPClient(awsCfg).
	HTTPClient *http.Client
	// Now is the local clock; nil means time.Now. It dates the
	// GetIceServerConfig signatures, the cache entries and the clock offset
	// (Resolved.ClockOffset is relative to this clock).
	Now func() time.Time
	// Logger receives debug and warning records; nil means silence.
	Logger *slog.Logger
}

// Resolver runs the control-plane steps with caches, like the C SDK: the
// channel ARN and endpoints for EndpointTTL per (endpoint override, region,
// channel, role), the ICE servers until their TTL minus ICEGrace per
// (HTTPS endpoint, channel ARN, role, client id), and the clock offset. It is
// safe for concurrent use.
type Resolver struct {
	awsCfg       aws.Config
	opts         ResolverOptions
	kv           *kinesisvideo.Client
	controlPlane string // custom base endpoint of the kinesisvideo client, "" for AWS's
	cfgFIPS      bool
	cfgDualStack bool
	signer       *v4.Signer
	httpClient   *http.Client

	fileMu sync.Mutex // serializes cache file writes

	mu        sync.Mutex
	endpoints map[string]endpointEntry
	ice       map[string]iceResult
	offset    time.Duration
}

// NewResolver checks awsCfg (Region and Credentials are required) and opts,
// builds the kinesisvideo client (honouring awsCfg.BaseEndpoint and
// AWS_ENDPOINT_URL_KINESIS_VIDEO the way the aws-sdk-go-v2 client does) and
// loads the cache file when there is one.
func NewResolver(awsCfg aws.Config, opts ResolverOptions) (*Resolver, error) {
	if awsCfg.Region == "" {
		return nil, ErrNoRegion
	}
	if awsCfg.Credentials == nil {
		return nil, ErrNoCredentials
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"EndpointTTL", &opts.EndpointTTL, DefaultEndpointTTL},
		{"ICEGrace", &opts.ICEGrace, DefaultICEGrace},
		{"APITimeout", &opts.APITimeout, DefaultAPITimeout},
		{"ActiveTimeout", &opts.ActiveTimeout, DefaultActiveTimeout},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("%w: ResolverOptions.%s is %v: must not be negative", ErrInvalidArgument, d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if opts.CacheFile != "" {
		if fi, err := os.Stat(opts.CacheFile); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("%w: ResolverOptions.CacheFile %q is a directory: want a file path", ErrInvalidArgument, opts.CacheFile)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Resolver{
		awsCfg:    awsCfg,
		opts:      opts,
		signer:    v4.NewSigner(),
		endpoints: map[string]endpointEntry{},
		ice:       map[string]iceResult{},
	}
	r.httpClient = opts.HTTPClient
	if r.httpClient == nil {
		r.httpClient = HTTPClient(awsCfg)
	}
	r.kv = kinesisvideo.NewFromConfig(awsCfg, func(o *kinesisvideo.Options) {
		apis := make([]func(*middleware.Stack) error, 0, len(o.APIOptions)+1)
		o.APIOptions = append(append(apis, o.APIOptions...), r.clockSkewMiddleware)
	})
	ko := r.kv.Options()
	if ko.BaseEndpoint != nil {
		r.controlPlane = *ko.BaseEndpoint
	}
	r.cfgFIPS = ko.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled
	r.cfgDualStack = ko.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled
	if opts.CacheFile != "" {
		entries, err := loadCacheFile(opts.CacheFile, r.now(), opts.EndpointTTL)
		if err != nil {
			r.log().Warn("channel: ignoring the endpoint cache file", "file", opts.CacheFile, "err", err)
		}
		for _, e := range entries {
			r.endpoints[e.Key] = e
		}
	}
	return r, nil
}

// Resolve runs the steps with a new Resolver (no cache file): see
// Resolver.Resolve.
func Resolve(ctx context.Context, awsCfg aws.Config, channel string, role Role, opts Options) (*Resolved, error) {
	r, err := NewResolver(awsCfg, ResolverOptions{})
	if err != nil {
		return nil, err
	}
	return r.Resolve(ctx, channel, role, opts)
}

// ControlPlaneEndpoint returns the endpoint override the kinesisvideo client
// uses (from awsCfg.BaseEndpoint, AWS_ENDPOINT_URL or
// AWS_ENDPOINT_URL_KINESIS_VIDEO), or "" for the AWS regional endpoint.
func (r *Resolver) ControlPlaneEndpoint() string { return r.controlPlane }

// HTTPClient returns the client of the HTTPS data-plane calls, the one
// Resolved.HTTPClient holds.
func (r *Resolver) HTTPClient() *http.Client { return r.httpClient }

// ClockOffset returns the clock offset learned so far (server time minus
// local time; 0 while the clocks agree within MaxClockSkew).
func (r *Resolver) ClockOffset() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.offset
}

// Invalidate drops what the caches hold for a channel (name or ARN, as given
// to Resolve) and role, so that the next Resolve describes it and asks for
// its endpoints again: after a 404 on connect or a GO_AWAY, as the C SDK does.
func (r *Resolver) Invalidate(channel string, role Role) {
	r.mu.Lock()
	arns := map[string]bool{channel: true}
	for k, e := range r.endpoints {
		if e.Role == role && (e.Channel == channel || e.ChannelARN == channel || e.ChannelName == channel) {
			arns[e.ChannelARN] = true
			delete(r.endpoints, k)
		}
	}
	for k := range r.ice {
		parts := strings.Split(k, "|") // https|arn|role|clientID
		if len(parts) == 4 && arns[parts[1]] && parts[2] == string(role) {
			delete(r.ice, k)
		}
	}
	r.mu.Unlock()
	r.persist()
}

// Resolve finds the channel (by ARN when channel starts with "arn:", else by
// name; creating it when missing if opts.CreateIfMissing), gets its WSS and
// HTTPS endpoints for role, its ICE servers, and the region's STUN server,
// using and filling the caches.
//
// Control-plane errors wrap ErrDescribe, ErrCreate or ErrEndpoint, plus
// ErrChannelNotFound, ErrAccessDenied or ErrThrottled when they apply, and
// keep the aws-sdk-go-v2 typed error (errors.As). GetIceServerConfig errors
// are *APIError values.
func (r *Resolver) Resolve(ctx context.Context, channel string, role Role, opts Options) (*Resolved, error) {
	start := time.Now()
	if err := validate(channel, role, opts, r.awsCfg.Region); err != nil {
		return nil, err
	}
	var t Timings
	e, err := r.endpointsFor(ctx, channel, role, opts, &t)
	if err != nil {
		return nil, err
	}
	res := &Resolved{
		channelARN:     e.ChannelARN,
		channelName:    e.ChannelName,
		role:           role,
		region:         r.awsCfg.Region,
		clientID:       opts.ClientID,
		wssEndpoint:    e.WSSEndpoint,
		httpsEndpoint:  e.HTTPSEndpoint,
		webrtcEndpoint: e.WebRTCEndpoint,
		credentials:    r.awsCfg.Credentials,
		httpClient:     r.httpClient,
		resolver:       r,
	}
	switch {
	case opts.STUNURL != "":
		res.stunURL = opts.STUNURL
	case r.controlPlane == "" || awsHosted(e.HTTPSEndpoint):
		res.stunURL = STUNURL(r.awsCfg.Region, opts.FIPS || r.cfgFIPS, opts.DualStack || r.cfgDualStack)
	default:
		res.derive = true
	}
	ice, cached, d, err := r.iceServers(ctx, e.HTTPSEndpoint, e.ChannelARN, opts.ClientID, role, false)
	if err != nil {
		return nil, err
	}
	t.ICEConfig, t.ICECached = d, cached
	t.Total = time.Since(start)
	res.timings = t
	res.setICE(orderServers(res.stunURL, ice.servers, res.derive), ice.expire, d)
	r.log().Debug("channel: resolved", "channel", res.channelName, "role", role,
		"endpointsCached", t.EndpointsCached, "iceCached", t.ICECached, "total", t.Total, "clockOffset", res.clockOffset)
	return res, nil
}

func validate(channel string, role Role, opts Options, region string) error {
	if role != RoleMaster && role != RoleViewer {
		return fmt.Errorf("%w: role %q: want %q or %q", ErrInvalidArgument, role, RoleMaster, RoleViewer)
	}
	if strings.HasPrefix(channel, "arn:") {
		a, err := wire.ParseChannelARN(channel)
		if err != nil {
			return fmt.Errorf("%w: channel ARN %w", ErrInvalidArgument, err)
		}
		if a.Region != region {
			return fmt.Errorf("%w: channel ARN %q is in region %q but the aws.Config's region is %q", ErrInvalidArgument, channel, a.Region, region)
		}
	} else if !wire.ValidName(channel) {
		return fmt.Errorf("%w: channel name %q: want %s (or a channel ARN)", ErrInvalidArgument, channel, wire.NameRule)
	}
	if opts.ClientID != "" {
		if err := wire.CheckClientID(opts.ClientID); err != nil {
			return fmt.Errorf("%w: Options.ClientID: %w", ErrInvalidArgument, err)
		}
	}
	if ttl := opts.MessageTTL; ttl != 0 && (ttl < wire.MinMessageTTL || ttl > wire.MaxMessageTTL || ttl%time.Second != 0) {
		return fmt.Errorf("%w: Options.MessageTTL %v: want 0 or 5s..120s in whole seconds", ErrInvalidArgument, ttl)
	}
	if s := opts.STUNURL; s != "" && !strings.HasPrefix(s, "stun:") && !strings.HasPrefix(s, "stuns:") {
		return fmt.Errorf("%w: Options.STUNURL %q: want a stun: or stuns: URL", ErrInvalidArgument, s)
	}
	return nil
}

// awsHosted reports whether an endpoint URL's host is an AWS domain.
func awsHosted(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	h := strings.ToLower(u.Hostname())
	for _, s := range []string{".amazonaws.com", ".amazonaws.com.cn", ".api.aws", ".api.amazonwebservices.com.cn"} {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

func (r *Resolver) now() time.Time { return r.opts.Now() }

func (r *Resolver) log() *slog.Logger {
	if r.opts.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.opts.Logger
}

// observeDate learns the clock offset from a response's Date header.
func (r *Resolver) observeDate(h http.Header) {
	d := h.Get("Date")
	if d == "" {
		return
	}
	server, err := http.ParseTime(d)
	if err != nil {
		return
	}
	skew := server.Sub(r.now())
	var off time.Duration
	if skew > MaxClockSkew || skew < -MaxClockSkew {
		off = skew
	}
	r.mu.Lock()
	changed := (off == 0) != (r.offset == 0) || absDur(off-r.offset) > 2*time.Second
	if changed {
		r.offset = off
	}
	r.mu.Unlock()
	if changed {
		r.log().Warn("channel: local clock differs from the service's", "offset", off)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// iceServers returns the ICE servers of a channel, from the cache unless
// force or expired.
func (r *Resolver) iceServers(ctx context.Context, https, arn, clientID string, role Role, force bool) (iceResult, bool, time.Duration, error) {
	key := https + "|" + arn + "|" + string(role) + "|" + clientID
	if !force {
		r.mu.Lock()
		c, ok := r.ice[key]
		r.mu.Unlock()
		if ok && r.now().Before(c.expire) {
			return c, true, 0, nil
		}
	}
	start := time.Now()
	res, err := r.getIceServerConfig(ctx, https, arn, clientID)
	d := time.Since(start)
	if err != nil {
		return iceResult{}, false, d, err
	}
	r.mu.Lock()
	r.ice[key] = res
	r.mu.Unlock()
	return res, false, d, nil
}

// persist writes the fresh endpoint entries to the cache file.
func (r *Resolver) persist() {
	if r.opts.CacheFile == "" {
		return
	}
	r.fileMu.Lock()
	defer r.fileMu.Unlock()
	now := r.now()
	r.mu.Lock()
	entries := make([]endpointEntry, 0, len(r.endpoints))
	for _, e := range r.endpoints {
		if fresh(now, e.CachedAt, r.opts.EndpointTTL) {
			entries = append(entries, e)
		}
	}
	r.mu.Unlock()
	sortEntries(entries)
	if err := writeCacheFile(r.opts.CacheFile, entries); err != nil {
		r.log().Warn("channel: cannot write the endpoint cache file", "file", r.opts.CacheFile, "err", err)
	}
}
