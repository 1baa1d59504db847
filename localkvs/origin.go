package localkvs

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// origins decides which browser pages may use the service: the loopback
// origins always, the origins of Config.AllowedOrigins, or every origin
// with "*". A request without an Origin header is not from a browser page
// (browsers send Origin on every cross-origin request and on every
// WebSocket handshake) and is allowed: its signature is what authenticates
// it. See docs/security.md.
type origins struct {
	any   bool
	exact map[string]bool // normalized "scheme://host:port"
}

func newOrigins(list []string) origins {
	o := origins{exact: map[string]bool{}}
	for _, s := range list {
		if s == "*" {
			o.any = true
			continue
		}
		if n, err := normalizeOrigin(s); err == nil {
			o.exact[n] = true
		}
	}
	return o
}

// normalizeOrigin returns origin as "scheme://host:port", lower case, with
// the scheme's default port made explicit, or an error for anything that is
// not an http or https origin (a path, a query, user info, "null").
func normalizeOrigin(origin string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return "", err
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("want scheme://host[:port] and nothing else")
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// isLoopbackOrigin reports whether n (normalized) is an http or https origin
// on localhost, 127.0.0.0/8 or ::1, any port.
func isLoopbackOrigin(n string) bool {
	u, err := url.Parse(n)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// allowed reports whether the request's Origin may use the service. No
// Origin, a loopback origin, a listed one and the server's own origin (same
// scheme-less host as the request's Host) are allowed.
func (o origins) allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if o.any {
		return true
	}
	n, err := normalizeOrigin(origin)
	if err != nil {
		return false
	}
	if isLoopbackOrigin(n) || o.exact[n] {
		return true
	}
	u, _ := url.Parse(origin)
	return strings.EqualFold(u.Host, r.Host)
}

// cors answers the CORS part of a request with an Origin header: for an
// allowed origin it grants that origin (never "*") and, for a preflight
// (OPTIONS), answers 204 itself; a foreign origin gets no grant, and a 403
// for both the preflight and the request. It reports true when it wrote
// the response.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Add("Vary", "Origin")
	if !s.origins.allowed(r) {
		s.logRefusal(r, "localkvs: cross-origin request refused", "origin", r.Header.Get("Origin"), "path", r.URL.Path)
		refuse(w, newAPIError(http.StatusForbidden, codeAccessDenied, nil,
			"origin %q may not use this service; the operator allows it with --cors-origin (Config.AllowedOrigins)", r.Header.Get("Origin")))
		return true
	}
	h.Set("Access-Control-Allow-Origin", r.Header.Get("Origin"))
	h.Set("Access-Control-Expose-Headers", "Date, x-amzn-RequestId, x-amzn-ErrorType, x-amzn-ErrorMessage")
	if r.Method != http.MethodOptions {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// validateOrigins checks Config.AllowedOrigins.
func validateOrigins(list []string) error {
	for i, s := range list {
		if s == "*" {
			continue
		}
		if _, err := normalizeOrigin(s); err != nil {
			return fmt.Errorf("%w: AllowedOrigins[%d] %q is not an origin like https://app.example.com: %v", ErrInvalidConfig, i, s, err)
		}
	}
	return nil
}
