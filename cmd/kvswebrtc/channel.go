package main

import (
	"context"
	"errors"
	"flag"
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
	register(&command{name: "channel", summary: "create, describe, list or delete signaling channels, and set their media storage"})
	register(&command{name: "channel create", summary: "create a SINGLE_MASTER signaling channel and print its ARN", run: runChannelCreate})
	register(&command{name: "channel describe", summary: "describe a signaling channel, by name or ARN", run: runChannelDescribe})
	register(&command{name: "channel list", summary: "list the signaling channels of the region", run: runChannelList})
	register(&command{name: "channel delete", summary: "delete a signaling channel, by name or ARN", run: runChannelDelete})
}

// channelCmd is what the channel subcommands share: the AWS flags and --output.
type channelCmd struct {
	name   string // "channel create"
	fs     *flag.FlagSet
	af     awsFlags
	output *string
	stderr io.Writer
	// byFlag is the channel given as --channel-name or --channel-arn (the
	// aws CLI's way) instead of as the argument.
	byFlag string
}

// newChannelCmd makes the FlagSet of subcommand sub, with the AWS flags and
// --output (formats, the first the default; --json is kept as an alias of
// --output json).
func newChannelCmd(sub, synopsis string, stderr io.Writer, formats ...string) *channelCmd {
	c := &channelCmd{name: "channel " + sub, stderr: stderr}
	c.fs = newFlagSet(c.name, synopsis, stderr)
	c.output = outputFlag(c.fs, formats...)
	c.fs.BoolFunc("json", "same as --output json", func(string) error {
		*c.output = "json"
		return nil
	})
	if sub != "list" {
		c.fs.StringVar(&c.byFlag, "channel-name", "", "the channel, as the aws CLI names it")
		c.fs.StringVar(&c.byFlag, "channel-arn", "", "the channel's ARN, as the aws CLI names it")
	}
	hideFlag(c.fs, "json", "channel-name", "channel-arn")
	c.af.register(c.fs)
	return c
}

// parse parses args, which must hold exactly want positional arguments
// (what names them); it returns them, or the exit code.
func (c *channelCmd) parse(args []string, want int, what string) ([]string, int, bool) {
	pos, code, ok := parseArgs(c.fs, args, c.stderr)
	if !ok {
		return nil, code, false
	}
	if c.byFlag != "" && len(pos) < want {
		pos = append(pos, c.byFlag)
	}
	switch {
	case len(pos) < want:
		usageErr(c.stderr, c.fs, "missing "+what)
		return nil, 2, false
	case len(pos) > want:
		msg := fmt.Sprintf("unexpected argument %q", pos[want])
		if want == 0 {
			msg += " (use --prefix)"
		}
		usageErr(c.stderr, c.fs, msg)
		return nil, 2, false
	}
	return pos, -1, true
}

// client loads the AWS configuration and returns a KVS client.
func (c *channelCmd) client(ctx context.Context) (*kinesisvideo.Client, aws.Config, error) {
	cfg, err := c.af.load(ctx, c.stderr)
	if err != nil {
		return nil, cfg, err
	}
	return kinesisvideo.NewFromConfig(cfg), cfg, nil
}

// fail prints the error of an API call in one line, with a hint for a
// channel that does not exist, and returns the exit code.
func (c *channelCmd) fail(err error, region string) int {
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		err = fmt.Errorf("%w (kvswebrtc channel list shows the channels in %s)", apiError(err), region)
	} else {
		err = apiError(err)
	}
	return exitErr(c.stderr, c.name, err)
}

// describeInput names a channel by ARN or by name.
func describeInput(s string) *kinesisvideo.DescribeSignalingChannelInput {
	if strings.HasPrefix(s, "arn:") {
		return &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(s)}
	}
	return &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String(s)}
}

func runChannelCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newChannelCmd("create", "NAME [--message-ttl 60s] [flags]", stderr, "text", "json", "table")
	ttl := c.fs.Duration("message-ttl", 60*time.Second, "how long undelivered messages are kept, whole seconds from 5s to 120s")
	pos, code, ok := c.parse(args, 1, "channel name")
	if !ok {
		return code
	}
	name := pos[0]
	if strings.HasPrefix(name, "arn:") {
		usageErr(stderr, c.fs, fmt.Sprintf("give a channel name, not an ARN (%q)", name))
		return 2
	}
	if *ttl < 5*time.Second || *ttl > 120*time.Second || *ttl%time.Second != 0 {
		usageErr(stderr, c.fs, fmt.Sprintf("--message-ttl %s must be whole seconds between 5s and 120s", *ttl))
		return 2
	}
	kv, cfg, err := c.client(ctx)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	res, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{
		ChannelName: aws.String(name),
		ChannelType: types.ChannelTypeSingleMaster,
		SingleMasterConfiguration: &types.SingleMasterConfiguration{
			MessageTtlSeconds: aws.Int32(int32(*ttl / time.Second)),
		},
	})
	if err != nil {
		return c.fail(err, cfg.Region)
	}
	arn := aws.ToString(res.ChannelARN)
	switch *c.output {
	case "json":
		return printJSON(stdout, map[string]string{"ChannelARN": arn})
	case "table":
		printTable(stdout, []string{"CHANNEL ARN"}, [][]string{{arn}})
	default:
		fmt.Fprintln(stdout, arn)
	}
	return 0
}

func runChannelDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newChannelCmd("describe", "NAME|ARN [flags]", stderr, "table", "text", "json")
	pos, code, ok := c.parse(args, 1, "channel name or ARN")
	if !ok {
		return code
	}
	kv, cfg, err := c.client(ctx)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	res, err := kv.DescribeSignalingChannel(ctx, describeInput(pos[0]))
	if err != nil {
		return c.fail(err, cfg.Region)
	}
	if *c.output == "json" {
		return printJSON(stdout, struct{ ChannelInfo *types.ChannelInfo }{res.ChannelInfo})
	}
	printChannels(stdout, *c.output, []types.ChannelInfo{*res.ChannelInfo})
	return 0
}

func runChannelList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newChannelCmd("list", "[--prefix P] [flags]", stderr, "table", "text", "json")
	prefix := c.fs.String("prefix", "", "only channels whose name begins with `P`")
	if _, code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	kv, cfg, err := c.client(ctx)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	in := &kinesisvideo.ListSignalingChannelsInput{}
	if *prefix != "" {
		in.ChannelNameCondition = &types.ChannelNameCondition{
			ComparisonOperator: types.ComparisonOperatorBeginsWith,
			ComparisonValue:    aws.String(*prefix),
		}
	}
	all := []types.ChannelInfo{}
	p := kinesisvideo.NewListSignalingChannelsPaginator(kv, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return c.fail(err, cfg.Region)
		}
		all = append(all, page.ChannelInfoList...)
	}
	if *c.output == "json" {
		return printJSON(stdout, struct{ ChannelInfoList []types.ChannelInfo }{all})
	}
	printChannels(stdout, *c.output, all)
	return 0
}

func runChannelDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newChannelCmd("delete", "NAME|ARN [flags]", stderr, "text", "json", "table")
	pos, code, ok := c.parse(args, 1, "channel name or ARN")
	if !ok {
		return code
	}
	kv, cfg, err := c.client(ctx)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	in := describeInput(pos[0])
	arn := aws.ToString(in.ChannelARN)
	if arn == "" {
		res, err := kv.DescribeSignalingChannel(ctx, in)
		if err != nil {
			return c.fail(err, cfg.Region)
		}
		arn = aws.ToString(res.ChannelInfo.ChannelARN)
	}
	if _, err := kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
		return c.fail(err, cfg.Region)
	}
	switch *c.output {
	case "json":
		return printJSON(stdout, map[string]string{"Deleted": arn})
	case "table":
		printTable(stdout, []string{"DELETED"}, [][]string{{arn}})
	default:
		fmt.Fprintf(stdout, "deleted %s\n", arn)
	}
	return 0
}

// printChannels prints channels as a table with a header (table) or as
// tab-separated lines without one (text, as the aws CLI's).
func printChannels(w io.Writer, format string, list []types.ChannelInfo) {
	rows := make([][]string, 0, len(list))
	for _, c := range list {
		ttl := ""
		if c.SingleMasterConfiguration != nil && c.SingleMasterConfiguration.MessageTtlSeconds != nil {
			ttl = fmt.Sprintf("%ds", *c.SingleMasterConfiguration.MessageTtlSeconds)
		}
		created := ""
		if c.CreationTime != nil {
			created = c.CreationTime.UTC().Format(time.RFC3339)
		}
		rows = append(rows, []string{aws.ToString(c.ChannelName), string(c.ChannelStatus), ttl, created, aws.ToString(c.ChannelARN)})
	}
	if format == "text" {
		for _, r := range rows {
			fmt.Fprintln(w, strings.Join(r, "\t"))
		}
		return
	}
	printTable(w, []string{"NAME", "STATUS", "TTL", "CREATED", "ARN"}, rows)
}

// printTable prints rows under header in aligned columns.
func printTable(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}
