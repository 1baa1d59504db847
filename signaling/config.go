package signaling

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// Role is the role a client takes on a signaling channel: RoleMaster or
// RoleViewer. channel.Role is the same type.
type Role = wire.Role

const (
	// RoleMaster is the single peer that viewers connect to (a camera, a bot).
	RoleMaster = wire.RoleMaster
	// RoleViewer is one of up to 10 peers that connect to the master.
	RoleViewer = wire.RoleViewer
)

// Defaults applied by [New] to zero fields of [Config].
const (
	DefaultService            = sigv4.DefaultService   // Config.Service: "kinesisvideo"
	DefaultReconnectBaseDelay = 100 * time.Millisecond // Config.ReconnectBaseDelay
	DefaultReconnectMaxDelay  = 10 * time.Second       // Config.ReconnectMaxDelay
	DefaultPingInterval       = 10 * time.Second       // Config.PingInterval
	DefaultDialTimeout        = 5 * time.Second        // Config.DialTimeout
	DefaultWriteTimeout       = 5 * time.Second        // Config.WriteTimeout
)

// RequestSigner presigns the WebSocket URL of a signaling channel. It is the
// Go form of the JS SDK's RequestSigner: use it when the signature is made
// elsewhere (for example by a backend that holds the keys). *sigv4.Presigner
// satisfies it.
//
// PresignURL is called once per connection attempt, with t already corrected
// by Config.SystemClockOffset; it must not modify query.
type RequestSigner interface {
	PresignURL(ctx context.Context, endpoint string, query map[string]string, t time.Time) (string, error)
}

// Config configures a [Client]. Role, ChannelARN, ChannelEndpoint, Region
// and exactly one of Credentials or RequestSigner are required; ClientID is
// required for a viewer and forbidden for a master. Zero values of the other
// fields take the defaults listed on each field.
type Config struct {
	// Role is RoleMaster or RoleViewer.
	Role Role
	// ChannelARN is the ARN of the signaling channel
	// (arn:<partition>:kinesisvideo:<region>:<account>:channel/<name>/<epoch ms>).
	ChannelARN string
	// ChannelEndpoint is the WSS endpoint returned by
	// GetSignalingChannelEndpoint for the role (wss://host[:port][/path]).
	// A ws:// endpoint is accepted only with AllowInsecureEndpoint.
	ChannelEndpoint string
	// AllowInsecureEndpoint accepts a ws:// ChannelEndpoint (no TLS). It
	// exists for the local KVS-compatible service; real KVS is always wss://.
	AllowInsecureEndpoint bool
	// Region is the AWS region of the channel (used in the credential scope).
	Region string
	// ClientID identifies a viewer on the channel: required for RoleViewer,
	// forbidden for RoleMaster. It must match ^[a-zA-Z0-9_.-]{1,256}$ and
	// must not start with "AWS_".
	ClientID string

	// Credentials signs each connection with SigV4 (a provider that can
	// refresh, as from config.LoadDefaultConfig). Exactly one of Credentials
	// and RequestSigner must be set.
	Credentials aws.CredentialsProvider
	// RequestSigner presigns each connection URL itself. Exactly one of
	// Credentials and RequestSigner must be set.
	RequestSigner RequestSigner
	// Service is the service name of the credential scope when signing with
	// Credentials. Default "kinesisvideo".
	Service string
	// SystemClockOffset is added to time.Now() when signing, to correct a
	// local clock that is off (the service accepts +/- 5 minutes).
	SystemClockOffset time.Duration

	// Logger receives the client's logs; nil means silence. Logs carry the
	// endpoint and channel, never a presigned URL, signature or token.
	Logger *slog.Logger

	// EarlyICECandidateBuffering keeps ICE candidates that arrive before
	// their sender's SDP buffered even after that SDP is delivered, until
	// DrainPendingICECandidates is called (the JS SDK's
	// enableEarlyIceCandidateBuffering). When false (the default), buffered
	// candidates are delivered right after the SDP event.
	EarlyICECandidateBuffering bool

	// HTTPClient is used for the WebSocket handshake; set its Transport's
	// TLSClientConfig to trust a private CA (such as the local service's).
	// Default http.DefaultClient.
	HTTPClient *http.Client

	// DisableReconnect turns off automatic reconnection: when the connection
	// drops, the client reports OnError and OnClose and stays closed.
	DisableReconnect bool
	// ReconnectBaseDelay is the first backoff ceiling. Default 100 ms.
	ReconnectBaseDelay time.Duration
	// ReconnectMaxDelay caps the backoff ceiling. Default 10 s.
	ReconnectMaxDelay time.Duration
	// MaxReconnectAttempts bounds consecutive failed reconnect attempts
	// before the client gives up; 0 means unlimited.
	MaxReconnectAttempts int

	// PingInterval is the time between WebSocket pings. A ping that gets no
	// pong within max(PingInterval, 5 s) counts as a dropped connection.
	// Default 10 s.
	PingInterval time.Duration
	// DialTimeout bounds each connection attempt (signing excluded).
	// Default 5 s.
	DialTimeout time.Duration
	// WriteTimeout bounds the write of one message. Default 5 s.
	WriteTimeout time.Duration
}

// Validation errors returned by [New]. Each names the field and the rule;
// the returned error wraps one of them with detail.
var (
	ErrInvalidRole           = errors.New("signaling: Config.Role must be RoleMaster or RoleViewer")
	ErrMissingChannelARN     = errors.New("signaling: Config.ChannelARN is required")
	ErrInvalidChannelARN     = errors.New("signaling: Config.ChannelARN is not a KVS signaling channel ARN (arn:<partition>:kinesisvideo:<region>:<account>:channel/<name>/<epoch ms>)")
	ErrMissingEndpoint       = errors.New("signaling: Config.ChannelEndpoint is required")
	ErrInvalidEndpoint       = errors.New("signaling: Config.ChannelEndpoint must be wss://host[:port][/path] with no query")
	ErrInsecureEndpoint      = errors.New("signaling: Config.ChannelEndpoint is ws:// but Config.AllowInsecureEndpoint is false")
	ErrMissingRegion         = errors.New("signaling: Config.Region is required")
	ErrMissingClientID       = errors.New("signaling: Config.ClientID is required for a viewer")
	ErrUnexpectedClientID    = errors.New("signaling: Config.ClientID must be empty for a master")
	ErrInvalidClientID       = errors.New("signaling: Config.ClientID must match ^[a-zA-Z0-9_.-]{1,256}$")
	ErrReservedClientID      = errors.New(`signaling: Config.ClientID must not start with "AWS_"`)
	ErrMissingCredentials    = errors.New("signaling: one of Config.Credentials or Config.RequestSigner is required")
	ErrConflictingSigners    = errors.New("signaling: set only one of Config.Credentials and Config.RequestSigner")
	ErrInvalidDuration       = errors.New("signaling: Config duration is invalid")
	ErrInvalidReconnectLimit = errors.New("signaling: Config.MaxReconnectAttempts must not be negative")
)

// validate checks cfg and returns a copy with defaults applied.
func (cfg Config) validate() (Config, error) {
	switch cfg.Role {
	case RoleMaster, RoleViewer:
	case "":
		return cfg, fmt.Errorf("%w: it is empty", ErrInvalidRole)
	default:
		return cfg, fmt.Errorf("%w: got %q", ErrInvalidRole, string(cfg.Role))
	}
	if cfg.ChannelARN == "" {
		return cfg, ErrMissingChannelARN
	}
	if _, err := wire.ParseChannelARN(cfg.ChannelARN); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInvalidChannelARN, err)
	}
	if cfg.ChannelEndpoint == "" {
		return cfg, ErrMissingEndpoint
	}
	scheme, _, _, err := sigv4.SplitEndpoint(cfg.ChannelEndpoint)
	if err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInvalidEndpoint, err)
	}
	if scheme == "ws" && !cfg.AllowInsecureEndpoint {
		return cfg, fmt.Errorf("%w: %q", ErrInsecureEndpoint, cfg.ChannelEndpoint)
	}
	if cfg.Region == "" {
		return cfg, ErrMissingRegion
	}
	if cfg.Role == RoleViewer {
		if cfg.ClientID == "" {
			return cfg, ErrMissingClientID
		}
		if !wire.ValidName(cfg.ClientID) {
			return cfg, fmt.Errorf("%w: got %q", ErrInvalidClientID, cfg.ClientID)
		}
		if strings.HasPrefix(cfg.ClientID, "AWS_") {
			return cfg, fmt.Errorf("%w: got %q", ErrReservedClientID, cfg.ClientID)
		}
	} else if cfg.ClientID != "" {
		return cfg, fmt.Errorf("%w: got %q", ErrUnexpectedClientID, cfg.ClientID)
	}
	switch {
	case cfg.Credentials == nil && cfg.RequestSigner == nil:
		return cfg, ErrMissingCredentials
	case cfg.Credentials != nil && cfg.RequestSigner != nil:
		return cfg, ErrConflictingSigners
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReconnectBaseDelay", cfg.ReconnectBaseDelay},
		{"ReconnectMaxDelay", cfg.ReconnectMaxDelay},
		{"PingInterval", cfg.PingInterval},
		{"DialTimeout", cfg.DialTimeout},
		{"WriteTimeout", cfg.WriteTimeout},
	} {
		if d.v < 0 {
			return cfg, fmt.Errorf("%w: Config.%s must not be negative, got %v", ErrInvalidDuration, d.name, d.v)
		}
	}
	if cfg.MaxReconnectAttempts < 0 {
		return cfg, fmt.Errorf("%w: got %d", ErrInvalidReconnectLimit, cfg.MaxReconnectAttempts)
	}

	cfg.Service = cmp.Or(cfg.Service, DefaultService)
	cfg.ReconnectBaseDelay = cmp.Or(cfg.ReconnectBaseDelay, DefaultReconnectBaseDelay)
	cfg.ReconnectMaxDelay = cmp.Or(cfg.ReconnectMaxDelay, DefaultReconnectMaxDelay)
	if cfg.ReconnectBaseDelay > cfg.ReconnectMaxDelay {
		return cfg, fmt.Errorf("%w: Config.ReconnectBaseDelay (%v) must not exceed Config.ReconnectMaxDelay (%v)",
			ErrInvalidDuration, cfg.ReconnectBaseDelay, cfg.ReconnectMaxDelay)
	}
	cfg.PingInterval = cmp.Or(cfg.PingInterval, DefaultPingInterval)
	cfg.DialTimeout = cmp.Or(cfg.DialTimeout, DefaultDialTimeout)
	cfg.WriteTimeout = cmp.Or(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.HTTPClient = cmp.Or(cfg.HTTPClient, http.DefaultClient)
	return cfg, nil
}
