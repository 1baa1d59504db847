package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/channel"
)

// The stream commands (Kinesis video streams, where WebRTC ingestion
// records) and `channel storage` (a channel's media storage configuration).

func init() {
	register(&command{name: "stream", summary: "create, describe, list or delete Kinesis video streams (where WebRTC ingestion records)"})
	register(&command{name: "stream create", summary: "create a Kinesis video stream and print its ARN", run: runStreamCreate})
	register(&command{name: "stream describe", summary: "describe a Kinesis video stream, by name or ARN", run: runStreamDescribe})
	register(&command{name: "stream list", summary: "list the Kinesis video streams of the region", run: runStreamList})
	register(&command{name: "stream delete", summary: "delete a Kinesis video stream and its media, by name or ARN", run: runStreamDelete})
	register(&command{name: "channel storage", summary: "record a channel's media to a stream (WebRTC ingestion), or stop", run: runChannelStorage})
}

// newStreamCmd makes the FlagSet of a stream subcommand, with the AWS
// flags and --output.
func newStreamCmd(name, synopsis string, stderr io.Writer, formats ...string) *channelCmd {
	c := &channelCmd{name: name, stderr: stderr}
	c.fs = newFlagSet(c.name, synopsis, stderr)
	c.output = outputFlag(c.fs, formats...)
	c.af.register(c.fs)
	return c
}

// streamFail prints the error of a stream call in one line, with a hint
// for a stream that does not exist.
func (c *channelCmd) streamFail(err error, region string) int {
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		err = fmt.Errorf("%w (kvswebrtc stream list shows the streams in %s)", apiError(err), region)
	} else {
		err = apiError(err)
	}
	return exitErr(c.stderr, c.name, err)
}

func describeStreamInput(s string) *kinesisvideo.DescribeStreamInput {
	if strings.HasPrefix(s, "arn:") {
		return &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(s)}
	}
	return &kinesisvideo.DescribeStreamInput{StreamName: aws.String(s)}
}

func runStreamCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("stream create", "NAME [--retention 24h] [flags]", stderr, "text", "json", "table")
	retention := c.fs.Duration("retention", 24*time.Hour, "how long the stream keeps its media, whole hours; 0 keeps nothing (and cannot be a channel's media storage)")
	mediaType := c.fs.String("media-type", "", "the stream's MediaType, e.g. video/h264,audio/opus (optional)")
	pos, code, ok := c.parse(args, 1, "stream name")
	if !ok {
		return code
	}
	if strings.HasPrefix(pos[0], "arn:") {
		usageErr(stderr, c.fs, fmt.Sprintf("give a stream name, not an ARN (%q)", pos[0]))
		return 2
	}
	if *retention < 0 || *retention%time.Hour != 0 {
		usageErr(stderr, c.fs, fmt.Sprintf("--retention %s must be whole hours (24h, 168h, ...) or 0", *retention))
		return 2
	}
	kv, cfg, err := c.client(ctx)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	in := &kinesisvideo.CreateStreamInput{StreamName: aws.String(pos[0]), DataRetentionInHours: aws.Int32(int32(*retention / time.Hour))}
	if *mediaType != "" {
		in.MediaType = mediaType
	}
	res, err := kv.CreateStream(ctx, in)
	if err != nil {
		return c.streamFail(err, cfg.Region)
	}
	arn := aws.ToString(res.StreamARN)
	switch *c.output {
	case "json":
		return printJSON(stdout, map[string]string{"StreamARN": arn})
	case "table":
		printTable(stdout, []string{"STREAM ARN"}, [][]string{{arn}})
	default:
		fmt.Fprintln(stdout, arn)
	}
	return 0
}

func streamRows(list []types.StreamInfo) [][]string {
	rows := make([][]string, 0, len(list))
	for _, s := range list {
		created := ""
		if s.CreationTime != nil {
			created = s.CreationTime.UTC().Format(time.RFC3339)
		}
		rows = append(rows, []string{aws.ToString(s.StreamName), string(s.Status),
			strconv.Itoa(int(aws.ToInt32(s.DataRetentionInHours))) + "h", created, aws.ToString(s.StreamARN)})
	}
	return rows
}

var streamHeader = []string{"NAME", "STATUS", "RETENTION", "CREATED", "ARN"}

func printStreams(stdout io.Writer, format string, list []types.StreamInfo) int {
	switch format {
	case "json":
		return printJSON(stdout, list)
	case "text":
		for _, r := range streamRows(list) {
			fmt.Fprintln(stdout, strings.Join(r, "\t"))
		}
	default:
		printTable(stdout, streamHeader, streamRows(list))
	}
	return 0
}

func runStreamDescribe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("stream describe", "NAME|ARN [flags]", stderr, "table", "json", "text")
	pos, code, ok := c.parse(args, 1, "stream name or ARN")
	if !ok {
		return code
	}
	kv, cfg, err := c.client(ctx)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	res, err := kv.DescribeStream(ctx, describeStreamInput(pos[0]))
	if err != nil {
		return c.streamFail(err, cfg.Region)
	}
	if *c.output == "json" {
		return printJSON(stdout, res.StreamInfo)
	}
	return printStreams(stdout, *c.output, []types.StreamInfo{*res.StreamInfo})
}

func runStreamList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("stream list", "[--prefix P] [flags]", stderr, "table", "json", "text")
	prefix := c.fs.String("prefix", "", "only streams whose name begins with this")
	if _, code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	kv, cfg, err := c.client(ctx)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	in := &kinesisvideo.ListStreamsInput{}
	if *prefix != "" {
		in.StreamNameCondition = &types.StreamNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: prefix}
	}
	var all []types.StreamInfo
	for p := kinesisvideo.NewListStreamsPaginator(kv, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return c.streamFail(err, cfg.Region)
		}
		all = append(all, page.StreamInfoList...)
	}
	return printStreams(stdout, *c.output, all)
}

func runStreamDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("stream delete", "NAME|ARN [flags]", stderr, "text", "json")
	pos, code, ok := c.parse(args, 1, "stream name or ARN")
	if !ok {
		return code
	}
	kv, cfg, err := c.client(ctx)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	arn := pos[0]
	if !strings.HasPrefix(arn, "arn:") {
		res, err := kv.DescribeStream(ctx, describeStreamInput(arn))
		if err != nil {
			return c.streamFail(err, cfg.Region)
		}
		arn = aws.ToString(res.StreamInfo.StreamARN)
	}
	if _, err := kv.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arn)}); err != nil {
		return c.streamFail(err, cfg.Region)
	}
	if *c.output == "json" {
		return printJSON(stdout, map[string]string{"Deleted": arn})
	}
	fmt.Fprintf(stdout, "deleted %s\n", arn)
	return 0
}

func runChannelStorage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("channel storage", "CHANNEL --stream NAME|ARN | --disable [flags]", stderr, "text", "json")
	stream := c.fs.String("stream", "", "record the channel's media (WebRTC ingestion) to this stream `NAME` or ARN (it must keep its media: kvswebrtc stream create NAME)")
	disable := c.fs.Bool("disable", false, "stop recording the channel's media")
	pos, code, ok := c.parse(args, 1, "channel name or ARN")
	if !ok {
		return code
	}
	if (*stream == "") == !*disable {
		usageErr(stderr, c.fs, "give --stream NAME or --disable (one of them)")
		return 2
	}
	kv, cfg, err := c.client(ctx)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	ch, err := kv.DescribeSignalingChannel(ctx, describeInput(pos[0]))
	if err != nil {
		return c.fail(err, cfg.Region)
	}
	r, err := channel.NewResolver(cfg, channel.ResolverOptions{})
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	ms := channel.MediaStorage{}
	if *stream != "" {
		st, err := kv.DescribeStream(ctx, describeStreamInput(*stream))
		if err != nil {
			return c.streamFail(err, cfg.Region)
		}
		ms = channel.MediaStorage{Enabled: true, StreamARN: aws.ToString(st.StreamInfo.StreamARN)}
	}
	chARN := aws.ToString(ch.ChannelInfo.ChannelARN)
	if err := r.SetMediaStorage(ctx, chARN, ms); err != nil {
		var nd *types.NoDataRetentionException
		if errors.As(err, &nd) {
			err = fmt.Errorf("%w (the stream keeps no media: make one with kvswebrtc stream create NAME --retention 24h)", apiError(err))
		} else {
			err = apiError(err)
		}
		return exitErr(stderr, c.name, err)
	}
	if *c.output == "json" {
		status := "DISABLED"
		if ms.Enabled {
			status = "ENABLED"
		}
		return printJSON(stdout, map[string]string{"ChannelARN": chARN, "Status": status, "StreamARN": ms.StreamARN})
	}
	if ms.Enabled {
		fmt.Fprintf(stdout, "channel %s records to %s\n  start a master with: kvswebrtc master --channel %s --ingest\n", aws.ToString(ch.ChannelInfo.ChannelName), ms.StreamARN, aws.ToString(ch.ChannelInfo.ChannelName))
	} else {
		fmt.Fprintf(stdout, "channel %s no longer records\n", aws.ToString(ch.ChannelInfo.ChannelName))
	}
	return 0
}

var _ flag.Value = (*outputValue)(nil)
