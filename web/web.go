package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

//go:embed static
var staticFiles embed.FS

// Errors returned by [New] and reported by the API.
var (
	// ErrNoRegion: Config.AWS has no Region.
	ErrNoRegion = errors.New("web: Config.AWS.Region is required")
	// ErrNoCredentials: Config.AWS has no Credentials provider.
	ErrNoCredentials = errors.New("web: Config.AWS.Credentials is required")
	// ErrInvalidRequest: an API request has a missing or malformed field.
	ErrInvalidRequest = errors.New("web: invalid request")
)

// Config configures a [Server].
type Config struct {
	// AWS holds the credentials (any aws.CredentialsProvider: the standard
	// chain of config.LoadDefaultConfig, a static pair for the local
	// service), the Region, an optional BaseEndpoint for a KVS-compatible
	// service, and an optional HTTPClient (for a custom CA). The browser
	// never sees the credentials: the server signs URLs with them.
	AWS aws.Config
	// AllowInsecureEndpoint lets the server sign ws:// signaling endpoints,
	// which only a local service without TLS returns. Real KVS endpoints are
	// always wss://.
	AllowInsecureEndpoint bool
	// CreateIfMissing makes /api/connect create a channel that does not
	// exist yet. Off by default, as on the official test page, where
	// "Create Channel" is an explicit button.
	CreateIfMissing bool
	// AllowedHosts, when not empty, lists the host names (without port)
	// that requests may name in their Host header, e.g. "localhost",
	// "127.0.0.1", "::1" for a server on the loopback interface; other
	// requests get 403. This defends a local server against DNS rebinding.
	AllowedHosts []string
	// AllowRegionChange lets the page choose the region it works in (its
	// Region field); otherwise every request is signed for AWS.Region and
	// the field is shown read-only. Leave it off for a local service, which
	// has one region.
	AllowRegionChange bool
	// AllowEndpointOverride lets the page name the control-plane endpoint
	// (its "Endpoint override" field), which the server then calls with its
	// credentials. Off by default: with it, anyone who reaches the page can
	// have the server send signed requests to a host of their choosing.
	AllowEndpointOverride bool
	// Version is shown in the page's heading; "" means the module version
	// from the build info.
	Version string
	// Logger receives request logs; nil means silence. Signed URLs, keys,
	// session tokens and TURN passwords are never logged.
	Logger *slog.Logger
}

// Server is the test page and its backend. It is an http.Handler, to mount
// or to test with httptest, and it runs itself the net/http way: Serve or
// ListenAndServe until Shutdown.
//
//	GET  /               the page and its static assets (embedded)
//	GET  /api/info       {"region", "endpoint", "insecureWebSocket", "version",
//	                      "sdkVersion", "regionChangeable", "endpointOverride"}
//	POST /api/connect    {"channelName", "role", "clientId", "natTraversal"} ->
//	                     {"channelARN", "role", "clientId", "signedURL",
//	                      "iceServers", "iceTransportPolicy", "timings"}
//	POST /api/channels   {"channelName"} -> {"channelARN", "created"}
//	POST /api/streams, /api/streams/list, /api/storage/describe,
//	     /api/storage/update, /api/storage/channels, /api/storage/join
//	                     streams and WebRTC ingestion (storage.go)
//	POST /api/playback/session, /api/playback/clip
//	                     HLS and DASH session URLs, GetClip (playback.go)
//
// Every POST may carry the page's endpoint choice: "region" (when
// AllowRegionChange), "endpointType" ("legacy" or "dualStack"), "fips"
// and "endpoint" (when AllowEndpointOverride).
//
// Errors are {"error": "..."} with a 4xx or 5xx status. POST requests that
// carry an Origin header from another host are refused (403), so a web page
// elsewhere cannot use the server to sign URLs.
type Server struct {
	cfg      Config
	log      *slog.Logger
	presign  *sigv4.Presigner
	resolver *channel.Resolver
	vars     variants
	csp      string // the Content-Security-Policy of every answer
	mux      *http.ServeMux
	static   fs.FS
	hs       *http.Server // what Serve runs and Shutdown stops
}

// New validates cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.AWS.Region == "" {
		return nil, ErrNoRegion
	}
	if cfg.AWS.Credentials == nil {
		return nil, ErrNoCredentials
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("web: static files: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, static: sub, mux: http.NewServeMux()}
	def, err := s.variant(endpointChoice{})
	if err != nil {
		return nil, err
	}
	s.presign, s.resolver = def.presign, def.resolver
	s.csp = contentSecurityPolicy(cfg.AWS.BaseEndpoint)
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.mux.HandleFunc("GET /api/info", s.handleInfo)
	s.mux.HandleFunc("POST /api/connect", s.handleConnect)
	s.mux.HandleFunc("POST /api/channels", s.handleChannels)
	s.routeStorage()  // storage.go
	s.routePlayback() // playback.go
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("%w: no API %s %s", ErrInvalidRequest, r.Method, r.URL.Path))
	})
	fileServer := http.FileServerFS(sub)
	s.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%w: method %s not allowed on %s", ErrInvalidRequest, r.Method, r.URL.Path))
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	}))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", s.csp)
	if !s.hostAllowed(r.Host) {
		writeError(w, http.StatusForbidden, fmt.Errorf("%w: host %q is not in Config.AllowedHosts", ErrInvalidRequest, r.Host))
		return
	}
	if r.Method == http.MethodPost && !sameOrigin(r) {
		writeError(w, http.StatusForbidden, fmt.Errorf("%w: cross-origin request from %s refused", ErrInvalidRequest, r.Header.Get("Origin")))
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Serve accepts connections on l and serves the page and its API on them
// until Shutdown, like http.Server.Serve: it always returns a non-nil
// error, http.ErrServerClosed after Shutdown (at once when Shutdown came
// first). Serve closes l when it returns.
func (s *Server) Serve(l net.Listener) error { return s.hs.Serve(l) }

// ListenAndServe listens on the TCP address addr (e.g. "127.0.0.1:3001")
// and calls [Server.Serve].
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("web: listen %s: %w", addr, err)
	}
	return s.Serve(l)
}

// Shutdown stops the server gracefully, like http.Server.Shutdown: it
// closes the listeners, then waits for the requests in flight to finish
// until ctx is done (returning ctx's error then). Serve returns
// http.ErrServerClosed.
func (s *Server) Shutdown(ctx context.Context) error { return s.hs.Shutdown(ctx) }

// contentSecurityPolicy is the page's policy: its own files only, the
// signaling WebSocket anywhere, and the recordings' session URLs (fetched
// by the player and played by the video element) on KVS (https:), on this
// machine's local service, or on the configured endpoint's host.
func contentSecurityPolicy(endpoint *string) string {
	hosts := "https: http://127.0.0.1:* http://localhost:*"
	if endpoint != nil {
		if u, err := url.Parse(*endpoint); err == nil && u.Scheme == "http" && u.Host != "" {
			hosts += " http://" + u.Host
		}
	}
	return "default-src 'self'; connect-src 'self' ws: wss: " + hosts + "; " +
		"img-src 'self' data: blob:; media-src 'self' blob: mediastream: " + hosts + "; frame-ancestors 'none'"
}

// hostAllowed checks a Host header against Config.AllowedHosts.
func (s *Server) hostAllowed(hostport string) bool {
	if len(s.cfg.AllowedHosts) == 0 {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	for _, a := range s.cfg.AllowedHosts {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// sameOrigin reports whether a request has no Origin header or one naming
// the Host it was sent to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// ---- API ----------------------------------------------------------------

// connectRequest is the body of POST /api/connect.
type connectRequest struct {
	ChannelName  string `json:"channelName"`
	Role         string `json:"role"`
	ClientID     string `json:"clientId"`
	NATTraversal string `json:"natTraversal"`
	// Reason is why the page connects: "open" (default), or "goAway",
	// "closed", "reconnectIceServer" on a reconnect.
	Reason string `json:"reason"`
	endpointChoice
}

// iceServerJSON is one RTCIceServer as the browser takes it.
type iceServerJSON struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// connectResponse is the answer of POST /api/connect.
type connectResponse struct {
	ChannelARN         string           `json:"channelARN"`
	Role               string           `json:"role"`
	ClientID           string           `json:"clientId,omitempty"`
	SignedURL          string           `json:"signedURL"`
	ICEServers         []iceServerJSON  `json:"iceServers"`
	ICETransportPolicy string           `json:"iceTransportPolicy"`
	Timings            map[string]int64 `json:"timings"`
}

// channelRequest is the body of POST /api/channels.
type channelRequest struct {
	ChannelName string `json:"channelName"`
	endpointChoice
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	endpoint := "AWS"
	if s.cfg.AWS.BaseEndpoint != nil {
		endpoint = *s.cfg.AWS.BaseEndpoint
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"region":            s.cfg.AWS.Region,
		"endpoint":          endpoint,
		"insecureWebSocket": s.cfg.AllowInsecureEndpoint,
		"version":           s.version(),
		"sdkVersion":        SDKVersion,
		"regionChangeable":  s.cfg.AllowRegionChange,
		"endpointOverride":  s.cfg.AllowEndpointOverride,
	})
}

// natModes maps the page's NAT traversal names to the channel package's.
var natModes = map[string]channel.NATTraversal{
	"":         channel.STUNAndTURN,
	"stunTurn": channel.STUNAndTURN,
	"turnOnly": channel.TURNOnly,
	"stunOnly": channel.STUNOnly,
	"disabled": channel.NATTraversalDisabled,
}

func parseNAT(s string) (channel.NATTraversal, error) {
	if m, ok := natModes[s]; ok {
		return m, nil
	}
	m, err := channel.ParseNATTraversal(s)
	if err != nil {
		return 0, fmt.Errorf("%w: natTraversal %q: want stunTurn, turnOnly, stunOnly or disabled", ErrInvalidRequest, s)
	}
	return m, nil
}

func validID(field, v string) error {
	if v == "" {
		return fmt.Errorf("%w: %s is required", ErrInvalidRequest, field)
	}
	if !wire.ValidName(v) {
		return fmt.Errorf("%w: %s %q: want %s", ErrInvalidRequest, field, v, wire.NameRule)
	}
	return nil
}

func (req *connectRequest) validate() (channel.Role, channel.NATTraversal, error) {
	switch req.Reason {
	case "", "open", "goAway", "closed", "reconnectIceServer":
	default:
		return "", 0, fmt.Errorf("%w: reason %q: want open, goAway, closed or reconnectIceServer", ErrInvalidRequest, req.Reason)
	}
	if err := validID("channelName", req.ChannelName); err != nil {
		return "", 0, err
	}
	var role channel.Role
	switch strings.ToLower(req.Role) {
	case "master":
		role = channel.RoleMaster
		if req.ClientID != "" {
			return "", 0, fmt.Errorf("%w: clientId must be empty for the master (KVS gives the master none)", ErrInvalidRequest)
		}
	case "viewer":
		role = channel.RoleViewer
		if err := validID("clientId", req.ClientID); err != nil {
			return "", 0, err
		}
		if strings.HasPrefix(req.ClientID, "AWS_") {
			return "", 0, fmt.Errorf("%w: clientId must not start with AWS_", ErrInvalidRequest)
		}
	default:
		return "", 0, fmt.Errorf("%w: role %q: want master or viewer", ErrInvalidRequest, req.Role)
	}
	nat, err := parseNAT(req.NATTraversal)
	return role, nat, err
}

func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request) {
	var (
		req  connectRequest
		role channel.Role
		nat  channel.NATTraversal
	)
	v, ok := s.readRequest(w, r, &req, func() (err error) {
		role, nat, err = req.validate()
		return err
	}, nil)
	if !ok {
		return
	}
	start := time.Now()
	res, err := s.resolve(r.Context(), v, req.ChannelName, role, req.ClientID, nat, req.Reason)
	if err != nil {
		s.log.Warn("web: connect failed", "channel", req.ChannelName, "role", req.Role, "err", err)
		writeError(w, statusOf(err), err)
		return
	}
	resolved := time.Now()
	query := map[string]string{sigv4.ParamChannelARN: res.arn}
	if role == channel.RoleViewer {
		query[sigv4.ParamClientID] = req.ClientID
	}
	signed, err := v.presign.PresignURL(r.Context(), res.wss, query, time.Now().Add(res.offset))
	if err != nil {
		s.log.Warn("web: presign failed", "channel", req.ChannelName, "err", err)
		writeError(w, http.StatusInternalServerError, fmt.Errorf("web: sign the signaling URL: %w", err))
		return
	}
	timings := map[string]int64{}
	for k, v := range res.timings {
		timings[k] = v.Milliseconds()
	}
	timings["resolveMs"] = resolved.Sub(start).Milliseconds()
	timings["signMs"] = time.Since(resolved).Milliseconds()
	out := connectResponse{
		ChannelARN:         res.arn,
		Role:               strings.ToLower(req.Role),
		ClientID:           req.ClientID,
		SignedURL:          signed,
		ICEServers:         toBrowserICE(res.ice.ICEServers),
		ICETransportPolicy: res.ice.ICETransportPolicy.String(),
		Timings:            timings,
	}
	s.log.Info("web: connect", "channel", req.ChannelName, "role", out.Role, "clientId", req.ClientID,
		"nat", nat.String(), "cached", res.cached, "iceServers", len(out.ICEServers), "ms", time.Since(start).Milliseconds())
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleChannels(w http.ResponseWriter, r *http.Request) {
	var req channelRequest
	v, ok := s.readRequest(w, r, &req, func() error { return validID("channelName", req.ChannelName) }, nil)
	if !ok {
		return
	}
	arn, created, err := s.createChannel(r.Context(), v, req.ChannelName)
	if err != nil {
		s.log.Warn("web: create channel failed", "channel", req.ChannelName, "err", err)
		writeError(w, statusOf(err), err)
		return
	}
	s.log.Info("web: channel", "channel", req.ChannelName, "created", created)
	writeJSON(w, http.StatusOK, map[string]any{"channelARN": arn, "created": created})
}

// toBrowserICE converts pion ICE servers to RTCIceServer JSON.
func toBrowserICE(in []webrtc.ICEServer) []iceServerJSON {
	out := make([]iceServerJSON, 0, len(in))
	for _, s := range in {
		j := iceServerJSON{URLs: append([]string(nil), s.URLs...), Username: s.Username}
		if c, ok := s.Credential.(string); ok {
			j.Credential = c
		}
		out = append(out, j)
	}
	return out
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrInvalidRequest), errors.Is(err, channel.ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, channel.ErrChannelNotFound):
		return http.StatusNotFound
	case errors.Is(err, channel.ErrAccessDenied):
		return http.StatusForbidden
	case errors.Is(err, channel.ErrThrottled):
		return http.StatusTooManyRequests
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

const maxRequestBody = 64 << 10

func readJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return fmt.Errorf("%w: read body: %v", ErrInvalidRequest, err)
	}
	if len(body) > maxRequestBody {
		return fmt.Errorf("%w: body is larger than %d bytes", ErrInvalidRequest, maxRequestBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: body is not the expected JSON: %v", ErrInvalidRequest, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
