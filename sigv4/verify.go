package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Errors returned by the [Verifier]. Each check has its own value; messages
// name what was wrong but never carry a secret, token or signature.
var (
	// ErrMissingAuth: the request carries no SigV4 signature at all.
	ErrMissingAuth = errors.New("sigv4: request is not signed")
	// ErrMalformedAuth: a signature parameter or the Authorization header is malformed.
	ErrMalformedAuth = errors.New("sigv4: malformed signature parameters")
	// ErrAlgorithm: the algorithm is not AWS4-HMAC-SHA256.
	ErrAlgorithm = errors.New("sigv4: unsupported signing algorithm")
	// ErrCredentialScope: the credential scope is malformed or names another
	// region, service or terminator than expected.
	ErrCredentialScope = errors.New("sigv4: invalid credential scope")
	// ErrUnknownAccessKey: no secret is known for the access key id.
	ErrUnknownAccessKey = errors.New("sigv4: unknown access key id")
	// ErrSignedHeaders: the signed headers do not include host (or, for a
	// presigned URL, are not exactly host).
	ErrSignedHeaders = errors.New("sigv4: invalid signed headers")
	// ErrDate: the signing date is missing, malformed, or disagrees with the scope.
	ErrDate = errors.New("sigv4: invalid signing date")
	// ErrClockSkew: the signing time is more than the allowed skew away from the server clock.
	ErrClockSkew = errors.New("sigv4: signature not yet current or too old (clock skew)")
	// ErrExpired: the presigned URL is past its X-Amz-Expires.
	ErrExpired = errors.New("sigv4: signature expired")
	// ErrSignatureMismatch: the signature does not match the request.
	ErrSignatureMismatch = errors.New("sigv4: signature does not match")
	// ErrPayloadHashMismatch: the body of a header-signed request does not
	// hash to the payload hash of its X-Amz-Content-Sha256 header (or that
	// header is UNSIGNED-PAYLOAD, a streaming marker or not a SHA-256 hex).
	ErrPayloadHashMismatch = errors.New("sigv4: request body does not match its payload hash")
)

// SecretLookup returns the secret access key for an access key id, and false
// when the key id is unknown.
type SecretLookup func(accessKeyID string) (secret string, ok bool)

// DefaultMaxSkew is how far a signing time may be from the server clock.
const DefaultMaxSkew = 5 * time.Minute

// Verifier checks SigV4 signatures on the service side. The zero value is not
// usable: Lookup is required. A Verifier is safe for concurrent use.
type Verifier struct {
	// Lookup finds the secret for an access key id. Required.
	Lookup SecretLookup
	// Region, when set, must match the credential scope's region.
	Region string
	// Service, when set, must match the credential scope's service.
	// Empty means "kinesisvideo".
	Service string
	// MaxSkew is the allowed distance between the signing time and Now;
	// zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// Now returns the server clock; nil means time.Now.
	Now func() time.Time
}

// Identity is what a verified signature says about its signer.
type Identity struct {
	// AccessKeyID is the key id of the credential scope.
	AccessKeyID string
	// SessionToken is the token the signer sent, if any. Do not log it.
	SessionToken string
	// Region is the region of the credential scope.
	Region string
	// Service is the service of the credential scope.
	Service string
	// SignedAt is the signing time (X-Amz-Date).
	SignedAt time.Time
}

type scope struct {
	akid, date, region, service string
}

func (v *Verifier) parseScope(credential string) (scope, error) {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[0] == "" {
		return scope{}, fmt.Errorf("%w: want <key>/<date>/<region>/<service>/aws4_request", ErrCredentialScope)
	}
	s := scope{parts[0], parts[1], parts[2], parts[3]}
	if parts[4] != scopeTerm {
		return scope{}, fmt.Errorf("%w: terminator %q is not aws4_request", ErrCredentialScope, parts[4])
	}
	if v.Region != "" && s.region != v.Region {
		return scope{}, fmt.Errorf("%w: region %q, want %q", ErrCredentialScope, s.region, v.Region)
	}
	want := v.Service
	if want == "" {
		want = DefaultService
	}
	if s.service != want {
		return scope{}, fmt.Errorf("%w: service %q, want %q", ErrCredentialScope, s.service, want)
	}
	return s, nil
}

func (v *Verifier) checkTime(sc scope, amzDate string) (time.Time, error) {
	return v.checkTimeWindow(sc, amzDate, false)
}

// checkTimeWindow parses amzDate, checks it against the scope's date and
// against the server clock: within MaxSkew either way, or, for a presigned
// URL (futureOnly), no more than MaxSkew ahead; how long ago a presigned
// URL may have been signed is its X-Amz-Expires, as on AWS.
func (v *Verifier) checkTimeWindow(sc scope, amzDate string, futureOnly bool) (time.Time, error) {
	t, err := time.Parse(timeFormat, amzDate)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q is not yyyymmddThhmmssZ", ErrDate, amzDate)
	}
	if t.Format(dateFormat) != sc.date {
		return time.Time{}, fmt.Errorf("%w: scope date %q does not match %q", ErrDate, sc.date, amzDate)
	}
	now := v.now()
	skew := v.MaxSkew
	if skew == 0 {
		skew = DefaultMaxSkew
	}
	if d := now.Sub(t); (d > skew && !futureOnly) || d < -skew {
		return time.Time{}, fmt.Errorf("%w: signed at %s, server time %s", ErrClockSkew,
			t.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return t, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) secret(akid string) (string, error) {
	if v.Lookup == nil {
		return "", fmt.Errorf("%w: verifier has no key lookup", ErrUnknownAccessKey)
	}
	s, ok := v.Lookup(akid)
	if !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownAccessKey, akid)
	}
	return s, nil
}

// signedBy is the last check of both verifications: it looks up the secret
// of sc's access key, compares sig with the signature of the canonical
// request cr (constant time) and returns the signer's identity.
func (v *Verifier) signedBy(sc scope, credential, amzDate, cr, sig, token string, signedAt time.Time) (Identity, error) {
	secret, err := v.secret(sc.akid)
	if err != nil {
		return Identity{}, err
	}
	want := hmacSHA256(signingKey(secret, sc.date, sc.region, sc.service), stringToSign(amzDate, credential[len(sc.akid)+1:], cr))
	if err := compareSignature(want, sig); err != nil {
		return Identity{}, err
	}
	return Identity{AccessKeyID: sc.akid, SessionToken: token, Region: sc.region, Service: sc.service, SignedAt: signedAt}, nil
}

func compareSignature(want []byte, got string) error {
	g, err := hex.DecodeString(got)
	if err != nil || len(g) != sha256.Size {
		return fmt.Errorf("%w: signature is not 64 hex digits", ErrMalformedAuth)
	}
	if !hmac.Equal(want, g) {
		return ErrSignatureMismatch
	}
	return nil
}

// VerifyPresignedRequest verifies a request made to a presigned URL, using
// the request's Host and path. See [Verifier.VerifyPresigned].
func (v *Verifier) VerifyPresignedRequest(r *http.Request) (Identity, error) {
	return v.VerifyPresigned(r.Host, r.URL.EscapedPath(), r.URL.Query())
}

// VerifyPresigned verifies a presigned GET (SigV4 query authentication) for
// the given host (port included), path and query. It checks, in order: the
// algorithm, the credential scope, the signed headers (exactly "host"), the
// date (no more than MaxSkew ahead of the server clock), the expiry
// (X-Amz-Expires after the date: a URL signed for an hour is good for an
// hour, as on AWS), the access key and the signature (constant-time
// compare).
func (v *Verifier) VerifyPresigned(host, path string, query url.Values) (Identity, error) {
	get := func(k string) (string, error) {
		vals := query[k]
		if len(vals) == 0 || vals[0] == "" {
			return "", fmt.Errorf("%w: %s is missing", ErrMalformedAuth, k)
		}
		if len(vals) > 1 {
			return "", fmt.Errorf("%w: %s is repeated", ErrMalformedAuth, k)
		}
		return vals[0], nil
	}
	if len(query[ParamSignature]) == 0 && len(query[ParamAlgorithm]) == 0 && len(query[ParamCredential]) == 0 {
		return Identity{}, ErrMissingAuth
	}
	alg, err := get(ParamAlgorithm)
	if err != nil {
		return Identity{}, err
	}
	if alg != Algorithm {
		return Identity{}, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	cred, err := get(ParamCredential)
	if err != nil {
		return Identity{}, err
	}
	sc, err := v.parseScope(cred)
	if err != nil {
		return Identity{}, err
	}
	sh, err := get(ParamSignedHeaders)
	if err != nil {
		return Identity{}, err
	}
	if sh != "host" {
		return Identity{}, fmt.Errorf("%w: %q, want \"host\"", ErrSignedHeaders, sh)
	}
	amzDate, err := get(ParamDate)
	if err != nil {
		return Identity{}, err
	}
	signedAt, err := v.checkTimeWindow(sc, amzDate, true)
	if err != nil {
		return Identity{}, err
	}
	expStr, err := get(ParamExpires)
	if err != nil {
		return Identity{}, err
	}
	exp, err := strconv.Atoi(expStr)
	if err != nil || exp <= 0 || exp > 604800 {
		return Identity{}, fmt.Errorf("%w: X-Amz-Expires %q is not a number of seconds in 1..604800", ErrMalformedAuth, expStr)
	}
	now := v.now()
	if now.After(signedAt.Add(time.Duration(exp) * time.Second)) {
		return Identity{}, fmt.Errorf("%w: signed at %s for %d s", ErrExpired, signedAt.Format(time.RFC3339), exp)
	}
	sig, err := get(ParamSignature)
	if err != nil {
		return Identity{}, err
	}

	var b strings.Builder
	canonicalQuery(&b, query, ParamSignature)
	cr := canonicalRequest("GET", path, b.String(), "host:"+host+"\n", "host", emptySHA256)
	return v.signedBy(sc, cred, amzDate, cr, sig, query.Get(ParamSecurityToken), signedAt)
}

// canonicalQuery writes the SigV4 canonical query of q, leaving out skip:
// keys and values RFC 3986 encoded, sorted by key then value.
func canonicalQuery(b *strings.Builder, q url.Values, skip string) {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range q {
		if k == skip {
			continue
		}
		var kb strings.Builder
		escape(&kb, k)
		for _, val := range vs {
			var vb strings.Builder
			escape(&vb, val)
			pairs = append(pairs, pair{kb.String(), vb.String()})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
}

// headerAuth is the parsed Authorization header of a request and its date.
type headerAuth struct {
	cred, signedHeaders, sig, amzDate string
	names                             []string
	scope                             scope
	signedAt                          time.Time
}

// PrecheckHeaders runs the checks of [Verifier.VerifyHeaders] that need no
// body: the Authorization header's shape (algorithm, credential scope,
// signed headers, a 64-hex-digit signature), a known access key and the
// X-Amz-Date within MaxSkew. A service calls it before it reads a request
// body, so that a request nobody could have signed costs it no memory; the
// signature itself is checked by VerifyHeaders, which the service must still
// call. Errors are those of VerifyHeaders.
func (v *Verifier) PrecheckHeaders(r *http.Request) error {
	a, err := v.parseAuthHeader(r)
	if err != nil {
		return err
	}
	if _, err := hex.DecodeString(a.sig); err != nil || len(a.sig) != 2*sha256.Size {
		return fmt.Errorf("%w: signature is not 64 hex digits", ErrMalformedAuth)
	}
	_, err = v.secret(a.scope.akid)
	return err
}

// parseAuthHeader parses and checks the Authorization and X-Amz-Date
// headers of r, in the order VerifyHeaders documents.
func (v *Verifier) parseAuthHeader(r *http.Request) (headerAuth, error) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return headerAuth{}, ErrMissingAuth
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != Algorithm {
		return headerAuth{}, fmt.Errorf("%w: %q", ErrAlgorithm, alg)
	}
	var a headerAuth
	for _, f := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return headerAuth{}, fmt.Errorf("%w: Authorization field %q has no '='", ErrMalformedAuth, k)
		}
		switch k {
		case "Credential":
			a.cred = val
		case "SignedHeaders":
			a.signedHeaders = val
		case "Signature":
			a.sig = val
		}
	}
	if a.cred == "" || a.signedHeaders == "" || a.sig == "" {
		return headerAuth{}, fmt.Errorf("%w: Authorization needs Credential, SignedHeaders and Signature", ErrMalformedAuth)
	}
	sc, err := v.parseScope(a.cred)
	if err != nil {
		return headerAuth{}, err
	}
	a.scope = sc
	a.names = strings.Split(a.signedHeaders, ";")
	hasHost := false
	for i, n := range a.names {
		if n == "host" {
			hasHost = true
		}
		if n != strings.ToLower(n) || (i > 0 && a.names[i-1] >= n) {
			return headerAuth{}, fmt.Errorf("%w: %q is not sorted lower-case names", ErrSignedHeaders, a.signedHeaders)
		}
	}
	if !hasHost {
		return headerAuth{}, fmt.Errorf("%w: %q does not include host", ErrSignedHeaders, a.signedHeaders)
	}
	a.amzDate = r.Header.Get("X-Amz-Date")
	if a.amzDate == "" {
		return headerAuth{}, fmt.Errorf("%w: X-Amz-Date header is missing", ErrDate)
	}
	if a.signedAt, err = v.checkTime(sc, a.amzDate); err != nil {
		return headerAuth{}, err
	}
	return a, nil
}

// VerifyHeaders verifies a request signed with an Authorization header
// (SigV4 header authentication, as aws-sdk-go-v2 signs control-plane and
// HTTPS data-plane calls). body is the request body already read, all of
// it: the payload hash in the canonical request is always the SHA-256 of
// body, so a signature covers the body it came with. When the request
// carries X-Amz-Content-Sha256 (signed or not), it must be that same hash
// (compared in constant time); UNSIGNED-PAYLOAD, streaming markers and
// malformed values are refused. A body that does not match its header is
// ErrPayloadHashMismatch; a body that does not match the signature is
// ErrSignatureMismatch.
func (v *Verifier) VerifyHeaders(r *http.Request, body []byte) (Identity, error) {
	a, err := v.parseAuthHeader(r)
	if err != nil {
		return Identity{}, err
	}
	cred, sh, sig, names, sc, amzDate, signedAt := a.cred, a.signedHeaders, a.sig, a.names, a.scope, a.amzDate, a.signedAt

	var hb strings.Builder
	for _, n := range names {
		hb.WriteString(n)
		hb.WriteByte(':')
		switch n {
		case "host":
			hb.WriteString(r.Host)
		case "content-length":
			if vs := r.Header.Values(n); len(vs) > 0 {
				hb.WriteString(strings.TrimSpace(vs[0]))
			} else {
				hb.WriteString(strconv.FormatInt(r.ContentLength, 10))
			}
		default:
			for i, val := range r.Header.Values(n) {
				if i > 0 {
					hb.WriteByte(',')
				}
				hb.WriteString(strings.Join(strings.Fields(val), " "))
			}
		}
		hb.WriteByte('\n')
	}
	payload, err := payloadHash(r.Header.Values("X-Amz-Content-Sha256"), body)
	if err != nil {
		return Identity{}, err
	}
	var qb strings.Builder
	canonicalQuery(&qb, r.URL.Query(), "")
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	cr := canonicalRequest(r.Method, path, qb.String(), hb.String(), sh, payload)
	return v.signedBy(sc, cred, amzDate, cr, sig, r.Header.Get("X-Amz-Security-Token"), signedAt)
}

// payloadHash returns the hex SHA-256 of body, the payload hash of the
// canonical request, after checking that the X-Amz-Content-Sha256 values
// hdr, when there are any, are exactly that hash. A header the signer did
// not sign would otherwise let a captured signature carry another body, and
// UNSIGNED-PAYLOAD would let it carry any.
func payloadHash(hdr []string, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	if len(hdr) == 0 {
		return hex.EncodeToString(sum[:]), nil
	}
	if len(hdr) > 1 {
		return "", fmt.Errorf("%w: X-Amz-Content-Sha256 is repeated", ErrPayloadHashMismatch)
	}
	v := strings.TrimSpace(hdr[0])
	got, err := hex.DecodeString(v)
	if err != nil || len(got) != sha256.Size || v != strings.ToLower(v) {
		// UNSIGNED-PAYLOAD, STREAMING-... or garbage: the verifier has the
		// whole body, so nothing but its hash is acceptable.
		return "", fmt.Errorf("%w: X-Amz-Content-Sha256 is not the lower-case hex SHA-256 of the body", ErrPayloadHashMismatch)
	}
	if subtle.ConstantTimeCompare(got, sum[:]) != 1 {
		return "", fmt.Errorf("%w: X-Amz-Content-Sha256 is not the SHA-256 of the %d-byte body", ErrPayloadHashMismatch, len(body))
	}
	return v, nil
}
