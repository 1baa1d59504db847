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

	"github.com/kvswebrtc/kvswebrtc/internal/awsjson"
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
	// kv and cfg are the KVS client and the AWS configuration open makes.
	kv  *kinesisvideo.Client
	cfg aws.Config
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

// open parses args as parse does and checks them with check (nil: no
// check; a message it returns is a usage error, exit code 2), then loads
// the AWS configuration into c.cfg and makes c.kv. It returns the
// positional arguments, or the exit code.
func (c *channelCmd) open(ctx context.Context, args []string, want int, what string, check func(pos []string) string) ([]string, int, bool) {
	pos, code, ok := c.parse(args, want, what)
	if !ok {
		return nil, code, false
	}
	if check != nil {
		if msg := check(pos); msg != "" {
			usageErr(c.stderr, c.fs, msg)
			return nil, 2, false
		}
	}
	cfg, err := c.af.load(ctx, c.stderr)
	if err != nil {
		return nil, exitErr(c.stderr, c.name, err), false
	}
	c.kv, c.cfg = kinesisvideo.NewFromConfig(cfg), cfg
	return pos, -1, true
}

// fail prints the error of an API call in one line, with a hint for a
// resource (kind "channel" or "stream") that does not exist, and returns
// the exit code.
func (c *channelCmd) fail(err error, kind string) int {
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		err = fmt.Errorf("%w (kvswebrtc %s list shows the %ss in %s)", apiError(err), kind, kind, c.cfg.Region)
	} else {
		err = apiError(err)
	}
	return exitErr(c.stderr, c.name, err)
}

// printARN prints the ARN a command made or deleted: as {key: arn} in
// JSON, under header in a table, or as the line text.
func (c *channelCmd) printARN(stdout io.Writer, key, header, text, arn string) int {
	switch *c.output {
	case "json":
		return printJSON(stdout, map[string]string{key: arn})
	case "table":
		printTable(stdout, []string{header}, [][]string{{arn}})
	default:
		fmt.Fprintln(stdout, text)
	}
	return 0
}

// describeInput names a channel by ARN or by name.
func describeInput(s string) *kinesisvideo.DescribeSignalingChannelInput {
	in := &kinesisvideo.DescribeSignalingChannelInput{}
	in.ChannelName, in.ChannelARN = awsjson.NameOrARN(s)
	return in
}

func runChannelCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newChannelCmd("create", "NAME [--message-ttl 60s] [flags]", stderr, "text", "json", "table")
	ttl := c.fs.Duration("message-ttl", 60*time.Second, "how long undelivered messages are kept, whole seconds from 5s to 120s")
	pos, code, ok := c.open(ctx, args, 1, "channel name", func(pos []string) string {
		switch {
		case strings.HasPrefix(pos[0], "arn:"):
			return fmt.Sprintf("give a channel name, not an ARN (%q)", pos[0])
		case *ttl < 5*time.Second || *ttl > 120*time.Second || *ttl%time.Second != 0:
			return fmt.Sprintf("--message-ttl %s must be whole seconds between 5s and 120s", *ttl)
		}
		return ""
	})
	if !ok {
		return code
	}
	res, err := c.kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{
		ChannelName: aws.String(pos[0]),
		ChannelType: types.ChannelTypeSingleMaster,
		SingleMasterConfiguration: &types.SingleMasterConfiguration{
			MessageTtlSeconds: aws.Int32(int32(*ttl / time.Second)),
		},
	})
	if err != nil {
		return c.fail(err, "channel")
	}
	arn := aws.ToString(res.ChannelARN)
	return c.printARN(stdout, "ChannelARN", "CHANNEL ARN", arn, arn)
}

func runChannelDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newChannelCmd("describe", "NAME|ARN [flags]", stderr, "table", "text", "json")
	pos, code, ok := c.open(ctx, args, 1, "channel name or ARN", nil)
	if !ok {
		return code
	}
	res, err := c.kv.DescribeSignalingChannel(ctx, describeInput(pos[0]))
	if err != nil {
		return c.fail(err, "channel")
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
	if _, code, ok := c.open(ctx, args, 0, "", nil); !ok {
		return code
	}
	in := &kinesisvideo.ListSignalingChannelsInput{}
	if *prefix != "" {
		in.ChannelNameCondition = &types.ChannelNameCondition{
			ComparisonOperator: types.ComparisonOperatorBeginsWith,
			ComparisonValue:    aws.String(*prefix),
		}
	}
	all := []types.ChannelInfo{}
	p := kinesisvideo.NewListSignalingChannelsPaginator(c.kv, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return c.fail(err, "channel")
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
	pos, code, ok := c.open(ctx, args, 1, "channel name or ARN", nil)
	if !ok {
		return code
	}
	in := describeInput(pos[0])
	arn := aws.ToString(in.ChannelARN)
	if arn == "" {
		res, err := c.kv.DescribeSignalingChannel(ctx, in)
		if err != nil {
			return c.fail(err, "channel")
		}
		arn = aws.ToString(res.ChannelInfo.ChannelARN)
	}
	if _, err := c.kv.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
		return c.fail(err, "channel")
	}
	return c.printARN(stdout, "Deleted", "DELETED", "deleted "+arn, arn)
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
