package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

func init() {
	register(&command{
		name:    "sign",
		summary: "print a presigned signaling WebSocket URL (credentials from the AWS default chain)",
		run:     runSign,
	})
}

const signSynopsis = `--channel-arn ARN [--endpoint-url wss://...] [--client-id ID] [flags]

  With a wss:// (or ws://) --endpoint-url, sign for that signaling endpoint.
  Without one, or with the http(s):// control-plane endpoint of --endpoint-url
  or AWS_ENDPOINT_URL, look the channel's endpoint up first
  (GetSignalingChannelEndpoint); --channel NAME then works too.`

func runSign(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sign", signSynopsis, stderr)
	arnFlag := fs.String("channel-arn", "", "signaling channel `ARN` (or --channel)")
	chName := fs.String("channel", "", "signaling channel `NAME` or ARN, looked up on the control plane")
	clientID := fs.String("client-id", "", "viewer client `ID`; leave empty to sign for the master")
	service := fs.String("service", sigv4.DefaultService, "service `NAME` in the credential scope")
	date := fs.String("date", "", "signing time, `RFC3339` (default now)")
	output := outputFlag(fs, "text", "json")
	var af awsFlags
	af.register(fs)
	fs.Lookup("endpoint-url").Usage = "signaling endpoint `URL` to sign for, wss://... (ws:// for the local service without --tls); or the http(s):// control plane to look it up on (default: AWS_ENDPOINT_URL, else real AWS)"
	fs.Lookup("region").Usage = "AWS `REGION` (default: AWS_REGION, AWS_DEFAULT_REGION or the profile's region, else the ARN's)"
	fs.StringVar(&af.endpointURL, "endpoint", "", "old name of --endpoint-url")
	hideFlag(fs, "endpoint")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	channelRef := *arnFlag
	if channelRef == "" {
		channelRef = *chName
	}
	if channelRef == "" || (*arnFlag != "" && *chName != "") {
		usageErr(stderr, fs, "give the channel with --channel-arn ARN (or --channel NAME|ARN), once")
		return 2
	}
	t := time.Now()
	if *date != "" {
		var err error
		if t, err = time.Parse(time.RFC3339, *date); err != nil {
			usageErr(stderr, fs, fmt.Sprintf("--date %q is not RFC 3339 (e.g. 2024-01-02T15:04:05Z)", *date))
			return 2
		}
	}
	// A wss:// endpoint is signed as is; anything else is the control plane.
	wssEndpoint := ""
	if e := af.endpointURL; strings.HasPrefix(e, "wss://") || strings.HasPrefix(e, "ws://") {
		wssEndpoint = e
		af.endpointURL = "http" + strings.TrimPrefix(e, "ws") // for the loopback check only
		if !strings.HasPrefix(channelRef, "arn:") {
			usageErr(stderr, fs, "with a wss:// --endpoint-url give the channel's ARN (--channel-arn); a name needs the control plane to look it up")
			return 2
		}
	} else if e != "" && !strings.HasPrefix(e, "https://") && !strings.HasPrefix(e, "http://") {
		usageErr(stderr, fs, fmt.Sprintf("--endpoint-url %q is not a wss://, ws://, https:// or http:// URL", e))
		return 2
	}
	if *arnFlag != "" && !strings.HasPrefix(*arnFlag, "arn:") {
		usageErr(stderr, fs, fmt.Sprintf("--channel-arn %q is not an ARN (give a name with --channel)", *arnFlag))
		return 2
	}
	if a, err := arn.Parse(channelRef); err == nil {
		af.defaultRegion = a.Region
	}
	cfg, err := af.load(ctx, stderr)
	if err != nil {
		return exitErr(stderr, "sign", err)
	}
	role := types.ChannelRoleMaster
	if *clientID != "" {
		role = types.ChannelRoleViewer
	}
	channelARN := channelRef
	if wssEndpoint == "" {
		kv := kinesisvideo.NewFromConfig(cfg)
		if !strings.HasPrefix(channelARN, "arn:") {
			res, err := kv.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String(channelARN)})
			if err != nil {
				return exitErr(stderr, "sign", apiError(err))
			}
			channelARN = aws.ToString(res.ChannelInfo.ChannelARN)
		}
		res, err := kv.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{
			ChannelARN: aws.String(channelARN),
			SingleMasterChannelEndpointConfiguration: &types.SingleMasterChannelEndpointConfiguration{
				Protocols: []types.ChannelProtocol{types.ChannelProtocolWss},
				Role:      role,
			},
		})
		if err != nil {
			return exitErr(stderr, "sign", apiError(err))
		}
		for _, e := range res.ResourceEndpointList {
			if e.Protocol == types.ChannelProtocolWss {
				wssEndpoint = aws.ToString(e.ResourceEndpoint)
			}
		}
		if wssEndpoint == "" {
			return exitErr(stderr, "sign", fmt.Errorf("GetSignalingChannelEndpoint returned no WSS endpoint for %s", channelARN))
		}
	}
	p, err := sigv4.New(cfg.Region, cfg.Credentials, sigv4.WithService(*service), sigv4.AllowInsecureEndpoint())
	if err != nil {
		return exitErr(stderr, "sign", usageError{err.Error()})
	}
	q := map[string]string{sigv4.ParamChannelARN: channelARN}
	if *clientID != "" {
		q[sigv4.ParamClientID] = *clientID
	}
	u, err := p.PresignURL(ctx, wssEndpoint, q, t)
	if err != nil {
		return exitErr(stderr, "sign", err)
	}
	if *output == "json" {
		return printJSON(stdout, struct {
			URL, ChannelARN, Role, ClientId, Region string
			Expires                                 time.Time
		}{u, channelARN, string(role), *clientID, cfg.Region, t.Add(sigv4.Expires * time.Second).UTC().Truncate(time.Second)})
	}
	fmt.Fprintln(stdout, u)
	return 0
}
