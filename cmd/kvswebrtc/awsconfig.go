package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// awsFlags are the flags every command that talks to KVS shares.
type awsFlags struct {
	endpointURL string
	region      string
}

func (a *awsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.endpointURL, "endpoint-url", "", "KVS-compatible control-plane endpoint `URL`, e.g. http://127.0.0.1:4566 for kvswebrtc serve (default: AWS_ENDPOINT_URL, else real AWS)")
	fs.StringVar(&a.region, "region", "", "AWS region (default: AWS_REGION / profile, else us-west-2)")
}

// load builds the aws.Config from the standard chain (environment, profiles,
// SSO, IMDS), with --endpoint-url and --region applied. When the endpoint is
// a loopback address and the chain has no credentials, the local service's
// public development key pair is used, with a note on stderr.
func (a *awsFlags) load(ctx context.Context, stderr io.Writer) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	}
	if a.endpointURL != "" {
		u, err := url.Parse(a.endpointURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return aws.Config{}, fmt.Errorf("--endpoint-url %q is not an http:// or https:// URL", a.endpointURL)
		}
		opts = append(opts, config.WithBaseEndpoint(a.endpointURL))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = localkvs.DefaultRegion
	}
	endpoint := a.endpointURL
	if endpoint == "" && cfg.BaseEndpoint != nil {
		endpoint = *cfg.BaseEndpoint
	}
	if isLoopbackURL(endpoint) && !haveCredentials(ctx, cfg) {
		fmt.Fprintf(stderr, "note: no AWS credentials configured; using the local service's development key %s\n", localkvs.DevAccessKeyID)
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""))
	}
	return cfg, nil
}

func haveCredentials(ctx context.Context, cfg aws.Config) bool {
	if cfg.Credentials == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := cfg.Credentials.Retrieve(ctx)
	return err == nil && c.AccessKeyID != ""
}

func isLoopbackURL(s string) bool {
	if s == "" {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newLogger returns a text logger on w at the named level.
func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "info":
		lv = slog.LevelInfo
	case "warn":
		lv = slog.LevelWarn
	default:
		return nil, fmt.Errorf("--log-level %q is not debug, info or warn", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: lv})), nil
}

// exitErr prints err for command name and returns exit code 1.
func exitErr(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "kvswebrtc %s: %v\n", name, err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// usageError marks an error caused by the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }
