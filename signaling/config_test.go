package signaling_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/signaling"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

const testARN = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/my-channel/1700000000000"

func validViewer() signaling.Config {
	return signaling.Config{
		Role:            signaling.RoleViewer,
		ClientID:        "viewer-1",
		ChannelARN:      testARN,
		ChannelEndpoint: "wss://v-1234abcd.kinesisvideo.us-west-2.amazonaws.com",
		Region:          "us-west-2",
		Credentials:     sigv4.StaticCredentials("AKIDEXAMPLE", "secret", ""),
	}
}

func TestNewAcceptsValidConfigs(t *testing.T) {
	if _, err := signaling.New(validViewer()); err != nil {
		t.Fatalf("viewer: %v", err)
	}
	m := validViewer()
	m.Role, m.ClientID = signaling.RoleMaster, ""
	if _, err := signaling.New(m); err != nil {
		t.Fatalf("master: %v", err)
	}
	s := validViewer()
	s.Credentials = nil
	p, err := sigv4.New("us-west-2", sigv4.StaticCredentials("AKIDEXAMPLE", "secret", ""))
	must(t, err)
	s.RequestSigner = p
	if _, err := signaling.New(s); err != nil {
		t.Fatalf("with a RequestSigner: %v", err)
	}
	ws := validViewer()
	ws.ChannelEndpoint, ws.AllowInsecureEndpoint = "ws://127.0.0.1:8080", true
	if _, err := signaling.New(ws); err != nil {
		t.Fatalf("ws:// with AllowInsecureEndpoint: %v", err)
	}
	long := validViewer()
	long.ClientID = strings.Repeat("a", 256)
	if _, err := signaling.New(long); err != nil {
		t.Fatalf("256-character ClientID: %v", err)
	}
}

// TestNewValidation checks one rule per case: each bad config is refused
// with the error naming that rule.
func TestNewValidation(t *testing.T) {
	signer, err := sigv4.New("us-west-2", sigv4.StaticCredentials("AKIDEXAMPLE", "secret", ""))
	must(t, err)
	cases := []struct {
		name   string
		mod    func(*signaling.Config)
		want   error
		inText string // the message names the field
	}{
		{"empty role", func(c *signaling.Config) { c.Role = "" }, signaling.ErrInvalidRole, "Role"},
		{"unknown role", func(c *signaling.Config) { c.Role = "viewer" }, signaling.ErrInvalidRole, "Role"},
		{"no channel ARN", func(c *signaling.Config) { c.ChannelARN = "" }, signaling.ErrMissingChannelARN, "ChannelARN"},
		{"bad channel ARN", func(c *signaling.Config) { c.ChannelARN = "arn:aws:s3:::bucket" }, signaling.ErrInvalidChannelARN, "ChannelARN"},
		{"no endpoint", func(c *signaling.Config) { c.ChannelEndpoint = "" }, signaling.ErrMissingEndpoint, "ChannelEndpoint"},
		{"https endpoint", func(c *signaling.Config) { c.ChannelEndpoint = "https://example.com" }, signaling.ErrInvalidEndpoint, "ChannelEndpoint"},
		{"endpoint with query", func(c *signaling.Config) { c.ChannelEndpoint = "wss://example.com/?a=b" }, signaling.ErrInvalidEndpoint, "ChannelEndpoint"},
		{"endpoint without host", func(c *signaling.Config) { c.ChannelEndpoint = "wss:///path" }, signaling.ErrInvalidEndpoint, "ChannelEndpoint"},
		{"ws endpoint not allowed", func(c *signaling.Config) { c.ChannelEndpoint = "ws://127.0.0.1:1" }, signaling.ErrInsecureEndpoint, "AllowInsecureEndpoint"},
		{"no region", func(c *signaling.Config) { c.Region = "" }, signaling.ErrMissingRegion, "Region"},
		{"viewer without client id", func(c *signaling.Config) { c.ClientID = "" }, signaling.ErrMissingClientID, "ClientID"},
		{"master with client id", func(c *signaling.Config) { c.Role = signaling.RoleMaster }, signaling.ErrUnexpectedClientID, "ClientID"},
		{"client id with a space", func(c *signaling.Config) { c.ClientID = "viewer 1" }, signaling.ErrInvalidClientID, "ClientID"},
		{"client id too long", func(c *signaling.Config) { c.ClientID = strings.Repeat("a", 257) }, signaling.ErrInvalidClientID, "ClientID"},
		{"client id AWS_ prefix", func(c *signaling.Config) { c.ClientID = "AWS_viewer" }, signaling.ErrReservedClientID, "AWS_"},
		{"no credentials nor signer", func(c *signaling.Config) { c.Credentials = nil }, signaling.ErrMissingCredentials, "Credentials"},
		{"both credentials and signer", func(c *signaling.Config) { c.RequestSigner = signer }, signaling.ErrConflictingSigners, "RequestSigner"},
		{"negative ping interval", func(c *signaling.Config) { c.PingInterval = -time.Second }, signaling.ErrInvalidDuration, "PingInterval"},
		{"negative dial timeout", func(c *signaling.Config) { c.DialTimeout = -time.Second }, signaling.ErrInvalidDuration, "DialTimeout"},
		{"negative write timeout", func(c *signaling.Config) { c.WriteTimeout = -time.Second }, signaling.ErrInvalidDuration, "WriteTimeout"},
		{"negative base delay", func(c *signaling.Config) { c.ReconnectBaseDelay = -time.Second }, signaling.ErrInvalidDuration, "ReconnectBaseDelay"},
		{"negative max delay", func(c *signaling.Config) { c.ReconnectMaxDelay = -time.Second }, signaling.ErrInvalidDuration, "ReconnectMaxDelay"},
		{"base delay above max", func(c *signaling.Config) { c.ReconnectBaseDelay, c.ReconnectMaxDelay = time.Second, time.Millisecond }, signaling.ErrInvalidDuration, "ReconnectBaseDelay"},
		{"negative attempts", func(c *signaling.Config) { c.MaxReconnectAttempts = -1 }, signaling.ErrInvalidReconnectLimit, "MaxReconnectAttempts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validViewer()
			tc.mod(&cfg)
			c, err := signaling.New(cfg)
			if !errors.Is(err, tc.want) {
				t.Fatalf("New: got %v, want %v", err, tc.want)
			}
			if c != nil {
				t.Fatal("New returned a client with an error")
			}
			if !strings.Contains(err.Error(), tc.inText) {
				t.Errorf("error %q does not name %q", err, tc.inText)
			}
		})
	}
}

func TestSendBeforeOpen(t *testing.T) {
	c, err := signaling.New(validViewer())
	must(t, err)
	if got := c.State(); got != signaling.StateClosed {
		t.Fatalf("State = %v, want closed", got)
	}
	if err := c.SendSDPOffer(offer("v=0")); !errors.Is(err, signaling.ErrNotOpen) {
		t.Fatalf("SendSDPOffer before Open: %v, want ErrNotOpen", err)
	}
	if err := c.SendICECandidate(cand(1)); !errors.Is(err, signaling.ErrNotOpen) {
		t.Fatalf("SendICECandidate before Open: %v, want ErrNotOpen", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close of a never-opened client: %v", err)
	}
}

// TestOpenSigningFailure: the credentials provider's failure is reported as
// ErrSigning and the client stays closed.
func TestOpenSigningFailure(t *testing.T) {
	cfg := validViewer()
	cfg.Credentials = sigv4.StaticCredentials("", "", "")
	c, err := signaling.New(cfg)
	must(t, err)
	err = c.Open(context.Background())
	if !errors.Is(err, signaling.ErrSigning) {
		t.Fatalf("Open: %v, want ErrSigning", err)
	}
	if c.State() != signaling.StateClosed {
		t.Fatalf("State after a failed Open = %v", c.State())
	}
}
