package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
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

	// ParamAlgorithm is the query parameter naming the signing algorithm.
	ParamAlgorithm = "X-Amz-Algorithm"
	// ParamCredential is the query parameter holding <key id>/<scope>.
	ParamCredential = "X-Amz-Credential"
	// ParamDate is the query parameter holding the signing time (yyyymmddThhmmssZ).
	ParamDate = "X-Amz-Date"
	// ParamExpires is the query parameter holding the URL's lifetime in seconds.
	ParamExpires = "X-Amz-Expires"
	// ParamSignedHeaders is the query parameter listing the signed headers ("host").
	ParamSignedHeaders = "X-Amz-SignedHeaders"
	// ParamSecurityToken is the query parameter holding the session token, when there is one.
	ParamSecurityToken = "X-Amz-Security-Token"
	// ParamSignature is the query parameter holding the hex signature.
	ParamSignature = "X-Amz-Signature"

	// ParamChannelARN is the KVS signaling parameter naming the channel.
	ParamChannelARN = "X-Amz-ChannelARN"
	// ParamClientID is the KVS signaling parameter naming a viewer's client id.
	ParamClientID = "X-Amz-ClientId"

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

// AllowInsecureEndpoint lets the presigner sign ws:// endpoints as well as
// wss:// ones. It exists for the local KVS-compatible service without TLS;
// real KVS endpoints are always wss://.
func AllowInsecureEndpoint() Option { return func(p *Presigner) { p.allowInsecure = true } }

// Presigner signs KVS signaling WebSocket URLs with SigV4 query
// authentication. It is safe for concurrent use.
type Presigner struct {
	region        string
	service       string
	creds         aws.CredentialsProvider
	allowInsecure bool

	scopeSuffix string // "/<region>/<service>/aws4_request"

	mu  sync.Mutex
	key derivedKey // last signing key, reused while date and secret stay the same
}

type derivedKey struct {
	secret, date string
	mac          hash.Hash // HMAC keyed with the derived signing key
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
	p.scopeSuffix = "/" + p.region + "/" + p.service + "/" + scopeTerm
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
// The endpoint must start with wss:// (or ws:// with [AllowInsecureEndpoint])
// and must not carry a query. t is used as given; callers correcting for
// clock skew add their offset before calling. The query must not carry
// X-Amz-Signature; the other X-Amz-* signing parameters, if given, are
// replaced, as the JS SDK does.
func (p *Presigner) PresignURL(ctx context.Context, endpoint string, query map[string]string, t time.Time) (string, error) {
	scheme, host, path, err := SplitEndpoint(endpoint)
	if err != nil {
		return "", err
	}
	if scheme == "ws" && !p.allowInsecure {
		return "", fmt.Errorf("%w: %q should start with wss:// (ws:// needs sigv4.AllowInsecureEndpoint)", ErrEndpointScheme, endpoint)
	}
	if _, ok := query[ParamSignature]; ok {
		return "", fmt.Errorf("sigv4: query must not contain %s", ParamSignature)
	}
	creds, err := p.creds.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("sigv4: retrieving credentials: %w", err)
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return "", ErrEmptyAccessKey
	}
	var stamp [16]byte
	formatStamp(&stamp, t.UTC())
	datetime := stamp[:]
	date := stamp[:8]

	var pbuf [16]kv
	params := pbuf[:0]
	for k, v := range query {
		params = append(params, kv{k, v})
	}
	cred := make([]byte, 0, len(creds.AccessKeyID)+1+8+len(p.scopeSuffix))
	cred = append(append(append(append(cred, creds.AccessKeyID...), '/'), date...), p.scopeSuffix...)
	params = setParam(params, ParamAlgorithm, Algorithm)
	params = setParam(params, ParamCredential, string(cred))
	params = setParam(params, ParamDate, string(datetime))
	params = setParam(params, ParamExpires, "299")
	params = setParam(params, ParamSignedHeaders, "host")
	if creds.SessionToken != "" {
		params = setParam(params, ParamSecurityToken, creds.SessionToken)
	}
	slices.SortFunc(params, func(a, b kv) int { return strings.Compare(a.k, b.k) })

	// The canonical query; sigAt is where X-Amz-Signature goes in the final
	// URL's sorted query.
	size := len(scheme) + 3 + len(host) + len(path) + 1 + 16 + 64 + 1
	for _, kv := range params {
		size += len(kv.k) + 1 + 3*len(kv.v) + 1
	}
	buf := make([]byte, 0, size)
	buf = append(append(append(append(buf, scheme...), "://"...), host...), path...)
	buf = append(buf, '?')
	qStart := len(buf)
	sigAt := -1
	for i, kv := range params {
		if sigAt < 0 && kv.k > ParamSignature {
			sigAt = len(buf)
		}
		if i > 0 {
			buf = append(buf, '&')
		}
		buf = append(buf, kv.k...)
		buf = append(buf, '=')
		buf = appendEscaped(buf, kv.v)
	}
	canonicalQuery := buf[qStart:]

	h := sha256.New()
	h.Write([]byte("GET\n"))
	io.WriteString(h, path)
	h.Write([]byte{'\n'})
	h.Write(canonicalQuery)
	h.Write([]byte("\nhost:"))
	io.WriteString(h, host)
	h.Write([]byte("\n\nhost\n" + emptySHA256))
	var sum [sha256.Size]byte
	var crHex [2 * sha256.Size]byte
	hex.Encode(crHex[:], h.Sum(sum[:0]))

	sts := make([]byte, 0, 17+16+1+8+len(p.scopeSuffix)+1+64)
	sts = append(sts, Algorithm+"\n"...)
	sts = append(append(sts, datetime...), '\n')
	sts = append(append(append(sts, date...), p.scopeSuffix...), '\n')
	sts = append(sts, crHex[:]...)

	var sig [2 * sha256.Size]byte
	hex.Encode(sig[:], p.mac(creds.SecretAccessKey, string(date), sts, sum[:0]))

	// Insert X-Amz-Signature at its sorted place.
	if sigAt < 0 {
		buf = append(buf, "&"+ParamSignature+"="...)
		buf = append(buf, sig[:]...)
		return string(buf), nil
	}
	out := make([]byte, 0, len(buf)+len(ParamSignature)+2+len(sig))
	out = append(out, buf[:sigAt]...)
	if sigAt > qStart {
		// buf[sigAt:] starts with the '&' before the next parameter.
		out = append(out, '&')
		out = append(out, ParamSignature+"="...)
		out = append(out, sig[:]...)
	} else {
		out = append(out, ParamSignature+"="...)
		out = append(out, sig[:]...)
		out = append(out, '&')
	}
	out = append(out, buf[sigAt:]...)
	return string(out), nil
}

// formatStamp writes t as yyyymmddThhmmssZ.
func formatStamp(dst *[16]byte, t time.Time) {
	y, mo, d := t.Date()
	hh, mm, ss := t.Clock()
	put := func(i, v, n int) {
		for j := i + n - 1; j >= i; j-- {
			dst[j] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	put(4, int(mo), 2)
	put(6, d, 2)
	dst[8] = 'T'
	put(9, hh, 2)
	put(11, mm, 2)
	put(13, ss, 2)
	dst[15] = 'Z'
}

// mac returns HMAC(signing key, data) appended to dst, deriving the signing
// key only when the secret or the date changed since the last call.
func (p *Presigner) mac(secret, date string, data, dst []byte) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.key.mac == nil || p.key.secret != secret || p.key.date != date {
		p.key = derivedKey{secret: secret, date: date,
			mac: hmac.New(sha256.New, signingKey(secret, date, p.region, p.service))}
	}
	p.key.mac.Reset()
	p.key.mac.Write(data)
	return p.key.mac.Sum(dst)
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

// escape appends s to b percent-encoded as RFC 3986: every byte but
// A-Z a-z 0-9 - _ . ~ becomes %XX with upper-case hex.
func escape(b *strings.Builder, s string) {
	var tmp [256]byte
	b.Write(appendEscaped(tmp[:0], s))
}

// appendEscaped appends s to dst percent-encoded as RFC 3986 (see escape).
func appendEscaped(dst []byte, s string) []byte {
	const hexDigits = "0123456789ABCDEF"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreservedTable[c] {
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		start = i + 1
	}
	return append(dst, s[start:]...)
}

var unreservedTable = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = unreserved(byte(c))
	}
	return t
}()

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

// signingKey derives the SigV4 signing key: HMAC-SHA256 chained over
// "AWS4"+secret, date (yyyymmdd), region, service and "aws4_request".
func signingKey(secret, date, region, service string) []byte {
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
