package channel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// STUNURL returns the Amazon KVS STUN server URL of a region, the one the
// official SDKs put first in the RTCPeerConnection configuration:
//
//	stun:stun.kinesisvideo.<region>.amazonaws.com:443
//	stun:stun.kinesisvideo.<region>.amazonaws.com.cn:443           China regions (cn-*)
//	stun:stun.kinesisvideo.<region>.api.aws:443                    dual-stack
//	stun:stun.kinesisvideo.<region>.api.amazonwebservices.com.cn:443 dual-stack, China
//	stuns:stun.kinesisvideo-fips.<region>.amazonaws.com:443        FIPS (TLS)
//	stuns:stun.kinesisvideo-fips.<region>.api.aws:443              FIPS and dual-stack
//
// The FIPS and dual-stack forms follow the official JavaScript SDK examples
// (generateStunUrl) and the C SDK (KINESIS_VIDEO_*STUN_URL_POSTFIX*).
func STUNURL(region string, fips, dualStack bool) string {
	scheme, service := "stun", "kinesisvideo"
	if fips {
		scheme, service = "stuns", "kinesisvideo-fips"
	}
	china := strings.HasPrefix(region, "cn-")
	var suffix string
	switch {
	case dualStack && china:
		suffix = "api.amazonwebservices.com.cn"
	case dualStack:
		suffix = "api.aws"
	case china:
		suffix = "amazonaws.com.cn"
	default:
		suffix = "amazonaws.com"
	}
	return scheme + ":stun." + service + "." + region + "." + suffix + ":443"
}

// NATTraversal selects which ICE servers a peer connection uses, as the NAT
// traversal choice of the official JavaScript SDK test page.
type NATTraversal int

// The NAT traversal modes.
const (
	// STUNAndTURN uses the STUN server and the TURN servers (the default).
	STUNAndTURN NATTraversal = iota
	// TURNOnly uses the TURN servers only, and relay candidates only
	// (ICETransportPolicy relay): media always goes through TURN.
	TURNOnly
	// STUNOnly uses the STUN server only: host and server-reflexive candidates.
	STUNOnly
	// NATTraversalDisabled uses no ICE server: host candidates only.
	NATTraversalDisabled
)

// String returns the mode's name as ParseNATTraversal reads it.
func (m NATTraversal) String() string {
	switch m {
	case STUNAndTURN:
		return "stun-turn"
	case TURNOnly:
		return "turn-only"
	case STUNOnly:
		return "stun-only"
	case NATTraversalDisabled:
		return "disabled"
	}
	return fmt.Sprintf("NATTraversal(%d)", int(m))
}

// ParseNATTraversal reads a mode name: "stun-turn", "turn-only", "stun-only"
// or "disabled" (case-insensitive; "" means "stun-turn").
func ParseNATTraversal(s string) (NATTraversal, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "stun-turn", "stun+turn", "stunturn":
		return STUNAndTURN, nil
	case "turn-only", "turn":
		return TURNOnly, nil
	case "stun-only", "stun":
		return STUNOnly, nil
	case "disabled", "none", "off":
		return NATTraversalDisabled, nil
	}
	return 0, fmt.Errorf("%w: NAT traversal %q: want stun-turn, turn-only, stun-only or disabled", ErrInvalidArgument, s)
}

// isTURN reports whether an ICE URL is a TURN URL.
func isTURN(u string) bool {
	return strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:")
}

// buildConfiguration filters servers (STUN first, then TURN, as Resolved
// holds them) for a NAT traversal mode.
func buildConfiguration(servers []webrtc.ICEServer, mode NATTraversal) webrtc.Configuration {
	cfg := webrtc.Configuration{ICETransportPolicy: webrtc.ICETransportPolicyAll}
	keep := func(turn bool) {
		for _, s := range servers {
			var urls []string
			for _, u := range s.URLs {
				if isTURN(u) == turn {
					urls = append(urls, u)
				}
			}
			if len(urls) > 0 {
				c := s
				c.URLs = urls
				cfg.ICEServers = append(cfg.ICEServers, c)
			}
		}
	}
	switch mode {
	case STUNAndTURN:
		cfg.ICEServers = cloneServers(servers)
	case TURNOnly:
		keep(true)
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	case STUNOnly:
		keep(false)
	case NATTraversalDisabled:
	}
	return cfg
}

func cloneServers(in []webrtc.ICEServer) []webrtc.ICEServer {
	if in == nil {
		return nil
	}
	out := make([]webrtc.ICEServer, len(in))
	for i, s := range in {
		s.URLs = append([]string(nil), s.URLs...)
		out[i] = s
	}
	return out
}

// iceServerConfig is the answer of GetIceServerConfig.
type iceServerConfig struct {
	ICEServerList []struct {
		Uris     []string `json:"Uris"`
		Username string   `json:"Username"`
		Password string   `json:"Password"`
		TTL      int64    `json:"Ttl"`
	} `json:"IceServerList"`
}

// iceResult is what one GetIceServerConfig call yields.
type iceResult struct {
	servers []webrtc.ICEServer // the service's servers (TURN, and STUN when it lists some)
	expire  time.Time          // min TTL minus the grace period
}

// getIceServerConfig calls POST <https>/v1/get-ice-server-config, signed with
// SigV4 at now+offset. A 401/403 answer whose Date header shows the local
// clock off by more than MaxClockSkew is retried once with the corrected
// clock, as the C SDK retries "Signature expired".
func (r *Resolver) getIceServerConfig(ctx context.Context, httpsEndpoint, arn, clientID string) (iceResult, error) {
	body := map[string]string{"ChannelARN": arn, "Service": "TURN"}
	if clientID != "" {
		body["ClientId"] = clientID
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return iceResult{}, fmt.Errorf("%w: %w", ErrICEConfig, err)
	}
	for attempt := 0; ; attempt++ {
		before := r.ClockOffset()
		res, retryable, err := r.iceOnce(ctx, httpsEndpoint, payload)
		if err == nil {
			return res, nil
		}
		if attempt == 0 && retryable && r.ClockOffset() != before {
			r.log().Info("channel: retrying GetIceServerConfig with the corrected clock", "offset", r.ClockOffset())
			continue
		}
		return iceResult{}, err
	}
}

func (r *Resolver) iceOnce(ctx context.Context, httpsEndpoint string, payload []byte) (iceResult, bool, error) {
	data, err := r.postSigned(ctx, "GetIceServerConfig", httpsEndpoint, "/v1/get-ice-server-config", payload)
	if err != nil {
		var ae *APIError
		retryable := errors.As(err, &ae) && (ae.StatusCode == 401 || ae.StatusCode == 403)
		return iceResult{}, retryable, err
	}
	var cfg iceServerConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return iceResult{}, false, fmt.Errorf("%w: decoding the answer: %w", ErrICEConfig, err)
	}
	now := r.now()
	var minTTL time.Duration = -1
	res := iceResult{}
	for _, s := range cfg.ICEServerList {
		if len(s.Uris) == 0 {
			continue
		}
		srv := webrtc.ICEServer{URLs: append([]string(nil), s.Uris...)}
		if s.Username != "" || s.Password != "" {
			srv.Username = s.Username
			srv.Credential = s.Password
			srv.CredentialType = webrtc.ICECredentialTypePassword
		}
		res.servers = append(res.servers, srv)
		ttl := time.Duration(s.TTL) * time.Second
		if minTTL < 0 || ttl < minTTL {
			minTTL = ttl
		}
	}
	switch {
	case minTTL < 0: // no server: nothing to expire, ask again after the default TTL
		res.expire = now.Add(DefaultICETTL - r.opts.ICEGrace)
	default:
		res.expire = now.Add(minTTL - r.opts.ICEGrace)
	}
	return res, false, nil
}

// DefaultICETTL is the lifetime GetIceServerConfig gives TURN credentials
// (300 s); it is assumed when the answer lists no server.
const DefaultICETTL = 300 * time.Second

// deriveSTUN turns the UDP TURN URLs of servers into STUN URLs on the same
// host and port: a TURN server answers STUN binding requests, so this gives a
// local service's STUN server without an AWS hostname.
func deriveSTUN(servers []webrtc.ICEServer) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range servers {
		for _, u := range s.URLs {
			if !strings.HasPrefix(u, "turn:") {
				continue
			}
			rest := strings.TrimPrefix(u, "turn:")
			hostport, query, _ := strings.Cut(rest, "?")
			if query != "" && !strings.Contains(query, "transport=udp") {
				continue
			}
			if _, _, err := net.SplitHostPort(hostport); err != nil {
				continue
			}
			stun := "stun:" + hostport
			if !seen[stun] {
				seen[stun] = true
				out = append(out, stun)
			}
		}
	}
	return out
}

// orderServers puts STUN servers first (the regional or overriding URL, then
// any STUN URLs the service listed, then ones derived from TURN when asked),
// then the TURN servers.
func orderServers(stunURL string, service []webrtc.ICEServer, derive bool) []webrtc.ICEServer {
	var stun []string
	if stunURL != "" {
		stun = append(stun, stunURL)
	}
	var turn []webrtc.ICEServer
	for _, s := range service {
		var t []string
		for _, u := range s.URLs {
			if isTURN(u) {
				t = append(t, u)
			} else if !contains(stun, u) {
				stun = append(stun, u)
			}
		}
		if len(t) > 0 {
			c := s
			c.URLs = t
			turn = append(turn, c)
		}
	}
	if derive && stunURL == "" && len(stun) == 0 {
		stun = deriveSTUN(service)
	}
	var out []webrtc.ICEServer
	if len(stun) > 0 {
		out = append(out, webrtc.ICEServer{URLs: stun})
	}
	return append(out, turn...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
