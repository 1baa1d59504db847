package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

func init() {
	register(&command{
		name:    "sign",
		summary: "print a presigned signaling WebSocket URL (credentials from the AWS default chain)",
		run:     runSign,
	})
}

func runSign(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sign", "--endpoint URL --channel-arn ARN --region R [--client-id ID] [--service S] [--date RFC3339]", stderr)
	endpoint := fs.String("endpoint", "", "signaling WebSocket endpoint, wss://... (ws:// for the local service) (required)")
	arn := fs.String("channel-arn", "", "signaling channel ARN (required)")
	clientID := fs.String("client-id", "", "viewer client id; leave empty to sign for the master")
	region := fs.String("region", "", "AWS region (required)")
	service := fs.String("service", sigv4.DefaultService, "service name in the credential scope")
	date := fs.String("date", "", "signing time, RFC 3339 (default now)")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--endpoint", *endpoint}, {"--channel-arn", *arn}, {"--region", *region}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(stderr, "kvswebrtc sign: missing required flag(s): %s\n", strings.Join(missing, ", "))
		fs.Usage()
		return 2
	}
	t := time.Now()
	if *date != "" {
		var err error
		if t, err = time.Parse(time.RFC3339, *date); err != nil {
			fmt.Fprintf(stderr, "kvswebrtc sign: --date %q is not RFC 3339 (e.g. 2024-01-02T15:04:05Z)\n", *date)
			return 2
		}
	}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(*region))
	if err != nil {
		fmt.Fprintf(stderr, "kvswebrtc sign: loading AWS configuration: %v\n", err)
		return 1
	}
	if cfg.Credentials == nil {
		fmt.Fprintln(stderr, "kvswebrtc sign: no AWS credentials found (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)")
		return 1
	}
	p, err := sigv4.New(*region, cfg.Credentials, sigv4.WithService(*service), sigv4.AllowInsecureEndpoint())
	if err != nil {
		fmt.Fprintf(stderr, "kvswebrtc sign: %v\n", err)
		return 2
	}
	q := map[string]string{sigv4.ParamChannelARN: *arn}
	if *clientID != "" {
		q[sigv4.ParamClientID] = *clientID
	}
	u, err := p.PresignURL(ctx, *endpoint, q, t)
	if err != nil {
		fmt.Fprintf(stderr, "kvswebrtc sign: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, u)
	return 0
}
