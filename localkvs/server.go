package localkvs

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// Server is the local KVS-compatible signaling service: the control plane,
// the HTTPS data plane and the WebSocket signaling hub on one port. Create it
// with [New] (then [Server.Serve]) or [Start]. A Server is an http.Handler,
// so it can also be mounted elsewhere. It is safe for concurrent use.
type Server struct {
	cfg      Config
	limits   Limits
	log      *slog.Logger
	verifier *sigv4.Verifier
	store    resourceStore // bbolt, or JetStream on a cluster: storeiface.go
	bolt     *store        // the local bbolt store (a cluster node's holds the media index only)
	cluster  *cluster      // this node's part in a cluster; nil on a single server: cluster.go
	remote   remoteRouter  // the same cluster, as the rooms see it; nil on a single server
	metrics  *metrics      // GET /metrics: metrics.go
	media    *mediaServer  // storage sessions and their fragments: mediaserver.go
	playback playbackState // HLS/DASH session tokens and fragment heads: playback.go
	tls      *tlsMaterial
	iot      *iotProvider // the emulated AWS IoT credentials provider; nil unless Config.IoT.Enabled

	origins  origins  // browser origins allowed (Config.AllowedOrigins and loopback)
	rooms    sync.Map // channel ARN -> *room
	handlers map[string]apiHandler

	httpTimeouts httpTimeouts // header, body and idle timeouts (httplimits.go)
	bodies       *byteBudget  // request body bytes buffered at once
	connLimit    *connLimiter // nil without Limits.MaxConnections
	pendingBytes atomic.Int64 // undelivered messages kept, all rooms (room.go)
	refusalLog   *logGate     // refused requests logged (logthrottle.go)
	dropLog      *logGate     // dropped frames logged, all connections

	alexaTimeout       time.Duration
	inlineWriteTimeout time.Duration
	clock              clock

	// iceServers returns the ICE servers for GetIceServerConfig: the
	// embedded TURN server, or none when it is off.
	iceServers func(ctx context.Context, req iceRequest) ([]iceServer, error)

	turnMu sync.Mutex // serializes starting and stopping the TURN server
	turn   atomic.Pointer[turnServer]

	mu       sync.Mutex
	httpSrv  *http.Server
	addr     net.Addr
	serving  bool
	closed   atomic.Bool
	graceful atomic.Bool    // closed by Shutdown (GO_AWAY), not Close
	conns    sync.WaitGroup // WebSocket connections
	closeErr error
	stopOnce sync.Once
}

// maxChannels is the channels-per-region limit of the real service.
func maxChannels(region string) int {
	if region == "us-east-1" || region == "us-west-2" {
		return 10000
	}
	return 5000
}

// New validates cfg, opens the channel store (DataDir/channels.db when
// DataDir is set) and, with cfg.TLS, makes or reloads the local CA and
// certificate. The server does not listen until [Server.Serve].
func New(cfg Config) (*Server, error) {
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if len(cfg.Credentials) == 0 {
		cfg.Credentials = map[string]string{DevAccessKeyID: DevSecretAccessKey}
	} else {
		cfg.Credentials = maps.Clone(cfg.Credentials)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		limits:  cfg.Limits.withDefaults(),
		log:     cfg.Logger,
		origins: newOrigins(cfg.AllowedOrigins),

		httpTimeouts: defaultHTTPTimeouts,
		bodies:       newByteBudget(bodyBudget),
		refusalLog:   newLogGate(refusalLogPerSecond, refusalLogBurst),
		dropLog:      newLogGate(dropLogPerSecond, dropLogBurst),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	creds := cfg.Credentials
	s.verifier = &sigv4.Verifier{
		Lookup: func(akid string) (string, bool) {
			if v, ok := creds[akid]; ok {
				return v, true
			}
			if s.iot != nil {
				return s.iot.secret(akid) // temporary credentials; checkSession checks token and expiry
			}
			return "", false
		},
		Region:  cfg.Region,
		Service: sigv4.DefaultService,
	}
	s.handlers = s.apiHandlers()
	s.alexaTimeout = defaultAlexaTimeout
	s.inlineWriteTimeout = defaultInlineWriteTimeout
	s.clock = wallClock{}
	s.iceServers = s.turnICEServers
	if cfg.TLS {
		m, err := loadOrCreateTLS(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		s.tls = m
	}
	if cfg.IoT.Enabled {
		p, err := s.newIoT()
		if err != nil {
			return nil, err
		}
		s.iot = p
	}
	s.metrics = newMetrics(s)
	if cfg.Cluster.enabled() {
		c, err := newCluster(s)
		if err != nil {
			return nil, err
		}
		s.cluster, s.remote = c, c
		s.iceServers = c.iceServers
	}
	st, err := s.openResourceStore()
	if err != nil {
		return nil, err
	}
	s.store = st
	err = s.openMedia(cfg.DataDir)
	for _, w := range s.bolt.warnings { // what the store skipped, loading
		s.log.Warn(w)
	}
	if err != nil {
		st.close()
		return nil, err
	}
	return s, nil
}

// Start creates a server with [New], listens on addr (e.g. "127.0.0.1:0")
// and serves in the background. Stop it with [Server.Shutdown] or [Server.Close].
func Start(cfg Config, addr string) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if err := s.start(addr); err != nil {
		return nil, err
	}
	return s, nil
}

// start listens on addr and serves in the background, as Start.
func (s *Server) start(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		s.store.close()
		return fmt.Errorf("localkvs: listen on %q: %w", addr, err)
	}
	if err := s.startTURN(l.Addr()); err != nil {
		l.Close()
		s.store.close()
		return err
	}
	if err := s.startIoT(l.Addr()); err != nil {
		s.closeTURN()
		l.Close()
		s.store.close()
		return err
	}
	ready := make(chan struct{})
	go func() {
		err := s.serve(l, ready)
		if err != nil && !errors.Is(err, ErrServerClosed) {
			s.log.Error("localkvs: serve stopped", "err", err)
		}
	}()
	<-ready
	return nil
}

// Serve starts the embedded TURN server (unless Config.TURN.Disabled) on the
// IP of l, accepts connections on l (wrapping it in TLS when Config.TLS is
// set) and blocks until the server is shut down, returning ErrServerClosed
// then, like http.Server.Serve. The endpoints the server hands out are
// derived from l.Addr(). Serve may be called once.
func (s *Server) Serve(l net.Listener) error {
	return s.serve(l, nil)
}

func (s *Server) serve(l net.Listener, ready chan struct{}) error {
	if err := s.startTURN(l.Addr()); err != nil {
		l.Close()
		if ready != nil {
			close(ready)
		}
		return err
	}
	if err := s.startIoT(l.Addr()); err != nil {
		l.Close()
		if ready != nil {
			close(ready)
		}
		return err
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		l.Close()
		if ready != nil {
			close(ready)
		}
		return ErrServerClosed
	}
	if s.serving {
		s.mu.Unlock()
		if ready != nil {
			close(ready)
		}
		return errors.New("localkvs: Serve called twice")
	}
	s.serving = true
	s.addr = l.Addr()
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.httpTimeouts.header,
		IdleTimeout:       s.httpTimeouts.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if n := s.limits.MaxConnections; n > 0 {
		s.connLimit = limitConns(l, n)
		l = s.connLimit
	}
	if s.tls != nil {
		l = tls.NewListener(l, &tls.Config{
			Certificates: []tls.Certificate{s.tls.leaf},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		})
	}
	srv := s.httpSrv
	s.mu.Unlock()
	if ready != nil {
		close(ready)
	}
	s.log.Info("localkvs: serving", "endpoint", s.URL(), "region", s.cfg.Region)
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return err
}

// Addr returns the listener's address, or nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// hostPort is the host:port clients should use: the listener's address, with
// an unspecified IP replaced by 127.0.0.1.
func (s *Server) hostPort() string {
	a := s.Addr()
	if a == nil {
		return ""
	}
	if ta, ok := a.(*net.TCPAddr); ok {
		ip := ta.IP
		if ip == nil || ip.IsUnspecified() {
			ip = net.IPv4(127, 0, 0, 1)
		}
		return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
	}
	return a.String()
}

// URL returns the control-plane and HTTPS data-plane base endpoint,
// "http://127.0.0.1:PORT" or "https://..." with TLS: what aws-sdk-go-v2's
// BaseEndpoint and AWS_ENDPOINT_URL take. "" before Serve.
func (s *Server) URL() string {
	hp := s.hostPort()
	if hp == "" {
		return ""
	}
	scheme, _ := s.schemes()
	return scheme + hp
}

// WSSEndpoint returns the signaling WebSocket endpoint, "ws://127.0.0.1:PORT"
// or "wss://..." with TLS, as GetSignalingChannelEndpoint returns it for WSS.
func (s *Server) WSSEndpoint() string {
	hp := s.hostPort()
	if hp == "" {
		return ""
	}
	_, scheme := s.schemes()
	return scheme + hp
}

// schemes are the URL schemes of the HTTP and the WebSocket endpoints:
// http:// and ws://, or https:// and wss:// with TLS.
func (s *Server) schemes() (httpScheme, wsScheme string) {
	if s.tls != nil {
		return "https://", "wss://"
	}
	return "http://", "ws://"
}

// Region returns the server's region.
func (s *Server) Region() string { return s.cfg.Region }

// CACertPEM returns the PEM of the local CA, or nil without TLS.
func (s *Server) CACertPEM() []byte {
	if s.tls == nil {
		return nil
	}
	return append([]byte(nil), s.tls.caPEM...)
}

// CertPool returns a pool holding the local CA, or nil without TLS. Use it
// as the RootCAs of clients' tls.Config.
func (s *Server) CertPool() *x509.CertPool {
	if s.tls == nil {
		return nil
	}
	p := x509.NewCertPool()
	p.AddCert(s.tls.ca)
	return p
}

// AWSConfig returns an aws.Config for aws-sdk-go-v2 clients of this server,
// as config.LoadDefaultConfig would load it with AWS_ENDPOINT_URL and the
// keys set: the server's Region; BaseEndpoint set to [Server.URL] (the
// control plane and the HTTPS data plane); static credentials of the
// development key pair or, when Config.Credentials is set, of its pair with
// the smallest access key id; and, with Config.TLS, an HTTPClient that
// trusts the server's CA. The credentials also presign signaling URLs
// (package sigv4). Call it once the server listens ([Start], or
// [Server.Serve] running); before, BaseEndpoint is nil.
func (s *Server) AWSConfig() aws.Config {
	akid := slices.Min(slices.Collect(maps.Keys(s.cfg.Credentials))) // New made it non-empty
	cfg := aws.Config{
		Region:      s.cfg.Region,
		Credentials: aws.NewCredentialsCache(sigv4.StaticCredentials(akid, s.cfg.Credentials[akid], "")),
	}
	if u := s.URL(); u != "" {
		cfg.BaseEndpoint = aws.String(u)
	}
	if pool := s.CertPool(); pool != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		cfg.HTTPClient = &http.Client{Transport: tr}
	}
	return cfg
}

// CreateChannel creates a SINGLE_MASTER signaling channel named name with
// the default MessageTtlSeconds, as CreateSignalingChannel does, and returns
// its ARN. Errors wrap ErrInvalidArgument, ErrResourceInUse or ErrLimitExceeded.
func (s *Server) CreateChannel(ctx context.Context, name string) (arn string, err error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if s.closed.Load() {
		return "", ErrServerClosed
	}
	c, err := s.createChannel(name, "", nil, nil)
	if err != nil {
		return "", err
	}
	return c.ARN, nil
}

// Shutdown stops the server gracefully: it stops accepting connections,
// sends GO_AWAY to every WebSocket connection and closes them, waits for
// in-flight HTTP requests and connection goroutines (until ctx is done, when
// the rest are cut), stops the TURN server (ending its allocations) and
// closes the channel store.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.graceful.Store(true)
		s.closed.Store(true)
		s.mu.Unlock()
		s.media.shutdown() // stores the fragments being recorded, ends GetMedia streams
		goAways := 0
		s.forEachConn(func(c *wsConn) {
			c.goAway()
			c.close(closeGoingAway, "server shutting down")
			goAways++
		})
		s.log.Debug("localkvs: shutting down", "go_away_sent", goAways)
		s.mu.Lock()
		srv := s.httpSrv
		s.mu.Unlock()
		var err error
		if srv != nil {
			err = srv.Shutdown(ctx)
		}
		done := make(chan struct{})
		go func() { s.conns.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.forEachConn(func(c *wsConn) { c.closeNow() })
			if err == nil {
				err = ctx.Err()
			}
		}
		s.closeTURN()
		s.stopIoT(ctx)
		if cerr := s.store.close(); err == nil {
			err = cerr
		}
		s.log.Debug("localkvs: stopped", "store", cmp.Or(s.cfg.DataDir, "(memory)"))
		s.closeErr = err
	})
	return s.closeErr
}

// Close stops the server at once: listeners and connections are closed
// without GO_AWAY, the TURN server is stopped and the channel store is closed.
func (s *Server) Close() error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		srv := s.httpSrv
		s.mu.Unlock()
		s.media.shutdown()
		var err error
		if srv != nil {
			err = srv.Close()
		}
		s.forEachConn(func(c *wsConn) {
			c.close(closeGoingAway, "server closed")
			c.closeNow()
		})
		s.conns.Wait()
		s.closeTURN()
		s.stopIoT(nil)
		if cerr := s.store.close(); err == nil {
			err = cerr
		}
		s.closeErr = err
	})
	return s.closeErr
}

// Connections returns the number of signaling WebSocket connections open.
func (s *Server) Connections() int {
	n := 0
	s.forEachConn(func(*wsConn) { n++ })
	return n
}

func (s *Server) forEachConn(fn func(c *wsConn)) {
	s.rooms.Range(func(_, v any) bool {
		for _, c := range v.(*room).connections() {
			fn(c)
		}
		return true
	})
}

// ServeHTTP serves the control plane (POST /createSignalingChannel, ...),
// the data plane (POST /v1/get-ice-server-config,
// /v1/send-alexa-offer-to-master) and the signaling WebSocket (GET with
// the presigned query, any path).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.closed.Load() {
		writeError(w, errShuttingDown)
		return
	}
	if r.Header.Get("Origin") != "" && s.cors(w, r) {
		return
	}
	if s.serveOps(w, r) { // /healthz, /readyz, /metrics; a cluster node not ready: health.go
		return
	}
	if r.Method == http.MethodGet {
		if s.servePlayback(w, r) { // /hls/v1/, /dash/v1/: playback.go
			return
		}
		s.serveWebSocket(w, r)
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, newAPIError(http.StatusMethodNotAllowed, codeInvalidArgument, ErrInvalidArgument,
			"method %s is not allowed; use POST for API calls and GET for the signaling WebSocket", r.Method))
		return
	}
	s.serveAPI(w, r)
}
