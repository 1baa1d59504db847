package localkvs_test

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// silenceWait is how long a test waits to see that a relayed packet or
// connection does not arrive: far longer than a loopback round trip.
const silenceWait = time.Second

// udpSink is a loopback UDP socket that counts what it receives.
type udpSink struct {
	conn net.PacketConn
	got  atomic.Int64
}

func newUDPSink(t *testing.T) *udpSink {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &udpSink{conn: c}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			s.got.Add(int64(n))
		}
	}()
	t.Cleanup(func() { c.Close() })
	return s
}

// tcpSink is a loopback TCP listener that counts connections and bytes.
type tcpSink struct {
	l            net.Listener
	conns, bytes atomic.Int64
}

func newTCPSink(t *testing.T) *tcpSink {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpSink{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			go func() {
				defer c.Close()
				n, _ := io.Copy(io.Discard, c)
				s.bytes.Add(n)
			}()
		}
	}()
	t.Cleanup(func() { l.Close() })
	return s
}

// tcpTURNClient is a pion/turn client over TCP to the server's TCP URI.
func tcpTURNClient(t *testing.T, server, username, password string) *turn.Client {
	t.Helper()
	conn, err := net.Dial("tcp4", server)
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Conn:           turn.NewSTUNConn(conn),
		Username:       username,
		Password:       password,
		LoggerFactory:  quietPion,
	})
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// TestDefect3TURNPeers: with credentials from GetIceServerConfig, a client
// must not reach internal services through the relay: loopback, private,
// link-local and unspecified peers are refused over UDP and over TCP
// allocations (RFC 6062), the TURN server's own port and the service's
// HTTP port included; relaying between two allocations of the server (the
// relay-only WebRTC case) still works.
func TestDefect3TURNPeers(t *testing.T) {
	srv := start(t, localkvs.Config{})
	arn := mustCreate(t, srv, "turn-ssrf")
	s := iceConfig(t, srv, arn, "")[0]
	udpServer := turnHostPort(t, s, "udp")

	client, _ := turnClient(t, udpServer, s.Username, s.Password)
	relay, err := client.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	// Permissions for internal peers are refused (403). 127.0.0.1 is the
	// relay IP here, where other allocations' relayed addresses are: its
	// permission is granted and each packet is checked (below).
	for _, ip := range []string{"127.1.2.3", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0", "100.64.0.1", "224.0.0.1", "255.255.255.255"} {
		if err := client.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9}); err == nil {
			t.Errorf("CreatePermission for %s granted", ip)
		}
	}
	// And nothing is relayed to a loopback UDP service, nor to the TURN
	// server's own port.
	sink := newUDPSink(t)
	relay.WriteTo([]byte("ssrf"), sink.conn.LocalAddr())
	turnAddr, _ := net.ResolveUDPAddr("udp4", udpServer)
	relay.WriteTo(bindingRequest(t), turnAddr)
	relay.SetReadDeadline(time.Now().Add(silenceWait))
	if n, from, err := relay.ReadFrom(make([]byte, 1500)); err == nil {
		t.Errorf("the relay answered %d bytes from %s: it reached the TURN server's own port", n, from)
	}
	if got := sink.got.Load(); got != 0 {
		t.Errorf("a loopback UDP service received %d bytes through the relay", got)
	}

	// Relay to another allocation of this server: allowed.
	client2, _ := turnClient(t, udpServer, s.Username, s.Password)
	relay2, err := client2.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay2.Close()
	if _, err := relay2.WriteTo([]byte("hole punch"), relay.LocalAddr()); err != nil { // permission for relay's address
		t.Fatal(err)
	}
	if _, err := relay.WriteTo([]byte("relay to relay"), relay2.LocalAddr()); err != nil {
		t.Fatalf("relay to another allocation: %v", err)
	}
	relay2.SetReadDeadline(time.Now().Add(waitTimeout))
	buf := make([]byte, 1500)
	n, _, err := relay2.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "relay to relay" {
		t.Fatalf("relay to another allocation: got %q, %v", buf[:n], err)
	}

	// TCP allocations: Connect to the service's own HTTP port and to a
	// loopback TCP service fail, and nothing connects.
	tcpSinkSvc := newTCPSink(t)
	tc := tcpTURNClient(t, turnHostPort(t, s, "tcp"), s.Username, s.Password)
	alloc, err := tc.AllocateTCP()
	if err != nil {
		t.Fatalf("AllocateTCP: %v", err)
	}
	defer alloc.Close()
	httpAddr := srv.Addr().String()
	for _, target := range []string{httpAddr, tcpSinkSvc.l.Addr().String(), "10.1.2.3:80"} {
		if c, err := alloc.Dial("tcp4", target); err == nil {
			c.Close()
			t.Errorf("a TCP allocation connected to %s", target)
		}
	}
	if n := tcpSinkSvc.conns.Load(); n != 0 {
		t.Errorf("a loopback TCP service accepted %d connections from the relay", n)
	}
}

// bindingRequest is a STUN binding request, which a TURN server answers.
func bindingRequest(t *testing.T) []byte {
	t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// TestTURNAllowLoopbackPeers: with TURN.AllowLoopbackPeers (the one-machine
// demo and tests), loopback peers are relayed to over UDP and TCP, but the
// service's own ports are still refused.
func TestTURNAllowLoopbackPeers(t *testing.T) {
	srv := start(t, localkvs.Config{TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}})
	arn := mustCreate(t, srv, "turn-loopback")
	s := iceConfig(t, srv, arn, "")[0]
	udpServer := turnHostPort(t, s, "udp")
	client, _ := turnClient(t, udpServer, s.Username, s.Password)
	relay, err := client.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	if err := client.CreatePermission(&net.UDPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9}); err == nil {
		t.Error("AllowLoopbackPeers granted a private peer")
	}
	sink := newUDPSink(t)
	relay.WriteTo([]byte("to loopback"), sink.conn.LocalAddr())
	turnAddr, _ := net.ResolveUDPAddr("udp4", udpServer)
	relay.WriteTo(bindingRequest(t), turnAddr)
	relay.SetReadDeadline(time.Now().Add(silenceWait))
	if n, from, err := relay.ReadFrom(make([]byte, 1500)); err == nil {
		t.Errorf("the relay answered %d bytes from %s: it reached the TURN server's own port", n, from)
	}
	if got := sink.got.Load(); got != int64(len("to loopback")) {
		t.Errorf("loopback UDP peer received %d bytes, want %d", got, len("to loopback"))
	}

	tcpSinkSvc := newTCPSink(t)
	tc := tcpTURNClient(t, turnHostPort(t, s, "tcp"), s.Username, s.Password)
	alloc, err := tc.AllocateTCP()
	if err != nil {
		t.Fatalf("AllocateTCP: %v", err)
	}
	defer alloc.Close()
	if c, err := alloc.Dial("tcp4", srv.Addr().String()); err == nil {
		c.Close()
		t.Error("a TCP allocation connected to the service's HTTP port")
	}
	_, tcpTURNPort, _ := net.SplitHostPort(turnHostPort(t, s, "tcp"))
	if c, err := alloc.Dial("tcp4", net.JoinHostPort("127.0.0.1", tcpTURNPort)); err == nil {
		c.Close()
		t.Error("a TCP allocation connected to the TURN server's own port")
	}
	c, err := alloc.Dial("tcp4", tcpSinkSvc.l.Addr().String())
	if err != nil {
		t.Fatalf("TCP allocation to a loopback peer: %v", err)
	}
	c.Write([]byte("hello"))
	c.Close()
}

// TestTURNBandwidthCapTCP: the per-allocation cap applies to TCP relays
// (RFC 6062) too. The cap is 800 kbit/s (100 KB/s, one second of burst);
// 300 KB through a TCP relay cannot all arrive in less than a second.
func TestTURNBandwidthCapTCP(t *testing.T) {
	srv := start(t, localkvs.Config{TURN: localkvs.TURNConfig{Bandwidth: 800_000, AllowLoopbackPeers: true}})
	arn := mustCreate(t, srv, "turn-cap-tcp")
	s := iceConfig(t, srv, arn, "")[0]
	sink := newTCPSink(t)
	tc := tcpTURNClient(t, turnHostPort(t, s, "tcp"), s.Username, s.Password)
	alloc, err := tc.AllocateTCP()
	if err != nil {
		t.Fatal(err)
	}
	defer alloc.Close()
	c, err := alloc.Dial("tcp4", sink.l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const sent = 300 * 1000
	start := time.Now()
	go func() {
		c.Write(make([]byte, sent))
		c.Close()
	}()
	deadline := time.Now().Add(waitTimeout)
	for sink.bytes.Load() < sent && time.Now().Before(deadline) {
		// bytes is added when the sink's copy ends: when the relay closes.
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if got := sink.bytes.Load(); got != sent {
		t.Fatalf("the TCP peer received %d of %d bytes within %s", got, sent, waitTimeout)
	}
	// A lower bound only: a slow machine can only make this longer.
	if elapsed < time.Second {
		t.Fatalf("300 KB crossed a 100 KB/s TCP relay in %s: the cap does not apply to TCP", elapsed)
	}
	t.Logf("300 KB through a 100 KB/s TCP relay in %s", elapsed)
}

var _ = errors.Is
var _ = strconv.Itoa
