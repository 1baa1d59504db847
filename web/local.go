package web

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// LocalConfig configures [StartLocal].
type LocalConfig struct {
	// Addr is where the local service listens; "" means "127.0.0.1:0" (a
	// free port on the loopback interface).
	Addr string
	// Region of the local service; "" means "us-west-2".
	Region string
	// DataDir keeps the channels (and the TLS CA) across restarts; "" keeps
	// them in memory.
	DataDir string
	// TLS serves https/wss with a local CA. A browser does not trust that CA,
	// so the page can only reach a TLS local service from a browser told to
	// trust it; leave TLS off for the test page.
	TLS bool
	// Limits are the service limits; zero fields take the real service's values.
	Limits localkvs.Limits
	// Logger receives the local service's logs; nil means silence.
	Logger *slog.Logger
}

// Local is a running embedded KVS-compatible service (package localkvs) and
// the aws.Config that reaches it with the development key pair.
type Local struct {
	// KVS is the running service.
	KVS *localkvs.Server
	// AWS points at KVS: Region, BaseEndpoint (KVS.URL()), the development
	// credentials, and an HTTPClient that trusts the local CA with TLS.
	AWS aws.Config
}

// StartLocal starts an embedded local service (the `--local` mode of
// `kvswebrtc web`) and returns it with its aws.Config. Pass Local.Config()
// to [New] to serve the test page against it; stop it with Close.
func StartLocal(cfg LocalConfig) (*Local, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	kvs, err := localkvs.Start(localkvs.Config{
		Region:  cfg.Region,
		DataDir: cfg.DataDir,
		TLS:     cfg.TLS,
		Limits:  cfg.Limits,
		Logger:  cfg.Logger,
		// The local service's peers (the page's tabs, Go peers) are on
		// this machine: its TURN relays must reach loopback peers.
		TURN: localkvs.TURNConfig{AllowLoopbackPeers: true},
	}, addr)
	if err != nil {
		return nil, fmt.Errorf("web: start the local service: %w", err)
	}
	return &Local{KVS: kvs, AWS: kvs.AWSConfig()}, nil
}

// Config returns a [Config] for the test page against the local service:
// its aws.Config, ws:// endpoints allowed, and channels created on first
// connect so that `?view=viewer&channelName=demo` works at once.
func (l *Local) Config(logger *slog.Logger) Config {
	return Config{AWS: l.AWS, AllowInsecureEndpoint: true, CreateIfMissing: true, Logger: logger}
}

// Close shuts the local service down gracefully (GO_AWAY to every
// WebSocket), cutting what is left after 5 s.
func (l *Local) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return l.KVS.Shutdown(ctx)
}
