package localkvs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/logging"
	"github.com/pion/turn/v5"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

type iceServerJSON struct {
	Uris     []string
	Username string
	Password string
	TTL      int `json:"Ttl"`
}

// iceConfig calls get-ice-server-config for arn.
func iceConfig(t *testing.T, srv *localkvs.Server, arn, clientID string) []iceServerJSON {
	t.Helper()
	req := map[string]string{"ChannelARN": arn, "Service": "TURN"}
	if clientID != "" {
		req["ClientId"] = clientID
	}
	status, code, body := signedPost(t, srv, "/v1/get-ice-server-config", req, localkvs.DevSecretAccessKey)
	if status != 200 {
		t.Fatalf("get-ice-server-config: %d %s %s", status, code, body)
	}
	var out struct{ IceServerList []iceServerJSON }
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return out.IceServerList
}

// turnHostPort returns the host:port of the first URI of list with the given transport.
func turnHostPort(t *testing.T, s iceServerJSON, transport string) string {
	t.Helper()
	for _, u := range s.Uris {
		rest, ok := strings.CutPrefix(u, "turn:")
		if !ok {
			continue
		}
		hp, q, _ := strings.Cut(rest, "?")
		if q == "transport="+transport {
			return hp
		}
	}
	t.Fatalf("no turn: URI with transport=%s in %q", transport, s.Uris)
	return ""
}

var quietPion = &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}

// turnClient makes a pion/turn client on its own UDP socket of 127.0.0.1.
func turnClient(t *testing.T, server, username, password string) (*turn.Client, net.PacketConn) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Conn:           conn,
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
	return c, conn
}

func TestTURNConfigShape(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "turn-shape")
	before := time.Now().Unix()
	list := iceConfig(t, srv, arn, "viewer-1")
	after := time.Now().Unix()
	if len(list) != 1 {
		t.Fatalf("IceServerList has %d servers, want 1: %+v", len(list), list)
	}
	s := list[0]
	if s.TTL != 300 {
		t.Errorf("Ttl %d, want 300", s.TTL)
	}
	port := strconv.Itoa(srv.TURNAddr().(*net.UDPAddr).Port)
	want := []string{"turn:127.0.0.1:" + port + "?transport=udp"}
	if len(s.Uris) != 2 || s.Uris[0] != want[0] || !regexp.MustCompile(`^turn:127\.0\.0\.1:\d+\?transport=tcp$`).MatchString(s.Uris[1]) {
		t.Errorf("Uris %q, want [%s turn:127.0.0.1:PORT?transport=tcp]", s.Uris, want[0])
	}
	if got := srv.TURNURLs(); len(got) != len(s.Uris) || got[0] != s.Uris[0] {
		t.Errorf("TURNURLs %q, want %q", got, s.Uris)
	}
	exp, key, ok := strings.Cut(s.Username, ":")
	e, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || key == "" || e < before+300 || e > after+300 {
		t.Errorf("Username %q, want <expiry in %d..%d>:<channel key>", s.Username, before+300, after+300)
	}
	if !regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`).MatchString(s.Password) || !regexp.MustCompile(`^[0-9]+:[a-zA-Z0-9_-]+$`).MatchString(s.Username) {
		t.Errorf("credentials %q / %q use unexpected characters", s.Username, s.Password)
	}
	// Same channel, same key; another channel, another key.
	other := iceConfig(t, srv, mustCreate(t, srv, "turn-shape-2"), "")[0]
	if _, k2, _ := strings.Cut(iceConfig(t, srv, arn, "")[0].Username, ":"); k2 != key {
		t.Errorf("channel key changed between calls: %q then %q", key, k2)
	}
	if _, k3, _ := strings.Cut(other.Username, ":"); k3 == key {
		t.Errorf("two channels share the channel key %q", key)
	}

	// A settable TTL, answered in seconds and used for the expiry.
	srv2 := start(t, localkvs.Config{TURN: localkvs.TURNConfig{TTL: 42 * time.Second, DisableTCP: true}})
	arn2 := mustCreate(t, srv2, "turn-ttl")
	before = time.Now().Unix()
	s2 := iceConfig(t, srv2, arn2, "")[0]
	after = time.Now().Unix()
	exp, _, _ = strings.Cut(s2.Username, ":")
	e, _ = strconv.ParseInt(exp, 10, 64)
	if s2.TTL != 42 || e < before+42 || e > after+42 {
		t.Errorf("TTL 42s: Ttl %d, expiry %d, want 42 and %d..%d", s2.TTL, e, before+42, after+42)
	}
	if len(s2.Uris) != 1 || !strings.HasSuffix(s2.Uris[0], "?transport=udp") {
		t.Errorf("DisableTCP: Uris %q, want only the UDP one", s2.Uris)
	}
}

func TestTURNAllocateRelayAndSTUN(t *testing.T) {
	// The peer is a loopback socket: relaying to it needs AllowLoopbackPeers.
	srv := start(t, localkvs.Config{TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}})
	arn := mustCreate(t, srv, "turn-relay")
	s := iceConfig(t, srv, arn, "")[0]
	server := turnHostPort(t, s, "udp")
	client, conn := turnClient(t, server, s.Username, s.Password)

	// STUN binding: the server-reflexive address is the client's socket.
	mapped, err := client.SendBindingRequest()
	if err != nil {
		t.Fatalf("STUN binding: %v", err)
	}
	if mapped.String() != conn.LocalAddr().String() {
		t.Fatalf("STUN mapped address %s, want %s", mapped, conn.LocalAddr())
	}

	relay, err := client.Allocate()
	if err != nil {
		t.Fatalf("Allocate with GetIceServerConfig credentials: %v", err)
	}
	defer relay.Close()
	ra := relay.LocalAddr().(*net.UDPAddr)
	if !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) || ra.Port == 0 {
		t.Fatalf("relay address %s, want 127.0.0.1:PORT", ra)
	}

	// Relay a packet to a local UDP socket and back.
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	deadline := time.Now().Add(waitTimeout)
	peer.SetDeadline(deadline)
	relay.SetDeadline(deadline)
	if _, err := relay.WriteTo([]byte("through the relay"), peer.LocalAddr()); err != nil {
		t.Fatalf("relay WriteTo: %v", err)
	}
	buf := make([]byte, 1500)
	n, from, err := peer.ReadFrom(buf)
	if err != nil {
		t.Fatalf("peer read: %v", err)
	}
	if string(buf[:n]) != "through the relay" || from.String() != ra.String() {
		t.Fatalf("peer got %q from %s, want %q from the relay %s", buf[:n], from, "through the relay", ra)
	}
	if _, err := peer.WriteTo([]byte("and back"), ra); err != nil {
		t.Fatal(err)
	}
	n, from, err = relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("relay read: %v", err)
	}
	if string(buf[:n]) != "and back" || from.String() != peer.LocalAddr().String() {
		t.Fatalf("relay got %q from %s", buf[:n], from)
	}
}

func TestTURNRefusesBadCredentials(t *testing.T) {
	srv := start(t, localkvs.Config{})
	arn := mustCreate(t, srv, "turn-auth")
	s := iceConfig(t, srv, arn, "")[0]
	server := turnHostPort(t, s, "udp")

	allocate := func(user, pass string) error {
		c, _ := turnClient(t, server, user, pass)
		relay, err := c.Allocate()
		if err == nil {
			relay.Close()
		}
		return err
	}
	if err := allocate(s.Username, s.Password+"x"); err == nil {
		t.Error("a wrong password allocated")
	}
	if err := allocate(s.Username, strings.ToUpper(s.Password)); err == nil {
		t.Error("an altered password allocated")
	}
	// Change the expiry but keep the old password: the HMAC no longer matches.
	_, key, _ := strings.Cut(s.Username, ":")
	forged := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10) + ":" + key
	if err := allocate(forged, s.Password); err == nil {
		t.Error("a username with a forged expiry allocated")
	}
	// Correctly signed but expired credentials.
	user, pass := localkvs.TURNCredentials(srv, arn, time.Now().Add(-time.Minute))
	if err := allocate(user, pass); err == nil {
		t.Error("expired credentials allocated")
	}
	// The same signing, unexpired: accepted (so the refusal above is the expiry).
	user, pass = localkvs.TURNCredentials(srv, arn, time.Now().Add(time.Minute))
	if err := allocate(user, pass); err != nil {
		t.Errorf("valid crafted credentials refused: %v", err)
	}
	// Credentials of another server (another secret) are refused.
	srv2 := start(t, localkvs.Config{})
	arn2 := mustCreate(t, srv2, "turn-auth")
	s2 := iceConfig(t, srv2, arn2, "")[0]
	if err := allocate(s2.Username, s2.Password); err == nil {
		t.Error("credentials of another server (another secret) allocated")
	}
}

// TestTURNCredentialsExpire: credentials from GetIceServerConfig allocate
// until their Ttl has passed, on the server's (fake) clock; fresh ones
// allocate again.
func TestTURNCredentialsExpire(t *testing.T) {
	srv, clk := startClock(t, localkvs.Config{})
	arn := mustCreate(t, srv, "turn-expiry")
	s := iceConfig(t, srv, arn, "")[0]
	server := turnHostPort(t, s, "udp")
	allocate := func(s iceServerJSON) error {
		c, _ := turnClient(t, server, s.Username, s.Password)
		relay, err := c.Allocate()
		if err == nil {
			relay.Close()
		}
		return err
	}
	if err := allocate(s); err != nil {
		t.Fatalf("fresh credentials: %v", err)
	}
	clk.Advance(time.Duration(s.TTL)*time.Second - time.Second)
	if err := allocate(s); err != nil {
		t.Fatalf("credentials a second before their Ttl: %v", err)
	}
	clk.Advance(2 * time.Second)
	if err := allocate(s); err == nil {
		t.Fatal("credentials past their Ttl allocated")
	}
	if err := allocate(iceConfig(t, srv, arn, "")[0]); err != nil {
		t.Fatalf("credentials issued after the expiry: %v", err)
	}
}

func TestTURNAllocationLimitPerChannel(t *testing.T) {
	srv := start(t, localkvs.Config{TURN: localkvs.TURNConfig{MaxAllocations: 2}, Limits: fastLimits()})
	a := iceConfig(t, srv, mustCreate(t, srv, "turn-limit-a"), "")[0]
	b := iceConfig(t, srv, mustCreate(t, srv, "turn-limit-b"), "")[0]
	server := turnHostPort(t, a, "udp")

	var relays []net.PacketConn
	for i := range 2 {
		c, _ := turnClient(t, server, a.Username, a.Password)
		r, err := c.Allocate()
		if err != nil {
			t.Fatalf("allocation %d of 2: %v", i+1, err)
		}
		relays = append(relays, r)
	}
	defer func() {
		for _, r := range relays {
			r.Close()
		}
	}()
	c, _ := turnClient(t, server, a.Username, a.Password)
	if r, err := c.Allocate(); err == nil {
		r.Close()
		t.Fatal("a third allocation on a channel limited to 2 succeeded")
	} else if !strings.Contains(err.Error(), "486") {
		t.Fatalf("third allocation: %v, want error 486 (Allocation Quota Reached)", err)
	}
	// The limit is per channel: channel b still allocates.
	cb, _ := turnClient(t, server, b.Username, b.Password)
	rb, err := cb.Allocate()
	if err != nil {
		t.Fatalf("another channel: %v", err)
	}
	rb.Close()

	// Releasing one allocation frees a place.
	if err := relays[0].Close(); err != nil {
		t.Fatalf("closing an allocation: %v", err)
	}
	relays = relays[1:]
	c2, _ := turnClient(t, server, a.Username, a.Password)
	r, err := c2.Allocate()
	if err != nil {
		t.Fatalf("allocation after a release: %v", err)
	}
	relays = append(relays, r)
}

// TestTURNOnlyWebRTC connects two pion PeerConnections through the TURN
// server alone (relay policy), over UDP and over TCP to the server.
func TestTURNOnlyWebRTC(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arn := mustCreate(t, srv, "turn-webrtc")
	for _, transport := range []string{"udp", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			config := func(clientID string) webrtc.Configuration {
				s := iceConfig(t, srv, arn, clientID)[0]
				var urls []string
				for _, u := range s.Uris {
					if strings.HasSuffix(u, "?transport="+transport) {
						urls = append(urls, u)
					}
				}
				return webrtc.Configuration{
					ICETransportPolicy: webrtc.ICETransportPolicyRelay,
					ICEServers:         []webrtc.ICEServer{{URLs: urls, Username: s.Username, Credential: s.Password}},
				}
			}
			offerer, err := webrtc.NewPeerConnection(config("viewer-" + transport))
			if err != nil {
				t.Fatal(err)
			}
			defer offerer.Close()
			answerer, err := webrtc.NewPeerConnection(config(""))
			if err != nil {
				t.Fatal(err)
			}
			defer answerer.Close()

			got := make(chan string, 1)
			answerer.OnDataChannel(func(dc *webrtc.DataChannel) {
				dc.OnMessage(func(m webrtc.DataChannelMessage) {
					select {
					case got <- string(m.Data):
					default:
					}
				})
			})
			dc, err := offerer.CreateDataChannel("chat", nil)
			if err != nil {
				t.Fatal(err)
			}
			dc.OnOpen(func() { dc.SendText("hello over TURN/" + transport) })

			// Non-trickle: exchange complete descriptions.
			offer, err := offerer.CreateOffer(nil)
			if err != nil {
				t.Fatal(err)
			}
			gathered := webrtc.GatheringCompletePromise(offerer)
			if err := offerer.SetLocalDescription(offer); err != nil {
				t.Fatal(err)
			}
			waitChan(t, gathered, "offerer gathering")
			if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
				t.Fatal(err)
			}
			answer, err := answerer.CreateAnswer(nil)
			if err != nil {
				t.Fatal(err)
			}
			gathered = webrtc.GatheringCompletePromise(answerer)
			if err := answerer.SetLocalDescription(answer); err != nil {
				t.Fatal(err)
			}
			waitChan(t, gathered, "answerer gathering")
			for _, sdp := range []string{offerer.LocalDescription().SDP, answerer.LocalDescription().SDP} {
				if !strings.Contains(sdp, "typ relay") {
					t.Fatalf("no relay candidate gathered:\n%s", sdp)
				}
			}
			if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
				t.Fatal(err)
			}

			select {
			case m := <-got:
				if m != "hello over TURN/"+transport {
					t.Fatalf("message %q", m)
				}
			case <-time.After(waitTimeout):
				t.Fatalf("no data channel message through TURN within %s (ICE %s)", waitTimeout, offerer.ICEConnectionState())
			}
			pair, err := offerer.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
			if err != nil || pair == nil {
				t.Fatalf("selected pair: %v", err)
			}
			if pair.Local.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Typ != webrtc.ICECandidateTypeRelay {
				t.Fatalf("selected pair %s, want relay on both sides", pair)
			}
		})
	}
}

func waitChan(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(waitTimeout):
		t.Fatalf("%s not done within %s", what, waitTimeout)
	}
}

func TestReconnectICEServer(t *testing.T) {
	srv := start(t, localkvs.Config{Limits: fastLimits()})
	arnA := mustCreate(t, srv, "reconnect-a")
	arnB := mustCreate(t, srv, "reconnect-b")
	masterA := dial(t, srv, arnA, "")
	viewerA := dial(t, srv, arnA, "viewer-1")
	masterB := dial(t, srv, arnB, "")
	viewerB := dial(t, srv, arnB, "viewer-1")

	if err := srv.ReconnectICEServer(context.Background(), arnA); err != nil {
		t.Fatalf("ReconnectICEServer: %v", err)
	}
	for name, c := range map[string]*websocket.Conn{"master A": masterA, "viewer A": viewerA} {
		raw := recvRaw(t, c)
		if !bytes.Equal(raw, []byte(`{"messageType":"RECONNECT_ICE_SERVER"}`)) {
			t.Fatalf("%s got %s, want exactly {\"messageType\":\"RECONNECT_ICE_SERVER\"}", name, raw)
		}
	}
	// Channel B got nothing: the next frame its master sees is a viewer's offer
	// sent after the reconnect (frames to one connection keep their order).
	p := offer(t, "after reconnect")
	send(t, viewerB, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: p})
	if m := recv(t, masterB); m.MessageType != wire.SDPOffer || m.MessagePayload != p {
		t.Fatalf("channel B master got %+v, want only the offer", m)
	}
	send(t, masterB, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: p, RecipientClientID: "viewer-1"})
	if m := recv(t, viewerB); m.MessageType != wire.SDPAnswer {
		t.Fatalf("channel B viewer got %+v, want only the answer", m)
	}

	// The admin endpoint, SigV4-authenticated.
	status, code, body := signedPost(t, srv, "/_admin/reconnect-ice-server", map[string]string{"ChannelARN": arnA}, localkvs.DevSecretAccessKey)
	if status != 200 {
		t.Fatalf("admin endpoint: %d %s %s", status, code, body)
	}
	var out struct {
		ChannelARN  string
		Connections int
	}
	if err := json.Unmarshal(body, &out); err != nil || out.ChannelARN != arnA || out.Connections != 2 {
		t.Fatalf("admin answer %s, want the ARN and 2 connections", body)
	}
	if m := recv(t, viewerA); m.MessageType != wire.ReconnectICEServer {
		t.Fatalf("viewer A got %+v after the admin call", m)
	}
	if m := recv(t, masterA); m.MessageType != wire.ReconnectICEServer {
		t.Fatalf("master A got %+v after the admin call", m)
	}
	status, code, _ = signedPost(t, srv, "/_admin/reconnect-ice-server", map[string]string{"ChannelARN": arnA}, "wrong")
	if status != 403 || code != "AccessDeniedException" {
		t.Fatalf("wrong secret: %d %s", status, code)
	}
	status, code, _ = signedPost(t, srv, "/_admin/reconnect-ice-server", map[string]string{"ChannelARN": "arn:aws:kinesisvideo:us-west-2:000000000000:channel/none/1"}, localkvs.DevSecretAccessKey)
	if status != 404 || code != "ResourceNotFoundException" {
		t.Fatalf("unknown channel: %d %s", status, code)
	}
	status, code, _ = signedPost(t, srv, "/_admin/reconnect-ice-server", map[string]string{"ChannelARN": "nope"}, localkvs.DevSecretAccessKey)
	if status != 400 || code != "InvalidArgumentException" {
		t.Fatalf("bad ARN: %d %s", status, code)
	}

	// The method's errors.
	if err := srv.ReconnectICEServer(context.Background(), "nope"); !errors.Is(err, localkvs.ErrInvalidArgument) {
		t.Errorf("bad ARN: %v, want ErrInvalidArgument", err)
	}
	if err := srv.ReconnectICEServer(context.Background(), "arn:aws:kinesisvideo:us-west-2:000000000000:channel/none/1"); !errors.Is(err, localkvs.ErrNotFound) {
		t.Errorf("unknown channel: %v, want ErrNotFound", err)
	}
	srv.Close()
	if err := srv.ReconnectICEServer(context.Background(), arnA); !errors.Is(err, localkvs.ErrServerClosed) {
		t.Errorf("after Close: %v, want ErrServerClosed", err)
	}
}

func TestTURNDisabledAndStopped(t *testing.T) {
	off := start(t, localkvs.Config{TURN: localkvs.TURNConfig{Disabled: true}})
	if list := iceConfig(t, off, mustCreate(t, off, "no-turn"), ""); len(list) != 0 {
		t.Fatalf("TURN disabled: IceServerList %+v, want empty", list)
	}
	if off.TURNAddr() != nil || off.TURNURLs() != nil {
		t.Fatalf("TURN disabled: TURNAddr %v, TURNURLs %q", off.TURNAddr(), off.TURNURLs())
	}

	for _, stop := range []string{"Close", "Shutdown"} {
		srv := start(t, localkvs.Config{})
		udp := srv.TURNAddr().String()
		tcpURL := srv.TURNURLs()[1]
		tcp := strings.TrimSuffix(strings.TrimPrefix(tcpURL, "turn:"), "?transport=tcp")
		if stop == "Close" {
			srv.Close()
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			srv.Shutdown(ctx)
			cancel()
		}
		// The ports are free again: the TURN server closed its sockets.
		pc, err := net.ListenPacket("udp", udp)
		if err != nil {
			t.Fatalf("%s: UDP %s still in use: %v", stop, udp, err)
		}
		pc.Close()
		l, err := net.Listen("tcp", tcp)
		if err != nil {
			t.Fatalf("%s: TCP %s still in use: %v", stop, tcp, err)
		}
		l.Close()
		if srv.TURNAddr() != nil {
			t.Fatalf("%s: TURNAddr %v after stop", stop, srv.TURNAddr())
		}
	}
}

func TestTURNFixedAddr(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	srv, err := localkvs.Start(localkvs.Config{TURN: localkvs.TURNConfig{Addr: addr, DisableTCP: true}}, "127.0.0.1:0")
	if err != nil {
		t.Skipf("port %s taken again meanwhile: %v", addr, err)
	}
	defer srv.Close()
	if srv.TURNAddr().String() != addr {
		t.Fatalf("TURNAddr %s, want %s", srv.TURNAddr(), addr)
	}
	// A taken port fails Start with a clear error.
	_, err = localkvs.Start(localkvs.Config{TURN: localkvs.TURNConfig{Addr: addr, DisableTCP: true}}, "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "TURN") {
		t.Fatalf("second server on the same TURN port: %v, want a TURN listen error", err)
	}
}

func TestTURNConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		turn  localkvs.TURNConfig
		field string
	}{
		{localkvs.TURNConfig{TTL: -time.Second}, "TURN.TTL"},
		{localkvs.TURNConfig{TTL: 500 * time.Millisecond}, "TURN.TTL"},
		{localkvs.TURNConfig{Addr: "localhost:3478"}, "TURN.Addr"},
		{localkvs.TURNConfig{Addr: "127.0.0.1"}, "TURN.Addr"},
		{localkvs.TURNConfig{Addr: "127.0.0.1:99999"}, "TURN.Addr"},
		{localkvs.TURNConfig{RelayAddress: "0.0.0.0"}, "TURN.RelayAddress"},
		{localkvs.TURNConfig{RelayAddress: "relay.example"}, "TURN.RelayAddress"},
	} {
		_, err := localkvs.New(localkvs.Config{TURN: tc.turn})
		if !errors.Is(err, localkvs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: %v, want ErrInvalidConfig naming %s", tc.turn, err, tc.field)
		}
	}
	// Disabled ignores the other fields.
	if _, err := localkvs.New(localkvs.Config{TURN: localkvs.TURNConfig{Disabled: true, TTL: -1}}); err != nil {
		t.Errorf("disabled TURN with a bad TTL: %v", err)
	}
}

// TestTURNBandwidthCap: a UDP allocation relays at most TURN.Bandwidth
// (5 Mbps by default, as KVS); what a client sends beyond it is dropped.
// The cap is set to 800 kbit/s (100 KB/s, one second of burst) and the
// client sends 600 KB at once: the peer gets about the burst.
func TestTURNBandwidthCap(t *testing.T) {
	srv := start(t, localkvs.Config{TURN: localkvs.TURNConfig{Bandwidth: 800_000, AllowLoopbackPeers: true}})
	arn := mustCreate(t, srv, "turn-cap")
	s := iceConfig(t, srv, arn, "")[0]
	client, _ := turnClient(t, turnHostPort(t, s, "udp"), s.Username, s.Password)
	relay, err := client.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()

	received := make(chan int)
	go func() {
		total := 0
		buf := make([]byte, 2048)
		for {
			peer.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := peer.ReadFrom(buf)
			if err != nil {
				received <- total
				return
			}
			total += n
		}
	}()
	pkt := make([]byte, 1000)
	const sent = 600 * 1000
	for i := 0; i < sent/len(pkt); i++ {
		if _, err := relay.WriteTo(pkt, peer.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let the kernel buffers drain: drops must come from the cap
		}
	}
	var got int
	select {
	case got = <-received:
	case <-time.After(waitTimeout):
		t.Fatalf("the peer was still receiving after %s", waitTimeout)
	}
	if got == 0 || got > sent/2 {
		t.Fatalf("peer received %d of %d bytes through a 100 KB/s allocation; want about the 100 KB burst", got, sent)
	}
	t.Logf("peer received %d of %d bytes", got, sent)
}
