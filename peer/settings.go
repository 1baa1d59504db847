package peer

import (
	"fmt"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// Defaults of [Settings].
const (
	// DefaultICEDisconnectedTimeout is how long ICE waits without traffic
	// before it reports "disconnected".
	DefaultICEDisconnectedTimeout = 5 * time.Second
	// DefaultICEFailedTimeout is how long ICE stays "disconnected" before it
	// reports "failed", which ends the session.
	DefaultICEFailedTimeout = 10 * time.Second
	// DefaultICEKeepaliveInterval is the interval of ICE keepalive checks.
	DefaultICEKeepaliveInterval = 2 * time.Second
)

// Settings are the rare knobs of the pion/webrtc peer connections made by a
// [Master] or a [Viewer], in the spirit of pion's SettingEngine. The zero
// value suits both real networks and tests on one machine: loopback
// candidates are included, mDNS candidates are off, UDP over IPv4 and IPv6
// is used.
type Settings struct {
	// API, when set, makes every peer connection, and every other field of
	// Settings is ignored. It must have a MediaEngine with the codecs of
	// the sources registered (webrtc.MediaEngine.RegisterDefaultCodecs) and,
	// for Stats to report RTP counters, the default interceptors
	// (webrtc.RegisterDefaultInterceptors); Stats then reads those with
	// PeerConnection.GetStats, which pion does not order against a Close
	// it starts itself (on the remote's DTLS close_notify). Without API,
	// Stats reads a stats interceptor of its own and has no such race.
	API *webrtc.API

	// NetworkTypes are the candidate network types to gather; nil means
	// UDP4 and UDP6.
	NetworkTypes []webrtc.NetworkType
	// ExcludeLoopback leaves out 127.0.0.1 and ::1 host candidates. They are
	// included by default, so that peers on one machine connect with no
	// network at all (tests, the local service).
	ExcludeLoopback bool
	// EnableMDNS gathers .local mDNS host candidates instead of IP
	// addresses, as browsers do. Off by default: plain host candidates
	// connect faster and need no multicast.
	EnableMDNS bool
	// IPFilter, when set, keeps only the local IPs it returns true for.
	IPFilter func(net.IP) bool
	// InterfaceFilter, when set, keeps only the interfaces it returns true
	// for.
	InterfaceFilter func(string) bool
	// ICEDisconnectedTimeout, ICEFailedTimeout and ICEKeepaliveInterval are
	// pion's ICE timeouts; zero takes DefaultICEDisconnectedTimeout (5 s),
	// DefaultICEFailedTimeout (10 s) and DefaultICEKeepaliveInterval (2 s).
	ICEDisconnectedTimeout, ICEFailedTimeout, ICEKeepaliveInterval time.Duration
	// RelayAcceptanceMinWait is how long the controlling ICE agent (the
	// viewer) waits before it nominates a relay candidate pair, in the hope
	// of a better one. Zero means pion's default (2 s), except with
	// channel.TURNOnly, where no better pair can come and zero means no
	// wait. Negative means no wait in every mode.
	RelayAcceptanceMinWait time.Duration
	// LoggerFactory, when set, receives pion's own logs (nil: pion's
	// default, errors to stderr).
	LoggerFactory logging.LoggerFactory
	// NACKHistory is how many sent RTP packets are kept per stream to
	// answer a viewer's NACK with a retransmission: a power of two from 16
	// to 32768; zero means pion's default, 1024. Memory grows with it (a
	// packet is up to 1.5 KB, per viewer): a camera-side device sending a
	// 4 Mbit/s stream (about 380 packets a second) to 10 viewers holds
	// about 15 MB at 1024 and 4 MB at 256, which still covers 0.6 s of
	// round trips.
	NACKHistory int

	// EphemeralUDPPortMin and EphemeralUDPPortMax, when both set, bound the
	// local UDP ports of ICE candidates.
	EphemeralUDPPortMin, EphemeralUDPPortMax uint16
}

// NewAPI returns the pion API that s describes: the default codecs and
// interceptors (NACK, RTCP reports, stats, TWCC) and a SettingEngine with
// the fields of s applied. It returns s.API when that is set.
func (s Settings) NewAPI() (*webrtc.API, error) { return s.newAPI(false) }

// newAPI is NewAPI; relayOnly is true for channel.TURNOnly.
func (s Settings) newAPI(relayOnly bool) (*webrtc.API, error) {
	if s.API != nil {
		return s.API, nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ICEDisconnectedTimeout", s.ICEDisconnectedTimeout},
		{"ICEFailedTimeout", s.ICEFailedTimeout},
		{"ICEKeepaliveInterval", s.ICEKeepaliveInterval},
	} {
		if d.v < 0 {
			return nil, fmt.Errorf("%w: Settings.%s must not be negative, got %v", ErrInvalidConfig, d.name, d.v)
		}
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(!s.ExcludeLoopback)
	nt := s.NetworkTypes
	if nt == nil {
		nt = []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	}
	se.SetNetworkTypes(nt)
	if s.EnableMDNS {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeQueryAndGather)
	} else {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	if s.IPFilter != nil {
		se.SetIPFilter(s.IPFilter)
	}
	if s.InterfaceFilter != nil {
		se.SetInterfaceFilter(s.InterfaceFilter)
	}
	se.SetICETimeouts(orDefault(s.ICEDisconnectedTimeout, DefaultICEDisconnectedTimeout),
		orDefault(s.ICEFailedTimeout, DefaultICEFailedTimeout),
		orDefault(s.ICEKeepaliveInterval, DefaultICEKeepaliveInterval))
	if s.LoggerFactory != nil {
		se.LoggerFactory = s.LoggerFactory
	}
	switch {
	case s.RelayAcceptanceMinWait < 0 || s.RelayAcceptanceMinWait == 0 && relayOnly:
		se.SetRelayAcceptanceMinWait(0)
	case s.RelayAcceptanceMinWait > 0:
		se.SetRelayAcceptanceMinWait(s.RelayAcceptanceMinWait)
	}
	if s.EphemeralUDPPortMin != 0 || s.EphemeralUDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(s.EphemeralUDPPortMin, s.EphemeralUDPPortMax); err != nil {
			return nil, fmt.Errorf("%w: Settings.EphemeralUDPPortMin/Max: %w", ErrInvalidConfig, err)
		}
	}
	var nackOpts []nack.ResponderOption
	if n := s.NACKHistory; n != 0 {
		if n < 16 || n > 32768 || n&(n-1) != 0 {
			return nil, fmt.Errorf("%w: Settings.NACKHistory %d must be a power of two from 16 to 32768 (or 0 for 1024)", ErrInvalidConfig, n)
		}
		nackOpts = append(nackOpts, nack.ResponderSize(uint16(n)))
	}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("peer: registering codecs: %w", err)
	}
	reg := &interceptor.Registry{}
	if err := registerInterceptors(m, reg, nackOpts...); err != nil {
		return nil, fmt.Errorf("peer: registering interceptors: %w", err)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
