package iotcreds

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Defaults of the Config fields.
const (
	// DefaultRefreshBefore is Config.RefreshBefore's default: how long
	// before they expire the cache renews credentials.
	DefaultRefreshBefore = 5 * time.Minute
	// DefaultTimeout is Config.Timeout's default, for one request.
	DefaultTimeout = 10 * time.Second
	// ThingNameHeader is the request header naming the thing.
	ThingNameHeader = "x-amzn-iot-thingname"
)

// retryAfterFailure is how soon a cache that kept valid credentials after
// a failed renewal tries again.
const retryAfterFailure = 10 * time.Second

// Errors. A refusal by the endpoint is a *ServiceError.
var (
	// ErrInvalidConfig: a Config field breaks a rule; the message names it.
	ErrInvalidConfig = errors.New("iotcreds: invalid config")
	// ErrBadResponse: the endpoint answered 200 with a body that is not
	// credentials.
	ErrBadResponse = errors.New("iotcreds: the credentials provider's response holds no credentials")
)

// ServiceError is a refusal by the credentials provider: its HTTP status
// and the message of its JSON body ({"message": "..."}).
type ServiceError struct {
	StatusCode int    // HTTP status, e.g. 403
	Message    string // the endpoint's message, e.g. "Access Denied"
	RoleAlias  string // the role alias asked for
	ThingName  string // the thing name sent, if any
}

// Error describes the refusal.
func (e *ServiceError) Error() string {
	who := "role alias " + e.RoleAlias
	if e.ThingName != "" {
		who += " for thing " + e.ThingName
	}
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.StatusCode)
	}
	return fmt.Sprintf("iotcreds: the AWS IoT credentials provider refused %s: %d %s", who, e.StatusCode, msg)
}

// Config configures a [Provider].
type Config struct {
	// Endpoint is the account's credentials provider endpoint: a host name
	// (what `aws iot describe-endpoint --endpoint-type
	// iot:CredentialProvider` prints), host:port, or an https:// URL with
	// no path. Required.
	Endpoint string
	// RoleAlias is the AWS IoT role alias whose role's credentials are
	// asked for. Required.
	RoleAlias string
	// ThingName, when set, is sent in the x-amzn-iot-thingname header: the
	// thing the certificate is attached to (needed when the role alias's
	// policy refers to the thing).
	ThingName string
	// Certificate is the device certificate and its private key. When it is
	// empty, CertFile and KeyFile are loaded instead.
	Certificate tls.Certificate
	// CertFile and KeyFile are the PEM files of the device certificate and
	// its private key, used when Certificate is empty.
	CertFile, KeyFile string
	// RootCAs verify the endpoint's certificate. Nil means CAFile, or the
	// system roots when CAFile is empty (AWS IoT's endpoints chain to
	// Amazon Root CA 1).
	RootCAs *x509.CertPool
	// CAFile is a PEM file of the CA certificates that verify the
	// endpoint, used when RootCAs is nil.
	CAFile string
	// RefreshBefore is how long before they expire the cache of [NewCache]
	// renews the credentials, at most half their lifetime; 0 means
	// DefaultRefreshBefore.
	RefreshBefore time.Duration
	// Timeout bounds one request; 0 means DefaultTimeout.
	Timeout time.Duration
}

var (
	roleAliasPattern = regexp.MustCompile(`^[\w=,@-]{1,128}$`)
	thingPattern     = regexp.MustCompile(`^[a-zA-Z0-9:_-]{1,128}$`)
)

// Provider retrieves credentials from the AWS IoT credentials provider. It
// implements aws.CredentialsProvider; every Retrieve is one request, so use
// it through [NewCache] (or aws.NewCredentialsCache). It is safe for
// concurrent use.
type Provider struct {
	url           string // .../role-aliases/<alias>/credentials
	roleAlias     string
	thingName     string
	refreshBefore time.Duration
	client        *http.Client

	mu      sync.Mutex
	expires time.Time // the real expiry of the credentials last retrieved
}

// New validates cfg, loads the files it names and returns a Provider.
func New(cfg Config) (*Provider, error) {
	u, err := endpointURL(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if !roleAliasPattern.MatchString(cfg.RoleAlias) {
		return nil, fmt.Errorf("%w: RoleAlias %q: want 1 to 128 of [a-zA-Z0-9_=,@-]", ErrInvalidConfig, cfg.RoleAlias)
	}
	if cfg.ThingName != "" && !thingPattern.MatchString(cfg.ThingName) {
		return nil, fmt.Errorf("%w: ThingName %q: want 1 to 128 of [a-zA-Z0-9:_-]", ErrInvalidConfig, cfg.ThingName)
	}
	if cfg.RefreshBefore < 0 || cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: RefreshBefore and Timeout must not be negative", ErrInvalidConfig)
	}
	cert := cfg.Certificate
	if len(cert.Certificate) == 0 {
		if cfg.CertFile == "" || cfg.KeyFile == "" {
			return nil, fmt.Errorf("%w: a device certificate is required: Certificate, or CertFile and KeyFile", ErrInvalidConfig)
		}
		if cert, err = tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile); err != nil {
			// The error of crypto/tls names the files and the problem, never the key.
			return nil, fmt.Errorf("%w: CertFile %s and KeyFile %s: %v", ErrInvalidConfig, cfg.CertFile, cfg.KeyFile, err)
		}
	}
	roots := cfg.RootCAs
	if roots == nil && cfg.CAFile != "" {
		pemData, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: CAFile: %v", ErrInvalidConfig, err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemData) {
			return nil, fmt.Errorf("%w: CAFile %s holds no PEM certificate", ErrInvalidConfig, cfg.CAFile)
		}
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	refresh := cfg.RefreshBefore
	if refresh == 0 {
		refresh = DefaultRefreshBefore
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: timeout,
		TLSClientConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			RootCAs:      roots,
			MinVersion:   tls.VersionTLS12,
		},
		IdleConnTimeout: 90 * time.Second,
	}
	return &Provider{
		url:           u.JoinPath("role-aliases", cfg.RoleAlias, "credentials").String(),
		roleAlias:     cfg.RoleAlias,
		thingName:     cfg.ThingName,
		refreshBefore: refresh,
		client:        &http.Client{Transport: tr, Timeout: timeout},
	}, nil
}

// endpointURL turns Config.Endpoint into an https:// URL with no path.
func endpointURL(ep string) (*url.URL, error) {
	if ep == "" {
		return nil, fmt.Errorf("%w: Endpoint is required (aws iot describe-endpoint --endpoint-type iot:CredentialProvider prints it)", ErrInvalidConfig)
	}
	s := ep
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%w: Endpoint %q: want a host name, host:port or https://host[:port]", ErrInvalidConfig, ep)
	}
	u.Path = ""
	return u, nil
}

// NewCache returns a Provider for cfg wrapped in an aws.CredentialsCache
// that renews the credentials Config.RefreshBefore before they expire (at
// most half their lifetime) with a little jitter, and keeps using valid
// credentials when a renewal fails (trying again 10 s later).
func NewCache(cfg Config) (*aws.CredentialsCache, error) {
	p, err := New(cfg)
	if err != nil {
		return nil, err
	}
	return aws.NewCredentialsCache(p, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = p.refreshBefore
		o.ExpiryWindowJitterFrac = 0.1
	}), nil
}

// response is the body of a successful answer.
type response struct {
	Credentials struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		SessionToken    string `json:"sessionToken"`
		Expiration      string `json:"expiration"`
	} `json:"credentials"`
}

// Retrieve asks the credentials provider for credentials, once. They can
// expire, at the time the endpoint gave. Source is "IoTCredentialsProvider".
func (p *Provider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("iotcreds: %w", err)
	}
	if p.thingName != "" {
		req.Header.Set(ThingNameHeader, p.thingName)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		// *url.Error names the method and URL (no secret in either) and the
		// cause: a refused client certificate, an unknown server CA, a timeout.
		return aws.Credentials{}, fmt.Errorf("iotcreds: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("iotcreds: reading the response of %s: %w", p.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		json.Unmarshal(body, &e)
		if len(e.Message) > 300 {
			e.Message = e.Message[:300] + "..."
		}
		return aws.Credentials{}, &ServiceError{StatusCode: resp.StatusCode, Message: e.Message, RoleAlias: p.roleAlias, ThingName: p.thingName}
	}
	var r response
	if err := json.Unmarshal(body, &r); err != nil {
		return aws.Credentials{}, fmt.Errorf("%w (not JSON)", ErrBadResponse)
	}
	c := r.Credentials
	var missing []string
	for _, f := range []struct{ name, v string }{{"accessKeyId", c.AccessKeyID}, {"secretAccessKey", c.SecretAccessKey},
		{"sessionToken", c.SessionToken}, {"expiration", c.Expiration}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return aws.Credentials{}, fmt.Errorf("%w (no %s)", ErrBadResponse, strings.Join(missing, ", "))
	}
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("%w (expiration %q is not RFC 3339)", ErrBadResponse, c.Expiration)
	}
	p.mu.Lock()
	p.expires = exp
	p.mu.Unlock()
	return aws.Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Source:          "IoTCredentialsProvider",
		CanExpire:       true,
		Expires:         exp,
	}, nil
}

// AdjustExpiresBy implements aws.AdjustExpiresByCredentialsCacheStrategy:
// the cache moves Expires earlier by its ExpiryWindow (by, negative), but
// by no more than half the time the credentials have left, so that short
// credentials are not renewed on every use.
func (p *Provider) AdjustExpiresBy(c aws.Credentials, by time.Duration) (aws.Credentials, error) {
	if !c.CanExpire {
		return c, nil
	}
	if left := time.Until(c.Expires); -by > left/2 {
		by = -left / 2
	}
	c.Expires = c.Expires.Add(by)
	return c, nil
}

// HandleFailToRefresh implements aws.HandleFailRefreshCredentialsCacheStrategy:
// when a renewal fails while the credentials in hand have not expired
// (their real expiry, not the early one of the cache), they are kept and
// the renewal is tried again in 10 s; otherwise the error is returned.
func (p *Provider) HandleFailToRefresh(ctx context.Context, prev aws.Credentials, err error) (aws.Credentials, error) {
	p.mu.Lock()
	exp := p.expires
	p.mu.Unlock()
	if prev.AccessKeyID == "" || !prev.CanExpire || !time.Now().Before(exp) {
		return aws.Credentials{}, err
	}
	prev.Expires = time.Now().Add(retryAfterFailure)
	if prev.Expires.After(exp) {
		prev.Expires = exp
	}
	return prev, nil
}
