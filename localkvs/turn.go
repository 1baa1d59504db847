package localkvs

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// turnRealm is the realm the TURN server announces.
const turnRealm = "kinesisvideo.local"

// turnServer is the embedded TURN/STUN server: one UDP socket and, unless
// disabled, one TCP listener, both answering STUN binding requests and TURN
// allocations authenticated with time-limited per-channel credentials.
type turnServer struct {
	srv     *turn.Server
	udpAddr *net.UDPAddr
	tcpAddr *net.TCPAddr // nil without TCP
	host    string       // the IP clients are told to use
	secret  []byte       // random per process; signs the credentials
	ttl     time.Duration
	max     int // allocations per channel; < 0 unlimited
	now     func() time.Time
	log     *slog.Logger

	mu     sync.Mutex
	allocs map[string]int // channel key -> live allocations
	arns   sync.Map       // channel key -> channel ARN, for logs
}

// startTURN starts the TURN server on the IP of the service's listener (or
// Config.TURN.Addr). It does nothing when TURN is disabled or already runs.
func (s *Server) startTURN(service net.Addr) error {
	tc := s.cfg.TURN
	if tc.Disabled {
		return nil
	}
	s.turnMu.Lock()
	defer s.turnMu.Unlock()
	if s.closed.Load() {
		return ErrServerClosed
	}
	if s.turn.Load() != nil {
		return nil
	}
	ip, port := net.IPv4(127, 0, 0, 1), 0
	if tc.Addr != "" {
		h, p, _ := net.SplitHostPort(tc.Addr) // validated by New
		ip = net.ParseIP(h)
		port, _ = strconv.Atoi(p)
	} else if ta, ok := service.(*net.TCPAddr); ok && ta.IP != nil {
		ip = ta.IP
	}
	udp, tcp, err := listenTURN(ip, port, !tc.DisableTCP)
	if err != nil {
		return fmt.Errorf("localkvs: TURN server: %w", err)
	}
	adv := ip
	if ip.IsUnspecified() {
		adv = net.IPv4(127, 0, 0, 1)
	}
	relay := adv
	if tc.RelayAddress != "" {
		relay = net.ParseIP(tc.RelayAddress)
	}
	bind := ip.String()
	if ip.IsUnspecified() {
		bind = "0.0.0.0"
	}
	t := &turnServer{
		udpAddr: udp.LocalAddr().(*net.UDPAddr),
		host:    adv.String(),
		secret:  make([]byte, 32),
		ttl:     tc.TTL,
		max:     tc.MaxAllocations,
		now:     s.clock.Now,
		log:     s.log,
		allocs:  map[string]int{},
	}
	if t.ttl == 0 {
		t.ttl = DefaultTURNTTL
	}
	if t.max == 0 {
		t.max = DefaultTURNAllocations
	}
	if !s.sharedTURNSecret(t.secret) { // a cluster's nodes share theirs: cluster.go
		rand.Read(t.secret)
	}
	bandwidth := s.cfg.TURN.Bandwidth
	if bandwidth == 0 {
		bandwidth = DefaultTURNBandwidth
	}
	ownPorts := []int{udp.LocalAddr().(*net.UDPAddr).Port}
	if tcp != nil {
		ownPorts = append(ownPorts, tcp.Addr().(*net.TCPAddr).Port)
	}
	localIPs := []net.IP{ip, adv}
	if ta, ok := service.(*net.TCPAddr); ok {
		ownPorts = append(ownPorts, ta.Port)
		localIPs = append(localIPs, ta.IP)
	}
	if ip.IsUnspecified() {
		localIPs = append(localIPs, interfaceIPs()...)
	}
	policy := newPeerPolicy(tc, relay, localIPs, ownPorts, s.log.Info)
	gen := func() turn.RelayAddressGenerator {
		return &limitedRelay{&turn.RelayAddressGeneratorStatic{RelayAddress: relay, Address: bind}, bandwidth, policy}
	}
	cfg := turn.ServerConfig{
		Realm:         turnRealm,
		AuthHandler:   t.auth,
		QuotaHandler:  t.quota,
		LoggerFactory: pionLogFactory{s.log},
		EventHandler: turn.EventHandler{
			OnAuth:              t.onAuth,
			OnAllocationCreated: t.onCreated,
			OnAllocationDeleted: t.onDeleted,
		},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: gen(), PermissionHandler: policy.allowIP}},
	}
	if tcp != nil {
		t.tcpAddr = tcp.Addr().(*net.TCPAddr)
		cfg.ListenerConfigs = []turn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: gen(), PermissionHandler: policy.allowIP}}
	}
	srv, err := turn.NewServer(cfg)
	if err != nil {
		udp.Close()
		if tcp != nil {
			tcp.Close()
		}
		return fmt.Errorf("localkvs: TURN server: %w", err)
	}
	t.srv = srv
	s.turn.Store(t)
	s.log.Info("localkvs: TURN/STUN server", "udp", t.udpAddr.String(), "tcp", addrString(t.tcpAddr), "relay", relay.String(), "ttl", t.ttl)
	return nil
}

func addrString(a *net.TCPAddr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// listenTURN opens the UDP socket and, with withTCP, the TCP listener on
// ip:port. With port 0 it looks for a port free for both, falling back to
// two different ports.
func listenTURN(ip net.IP, port int, withTCP bool) (net.PacketConn, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			return nil, nil, err
		}
		if !withTCP {
			return udp, nil, nil
		}
		p := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: p})
		if err == nil {
			return udp, newTrackListener(tcp), nil
		}
		if port != 0 {
			udp.Close()
			return nil, nil, err
		}
		if attempt >= 10 {
			tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip})
			if err != nil {
				udp.Close()
				return nil, nil, err
			}
			return udp, newTrackListener(tcp), nil
		}
		udp.Close()
	}
}

// closeTURN stops the TURN server: its sockets, TCP connections and relays.
func (s *Server) closeTURN() {
	s.turnMu.Lock()
	t := s.turn.Swap(nil)
	s.turnMu.Unlock()
	if t == nil {
		return
	}
	if err := t.srv.Close(); err != nil {
		s.log.Warn("localkvs: closing the TURN server", "err", err)
	}
}

// channelKey is the per-channel part of a TURN username: a short hash of the ARN.
func channelKey(arn string) string {
	h := sha256.Sum256([]byte(arn))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// password is the TURN REST-API password of username: HMAC-SHA1 of it under
// the server secret (URL-safe base64, so it stays in [a-zA-Z0-9_-]).
func (t *turnServer) password(username string) string {
	m := hmac.New(sha1.New, t.secret)
	m.Write([]byte(username))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// credentials returns a username "<expiry unix seconds>:<channel key>" and
// its password.
func (t *turnServer) credentials(arn string, expires time.Time) (username, password string) {
	key := channelKey(arn)
	t.arns.Store(key, arn)
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + key
	return username, t.password(username)
}

// uris are the TURN URIs GetIceServerConfig lists.
func (t *turnServer) uris() []string {
	out := []string{"turn:" + net.JoinHostPort(t.host, strconv.Itoa(t.udpAddr.Port)) + "?transport=udp"}
	if t.tcpAddr != nil {
		out = append(out, "turn:"+net.JoinHostPort(t.host, strconv.Itoa(t.tcpAddr.Port))+"?transport=tcp")
	}
	return out
}

func (t *turnServer) channelName(key string) string {
	if v, ok := t.arns.Load(key); ok {
		return v.(string)
	}
	return key
}

// auth is the pion AuthHandler: it parses the username, refuses an
// Allocate with expired credentials and returns the key derived from the
// password the server would have issued (pion then checks the message
// integrity, refusing a wrong password). Refresh, CreatePermission and
// ChannelBind of an existing allocation are accepted after the expiry, so an
// allocation made in time lives on, as with the real service.
func (t *turnServer) auth(ra *turn.RequestAttributes) (userID string, key []byte, ok bool) {
	exp, id, found := strings.Cut(ra.Username, ":")
	expiry, err := strconv.ParseInt(exp, 10, 64)
	if !found || id == "" || err != nil {
		t.log.Info("localkvs: TURN request refused: the username is not one GetIceServerConfig issued", "src", ra.SrcAddr.String())
		return "", nil, false
	}
	if ra.Method == stun.MethodAllocate && t.now().Unix() > expiry {
		t.log.Info("localkvs: TURN allocation refused: expired credentials", "channel", t.channelName(id),
			"expired", time.Unix(expiry, 0).UTC().Format(time.RFC3339), "src", ra.SrcAddr.String())
		return "", nil, false
	}
	return id, turn.GenerateAuthKey(ra.Username, ra.Realm, t.password(ra.Username)), true
}

func (t *turnServer) onAuth(src, _ net.Addr, _, username, _, method string, verdict bool) {
	if !verdict {
		_, id, _ := strings.Cut(username, ":")
		t.log.Info("localkvs: TURN request refused: wrong password", "channel", t.channelName(id), "method", method, "src", src.String())
	}
}

// quota refuses an allocation (486) when the channel has MaxAllocations.
func (t *turnServer) quota(userID, _ string, src net.Addr) bool {
	if t.max < 0 {
		return true
	}
	t.mu.Lock()
	n := t.allocs[userID]
	t.mu.Unlock()
	if n >= t.max {
		t.log.Info("localkvs: TURN allocation refused: channel allocation limit", "channel", t.channelName(userID), "limit", t.max, "src", src.String())
		return false
	}
	return true
}

func (t *turnServer) onCreated(src, _ net.Addr, proto, userID, _ string, relay net.Addr, _ int) {
	t.mu.Lock()
	t.allocs[userID]++
	n := t.allocs[userID]
	t.mu.Unlock()
	t.log.Debug("localkvs: TURN allocation", "channel", t.channelName(userID), "src", src.String(), "protocol", proto, "relay", relay.String(), "count", n)
}

func (t *turnServer) onDeleted(src, _ net.Addr, _, userID, _ string) {
	t.mu.Lock()
	n := t.allocs[userID] - 1
	if n <= 0 {
		delete(t.allocs, userID)
	} else {
		t.allocs[userID] = n
	}
	t.mu.Unlock()
	t.log.Debug("localkvs: TURN allocation deleted", "channel", t.channelName(userID), "src", src.String(), "count", n)
}

// turnICEServers answers GetIceServerConfig: the embedded TURN server with
// fresh credentials for the channel, or no server when TURN is off.
func (s *Server) turnICEServers(_ context.Context, req iceRequest) ([]iceServer, error) {
	t := s.turn.Load()
	if t == nil {
		return []iceServer{}, nil
	}
	user, pass := t.credentials(req.ChannelARN, t.now().Add(t.ttl))
	return []iceServer{{Uris: t.uris(), Username: user, Password: pass, TTL: int(t.ttl / time.Second)}}, nil
}

// TURNAddr returns the UDP address of the embedded TURN/STUN server (its
// TCP listener uses the same port number when it was free), or nil when TURN
// is disabled, before Serve and after the server stops.
func (s *Server) TURNAddr() net.Addr {
	t := s.turn.Load()
	if t == nil {
		return nil
	}
	return t.udpAddr
}

// TURNURLs returns the URIs GetIceServerConfig lists for the embedded TURN
// server ("turn:127.0.0.1:PORT?transport=udp", and "...?transport=tcp"
// unless TURN.DisableTCP), or nil when TURN is not running.
func (s *Server) TURNURLs() []string {
	t := s.turn.Load()
	if t == nil {
		return nil
	}
	return t.uris()
}

// trackListener is a TCP listener that closes the connections it accepted
// when it is closed (pion/turn's Server.Close closes only the listener).
type trackListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newTrackListener(l net.Listener) *trackListener {
	return &trackListener{Listener: l, conns: map[net.Conn]struct{}{}}
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return &trackedConn{Conn: c, l: l}, nil
}

func (l *trackListener) Close() error {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	err := l.Listener.Close()
	for c := range conns {
		c.Close()
	}
	return err
}

type trackedConn struct {
	net.Conn
	l *trackListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	err := c.Conn.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// pionLogFactory routes pion/turn's logs to the server's slog.Logger: its
// debug and info lines at debug level, warnings and errors at warn level.
type pionLogFactory struct{ l *slog.Logger }

func (f pionLogFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLog{f.l.With("pion", scope)}
}

type pionLog struct{ l *slog.Logger }

func (p pionLog) logf(level slog.Level, format string, a ...any) {
	if p.l.Enabled(context.Background(), level) {
		p.l.Log(context.Background(), level, "localkvs: turn: "+fmt.Sprintf(format, a...))
	}
}

func (p pionLog) Trace(string)                   {}
func (p pionLog) Tracef(string, ...any)          {}
func (p pionLog) Debug(m string)                 { p.logf(slog.LevelDebug, "%s", m) }
func (p pionLog) Debugf(format string, a ...any) { p.logf(slog.LevelDebug, format, a...) }
func (p pionLog) Info(m string)                  { p.logf(slog.LevelDebug, "%s", m) }
func (p pionLog) Infof(format string, a ...any)  { p.logf(slog.LevelDebug, format, a...) }
func (p pionLog) Warn(m string)                  { p.logf(slog.LevelWarn, "%s", m) }
func (p pionLog) Warnf(format string, a ...any)  { p.logf(slog.LevelWarn, format, a...) }
func (p pionLog) Error(m string)                 { p.logf(slog.LevelWarn, "%s", m) }
func (p pionLog) Errorf(format string, a ...any) { p.logf(slog.LevelWarn, format, a...) }

// interfaceIPs returns the IPs of this host's interfaces, for a TURN server
// listening on an unspecified address.
func interfaceIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			out = append(out, n.IP)
		}
	}
	return out
}
