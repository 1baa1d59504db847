package channel

import (
	"context"
	"crypto/tls"
	"net/http"

	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// HTTPClient returns an *http.Client that sends requests the way awsCfg's
// HTTP client does, for the calls aws-sdk-go-v2 does not make: the HTTPS data
// plane (GetIceServerConfig) and the WebSocket dial of the signaling client
// (signaling.Config.HTTPClient).
//
// config.LoadDefaultConfig applies a custom CA bundle (the AWS_CA_BUNDLE
// environment variable, the ca_bundle profile setting or
// config.WithCustomCABundle) by giving awsCfg.HTTPClient an
// *awshttp.BuildableClient whose transport trusts that CA; HTTPClient copies
// that transport, so the same CA verifies the TLS certificates of the HTTPS and
// WSS endpoints. The cases:
//
//   - nil: a client with a clone of http.DefaultTransport.
//   - *awshttp.BuildableClient: a client with a copy of its transport (custom
//     CA, proxy, dialer options included).
//   - *http.Client: returned as is.
//   - any other aws.HTTPClient: a client whose transport calls its Do method.
//
// The returned client has no Timeout (a WebSocket dial refuses clients with
// one, and a Timeout would cut a WebSocket); bound calls with a context.
func HTTPClient(awsCfg aws.Config) *http.Client {
	switch c := awsCfg.HTTPClient.(type) {
	case nil:
		return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	case *awshttp.BuildableClient:
		return &http.Client{Transport: c.GetTransport()}
	case *http.Client:
		return c
	default:
		return &http.Client{Transport: doerTransport{c}}
	}
}

// TLSConfig returns a copy of the TLS client configuration of awsCfg's HTTP
// client (the custom CA bundle included), or nil when it uses the defaults
// (the system roots) or when its transport is not an *http.Transport.
func TLSConfig(awsCfg aws.Config) *tls.Config {
	var tr http.RoundTripper
	switch c := awsCfg.HTTPClient.(type) {
	case *awshttp.BuildableClient:
		tr = c.GetTransport()
	case *http.Client:
		tr = c.Transport
	}
	if t, ok := tr.(*http.Transport); ok && t.TLSClientConfig != nil {
		return t.TLSClientConfig.Clone()
	}
	return nil
}

// doerTransport is an http.RoundTripper over an aws.HTTPClient.
type doerTransport struct{ c aws.HTTPClient }

func (d doerTransport) RoundTrip(req *http.Request) (*http.Response, error) { return d.c.Do(req) }

// clockSkewMiddleware reads the Date header of every raw response the
// kinesisvideo client receives (each retry attempt included) so that the
// resolver learns the clock offset from control-plane calls too.
func (r *Resolver) clockSkewMiddleware(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("kvswebrtcClockSkew",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleDeserialize(ctx, in)
			if resp, ok := out.RawResponse.(*smithyhttp.Response); ok && resp != nil {
				r.observeDate(resp.Header)
			}
			return out, md, err
		}), middleware.After)
}
