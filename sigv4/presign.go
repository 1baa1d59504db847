package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

const (
	// Algorithm is the only signing algorithm KVS signaling accepts.
	Algorithm = "AWS4-HMAC-SHA256"
	// DefaultService is the service name used in the credential scope.
	DefaultService = "kinesisvideo"
	// Expires is the lifetime, in seconds, of a presigned URL (X-Amz-Expires),
	// the value the official SDKs use.
	Expires = 299

	// Query parameter names added by presigning.
	ParamAlgorithm     = "X-Amz-Algorithm"
	ParamCredential    = "X-Amz-Credential"
	ParamDate          = "X-Amz-Date"
	ParamExpires       = "X-Amz-Expires"
	ParamSignedHeaders = "X-Amz-SignedHeaders"
	ParamSecurityToken = "X-Amz-Security-Token"
	ParamSignature     = "X-Amz-Signature"

	// Query parameter names KVS signaling reads.
	ParamChannelARN = "X-Amz-ChannelARN"
	ParamClientID   = "X-Amz-ClientId"

	timeFormat = "20060102T150405Z"
	dateFormat = "20060102"
	scopeTerm  = "aws4_request"
	// emptySHA256 is the hex SHA-256 of an empty payload.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// Errors returned by [New] and [Presigner.PresignURL].
var (
	// ErrNoRegion: the presigner was built without a region.
	ErrNoRegion = errors.New("sigv4: region is required")
	// ErrNoCredentials: the presigner was built without a credentials provider.
	ErrNoCredentials = errors.New("sigv4: credentials provider is required")
	// ErrEndpointScheme: the endpoint does not start with wss:// (or ws:// when allowed).
	ErrEndpointScheme = errors.New("sigv4: endpoint is not a secure WebSocket endpoint")
	// ErrEndpointQuery: the endpoint carries a query string.
	ErrEndpointQuery = errors.New("sigv4: endpoint must not contain query parameters")
	// ErrEndpointHost: the endpoint has no host.
	ErrEndpointHost = errors.New("sigv4: endpoint has no host")
	// ErrEmptyAccessKey: the credentials provider returned no access key id or secret.
	ErrEmptyAccessKey = errors.New("sigv4: credentials have an empty access key id or secret access key")
)

// Option configures a [Presigner].
type Option func(*Presigner)

// WithService sets the service name in the credential scope (default
// "kinesisvideo").
func WithService(service string) Option { return func(p *Presigner) { p.service = service } }

// AllowInsecureWebSocket lets the presigner sign ws:// endpoints as well as
// wss:// ones. It exists for the local KVS-compatible service without TLS;
// real KVS endpoints are always wss://.
func AllowInsecureWebSocket() Option { return func(p *Presigner) { p.allowWS = true } }

// Presigner signs KVS signaling WebSocket URLs with SigV4 query
// authentication. It is safe for concurrent use.
type Presigner struct {
	region  string
	service string
	creds   aws.CredentialsProvider
	allowWS bool

	mu  sync.Mutex
	key derivedKey // last signing key, reused while date, secret and scope stay the same
}

type derivedKey struct {
	secret, date string
	key          []byte
}

// New returns a Presigner for region that takes its credentials from creds.
// The service defaults to "kinesisvideo"; see [WithService].
func New(region string, creds aws.CredentialsProvider, opts ...Option) (*Presigner, error) {
	if region == "" {
		return nil, ErrNoRegion
	}
	if creds == nil {
		return nil, ErrNoCredentials
	}
	p := &Presigner{region: region, service: DefaultService, creds: creds}
	for _, o := range opts {
		o(p)
	}
	if p.service == "" {
		return nil, errors.New("sigv4: service must not be empty")
	}
	return p, nil
}

// Region returns the region the presigner signs for.
func (p *Presigner) Region() string { return p.region }

// Service returns the service name in the credential scope.
func (p *Presigner) Service() string { return p.service }

// StaticCredentials returns a provider that always yields the given key pair
// and optional session token.
func StaticCredentials(accessKeyID, secretAccessKey, sessionToken string) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{
			AccessKeyID:     accessKeyID,
			SecretAccessKey: secretAccessKey,
			SessionToken:    sessionToken,
			Source:          "sigv4.StaticCredentials",
		}, nil
	})
}

// SplitEndpoint splits a ws:// or wss:// endpoint into scheme, host (port
// kept) and path ("/" when the endpoint has none), the way the official JS
// SDK does: the host is everything between "://" and the first "/".
func SplitEndpoint(endpoint string) (scheme, host, path string, err error) {
	switch {
	case strings.HasPrefix(endpoint, "wss://"):
		scheme = "wss"
	case strings.HasPrefix(endpoint, "ws://"):
		scheme = "ws"
	default:
		return "", "", "", fmt.Errorf("%w: %q should start with wss://", ErrEndpointScheme, endpoint)
	}
	if strings.Contains(endpoint, "?") {
		return "", "", "", fmt.Errorf("%w: %q", ErrEndpointQuery, endpoint)
	}
	rest := endpoint[len(scheme)+3:]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	} else {
		host, path = rest, "/"
	}
	if host == "" {
		return "", "", "", fmt.Errorf("%w: %q", ErrEndpointHost, endpoint)
	}
	return scheme, host, path, nil
}

// PresignURL returns endpoint signed for a GET at time t with the given query
// parameters (for KVS signaling: X-Amz-ChannelARN, and X-Amz-ClientId for a
// viewer). The result is byte for byte what the official JS SDK's
// SigV4RequestSigner.getSignedURL returns for the same input.
//
// The endpoint must start with wss:// (or ws:// with [AllowInsecureWebSocket])
// and must not carry a query. t is used as given; callers correcting for
// clock skew add their offset before calling.
func (p *Presigner) PresignURL(ctx context.Context, endpoint string, query map[string]string, t time.Time) (string, error) {
	scheme, host, path, err := SplitEndpoint(endpoint)
	if err != nil {
		return "", err
	}
	if scheme == "ws" && !p.allowWS {
		return "", fmt.Errorf("%w: %q should start with wss:// (ws:// needs sigv4.AllowInsecureWebSocket)", ErrEndpointScheme, endpoint)
	}
	creds, err := p.creds.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("sigv4: retrieving credentials: %w", err)
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return "", ErrEmptyAccessKey
	}
	t = t.UTC()
	date := t.Format(dateFormat)
	scope := date + "/" + p.region + "/" + p.service + "/" + scopeTerm

	params := make([]kv, 0, len(query)+7)
	for k, v := range query {
		params = append(params, kv{k, v})
	}
	params = setParam(params, ParamAlgorithm, Algorithm)
	params = setParam(params, ParamCredential, creds.AccessKeyID+"/"+scope)
	params = setParam(params, ParamDate, t.Format(timeFormat))
	params = setParam(params, ParamExpires, "299")
	params = setParam(params, ParamSignedHeaders, "host")
	if creds.SessionToken != "" {
		params = setParam(params, ParamSecurityToken, creds.SessionToken)
	}
	sortParams(params)

	var b strings.Builder
	b.Grow(512 + len(creds.SessionToken)*2)
	writeQuery(&b, params)
	canonicalQuery := b.String()

	sig := p.sign(creds.SecretAccessKey, date, stringToSign(t.Format(timeFormat), scope,
		canonicalRequest("GET", path, canonicalQuery, "host:"+host+"\n", "host", emptySHA256)))

	params = append(params, kv{ParamSignature, sig})
	sortParams(params)
	b.Reset()
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(host)
	b.WriteString(path)
	b.WriteByte('?')
	writeQuery(&b, params)
	return b.String(), nil
}

// sign derives (or reuses) the signing key and returns the hex HMAC of sts.
func (p *Presigner) sign(secret, date, sts string) string {
	p.mu.Lock()
	key := p.key
	p.mu.Unlock()
	if key.secret != secret || key.date != date {
		key = derivedKey{secret: secret, date: date, key: SigningKey(secret, date, p.region, p.service)}
		p.mu.Lock()
		p.key = key
		p.mu.Unlock()
	}
	return hex.EncodeToString(hmacSHA256(key.key, sts))
}

type kv struct{ k, v string }

func setParam(params []kv, k, v string) []kv {
	for i := range params {
		if params[i].k == k {
			params[i].v = v
			return params
		}
	}
	return append(params, kv{k, v})
}

func sortParams(params []kv) {
	sort.Slice(params, func(i, j int) bool { return params[i].k < params[j].k })
}

// writeQuery writes k=v pairs joined by '&', keys as given (the JS SDK does
// not encode keys) and values encoded as RFC 3986.
func writeQuery(b *strings.Builder, params []kv) {
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		Escape(b, p.v)
	}
}

// Escape appends s to b percent-encoded as RFC 3986: every byte but
// A-Z a-z 0-9 - _ . ~ becomes %XX with upper-case hex.
func Escape(b *strings.Builder, s string) {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func canonicalRequest(method, path, query, headers, signedHeaders, payloadHash string) string {
	return method + "\n" + path + "\n" + query + "\n" + headers + "\n" + signedHeaders + "\n" + payloadHash
}

func stringToSign(datetime, scope, canonicalRequest string) string {
	h := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + datetime + "\n" + scope + "\n" + hex.EncodeToString(h[:])
}

// SigningKey derives the SigV4 signing key: HMAC-SHA256 chained over
// "AWS4"+secret, date (yyyymmdd), region, service and "aws4_request".
func SigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, scopeTerm)
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
