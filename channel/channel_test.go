package channel_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

const testTimeout = 20 * time.Second

func startServer(t *testing.T, useTLS bool) *localkvs.Server {
	t.Helper()
	srv, err := localkvs.Start(localkvs.Config{TLS: useTLS}, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("localkvs.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// unsetenv removes an environment variable for the test (restored after).
func unsetenv(t *testing.T, k string) {
	t.Helper()
	t.Setenv(k, "")
	os.Unsetenv(k)
}

// isolateEnv clears every AWS setting of the machine running the tests.
func isolateEnv(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_KINESIS_VIDEO", "AWS_CA_BUNDLE", "AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_DEFAULT_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
		unsetenv(t, k)
	}
}

// loadConfig sets the environment the way a user of the local service
// would (AWS_ENDPOINT_URL, the development keys, AWS_REGION, and
// AWS_CA_BUNDLE with TLS) and loads it with config.LoadDefaultConfig.
func loadConfig(t *testing.T, srv *localkvs.Server) aws.Config {
	t.Helper()
	isolateEnv(t)
	t.Setenv("AWS_ENDPOINT_URL", srv.URL())
	t.Setenv("AWS_ACCESS_KEY_ID", localkvs.DevAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", localkvs.DevSecretAccessKey)
	t.Setenv("AWS_REGION", srv.Region())
	if pem := srv.CACertPEM(); pem != nil {
		f := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(f, pem, 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("AWS_CA_BUNDLE", f)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	return cfg
}

// counter wraps an aws.HTTPClient and counts requests per path
// (instrumentation: every request still goes to the real server).
type counter struct {
	next aws.HTTPClient
	mu   sync.Mutex
	n    map[string]int
}

func count(cfg *aws.Config) *counter {
	next := cfg.HTTPClient
	if next == nil {
		next = awshttp.NewBuildableClient()
	}
	c := &counter{next: next, n: map[string]int{}}
	cfg.HTTPClient = c
	return c
}

func (c *counter) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n[strings.ToLower(r.URL.Path)]++
	c.mu.Unlock()
	return c.next.Do(r)
}

func (c *counter) get(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[path]
}

const (
	pDescribe = "/describesignalingchannel"
	pCreate   = "/createsignalingchannel"
	pEndpoint = "/getsignalingchannelendpoint"
	pICE      = "/v1/get-ice-server-config"
)

func (c *counter) expect(t *testing.T, when string, want map[string]int) {
	t.Helper()
	for p, n := range want {
		if got := c.get(p); got != n {
			t.Errorf("%s: %d calls to %s, want %d", when, got, p, n)
		}
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

func newResolver(t *testing.T, cfg aws.Config, opts channel.ResolverOptions) *channel.Resolver {
	t.Helper()
	r, err := channel.NewResolver(cfg, opts)
	if err != nil {
		t.Fatalf("NewResolver: %v", err)
	}
	return r
}

func createChannel(t *testing.T, srv *localkvs.Server, name string) string {
	t.Helper()
	arn, err := srv.CreateChannel(ctx(t), name)
	if err != nil {
		t.Fatalf("CreateChannel(%q): %v", name, err)
	}
	return arn
}

// checkNoAWSHost fails when a local resolution points anywhere at AWS.
func checkNoAWSHost(t *testing.T, res *channel.Resolved) {
	t.Helper()
	for _, s := range res.ICEServers() {
		for _, u := range s.URLs {
			if strings.Contains(u, "amazonaws") || strings.Contains(u, "api.aws") {
				t.Errorf("ICE server %q points at AWS while the endpoints are local", u)
			}
		}
	}
}

func TestResolveByNameAndARN(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	arn := createChannel(t, srv, "by-name-and-arn")
	r := newResolver(t, cfg, channel.ResolverOptions{})

	res, err := r.Resolve(ctx(t), "by-name-and-arn", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatalf("Resolve by name: %v", err)
	}
	if res.ChannelARN() != arn || res.ChannelName() != "by-name-and-arn" || res.Role() != channel.RoleMaster || res.Region() != srv.Region() {
		t.Errorf("got ARN %q name %q role %q region %q; want %q by-name-and-arn MASTER %q",
			res.ChannelARN(), res.ChannelName(), res.Role(), res.Region(), arn, srv.Region())
	}
	if res.WSSEndpoint() != srv.WSSEndpoint() || res.HTTPSEndpoint() != srv.URL() {
		t.Errorf("endpoints WSS %q HTTPS %q, want %q and %q", res.WSSEndpoint(), res.HTTPSEndpoint(), srv.WSSEndpoint(), srv.URL())
	}
	if res.WebRTCEndpoint() != "" {
		t.Errorf("WebRTCEndpoint %q without Options.WebRTCEndpoint", res.WebRTCEndpoint())
	}
	if !res.SignalingConfig().AllowInsecureEndpoint {
		t.Errorf("SignalingConfig().AllowInsecureEndpoint = false for %q", res.WSSEndpoint())
	}
	if res.Credentials() == nil || res.HTTPClient() == nil {
		t.Errorf("Credentials %v, HTTPClient %v: want both set", res.Credentials(), res.HTTPClient())
	}
	if res.ClockOffset() != 0 {
		t.Errorf("ClockOffset %v with a correct clock", res.ClockOffset())
	}
	if res.Timings().EndpointsCached || res.Timings().Describe <= 0 || res.Timings().Endpoint <= 0 || res.Timings().ICEConfig <= 0 || res.Timings().Create != 0 {
		t.Errorf("Timings %+v: want Describe, Endpoint, ICEConfig measured and no Create", res.Timings())
	}
	if got := r.ControlPlaneEndpoint(); got != srv.URL() {
		t.Errorf("ControlPlaneEndpoint() = %q, want %q (AWS_ENDPOINT_URL)", got, srv.URL())
	}
	checkNoAWSHost(t, res)

	enableStorage(t, srv, arn, "by-name-and-arn") // the WEBRTC endpoint needs media storage
	v, err := r.Resolve(ctx(t), arn, channel.RoleViewer, channel.Options{ClientID: "viewer-1", WebRTCEndpoint: true})
	if err != nil {
		t.Fatalf("Resolve by ARN: %v", err)
	}
	if v.ChannelARN() != arn || v.ChannelName() != "by-name-and-arn" || v.Role() != channel.RoleViewer || v.ClientID() != "viewer-1" {
		t.Errorf("by ARN: got ARN %q name %q role %q client %q", v.ChannelARN(), v.ChannelName(), v.Role(), v.ClientID())
	}
	if v.WebRTCEndpoint() != srv.URL() {
		t.Errorf("WebRTCEndpoint %q, want %q", v.WebRTCEndpoint(), srv.URL())
	}
}

// openSignaling opens and closes a signaling client made from
// res.SignalingConfig() against the real service.
func openSignaling(t *testing.T, res *channel.Resolved) {
	t.Helper()
	c, err := signaling.New(res.SignalingConfig())
	if err != nil {
		t.Fatalf("signaling.New(SignalingConfig()): %v", err)
	}
	if err := c.Open(ctx(t)); err != nil {
		t.Fatalf("Open with SignalingConfig(): %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestSignalingConfig: the signaling.Config a Resolved implies, for a
// master (no client id, even with one given for GetIceServerConfig) and a
// viewer, opens on the real service.
func TestSignalingConfig(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	arn := createChannel(t, srv, "signaling-config")
	r := newResolver(t, cfg, channel.ResolverOptions{})

	for _, c := range []struct {
		role             channel.Role
		clientID, wantID string
	}{
		{channel.RoleMaster, "ice-only-id", ""},
		{channel.RoleViewer, "viewer-1", "viewer-1"},
	} {
		res, err := r.Resolve(ctx(t), "signaling-config", c.role, channel.Options{ClientID: c.clientID})
		if err != nil {
			t.Fatalf("Resolve %s: %v", c.role, err)
		}
		sc := res.SignalingConfig()
		if sc.Role != c.role || sc.ChannelARN != arn || sc.ChannelEndpoint != srv.WSSEndpoint() || sc.Region != srv.Region() || sc.ClientID != c.wantID {
			t.Errorf("%s: SignalingConfig Role %q ARN %q endpoint %q region %q client %q; want %q %q %q %q %q",
				c.role, sc.Role, sc.ChannelARN, sc.ChannelEndpoint, sc.Region, sc.ClientID, c.role, arn, srv.WSSEndpoint(), srv.Region(), c.wantID)
		}
		if sc.Credentials == nil || sc.HTTPClient != res.HTTPClient() || sc.SystemClockOffset != res.ClockOffset() || !sc.AllowInsecureEndpoint {
			t.Errorf("%s: SignalingConfig credentials %v, HTTP client %p (want %p), offset %v (want %v), AllowInsecureEndpoint %v (want true for %q)",
				c.role, sc.Credentials, sc.HTTPClient, res.HTTPClient(), sc.SystemClockOffset, res.ClockOffset(), sc.AllowInsecureEndpoint, sc.ChannelEndpoint)
		}
		openSignaling(t, res)
	}
}

func TestResolveTLSWithCABundle(t *testing.T) {
	srv := startServer(t, true)
	cfg := loadConfig(t, srv)
	createChannel(t, srv, "tls-channel")

	if !strings.HasPrefix(srv.URL(), "https://") {
		t.Fatalf("TLS server URL %q", srv.URL())
	}
	// The package-level Resolve: a fresh resolver.
	res, err := channel.Resolve(ctx(t), cfg, "tls-channel", channel.RoleViewer, channel.Options{ClientID: "v1"})
	if err != nil {
		t.Fatalf("Resolve over TLS: %v", err)
	}
	if res.WSSEndpoint() != srv.WSSEndpoint() || !strings.HasPrefix(res.WSSEndpoint(), "wss://") || res.HTTPSEndpoint() != srv.URL() {
		t.Errorf("endpoints WSS %q HTTPS %q", res.WSSEndpoint(), res.HTTPSEndpoint())
	}
	if res.SignalingConfig().AllowInsecureEndpoint {
		t.Error("SignalingConfig().AllowInsecureEndpoint = true for a wss:// endpoint")
	}
	// Resolved.HTTPClient trusts the AWS_CA_BUNDLE CA, the default client does not.
	req, _ := http.NewRequestWithContext(ctx(t), http.MethodGet, srv.URL()+"/", nil)
	resp, err := res.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("Resolved.HTTPClient GET %s: %v", srv.URL(), err)
	}
	resp.Body.Close()
	req, _ = http.NewRequestWithContext(ctx(t), http.MethodGet, srv.URL()+"/", nil)
	if resp, err := (&http.Client{}).Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a client without the CA bundle reached the local TLS server: the test proves nothing")
	}
	// The signaling client dials wss:// with the same CA.
	if sc := res.SignalingConfig(); sc.AllowInsecureEndpoint || sc.HTTPClient != res.HTTPClient() {
		t.Errorf("SignalingConfig: AllowInsecureEndpoint %v for %q, HTTPClient %p (want %p)", sc.AllowInsecureEndpoint, sc.ChannelEndpoint, sc.HTTPClient, res.HTTPClient())
	}
	openSignaling(t, res)
	if tc := channel.TLSConfig(cfg); tc == nil || tc.RootCAs == nil {
		t.Errorf("TLSConfig(cfg) = %v: want the AWS_CA_BUNDLE roots", tc)
	}
	if c := channel.HTTPClient(cfg); c.Timeout != 0 {
		t.Errorf("HTTPClient(cfg).Timeout = %v, want 0 (WebSocket dials refuse timeouts)", c.Timeout)
	}
}

func TestServiceSpecificEndpointEnv(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	// Only the service-specific variable: aws-sdk-go-v2 reads it when the
	// kinesisvideo client is built.
	unsetenv(t, "AWS_ENDPOINT_URL")
	t.Setenv("AWS_ENDPOINT_URL_KINESIS_VIDEO", srv.URL())
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BaseEndpoint != nil {
		t.Fatalf("BaseEndpoint %q without AWS_ENDPOINT_URL", *cfg.BaseEndpoint)
	}
	createChannel(t, srv, "service-env")
	r := newResolver(t, cfg, channel.ResolverOptions{})
	if r.ControlPlaneEndpoint() != srv.URL() {
		t.Fatalf("ControlPlaneEndpoint() = %q, want %q", r.ControlPlaneEndpoint(), srv.URL())
	}
	res, err := r.Resolve(ctx(t), "service-env", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if res.WSSEndpoint() != srv.WSSEndpoint() {
		t.Errorf("WSSEndpoint %q", res.WSSEndpoint())
	}
	checkNoAWSHost(t, res)
}

func TestCreateIfMissing(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	cnt := count(&cfg)
	r := newResolver(t, cfg, channel.ResolverOptions{})

	res, err := r.Resolve(ctx(t), "made-on-demand", channel.RoleMaster, channel.Options{CreateIfMissing: true, MessageTTL: 30 * time.Second})
	if err != nil {
		t.Fatalf("Resolve with CreateIfMissing: %v", err)
	}
	if res.ChannelName() != "made-on-demand" || !strings.Contains(res.ChannelARN(), ":channel/made-on-demand/") {
		t.Errorf("created channel: name %q ARN %q", res.ChannelName(), res.ChannelARN())
	}
	if res.Timings().Create <= 0 {
		t.Errorf("Timings.Create = %v after a create", res.Timings().Create)
	}
	cnt.expect(t, "create", map[string]int{pCreate: 1, pDescribe: 2, pEndpoint: 1, pICE: 1})

	out, err := kinesisvideo.NewFromConfig(cfg).DescribeSignalingChannel(ctx(t), &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("made-on-demand")})
	if err != nil {
		t.Fatalf("describing the created channel: %v", err)
	}
	if got := aws.ToString(out.ChannelInfo.ChannelARN); got != res.ChannelARN() {
		t.Errorf("described ARN %q, resolved %q", got, res.ChannelARN())
	}
	if smc := out.ChannelInfo.SingleMasterConfiguration; smc == nil || aws.ToInt32(smc.MessageTtlSeconds) != 30 {
		t.Errorf("MessageTtlSeconds %v, want 30", smc)
	}

	// A new resolver finds it without creating it again.
	res2, err := newResolver(t, cfg, channel.ResolverOptions{}).Resolve(ctx(t), "made-on-demand", channel.RoleViewer, channel.Options{CreateIfMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if res2.ChannelARN() != res.ChannelARN() || res2.Timings().Create != 0 {
		t.Errorf("second resolve: ARN %q (want %q), Create %v", res2.ChannelARN(), res.ChannelARN(), res2.Timings().Create)
	}
	cnt.expect(t, "second resolve", map[string]int{pCreate: 1})
}

func TestNotFound(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	r := newResolver(t, cfg, channel.ResolverOptions{})

	_, err := r.Resolve(ctx(t), "no-such-channel", channel.RoleViewer, channel.Options{})
	if !errors.Is(err, channel.ErrChannelNotFound) || !errors.Is(err, channel.ErrDescribe) {
		t.Fatalf("err = %v, want ErrChannelNotFound and ErrDescribe", err)
	}
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("err %v does not hold *types.ResourceNotFoundException", err)
	}

	// By ARN there is nothing to create: still not found.
	arn := "arn:aws:kinesisvideo:" + srv.Region() + ":" + localkvs.AccountID + ":channel/gone/1700000000000"
	_, err = r.Resolve(ctx(t), arn, channel.RoleMaster, channel.Options{CreateIfMissing: true})
	if !errors.Is(err, channel.ErrChannelNotFound) {
		t.Fatalf("by ARN: err = %v, want ErrChannelNotFound", err)
	}
}

func TestAccessDenied(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	createChannel(t, srv, "denied")
	cacheFile := filepath.Join(t.TempDir(), "endpoints.json")
	// Warm the endpoint cache with good keys.
	if _, err := newResolver(t, cfg, channel.ResolverOptions{CacheFile: cacheFile}).Resolve(ctx(t), "denied", channel.RoleMaster, channel.Options{}); err != nil {
		t.Fatal(err)
	}

	const badSecret = "not-the-secret-at-all"
	t.Setenv("AWS_SECRET_ACCESS_KEY", badSecret)
	bad, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Control plane.
	_, err = newResolver(t, bad, channel.ResolverOptions{}).Resolve(ctx(t), "denied", channel.RoleMaster, channel.Options{})
	if !errors.Is(err, channel.ErrAccessDenied) || !errors.Is(err, channel.ErrDescribe) {
		t.Fatalf("control plane: err = %v, want ErrAccessDenied and ErrDescribe", err)
	}
	// Data plane: endpoints from the cache file, so GetIceServerConfig is the
	// first call.
	_, err = newResolver(t, bad, channel.ResolverOptions{CacheFile: cacheFile}).Resolve(ctx(t), "denied", channel.RoleMaster, channel.Options{})
	var ae *channel.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("data plane: err = %v, want *APIError", err)
	}
	if ae.StatusCode != http.StatusForbidden || ae.Code != "AccessDeniedException" || ae.Operation != "GetIceServerConfig" {
		t.Errorf("APIError %+v: want 403 AccessDeniedException from GetIceServerConfig", ae)
	}
	if !errors.Is(err, channel.ErrAccessDenied) || !errors.Is(err, channel.ErrICEConfig) {
		t.Errorf("err = %v, want ErrAccessDenied and ErrICEConfig", err)
	}
	for _, secret := range []string{badSecret, "Signature=", "X-Amz-Signature"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains %q", err, secret)
		}
	}
}

func TestInvalidArguments(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	r := newResolver(t, cfg, channel.ResolverOptions{})
	region := srv.Region()
	for _, c := range []struct {
		name, channel string
		role          channel.Role
		opts          channel.Options
		want          string
	}{
		{"role", "ok", "ADMIN", channel.Options{}, "role"},
		{"empty role", "ok", "", channel.Options{}, "role"},
		{"name chars", "bad name!", channel.RoleMaster, channel.Options{}, "channel name"},
		{"empty name", "", channel.RoleMaster, channel.Options{}, "channel name"},
		{"long name", strings.Repeat("a", 257), channel.RoleMaster, channel.Options{}, "channel name"},
		{"arn shape", "arn:aws:kinesisvideo:" + region + ":1:stream/x/1", channel.RoleMaster, channel.Options{}, "channel ARN"},
		{"arn region", "arn:aws:kinesisvideo:eu-west-1:000000000000:channel/x/1", channel.RoleMaster, channel.Options{}, "region"},
		{"client id chars", "ok", channel.RoleViewer, channel.Options{ClientID: "a b"}, "ClientID"},
		{"client id AWS_", "ok", channel.RoleViewer, channel.Options{ClientID: "AWS_x"}, "ClientID"},
		{"ttl low", "ok", channel.RoleMaster, channel.Options{MessageTTL: 4 * time.Second}, "MessageTTL"},
		{"ttl high", "ok", channel.RoleMaster, channel.Options{MessageTTL: 121 * time.Second}, "MessageTTL"},
		{"ttl fraction", "ok", channel.RoleMaster, channel.Options{MessageTTL: 5500 * time.Millisecond}, "MessageTTL"},
		{"stun url", "ok", channel.RoleMaster, channel.Options{STUNURL: "turn:host:3478"}, "STUNURL"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.Resolve(ctx(t), c.channel, c.role, c.opts)
			if !errors.Is(err, channel.ErrInvalidArgument) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want ErrInvalidArgument naming %q", err, c.want)
			}
		})
	}

	if _, err := channel.NewResolver(aws.Config{Credentials: cfg.Credentials}, channel.ResolverOptions{}); !errors.Is(err, channel.ErrNoRegion) {
		t.Errorf("no region: %v", err)
	}
	if _, err := channel.NewResolver(aws.Config{Region: "us-west-2"}, channel.ResolverOptions{}); !errors.Is(err, channel.ErrNoCredentials) {
		t.Errorf("no credentials: %v", err)
	}
	if _, err := channel.NewResolver(cfg, channel.ResolverOptions{EndpointTTL: -time.Second}); !errors.Is(err, channel.ErrInvalidArgument) || !strings.Contains(err.Error(), "EndpointTTL") {
		t.Errorf("negative EndpointTTL: %v", err)
	}
	if _, err := channel.NewResolver(cfg, channel.ResolverOptions{CacheFile: t.TempDir()}); !errors.Is(err, channel.ErrInvalidArgument) || !strings.Contains(err.Error(), "CacheFile") {
		t.Errorf("CacheFile is a directory: %v", err)
	}
}

func TestEndpointCache(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	cnt := count(&cfg)
	enableStorage(t, srv, createChannel(t, srv, "cached"), "cached") // for the WEBRTC endpoint below
	r := newResolver(t, cfg, channel.ResolverOptions{})

	first, err := r.Resolve(ctx(t), "cached", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cnt.expect(t, "first", map[string]int{pDescribe: 1, pEndpoint: 1, pICE: 1})

	second, err := r.Resolve(ctx(t), "cached", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cnt.expect(t, "second (cached)", map[string]int{pDescribe: 1, pEndpoint: 1, pICE: 1})
	if !second.Timings().EndpointsCached || !second.Timings().ICECached || second.Timings().Describe != 0 || second.Timings().ICEConfig != 0 {
		t.Errorf("second Timings %+v: want both cached, no call timed", second.Timings())
	}
	if second.ChannelARN() != first.ChannelARN() || second.WSSEndpoint() != first.WSSEndpoint() || !second.ICEServersExpire().Equal(first.ICEServersExpire()) {
		t.Errorf("cached result differs: %+v vs %+v", second, first)
	}

	// Another role is another cache entry.
	if _, err := r.Resolve(ctx(t), "cached", channel.RoleViewer, channel.Options{}); err != nil {
		t.Fatal(err)
	}
	cnt.expect(t, "viewer", map[string]int{pDescribe: 2, pEndpoint: 2, pICE: 2})

	// Asking for the WEBRTC endpoint the cached entry lacks refetches it.
	if _, err := r.Resolve(ctx(t), "cached", channel.RoleMaster, channel.Options{WebRTCEndpoint: true}); err != nil {
		t.Fatal(err)
	}
	cnt.expect(t, "webrtc endpoint", map[string]int{pDescribe: 3, pEndpoint: 3})

	// Invalidate forgets the channel.
	r.Invalidate("cached", channel.RoleMaster)
	third, err := r.Resolve(ctx(t), "cached", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if third.Timings().EndpointsCached {
		t.Error("EndpointsCached after Invalidate")
	}
	cnt.expect(t, "after Invalidate", map[string]int{pDescribe: 4, pEndpoint: 4})
}

// clock is a settable clock for ResolverOptions.Now.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) set(d time.Duration)     { c.off.Store(int64(d)) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func TestFileCache(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	cnt := count(&cfg)
	arn := createChannel(t, srv, "file-cached")
	file := filepath.Join(t.TempDir(), "sub", "..", "kvs-endpoints.json")
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}

	if _, err := newResolver(t, cfg, channel.ResolverOptions{CacheFile: file}).Resolve(ctx(t), "file-cached", channel.RoleViewer, channel.Options{ClientID: "v"}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("cache file: %v", err)
	}
	if !json.Valid(data) || !strings.Contains(string(data), arn) || !strings.Contains(string(data), srv.WSSEndpoint()) {
		t.Fatalf("cache file does not hold the channel:\n%s", data)
	}
	if strings.Contains(string(data), localkvs.DevSecretAccessKey) || strings.Contains(strings.ToLower(string(data)), "password") {
		t.Fatalf("cache file holds a secret:\n%s", data)
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".*tmp*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	cnt.expect(t, "first resolver", map[string]int{pDescribe: 1, pEndpoint: 1, pICE: 1})

	// A new resolver (a new process) starts warm: no describe, no endpoint call.
	res, err := newResolver(t, cfg, channel.ResolverOptions{CacheFile: file}).Resolve(ctx(t), "file-cached", channel.RoleViewer, channel.Options{ClientID: "v"})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Timings().EndpointsCached || res.ChannelARN() != arn || res.WSSEndpoint() != srv.WSSEndpoint() {
		t.Errorf("from file: %+v", res)
	}
	cnt.expect(t, "second resolver", map[string]int{pDescribe: 1, pEndpoint: 1, pICE: 2})

	// After the endpoint TTL (10 h) the file's entry is stale.
	var clk clock
	clk.set(10*time.Hour + time.Minute)
	res, err = newResolver(t, cfg, channel.ResolverOptions{CacheFile: file, Now: clk.now}).Resolve(ctx(t), "file-cached", channel.RoleViewer, channel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Timings().EndpointsCached {
		t.Error("an entry older than EndpointTTL was used")
	}
	cnt.expect(t, "stale file", map[string]int{pDescribe: 2, pEndpoint: 2})

	// A corrupt file is ignored, and rewritten.
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newResolver(t, cfg, channel.ResolverOptions{CacheFile: file}).Resolve(ctx(t), "file-cached", channel.RoleMaster, channel.Options{}); err != nil {
		t.Fatalf("with a corrupt cache file: %v", err)
	}
	if data, _ := os.ReadFile(file); !json.Valid(data) {
		t.Errorf("cache file not rewritten: %s", data)
	}
}

func TestICETTLRefetch(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	cnt := count(&cfg)
	createChannel(t, srv, "ice-ttl")
	var clk clock
	// A grace of 290 s puts the expiry 10 s after the fetch (TTL 300 s), so
	// the simulated clock moves 11 s: well inside the signature's skew.
	r := newResolver(t, cfg, channel.ResolverOptions{Now: clk.now, ICEGrace: 290 * time.Second})

	res, err := r.Resolve(ctx(t), "ice-ttl", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	left := res.ICEServersExpire().Sub(clk.now())
	if left <= 0 || left > 10*time.Second {
		t.Fatalf("ICEServersExpire in %v, want within (0, 10s] (TTL 300 s minus grace 290 s)", left)
	}
	if _, err := r.Resolve(ctx(t), "ice-ttl", channel.RoleMaster, channel.Options{}); err != nil {
		t.Fatal(err)
	}
	cnt.expect(t, "before expiry", map[string]int{pICE: 1})

	clk.advance(11 * time.Second)
	again, err := r.Resolve(ctx(t), "ice-ttl", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.Timings().ICECached || !again.Timings().EndpointsCached {
		t.Errorf("after expiry Timings %+v: want fresh ICE, cached endpoints", again.Timings())
	}
	if !again.ICEServersExpire().After(res.ICEServersExpire()) {
		t.Errorf("expiry not moved: %v then %v", res.ICEServersExpire(), again.ICEServersExpire())
	}
	cnt.expect(t, "after expiry", map[string]int{pICE: 2, pDescribe: 1})

	// Lazy refetch through the first Resolved: expired for it, but the
	// resolver's cache holds the servers the third call fetched.
	if _, err := res.ICEConfiguration(ctx(t), channel.STUNAndTURN); err != nil {
		t.Fatal(err)
	}
	cnt.expect(t, "ICEConfiguration from the shared cache", map[string]int{pICE: 2})
	clk.advance(11 * time.Second)
	if _, err := res.ICEConfiguration(ctx(t), channel.STUNAndTURN); err != nil {
		t.Fatal(err)
	}
	cnt.expect(t, "ICEConfiguration after expiry", map[string]int{pICE: 3})
	// Disabled NAT traversal needs no servers, so no fetch.
	clk.advance(11 * time.Second)
	if _, err := res.ICEConfiguration(ctx(t), channel.NATTraversalDisabled); err != nil {
		t.Fatal(err)
	}
	cnt.expect(t, "disabled", map[string]int{pICE: 3})
	// RefreshICEServers always fetches.
	if err := res.RefreshICEServers(ctx(t)); err != nil {
		t.Fatal(err)
	}
	cnt.expect(t, "RefreshICEServers", map[string]int{pICE: 4})
}

func TestClockSkew(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	cnt := count(&cfg)
	createChannel(t, srv, "skewed")

	near := func(got, want time.Duration) bool { return got > want-5*time.Second && got < want+5*time.Second }

	// Local clock one hour fast: the offset comes from the control-plane
	// responses, and GetIceServerConfig (signed with the corrected clock)
	// succeeds.
	var fast clock
	fast.set(time.Hour)
	r := newResolver(t, cfg, channel.ResolverOptions{Now: fast.now})
	res, err := r.Resolve(ctx(t), "skewed", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatalf("Resolve with a fast clock: %v", err)
	}
	if !near(res.ClockOffset(), -time.Hour) || !near(r.ClockOffset(), -time.Hour) {
		t.Errorf("ClockOffset %v (resolver %v), want about -1h", res.ClockOffset(), r.ClockOffset())
	}
	cnt.expect(t, "fast clock", map[string]int{pICE: 1})

	// Within MaxClockSkew the clocks count as equal.
	var slightly clock
	slightly.set(2 * time.Minute)
	res, err = newResolver(t, cfg, channel.ResolverOptions{Now: slightly.now}).Resolve(ctx(t), "skewed", channel.RoleViewer, channel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ClockOffset() != 0 {
		t.Errorf("ClockOffset %v for a 2 min skew, want 0", res.ClockOffset())
	}

	// Local clock one hour slow and endpoints from the cache file:
	// GetIceServerConfig is the first call, is refused ("Signature
	// expired"), and is retried once with the clock from its Date header.
	file := filepath.Join(t.TempDir(), "cache.json")
	if _, err := newResolver(t, cfg, channel.ResolverOptions{CacheFile: file}).Resolve(ctx(t), "skewed", channel.RoleMaster, channel.Options{}); err != nil {
		t.Fatal(err)
	}
	before := cnt.get(pICE)
	var slow clock
	slow.set(-time.Hour)
	r = newResolver(t, cfg, channel.ResolverOptions{CacheFile: file, Now: slow.now})
	res, err = r.Resolve(ctx(t), "skewed", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatalf("Resolve with a slow clock: %v", err)
	}
	if !res.Timings().EndpointsCached {
		t.Fatal("endpoints not from the cache file: the retry path is not exercised")
	}
	if got := cnt.get(pICE) - before; got != 2 {
		t.Errorf("%d GetIceServerConfig calls, want 2 (refused, then retried)", got)
	}
	if !near(res.ClockOffset(), time.Hour) {
		t.Errorf("ClockOffset %v, want about +1h", res.ClockOffset())
	}
}

func TestLocalSTUNChoice(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	createChannel(t, srv, "stun-choice")
	r := newResolver(t, cfg, channel.ResolverOptions{})
	res, err := r.Resolve(ctx(t), "stun-choice", channel.RoleMaster, channel.Options{FIPS: true, DualStack: true})
	if err != nil {
		t.Fatal(err)
	}
	checkNoAWSHost(t, res)

	res, err = r.Resolve(ctx(t), "stun-choice", channel.RoleMaster, channel.Options{STUNURL: "stun:127.0.0.1:3478"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ICEServers()) == 0 || res.ICEServers()[0].URLs[0] != "stun:127.0.0.1:3478" {
		t.Fatalf("ICEServers %+v: want the STUNURL override first", res.ICEServers())
	}
	cfgSTUN := res.WebRTCConfiguration(channel.STUNOnly)
	if len(cfgSTUN.ICEServers) != 1 || cfgSTUN.ICEServers[0].URLs[0] != "stun:127.0.0.1:3478" {
		t.Errorf("STUNOnly %+v", cfgSTUN.ICEServers)
	}
	relay := res.WebRTCConfiguration(channel.TURNOnly)
	if relay.ICETransportPolicy != webrtc.ICETransportPolicyRelay {
		t.Errorf("TURNOnly policy %v", relay.ICETransportPolicy)
	}
	for _, s := range relay.ICEServers {
		for _, u := range s.URLs {
			if !strings.HasPrefix(u, "turn") {
				t.Errorf("TURNOnly holds %q", u)
			}
		}
	}
}
