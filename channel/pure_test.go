package channel_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"

	"github.com/kvswebrtc/kvswebrtc/channel"
)

func TestSTUNURL(t *testing.T) {
	for _, c := range []struct {
		region          string
		fips, dualStack bool
		want            string
	}{
		{"us-west-2", false, false, "stun:stun.kinesisvideo.us-west-2.amazonaws.com:443"},
		{"eu-central-1", false, false, "stun:stun.kinesisvideo.eu-central-1.amazonaws.com:443"},
		{"cn-north-1", false, false, "stun:stun.kinesisvideo.cn-north-1.amazonaws.com.cn:443"},
		{"cn-northwest-1", false, true, "stun:stun.kinesisvideo.cn-northwest-1.api.amazonwebservices.com.cn:443"},
		{"us-west-1", false, true, "stun:stun.kinesisvideo.us-west-1.api.aws:443"},
		{"us-gov-east-1", true, false, "stuns:stun.kinesisvideo-fips.us-gov-east-1.amazonaws.com:443"},
		{"us-gov-east-1", true, true, "stuns:stun.kinesisvideo-fips.us-gov-east-1.api.aws:443"},
	} {
		if got := channel.STUNURL(c.region, c.fips, c.dualStack); got != c.want {
			t.Errorf("STUNURL(%q, fips=%v, dualStack=%v) = %q, want %q", c.region, c.fips, c.dualStack, got, c.want)
		}
	}
}

func TestParseNATTraversal(t *testing.T) {
	for _, m := range []channel.NATTraversal{channel.STUNAndTURN, channel.TURNOnly, channel.STUNOnly, channel.NATTraversalDisabled} {
		got, err := channel.ParseNATTraversal(m.String())
		if err != nil || got != m {
			t.Errorf("ParseNATTraversal(%q) = %v, %v", m.String(), got, err)
		}
	}
	if got, err := channel.ParseNATTraversal(""); err != nil || got != channel.STUNAndTURN {
		t.Errorf(`ParseNATTraversal("") = %v, %v`, got, err)
	}
	if _, err := channel.ParseNATTraversal("relay-ish"); !errors.Is(err, channel.ErrInvalidArgument) {
		t.Errorf("bad mode: %v", err)
	}
}

func TestAPIErrorUnwrap(t *testing.T) {
	for _, c := range []struct {
		e    channel.APIError
		want error
	}{
		{channel.APIError{StatusCode: 403, Code: "AccessDeniedException"}, channel.ErrAccessDenied},
		{channel.APIError{StatusCode: 401}, channel.ErrAccessDenied},
		{channel.APIError{StatusCode: 404, Code: "ResourceNotFoundException"}, channel.ErrChannelNotFound},
		{channel.APIError{StatusCode: 400, Code: "ClientLimitExceededException"}, channel.ErrThrottled},
		{channel.APIError{StatusCode: 429}, channel.ErrThrottled},
	} {
		e := c.e
		if !errors.Is(&e, c.want) || !errors.Is(&e, channel.ErrICEConfig) {
			t.Errorf("%v: want %v and ErrICEConfig", &e, c.want)
		}
	}
	e := &channel.APIError{Operation: "GetIceServerConfig", StatusCode: 400, Code: "InvalidArgumentException", Message: "bad"}
	if errors.Is(e, channel.ErrAccessDenied) || errors.Is(e, channel.ErrChannelNotFound) || errors.Is(e, channel.ErrThrottled) {
		t.Errorf("%v matches a kind it is not", e)
	}
	if got, want := e.Error(), "channel: GetIceServerConfig: HTTP 400 InvalidArgumentException: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestHTTPClientHelper(t *testing.T) {
	if c := channel.HTTPClient(aws.Config{}); c == nil || c.Transport == nil || c == http.DefaultClient {
		t.Errorf("nil HTTPClient: %+v", c)
	}
	own := &http.Client{}
	if c := channel.HTTPClient(aws.Config{HTTPClient: own}); c != own {
		t.Error("an *http.Client is not returned as is")
	}
	pool := x509.NewCertPool()
	b := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	})
	c := channel.HTTPClient(aws.Config{HTTPClient: b})
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil || tr.TLSClientConfig.RootCAs != pool {
		t.Errorf("BuildableClient transport not copied: %+v", c.Transport)
	}
	if tc := channel.TLSConfig(aws.Config{HTTPClient: b}); tc == nil || tc.RootCAs != pool {
		t.Errorf("TLSConfig = %+v", tc)
	}
	if tc := channel.TLSConfig(aws.Config{}); tc != nil {
		t.Errorf("TLSConfig of the defaults = %+v, want nil", tc)
	}
}

func TestHandBuiltResolved(t *testing.T) {
	res := &channel.Resolved{}
	if _, err := res.ICEConfiguration(t.Context(), channel.STUNAndTURN); !errors.Is(err, channel.ErrInvalidArgument) {
		t.Errorf("ICEConfiguration on a hand-built Resolved: %v", err)
	}
	if err := res.RefreshICEServers(t.Context()); !errors.Is(err, channel.ErrInvalidArgument) {
		t.Errorf("RefreshICEServers on a hand-built Resolved: %v", err)
	}
}
