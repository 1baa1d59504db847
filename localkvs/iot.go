package localkvs

// The emulated AWS IoT credentials provider: devices that hold an X.509
// certificate instead of AWS keys (as KVS cameras running the C SDK do)
// exchange it, over mutual TLS, for temporary credentials that the rest of
// the service then accepts, until they expire.
//
//	GET https://<endpoint>/role-aliases/<role-alias>/credentials
//	x-amzn-iot-thingname: <thing name>           (optional)
//
//	200 {"credentials":{"accessKeyId":"ASIA...","secretAccessKey":"...",
//	     "sessionToken":"...","expiration":"2026-01-02T15:04:05Z"}}

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// IoTConfig configures the emulated AWS IoT credentials provider. The zero
// value leaves it off.
type IoTConfig struct {
	// Enabled runs it, on a listener of its own that requires a client
	// certificate signed by the server's device CA (DataDir/iot-ca.pem; its
	// key DataDir/iot-ca-key.pem signs device certificates, as does
	// [Server.IssueIoTDeviceCertificate]). Its own certificate is signed by
	// the local CA of Config.TLS (DataDir/ca.pem), with or without TLS on
	// the service's endpoint.
	Enabled bool
	// Addr is the "ip:port" it listens on; "" means the IP of the service's
	// listener and a free port.
	Addr string
	// RoleAliases are the role aliases it knows; a request for another one
	// is refused (404). Empty means every role alias is known.
	RoleAliases []string
	// CredentialDuration is how long the credentials it hands out are
	// valid (a role alias's credentialDurationSeconds); 0 means
	// DefaultIoTCredentialDuration. Shorter than the real service's 15
	// minutes is allowed, for tests, down to 1 s.
	CredentialDuration time.Duration
}

// DefaultIoTCredentialDuration is the validity of the emulated IoT
// credentials: an hour, a role alias's default credentialDurationSeconds.
const DefaultIoTCredentialDuration = time.Hour

// Files of the IoT device CA in DataDir.
const (
	iotCAFile    = "iot-ca.pem"
	iotCAKeyFile = "iot-ca-key.pem"
)

// iotRoleAliasPattern is the rule of AWS IoT for role alias names.
var iotRoleAliasPattern = regexp.MustCompile(`^[\w=,@-]{1,128}$`)

// iotThingPattern is the rule of AWS IoT for thing names.
var iotThingPattern = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)

// iotProvider is the emulated credentials provider of a Server.
type iotProvider struct {
	s        *Server
	cfg      IoTConfig
	duration time.Duration
	caCert   *x509.Certificate // the device CA
	caKey    *ecdsa.PrivateKey
	caPEM    []byte
	server   *tlsMaterial // the endpoint's own certificate and the CA that signed it

	mu      sync.Mutex
	issued  map[string]issuedCredentials // access key id -> what was handed out
	count   int
	httpSrv *http.Server
	addr    net.Addr
}

// issuedCredentials are temporary credentials the provider handed out.
type issuedCredentials struct {
	secret, token    string
	thing, roleAlias string
	expires          time.Time
}

// validate checks the IoT fields and names the one that breaks a rule.
func (c *IoTConfig) validate() error {
	if !c.Enabled {
		return nil
	}
	if c.CredentialDuration < 0 || (c.CredentialDuration > 0 && c.CredentialDuration < time.Second) {
		return fmt.Errorf("%w: IoT.CredentialDuration %s must be 0 (one hour) or at least 1s", ErrInvalidConfig, c.CredentialDuration)
	}
	if c.CredentialDuration > 12*time.Hour {
		return fmt.Errorf("%w: IoT.CredentialDuration %s is longer than AWS IoT's 12 hours", ErrInvalidConfig, c.CredentialDuration)
	}
	for i, a := range c.RoleAliases {
		if !iotRoleAliasPattern.MatchString(a) {
			return fmt.Errorf("%w: IoT.RoleAliases[%d] %q: want 1 to 128 of [a-zA-Z0-9_=,@-]", ErrInvalidConfig, i, a)
		}
	}
	if c.Addr != "" {
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			return fmt.Errorf("%w: IoT.Addr %q is not ip:port: %v", ErrInvalidConfig, c.Addr, err)
		}
	}
	return nil
}

// newIoT makes the provider of s from s.cfg.IoT: validates it, reloads or
// makes the device CA (in DataDir when set) and the endpoint's certificate.
func (s *Server) newIoT() (*iotProvider, error) {
	cfg := s.cfg.IoT
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	p := &iotProvider{s: s, cfg: cfg, duration: cfg.CredentialDuration, issued: map[string]issuedCredentials{}}
	if p.duration == 0 {
		p.duration = DefaultIoTCredentialDuration
	}
	p.server = s.tls
	if p.server == nil {
		m, err := loadOrCreateTLS(s.cfg.DataDir)
		if err != nil {
			return nil, err
		}
		p.server = m
	}
	if err := p.loadOrCreateCA(s.cfg.DataDir); err != nil {
		return nil, fmt.Errorf("localkvs: the IoT device CA: %w", err)
	}
	return p, nil
}

// loadOrCreateCA reuses the device CA in dir when it is there and valid for
// at least certMinLife, and otherwise makes one (written to dir when set).
func (p *iotProvider) loadOrCreateCA(dir string) error {
	if dir != "" {
		certPEM, err1 := os.ReadFile(filepath.Join(dir, iotCAFile))
		keyPEM, err2 := os.ReadFile(filepath.Join(dir, iotCAKeyFile))
		if err1 == nil && err2 == nil {
			if kp, err := tls.X509KeyPair(certPEM, keyPEM); err == nil {
				c, err := x509.ParseCertificate(kp.Certificate[0])
				k, ok := kp.PrivateKey.(*ecdsa.PrivateKey)
				if err == nil && ok && c.IsCA && c.NotAfter.After(time.Now().Add(certMinLife)) {
					p.caCert, p.caKey, p.caPEM = c, k, certPEM
					return nil
				}
			}
		}
	}
	ca, key, err := newCA("kvswebrtc local IoT device CA", time.Now())
	if err != nil {
		return err
	}
	p.caCert, p.caKey = ca, key
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	if dir == "" {
		return nil
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, iotCAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, iotCAFile), p.caPEM, 0o644)
}

// start listens (once) on the configured address, or on the IP of the
// service's listener svc and a free port.
func (p *iotProvider) start(svc net.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.httpSrv != nil {
		return nil
	}
	addr := p.cfg.Addr
	if addr == "" {
		ip := "127.0.0.1"
		if ta, ok := svc.(*net.TCPAddr); ok && ta.IP != nil && !ta.IP.IsUnspecified() {
			ip = ta.IP.String()
		}
		addr = net.JoinHostPort(ip, "0")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("localkvs: IoT credentials provider: listen on %q: %w", addr, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	tl := tls.NewListener(l, &tls.Config{
		Certificates: []tls.Certificate{p.server.leaf},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"http/1.1"},
	})
	p.addr = l.Addr()
	p.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // failed handshakes (no or a foreign certificate) are the client's to report
	}
	go p.httpSrv.Serve(tl)
	p.s.log.Info("localkvs: IoT credentials provider serving", "endpoint", p.addr.String())
	return nil
}

// stop closes the listener (shutting down the requests in flight when ctx
// is not nil).
func (p *iotProvider) stop(ctx context.Context) {
	p.mu.Lock()
	srv := p.httpSrv
	p.mu.Unlock()
	if srv == nil {
		return
	}
	if ctx != nil {
		if srv.Shutdown(ctx) == nil {
			return
		}
	}
	srv.Close()
}

// iotError writes an error as AWS IoT does: the status and {"message": ...}.
func iotError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (p *iotProvider) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/role-aliases/")
	alias, ok2 := strings.CutSuffix(rest, "/credentials")
	if !ok || !ok2 || alias == "" || strings.Contains(alias, "/") {
		iotError(w, http.StatusNotFound, "no such resource: the credentials are at GET /role-aliases/<role-alias>/credentials")
		return
	}
	if r.Method != http.MethodGet {
		iotError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		iotError(w, http.StatusForbidden, "Access Denied: no client certificate")
		return
	}
	cert := r.TLS.PeerCertificates[0]
	if !iotRoleAliasPattern.MatchString(alias) {
		iotError(w, http.StatusBadRequest, fmt.Sprintf("invalid role alias %q", alias))
		return
	}
	if len(p.cfg.RoleAliases) > 0 && !slices.Contains(p.cfg.RoleAliases, alias) {
		iotError(w, http.StatusNotFound, fmt.Sprintf("Role alias %s does not exist", alias))
		return
	}
	thing := r.Header.Get("x-amzn-iot-thingname")
	if thing != "" {
		if !iotThingPattern.MatchString(thing) {
			iotError(w, http.StatusBadRequest, fmt.Sprintf("invalid thing name %q", thing))
			return
		}
		// localkvs attaches a device certificate to the thing its subject's
		// common name names (AWS IoT attaches them with AttachThingPrincipal).
		if cert.Subject.CommonName != thing {
			iotError(w, http.StatusForbidden, fmt.Sprintf("Access Denied: the certificate (CN=%s) is not attached to thing %s", cert.Subject.CommonName, thing))
			return
		}
	}
	c, akid, err := p.issue(thing, alias)
	if err != nil {
		p.s.log.Warn("localkvs: IoT credentials failed", "err", err)
		iotError(w, http.StatusInternalServerError, "internal failure")
		return
	}
	p.s.log.Info("localkvs: IoT credentials issued", "thing", thing, "role_alias", alias, "access_key_id", akid,
		"expires", c.expires.UTC().Format(time.RFC3339))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"credentials": map[string]string{
		"accessKeyId":     akid,
		"secretAccessKey": c.secret,
		"sessionToken":    c.token,
		"expiration":      c.expires.UTC().Format(time.RFC3339),
	}})
}

// issue makes and records temporary credentials for thing and alias, and
// forgets those that expired a while ago.
func (p *iotProvider) issue(thing, alias string) (issuedCredentials, string, error) {
	var b [16 + 30 + 160]byte
	if _, err := rand.Read(b[:]); err != nil {
		return issuedCredentials{}, "", err
	}
	akid := "ASIA" + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:10])[:16]
	now := p.s.clock.Now()
	c := issuedCredentials{
		secret:    base64.RawStdEncoding.EncodeToString(b[16:46])[:40],
		token:     "IQoJb3JpZ2luX2VjE" + base64.StdEncoding.EncodeToString(b[46:]),
		thing:     thing,
		roleAlias: alias,
		expires:   now.Add(p.duration).Truncate(time.Second),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, old := range p.issued {
		if now.Sub(old.expires) > time.Hour {
			delete(p.issued, k)
		}
	}
	p.issued[akid] = c
	p.count++
	return c, akid, nil
}

// secret returns the secret of temporary credentials the provider issued,
// expired or not (the signature is checked first, the expiry after).
func (p *iotProvider) secret(akid string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.issued[akid]
	return c.secret, ok
}

// errExpiredToken is the refusal of a request signed with expired
// temporary credentials, as AWS services answer it.
var errExpiredToken = &apiError{status: http.StatusForbidden, code: "ExpiredTokenException", msg: "The security token included in the request is expired"}

// checkSession refuses a verified request (what: the API path, or the
// signaling WebSocket) whose key id is temporary credentials of the IoT
// provider when its session token is not theirs or they have expired.
// Requests signed with configured key pairs pass.
func (s *Server) checkSession(id sigv4.Identity, what string) *apiError {
	if s.iot == nil {
		return nil
	}
	s.iot.mu.Lock()
	c, ok := s.iot.issued[id.AccessKeyID]
	s.iot.mu.Unlock()
	if !ok {
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(id.SessionToken), []byte(c.token)) != 1 {
		return &apiError{status: http.StatusForbidden, code: "UnrecognizedClientException", msg: "The security token included in the request is invalid"}
	}
	if !s.clock.Now().Before(c.expires) {
		return errExpiredToken
	}
	s.log.Debug("localkvs: IoT credentials accepted", "for", what, "access_key_id", id.AccessKeyID, "thing", c.thing,
		"expires", c.expires.UTC().Format(time.RFC3339))
	return nil
}

// IoTCredentialEndpoint returns the host:port of the emulated AWS IoT
// credentials provider, what `aws iot describe-endpoint --endpoint-type
// iot:CredentialProvider` names for an account (there without a port), or
// "" when Config.IoT is off or the server does not listen yet. Its
// certificate is signed by the CA of [Server.IoTCACertPEM].
func (s *Server) IoTCredentialEndpoint() string {
	if s.iot == nil {
		return ""
	}
	s.iot.mu.Lock()
	defer s.iot.mu.Unlock()
	if s.iot.addr == nil {
		return ""
	}
	ta, ok := s.iot.addr.(*net.TCPAddr)
	if !ok {
		return s.iot.addr.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

// IoTCACertPEM returns the PEM of the CA that signed the IoT credentials
// provider's certificate (the local CA, DataDir/ca.pem): what a device
// trusts for it, as real devices trust Amazon Root CA 1. Nil when
// Config.IoT is off.
func (s *Server) IoTCACertPEM() []byte {
	if s.iot == nil {
		return nil
	}
	return append([]byte(nil), s.iot.server.caPEM...)
}

// IoTDeviceCACertPEM returns the PEM of the device CA (DataDir/iot-ca.pem):
// the provider accepts client certificates it signed. Nil when Config.IoT
// is off.
func (s *Server) IoTDeviceCACertPEM() []byte {
	if s.iot == nil {
		return nil
	}
	return append([]byte(nil), s.iot.caPEM...)
}

// IssueIoTDeviceCertificate makes a device certificate for thing (its
// subject's common name, which attaches it to the thing) valid for
// validFor (0 means a year), signed by the device CA, with a new P-256
// key. It returns both PEM encoded. Errors wrap ErrInvalidArgument for a
// thing name AWS IoT refuses, and say so when Config.IoT is off.
func (s *Server) IssueIoTDeviceCertificate(thing string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if s.iot == nil {
		return nil, nil, errors.New("localkvs: IssueIoTDeviceCertificate: Config.IoT is not enabled")
	}
	if !iotThingPattern.MatchString(thing) {
		return nil, nil, fmt.Errorf("%w: thing name %q: want 1 to 128 of [a-zA-Z0-9:_-]", ErrInvalidArgument, thing)
	}
	if validFor <= 0 {
		validFor = 365 * 24 * time.Hour
	}
	now := time.Now()
	der, key, err := newCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: thing},
		NotAfter:    now.Add(validFor),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, now, s.iot.caCert, s.iot.caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// IoTCredentialsIssued returns how many times the IoT credentials
// provider handed out credentials.
func (s *Server) IoTCredentialsIssued() int {
	if s.iot == nil {
		return 0
	}
	s.iot.mu.Lock()
	defer s.iot.mu.Unlock()
	return s.iot.count
}

// startIoT starts the IoT credentials provider, when configured, beside
// the service listening on svc.
func (s *Server) startIoT(svc net.Addr) error {
	if s.iot == nil {
		return nil
	}
	return s.iot.start(svc)
}

// stopIoT stops the IoT credentials provider, gracefully unless ctx is nil.
func (s *Server) stopIoT(ctx context.Context) {
	if s.iot != nil {
		s.iot.stop(ctx)
	}
}
