package localkvs

import (
	"cmp"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// The documented development key pair. A server whose Config.Credentials is
// empty accepts exactly this pair. It is public test data, not a secret.
const (
	// DevAccessKeyID is the access key id of the development key pair.
	DevAccessKeyID = "AKIAKVSWEBRTCLOCAL01"
	// DevSecretAccessKey is the secret of the development key pair.
	DevSecretAccessKey = "kvswebrtc-local-development-secret"
	// AccountID is the account every channel ARN of the local service names.
	AccountID = "000000000000"
	// DefaultRegion is the region used when Config.Region is empty.
	DefaultRegion = "us-west-2"
)

// Default limits: the real service's values (docs/protocol.md, "Limits"),
// as package internal/wire records them for the client and the service.
const (
	// DefaultMaxViewers is Limits.MaxViewers' default: viewers per channel.
	DefaultMaxViewers = wire.MaxViewers
	// DefaultIdleTimeout is Limits.IdleTimeout's default.
	DefaultIdleTimeout = wire.IdleTimeout
	// DefaultMaxConnectionDuration is Limits.MaxConnectionDuration's default.
	DefaultMaxConnectionDuration = wire.MaxConnectionDuration
	// DefaultGoAwayLead is Limits.GoAwayLead's default.
	DefaultGoAwayLead = wire.GoAwayLead
	// DefaultConnectsPerSecond is Limits.ConnectsPerSecond's default, per channel.
	DefaultConnectsPerSecond = wire.ConnectsPerSecond
	// DefaultSDPPerSecond is Limits.SDPPerSecond's default, per connection.
	DefaultSDPPerSecond = wire.SDPPerSecond
	// DefaultICEPerSecond is Limits.ICEPerSecond's default, per connection.
	DefaultICEPerSecond = wire.ICEPerSecond
	// DefaultMaxPayload is Limits.MaxPayload's default, in bytes of base64.
	DefaultMaxPayload = wire.MaxPayload
	// DefaultICEConfigPerSecond is Limits.ICEConfigPerSecond's default, per channel.
	DefaultICEConfigPerSecond = wire.ICEConfigPerSecond
	// DefaultMessageTTLSeconds is the MessageTtlSeconds of a channel created
	// without one.
	DefaultMessageTTLSeconds = int(wire.DefaultMessageTTL / time.Second)
	// DefaultTURNTTL is the lifetime of TURN credentials (the Ttl of
	// GetIceServerConfig), fixed at 300 s by the real service.
	DefaultTURNTTL = wire.ICETTL
	// DefaultTURNAllocations is the number of TURN allocations per channel.
	DefaultTURNAllocations = 50
	// DefaultPendingBytesPerChannel is Limits.PendingBytesPerChannel's
	// default: 1 MiB of undelivered messages per channel.
	DefaultPendingBytesPerChannel = 1 << 20
	// DefaultPendingBytes is Limits.PendingBytes' default: 64 MiB of
	// undelivered messages in all.
	DefaultPendingBytes = 64 << 20
	// DefaultTURNBandwidth is the relayed bandwidth of one TURN allocation,
	// in bits per second each way: 5 Mbps, as KVS.
	DefaultTURNBandwidth = 5_000_000
)

// Config configures a [Server]. The zero value is a usable in-memory,
// plain-HTTP server for us-west-2 accepting the development key pair.
type Config struct {
	// Region is the region the server signs for and names in ARNs; default "us-west-2".
	Region string
	// Credentials maps access key id to secret access key. Nil or empty means
	// {DevAccessKeyID: DevSecretAccessKey}.
	Credentials map[string]string
	// DataDir holds the channel store (DataDir/channels.db) and, with TLS,
	// the CA and certificate. "" keeps channels in memory only.
	DataDir string
	// TLS makes the server generate (or reuse from DataDir) a local CA and a
	// certificate for 127.0.0.1, ::1 and localhost, and serve https/wss.
	// The CA is written to DataDir/ca.pem when DataDir is set.
	TLS bool
	// Limits are the service limits; zero fields take the real service's values.
	Limits Limits
	// TURN configures the embedded TURN/STUN server that GetIceServerConfig
	// hands out. The zero value runs it on the service's IP with a free port.
	TURN TURNConfig
	// Logger receives the server's logs; nil means silence. At debug level it
	// logs each connection and each routed message, never a secret.
	Logger *slog.Logger
	// AllowedOrigins are the browser origins ("https://app.example.com",
	// scheme://host[:port]) besides the loopback ones that may use the
	// service from a web page: CORS grants and the WebSocket's Origin check.
	// Loopback origins (http or https on localhost, 127.0.0.1 or [::1], any
	// port: the test page of `kvswebrtc web`) are always allowed, and so
	// is a request without an Origin header (not from a browser). "*"
	// allows every origin; do not use it with a published key pair.
	AllowedOrigins []string
	// IoT configures the emulated AWS IoT credentials provider (off by
	// default): devices exchange an X.509 certificate for temporary
	// credentials the service accepts until they expire (iot.go).
	IoT IoTConfig
	// Cluster makes the server one node of a cluster on NATS JetStream
	// (cluster.go, docs/cluster.md). The zero value is a single server.
	Cluster ClusterConfig
}

// TURNConfig configures the embedded TURN/STUN server (pion/turn). The zero
// value serves TURN over UDP and TCP on one free port of the service's IP,
// with 300 s credentials and 50 allocations per channel, as the real service.
type TURNConfig struct {
	// Disabled turns the TURN server off: GetIceServerConfig then answers
	// an empty IceServerList.
	Disabled bool
	// Addr is the "ip:port" the TURN server listens on, over UDP and (unless
	// DisableTCP) TCP. "" means the IP of the service's listener (127.0.0.1
	// when that is unspecified) and one free port, the same number for UDP
	// and TCP when it is free for both.
	Addr string
	// TTL is how long the credentials GetIceServerConfig returns are valid
	// for a new allocation, and the Ttl it answers (whole seconds, at least
	// 1 s). Zero means 300 s, the real service's fixed value.
	TTL time.Duration
	// RelayAddress is the IP relayed addresses are allocated on and
	// announced with. "" means the IP of Addr (127.0.0.1 when unspecified).
	RelayAddress string
	// MaxAllocations is the number of concurrent allocations per channel
	// (all its credentials together); 0 means 50, the real service's limit,
	// and a negative value means no limit.
	MaxAllocations int
	// DisableTCP serves TURN over UDP only (no ?transport=tcp URI).
	DisableTCP bool
	// Bandwidth is the relayed bandwidth of one allocation, in bits per
	// second each way; UDP packets beyond it are dropped, as on a saturated
	// link, and TCP relays (RFC 6062) are paced to it. 0 means
	// DefaultTURNBandwidth (5 Mbps, the KVS limit); negative means no limit.
	Bandwidth int
	// AllowLoopbackPeers lets clients relay to loopback peers (127.0.0.0/8,
	// ::1), which running every peer on one machine needs (kvswebrtc demo,
	// web --local, tests). Off by default: a client holding TURN
	// credentials could otherwise reach services listening on the
	// server's loopback interface. The service's own ports (HTTP, TURN)
	// stay refused.
	AllowLoopbackPeers bool
	// AllowedPeers are networks clients may relay to although they are
	// private, link-local or loopback (a LAN such as 192.168.1.0/24).
	AllowedPeers []netip.Prefix
}

// Limits are the service limits (docs/protocol.md, "Limits"). A zero field
// takes the real service's value. For the rates, a negative value disables
// the limit.
type Limits struct {
	// MaxViewers is the number of viewers connected per channel (10).
	MaxViewers int
	// IdleTimeout closes a connection that sent no message for this long
	// (10 min). WebSocket pings do not count as messages.
	IdleTimeout time.Duration
	// MaxConnectionDuration is the longest a connection stays open (1 h).
	MaxConnectionDuration time.Duration
	// GoAwayLead is how long before the MaxConnectionDuration cut GO_AWAY is sent (1 min).
	GoAwayLead time.Duration
	// ConnectsPerSecond is the connect rate per channel, masters and viewers together (3).
	ConnectsPerSecond float64
	// SDPPerSecond is the SDP offer/answer send rate per connection (5).
	SDPPerSecond float64
	// ICEPerSecond is the ICE candidate send rate per connection (20).
	ICEPerSecond float64
	// MaxPayload is the largest base64 message payload in bytes (10240).
	MaxPayload int
	// ICEConfigPerSecond is the GetIceServerConfig rate per channel (5).
	ICEConfigPerSecond float64
	// MaxChannels is the number of signaling channels in the region (10,000
	// in us-east-1 and us-west-2, 5,000 elsewhere); CreateSignalingChannel
	// beyond it fails with AccountChannelLimitExceededException.
	MaxChannels int
	// MaxConnections is the number of TCP connections the HTTP port holds
	// open at once, API calls and WebSockets together; past it new
	// connections wait in the listen backlog until one closes. Zero means
	// three quarters of the process's file descriptor limit (at least 64),
	// so that a flood of connections cannot use up the descriptors the
	// service needs; negative means no limit.
	MaxConnections int
	// PendingBytesPerChannel caps the bytes of undelivered messages a
	// channel keeps for recipients that are not connected (1 MiB); a
	// message past it is refused (STATUS_RESPONSE with a correlationId,
	// ClientLimitExceededException). Kept messages expire after the
	// channel's MessageTtlSeconds.
	PendingBytesPerChannel int
	// PendingBytes caps the bytes of undelivered messages of all channels
	// together (64 MiB), refused as above.
	PendingBytes int64
}

// withDefaults returns l with zero fields replaced by the real service's values.
func (l Limits) withDefaults() Limits {
	l.MaxViewers = cmp.Or(l.MaxViewers, DefaultMaxViewers)
	l.IdleTimeout = cmp.Or(l.IdleTimeout, DefaultIdleTimeout)
	l.MaxConnectionDuration = cmp.Or(l.MaxConnectionDuration, DefaultMaxConnectionDuration)
	l.GoAwayLead = cmp.Or(l.GoAwayLead, DefaultGoAwayLead)
	l.ConnectsPerSecond = cmp.Or(l.ConnectsPerSecond, DefaultConnectsPerSecond)
	l.SDPPerSecond = cmp.Or(l.SDPPerSecond, DefaultSDPPerSecond)
	l.ICEPerSecond = cmp.Or(l.ICEPerSecond, DefaultICEPerSecond)
	l.MaxPayload = cmp.Or(l.MaxPayload, DefaultMaxPayload)
	l.ICEConfigPerSecond = cmp.Or(l.ICEConfigPerSecond, DefaultICEConfigPerSecond)
	l.PendingBytesPerChannel = cmp.Or(l.PendingBytesPerChannel, DefaultPendingBytesPerChannel)
	l.PendingBytes = cmp.Or(l.PendingBytes, DefaultPendingBytes)
	if l.MaxConnections == 0 {
		l.MaxConnections = defaultMaxConnections()
	}
	return l
}

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// validate checks cfg (after defaults) and names the field and rule broken.
func (cfg *Config) validate() error {
	if !regionPattern.MatchString(cfg.Region) {
		return fmt.Errorf("%w: Region %q is not a region name like us-west-2", ErrInvalidConfig, cfg.Region)
	}
	for k, v := range cfg.Credentials {
		if k == "" {
			return fmt.Errorf("%w: Credentials has an empty access key id", ErrInvalidConfig)
		}
		if v == "" {
			return fmt.Errorf("%w: Credentials[%q] has an empty secret", ErrInvalidConfig, k)
		}
	}
	l := cfg.Limits
	switch {
	case l.MaxViewers < 0:
		return fmt.Errorf("%w: Limits.MaxViewers %d must be >= 0", ErrInvalidConfig, l.MaxViewers)
	case l.IdleTimeout < 0:
		return fmt.Errorf("%w: Limits.IdleTimeout %s must be >= 0", ErrInvalidConfig, l.IdleTimeout)
	case l.MaxConnectionDuration < 0:
		return fmt.Errorf("%w: Limits.MaxConnectionDuration %s must be >= 0", ErrInvalidConfig, l.MaxConnectionDuration)
	case l.GoAwayLead < 0:
		return fmt.Errorf("%w: Limits.GoAwayLead %s must be >= 0", ErrInvalidConfig, l.GoAwayLead)
	case l.MaxChannels < 0:
		return fmt.Errorf("%w: Limits.MaxChannels %d must be >= 0", ErrInvalidConfig, l.MaxChannels)
	case l.PendingBytesPerChannel < 0 || l.PendingBytes < 0:
		return fmt.Errorf("%w: Limits.PendingBytesPerChannel and Limits.PendingBytes must be >= 0", ErrInvalidConfig)
	case l.MaxPayload < 0:
		return fmt.Errorf("%w: Limits.MaxPayload %d must be >= 0", ErrInvalidConfig, l.MaxPayload)
	}
	if err := validateOrigins(cfg.AllowedOrigins); err != nil {
		return err
	}
	if err := cfg.TURN.validate(); err != nil {
		return err
	}
	if err := cfg.Cluster.validate(); err != nil {
		return err
	}
	d := l.withDefaults()
	if d.GoAwayLead >= d.MaxConnectionDuration {
		return fmt.Errorf("%w: Limits.GoAwayLead %s must be shorter than Limits.MaxConnectionDuration %s (set both)",
			ErrInvalidConfig, d.GoAwayLead, d.MaxConnectionDuration)
	}
	return nil
}

// validate checks the TURN fields and names the one that breaks a rule.
func (t *TURNConfig) validate() error {
	if t.Disabled {
		return nil
	}
	switch {
	case t.TTL < 0:
		return fmt.Errorf("%w: TURN.TTL %s must be >= 0 (0 means 300s)", ErrInvalidConfig, t.TTL)
	case t.TTL > 0 && t.TTL < time.Second:
		return fmt.Errorf("%w: TURN.TTL %s must be at least 1s (it is answered in whole seconds)", ErrInvalidConfig, t.TTL)
	}
	if t.Addr != "" {
		host, port, err := net.SplitHostPort(t.Addr)
		if err != nil {
			return fmt.Errorf("%w: TURN.Addr %q is not ip:port: %v", ErrInvalidConfig, t.Addr, err)
		}
		if net.ParseIP(host) == nil {
			return fmt.Errorf("%w: TURN.Addr %q must name an IP address, not a host name", ErrInvalidConfig, t.Addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			return fmt.Errorf("%w: TURN.Addr %q has an invalid port", ErrInvalidConfig, t.Addr)
		}
	}
	for i, p := range t.AllowedPeers {
		if !p.IsValid() {
			return fmt.Errorf("%w: TURN.AllowedPeers[%d] is not a valid network prefix", ErrInvalidConfig, i)
		}
	}
	if t.RelayAddress != "" {
		ip := net.ParseIP(t.RelayAddress)
		if ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("%w: TURN.RelayAddress %q must be a specified IP address", ErrInvalidConfig, t.RelayAddress)
		}
	}
	return nil
}
