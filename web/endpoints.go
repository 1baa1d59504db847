package web

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/archive"
	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// SDKVersion is the version of the official JavaScript SDK
// (amazon-kinesis-video-streams-webrtc) whose test page this page matches
// feature for feature; the heading shows it.
const SDKVersion = "2.9.0"

// endpointChoice is what a page request says about the endpoints: the
// "KVS endpoint" fields of the page.
type endpointChoice struct {
	Region       string `json:"region"`
	EndpointType string `json:"endpointType"` // "", "legacy" or "dualStack"
	FIPS         bool   `json:"fips"`
	Endpoint     string `json:"endpoint"` // control-plane endpoint override
}

var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d{1,2}$`)

// variant is the set of clients for one endpoint choice.
type variant struct {
	aws      aws.Config
	resolver *channel.Resolver
	presign  *sigv4.Presigner
	archive  *archive.Client
	fips     bool
	dual     bool

	kvOnce   sync.Once
	kvClient *kinesisvideo.Client
}

// variants caches a variant per endpoint choice; the zero choice is the
// server's own configuration.
type variants struct {
	mu sync.Mutex
	m  map[endpointChoice]*variant
}

// maxVariants bounds the cached endpoint variants.
const maxVariants = 16

// validate checks a choice against what the server allows and normalizes
// it: the server's region is "", "legacy" is "".
func (s *Server) validateChoice(c endpointChoice) (endpointChoice, error) {
	if c.Region == s.cfg.AWS.Region {
		c.Region = ""
	}
	if c.Region != "" {
		if !s.cfg.AllowRegionChange {
			return c, fmt.Errorf("%w: region %q: this backend signs for %s only (Config.AllowRegionChange, kvswebrtc web --allow-region-change)", ErrInvalidRequest, c.Region, s.cfg.AWS.Region)
		}
		if !regionRE.MatchString(c.Region) {
			return c, fmt.Errorf("%w: region %q is not a region name such as us-west-2", ErrInvalidRequest, c.Region)
		}
	}
	switch c.EndpointType {
	case "", "legacy":
		c.EndpointType = ""
	case "dualStack":
	default:
		return c, fmt.Errorf("%w: endpointType %q: want legacy or dualStack", ErrInvalidRequest, c.EndpointType)
	}
	if c.Endpoint != "" {
		if !s.cfg.AllowEndpointOverride {
			return c, fmt.Errorf("%w: endpoint: this backend does not take an endpoint override from the page (Config.AllowEndpointOverride, kvswebrtc web --allow-endpoint-override)", ErrInvalidRequest)
		}
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			return c, fmt.Errorf("%w: endpoint %q: want an http(s)://host[:port] URL", ErrInvalidRequest, c.Endpoint)
		}
		c.Endpoint = strings.TrimRight(c.Endpoint, "/")
	}
	return c, nil
}

// variant returns the clients for a validated choice, making them once.
func (s *Server) variant(c endpointChoice) (*variant, error) {
	s.vars.mu.Lock()
	defer s.vars.mu.Unlock()
	if v := s.vars.m[c]; v != nil {
		return v, nil
	}
	if len(s.vars.m) >= maxVariants {
		return nil, fmt.Errorf("%w: too many endpoint choices in use (at most %d)", ErrInvalidRequest, maxVariants)
	}
	cfg := s.cfg.AWS.Copy()
	if c.Region != "" {
		cfg.Region = c.Region
	}
	if c.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(c.Endpoint)
	}
	lo := config.LoadOptions{}
	if c.FIPS {
		lo.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
	}
	if c.EndpointType == "dualStack" {
		lo.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
	}
	if (c.FIPS || c.EndpointType == "dualStack") && cfg.BaseEndpoint == nil {
		// The SDK's clients take the first source that sets these. With a
		// custom endpoint (a local service, an override) the SDK refuses
		// them: there they choose the STUN server only (channel.STUNURL).
		cfg.ConfigSources = append([]any{lo}, cfg.ConfigSources...)
	}
	v := &variant{aws: cfg, fips: c.FIPS, dual: c.EndpointType == "dualStack"}
	var err error
	if v.resolver, err = channel.NewResolver(cfg, channel.ResolverOptions{Logger: s.cfg.Logger}); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	var opts []sigv4.Option
	if s.cfg.AllowInsecureEndpoint {
		opts = append(opts, sigv4.AllowInsecureEndpoint())
	}
	if v.presign, err = sigv4.New(cfg.Region, cfg.Credentials, opts...); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if v.archive, err = archive.New(cfg, archive.Options{}); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if s.vars.m == nil {
		s.vars.m = map[endpointChoice]*variant{}
	}
	s.vars.m[c] = v
	return v, nil
}

// clientsFor validates a choice and returns its clients.
func (s *Server) clientsFor(c endpointChoice) (*variant, error) {
	c, err := s.validateChoice(c)
	if err != nil {
		return nil, err
	}
	return s.variant(c)
}

// pageRequest is the JSON body of a page request: a struct that embeds
// endpointChoice.
type pageRequest interface{ choice() endpointChoice }

func (c endpointChoice) choice() endpointChoice { return c }

// readRequest reads a page request: its JSON body into req, then the check
// before (nil: none), its endpoint variant, then the check after (nil:
// none). It answers the first error itself, 400 Bad Request, and returns
// ok false.
func (s *Server) readRequest(w http.ResponseWriter, r *http.Request, req pageRequest, before, after func() error) (v *variant, ok bool) {
	steps := []func() error{
		func() error { return readJSON(r, req) },
		before,
		func() (err error) { v, err = s.clientsFor(req.choice()); return err },
		after,
	}
	for _, step := range steps {
		if step == nil {
			continue
		}
		if err := step(); err != nil {
			writeError(w, http.StatusBadRequest, err)
			return nil, false
		}
	}
	return v, true
}

// version is Config.Version, or the module version from the build info
// (with the VCS revision when the build stamped one).
func (s *Server) version() string {
	if s.cfg.Version != "" {
		return s.cfg.Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	v := ""
	if strings.HasPrefix(bi.Main.Path, "github.com/kvswebrtc/kvswebrtc") {
		v = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/kvswebrtc/kvswebrtc" {
			v = d.Version
		}
	}
	if v == "" {
		v = "(devel)"
	}
	for _, st := range bi.Settings {
		if st.Key == "vcs.revision" && len(st.Value) >= 7 && v == "(devel)" {
			v = "(devel " + st.Value[:7] + ")"
		}
	}
	return v
}
