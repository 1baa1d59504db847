package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
)

func init() {
	register(&command{
		name:    "channel",
		summary: "create, describe, list or delete signaling channels (control plane)",
		run:     runChannel,
	})
}

const channelSynopsis = `create|describe|list|delete [flags] [NAME|ARN]

  kvswebrtc channel create NAME [--message-ttl 60s]
  kvswebrtc channel describe NAME|ARN
  kvswebrtc channel list [--prefix P]
  kvswebrtc channel delete NAME|ARN`

func runChannel(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(stderr, "Usage: kvswebrtc channel %s\n", channelSynopsis)
			return 0
		}
		fmt.Fprintf(stderr, "kvswebrtc channel: missing subcommand\nUsage: kvswebrtc channel %s\n", channelSynopsis)
		return 2
	}
	sub := args[0]
	fs := newFlagSet("channel "+sub, "[flags] [NAME|ARN]", stderr)
	var af awsFlags
	af.register(fs)
	asJSON := fs.Bool("json", false, "print the API response as JSON")
	ttl := fs.Duration("message-ttl", 60*time.Second, "create: how long undelivered messages are kept (5s..120s)")
	prefix := fs.String("prefix", "", "list: only channels whose name begins with this")
	if err := fs.Parse(args[1:]); err != nil {
		if err.Error() == "flag: help requested" {
			return 0
		}
		return 2
	}
	target := fs.Arg(0)
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "kvswebrtc channel %s: unexpected argument %q\n", sub, fs.Arg(1))
		return 2
	}
	needTarget := sub == "create" || sub == "describe" || sub == "delete"
	switch {
	case sub != "create" && sub != "describe" && sub != "list" && sub != "delete":
		fmt.Fprintf(stderr, "kvswebrtc channel: unknown subcommand %q (want create, describe, list or delete)\n", sub)
		return 2
	case needTarget && target == "":
		fmt.Fprintf(stderr, "kvswebrtc channel %s: missing channel name or ARN\n", sub)
		return 2
	case sub == "list" && target != "":
		fmt.Fprintf(stderr, "kvswebrtc channel list: unexpected argument %q (use --prefix)\n", target)
		return 2
	case sub == "create" && strings.HasPrefix(target, "arn:"):
		fmt.Fprintf(stderr, "kvswebrtc channel create: give a channel name, not an ARN (%q)\n", target)
		return 2
	case sub == "create" && (*ttl < 5*time.Second || *ttl > 120*time.Second || *ttl%time.Second != 0):
		fmt.Fprintf(stderr, "kvswebrtc channel create: --message-ttl %s must be whole seconds between 5s and 120s\n", *ttl)
		return 2
	}
	cfg, err := af.load(ctx, stderr)
	if err != nil {
		return exitErr(stderr, "channel "+sub, err)
	}
	kv := kinesisvideo.NewFromConfig(cfg)
	out := func(v any, human func()) int {
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(v)
			return 0
		}
		human()
		return 0
	}
	ref := func(s string) *kinesisvideo.DescribeSignalingChannelInput {
		if strings.HasPrefix(s, "arn:") {
			return &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(s)}
		}
		return &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String(s)}
	}
	switch sub {
	case "create":
		res, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{
			ChannelName: aws.String(target),
			ChannelType: types.ChannelTypeSingleMaster,
			SingleMasterConfiguration: &types.SingleMasterConfiguration{
				MessageTtlSeconds: aws.Int32(int32(*ttl / time.Second)),
			},
		})
		if err != nil {
			return exitErr(stderr, "channel create", err)
		}
		return out(map[string]string{"ChannelARN": aws.ToString(res.ChannelARN)}, func() {
			fmt.Fprintln(stdout, aws.ToString(res.ChannelARN))
		})
	case "describe":
		res, err := kv.DescribeSignalingChannel(ctx, ref(target))
		if err != nil {
			return exitErr(stderr, "channel describe", err)
		}
		return out(res.ChannelInfo, func() { printChannels(stdout, []types.ChannelInfo{*res.ChannelInfo}) })
	case "list":
		in := &kinesisvideo.ListSignalingChannelsInput{}
		if *prefix != "" {
			in.ChannelNameCondition = &types.ChannelNameCondition{
				ComparisonOperator: types.ComparisonOperatorBeginsWith,
				ComparisonValue:    aws.String(*prefix),
			}
		}
		var all []types.ChannelInfo
		p := kinesisvideo.NewListSignalingChannelsPaginator(kv, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return exitErr(stderr, "channel list", err)
			}
			all = append(all, page.ChannelInfoList...)
		}
		return out(all, func() { printChannels(stdout, all) })
	default: // delete
		in := ref(target)
		arn := aws.ToString(in.ChannelARN)
		if arn == "" {
			res, err := kv.DescribeSignalingChannel(ctx, in)
			if err != nil {
				return exitErr(stderr, "channel delete", err)
			}
			arn = aws.ToString(res.ChannelInfo.ChannelARN)
		}
		if _, err := kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
			return exitErr(stderr, "channel delete", err)
		}
		return out(map[string]string{"Deleted": arn}, func() { fmt.Fprintf(stdout, "deleted %s\n", arn) })
	}
}

func printChannels(w io.Writer, list []types.ChannelInfo) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATUS\tTTL\tCREATED\tARN")
	for _, c := range list {
		ttl := ""
		if c.SingleMasterConfiguration != nil && c.SingleMasterConfiguration.MessageTtlSeconds != nil {
			ttl = fmt.Sprintf("%ds", *c.SingleMasterConfiguration.MessageTtlSeconds)
		}
		created := ""
		if c.CreationTime != nil {
			created = c.CreationTime.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", aws.ToString(c.ChannelName), c.ChannelStatus, ttl, created, aws.ToString(c.ChannelARN))
	}
	tw.Flush()
}
