package localkvs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/turn/v5"
	"golang.org/x/time/rate"
)

// Which peers the TURN server relays to (docs/security.md, "TURN"). A
// client holding TURN credentials asks the server to send packets, or open
// TCP connections (RFC 6062), to a peer address of its choosing; without a
// filter that is a way into every service the server can reach and the
// client cannot: its loopback interface, its LAN, the cloud metadata
// address. By default the server relays to public addresses only, and to
// the relayed addresses of its own allocations (two relay-only WebRTC peers
// meet there, whatever the relay IP is).
//
// pion/turn asks the PermissionHandler for a peer IP (CreatePermission,
// ChannelBind, Connect); ports are checked where a packet or a connection
// leaves the relay (peerPolicy.allowAddr), so that the relay IP may be
// granted for the sake of its relay ports without opening its other ports.

// errPeerRefused is returned by a relay socket for a peer it must not reach.
var errPeerRefused = errors.New("localkvs: TURN peer address refused")

// peerPolicy decides which peer addresses the relays may reach.
type peerPolicy struct {
	allowLoopback bool
	allowed       []netip.Prefix
	relayIP       netip.Addr
	localIPs      map[netip.Addr]bool // addresses of this host the service listens on
	ownPorts      map[uint16]bool     // the service's HTTP port and the TURN ports

	mu        sync.Mutex
	relayUDP  map[uint16]int // live UDP relay ports on relayIP
	relayTCP  map[uint16]int // live TCP relay listener ports on relayIP
	logTokens *rate.Limiter  // refusals logged, at most a few per second
	log       func(msg string, args ...any)
}

func newPeerPolicy(tc TURNConfig, relayIP net.IP, localIPs []net.IP, ownPorts []int, log func(string, ...any)) *peerPolicy {
	p := &peerPolicy{
		allowLoopback: tc.AllowLoopbackPeers,
		allowed:       tc.AllowedPeers,
		relayIP:       addrOf(relayIP),
		localIPs:      map[netip.Addr]bool{},
		ownPorts:      map[uint16]bool{},
		relayUDP:      map[uint16]int{},
		relayTCP:      map[uint16]int{},
		logTokens:     rate.NewLimiter(2, 5),
		log:           log,
	}
	for _, ip := range append(localIPs, relayIP) {
		if a := addrOf(ip); a.IsValid() {
			p.localIPs[a] = true
		}
	}
	for _, port := range ownPorts {
		if port > 0 && port < 1<<16 {
			p.ownPorts[uint16(port)] = true
		}
	}
	return p
}

// addrOf converts ip to a netip.Addr, IPv4-mapped IPv6 unmapped.
func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

var (
	sharedSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT (RFC 6598)
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	benchmark   = netip.MustParsePrefix("198.18.0.0/15")
	reserved    = netip.MustParsePrefix("240.0.0.0/4") // includes 255.255.255.255
)

// internalKind names why a is not a public unicast address, or "" when it is.
func internalKind(a netip.Addr) string {
	if nat64.Contains(a) { // a NAT64 gateway would carry it to the embedded IPv4
		b := a.As16()
		return internalKind(netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}))
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified() || thisNetwork.Contains(a):
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsPrivate() || sharedSpace.Contains(a) || benchmark.Contains(a):
		return "private"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsMulticast() || reserved.Contains(a):
		return "multicast or reserved"
	}
	return ""
}

// allowIP is the pion PermissionHandler: whether a permission (and a
// ChannelBind or a Connect) for peerIP may be granted.
func (p *peerPolicy) allowIP(client net.Addr, peerIP net.IP) bool {
	a := addrOf(peerIP)
	if p.ipAllowed(a) || a == p.relayIP {
		return true
	}
	p.refused(client, a, 0, internalKind(a))
	return false
}

// ipAllowed reports whether a is a peer IP relayed to on any port (the
// service's own ports aside).
func (p *peerPolicy) ipAllowed(a netip.Addr) bool {
	for _, pre := range p.allowed {
		if pre.Contains(a) {
			return true
		}
	}
	switch internalKind(a) {
	case "":
		return true
	case "loopback":
		return p.allowLoopback
	}
	return false
}

// allowAddr reports whether a packet (tcp false) or a connection (tcp true)
// may go from a relay to ip:port.
func (p *peerPolicy) allowAddr(ip net.IP, port int, tcp bool) bool {
	a := addrOf(ip)
	if p.ownPorts[uint16(port)] && (a.IsLoopback() || a.IsUnspecified() || p.localIPs[a]) {
		p.refused(nil, a, port, "the service's own port")
		return false
	}
	if p.ipAllowed(a) {
		return true
	}
	if a == p.relayIP {
		p.mu.Lock()
		live := p.relayUDP[uint16(port)] > 0
		if tcp {
			live = p.relayTCP[uint16(port)] > 0
		}
		p.mu.Unlock()
		if live {
			return true
		}
	}
	p.refused(nil, a, port, internalKind(a))
	return false
}

func (p *peerPolicy) refused(client net.Addr, a netip.Addr, port int, why string) {
	if !p.logTokens.Allow() {
		return
	}
	peer := a.String()
	if port != 0 {
		peer = netip.AddrPortFrom(a, uint16(port)).String()
	}
	args := []any{"peer", peer, "why", why}
	if client != nil {
		args = append(args, "src", client.String())
	}
	p.log("localkvs: TURN relay to an internal address refused (TURNConfig.AllowLoopbackPeers, AllowedPeers)", args...)
}

// track counts a relay port of this server as live until the returned
// function is called.
func (p *peerPolicy) track(port int, tcp bool) (untrack func()) {
	m := p.relayUDP
	if tcp {
		m = p.relayTCP
	}
	key := uint16(port)
	p.mu.Lock()
	m[key]++
	p.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if m[key]--; m[key] <= 0 {
				delete(m, key)
			}
			p.mu.Unlock()
		})
	}
}

// limitedRelay allocates the relays of one TURN listener: UDP sockets and
// (RFC 6062) TCP listeners and outgoing connections, each capped at bps bits
// per second in each direction (bps < 0: no cap) and kept to the peers the
// policy allows.
type limitedRelay struct {
	*turn.RelayAddressGeneratorStatic
	bps    int
	policy *peerPolicy
}

func (g *limitedRelay) limiter() *rate.Limiter {
	if g.bps < 0 {
		return nil
	}
	return newLimiter(float64(g.bps) / 8)
}

// AllocatePacketConn allocates a UDP relay socket.
func (g *limitedRelay) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	c, a, err := g.RelayAddressGeneratorStatic.AllocatePacketConn(conf)
	if err != nil {
		return c, a, err
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	return &limitedPacketConn{PacketConn: c, in: g.limiter(), out: g.limiter(), policy: g.policy, untrack: g.policy.track(port, false)}, a, nil
}

// AllocateListener allocates the TCP relay listener of a TCP allocation;
// the connections it accepts (peers connecting in) are capped.
func (g *limitedRelay) AllocateListener(conf turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	l, a, err := g.RelayAddressGeneratorStatic.AllocateListener(conf)
	if err != nil {
		return l, a, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return &limitedListener{Listener: l, g: g, untrack: g.policy.track(port, true)}, a, nil
}

// AllocateConn opens a TCP allocation's connection to a peer (Connect),
// refusing peers the policy does not allow.
func (g *limitedRelay) AllocateConn(conf turn.AllocateConnConfig) (net.Conn, error) {
	ra, ok := conf.RemoteAddr.(*net.TCPAddr)
	if !ok || !g.policy.allowAddr(ra.IP, ra.Port, true) {
		return nil, fmt.Errorf("%w: %s", errPeerRefused, conf.RemoteAddr)
	}
	c, err := g.RelayAddressGeneratorStatic.AllocateConn(conf)
	if err != nil {
		return nil, err
	}
	return newLimitedConn(c, g.limiter(), g.limiter()), nil
}

// limitedPacketConn is a UDP relay socket: it drops packets beyond its byte
// buckets (one second of burst each way) and packets to peers the policy
// refuses.
type limitedPacketConn struct {
	net.PacketConn
	in, out *rate.Limiter // bytes per second; nil: no cap
	policy  *peerPolicy
	untrack func()
}

// WriteTo sends a packet from the client to a peer, or drops it.
func (c *limitedPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || !c.policy.allowAddr(ua.IP, ua.Port, false) {
		return len(p), nil // dropped: pion only logs a failed write
	}
	if c.out != nil && !c.out.AllowN(time.Now(), len(p)) {
		return len(p), nil // dropped, as a saturated link would
	}
	return c.PacketConn.WriteTo(p, addr)
}

// ReadFrom returns the next packet from a peer within the cap, dropping
// the ones past it.
func (c *limitedPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.in == nil || c.in.AllowN(time.Now(), n) {
			return n, a, err
		}
	}
}

// Close closes the socket and forgets its relay port.
func (c *limitedPacketConn) Close() error {
	c.untrack()
	return c.PacketConn.Close()
}

// limitedListener is a TCP allocation's relay listener.
type limitedListener struct {
	net.Listener
	g       *limitedRelay
	untrack func()
}

// Accept returns the next peer connection, capped.
func (l *limitedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newLimitedConn(c, l.g.limiter(), l.g.limiter()), nil
}

// Close closes the listener and forgets its relay port.
func (l *limitedListener) Close() error {
	l.untrack()
	return l.Listener.Close()
}

// limitedConn paces a TCP relay connection to its byte buckets: a stream
// cannot drop bytes, so past the burst a read or a write waits.
type limitedConn struct {
	net.Conn
	in, out *rate.Limiter // nil: no cap
	ctx     context.Context
	cancel  context.CancelFunc
}

func newLimitedConn(c net.Conn, in, out *rate.Limiter) net.Conn {
	if in == nil && out == nil {
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &limitedConn{Conn: c, in: in, out: out, ctx: ctx, cancel: cancel}
}

// Read reads at most one burst and waits until the bytes read fit the cap.
func (c *limitedConn) Read(p []byte) (int, error) {
	if len(p) > c.in.Burst() {
		p = p[:c.in.Burst()]
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		if werr := c.in.WaitN(c.ctx, n); werr != nil && err == nil {
			err = net.ErrClosed
		}
	}
	return n, err
}

// Write writes p one burst at a time, each when it fits the cap.
func (c *limitedConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), c.out.Burst())]
		if err := c.out.WaitN(c.ctx, len(chunk)); err != nil {
			return written, net.ErrClosed
		}
		n, err := c.Conn.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Close closes the connection and ends waits in Read and Write.
func (c *limitedConn) Close() error {
	c.cancel()
	return c.Conn.Close()
}
