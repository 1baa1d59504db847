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
	"github.com/kvswebrtc/kvswebrtc/internal/awsjson"
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

// describeStreamInput names a stream by ARN or by name.
func describeStreamInput(s string) *kinesisvideo.DescribeStreamInput {
	in := &kinesisvideo.DescribeStreamInput{}
	in.StreamName, in.StreamARN = awsjson.NameOrARN(s)
	return in
}

func runStreamCreate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("stream create", "NAME [--retention 24h] [flags]", stderr, "text", "json", "table")
	retention := c.fs.Duration("retention", 24*time.Hour, "how long the stream keeps its media, whole hours; 0 keeps nothing (and cannot be a channel's media storage)")
	mediaType := c.fs.String("media-type", "", "the stream's MediaType, e.g. video/h264,audio/opus (optional)")
	pos, code, ok := c.open(ctx, args, 1, "stream name", func(pos []string) string {
		switch {
		case strings.HasPrefix(pos[0], "arn:"):
			return fmt.Sprintf("give a stream name, not an ARN (%q)", pos[0])
		case *retention < 0 || *retention%time.Hour != 0:
			return fmt.Sprintf("--retention %s must be whole hours (24h, 168h, ...) or 0", *retention)
		}
		return ""
	})
	if !ok {
		return code
	}
	in := &kinesisvideo.CreateStreamInput{StreamName: aws.String(pos[0]), DataRetentionInHours: aws.Int32(int32(*retention / time.Hour))}
	if *mediaType != "" {
		in.MediaType = mediaType
	}
	res, err := c.kv.CreateStream(ctx, in)
	if err != nil {
		return c.fail(err, "stream")
	}
	arn := aws.ToString(res.StreamARN)
	return c.printARN(stdout, "StreamARN", "STREAM ARN", arn, arn)
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
	pos, code, ok := c.open(ctx, args, 1, "stream name or ARN", nil)
	if !ok {
		return code
	}
	res, err := c.kv.DescribeStream(ctx, describeStreamInput(pos[0]))
	if err != nil {
		return c.fail(err, "stream")
	}
	if *c.output == "json" {
		return printJSON(stdout, res.StreamInfo)
	}
	return printStreams(stdout, *c.output, []types.StreamInfo{*res.StreamInfo})
}

func runStreamList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("stream list", "[--prefix P] [flags]", stderr, "table", "json", "text")
	prefix := c.fs.String("prefix", "", "only streams whose name begins with this")
	if _, code, ok := c.open(ctx, args, 0, "", nil); !ok {
		return code
	}
	in := &kinesisvideo.ListStreamsInput{}
	if *prefix != "" {
		in.StreamNameCondition = &types.StreamNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: prefix}
	}
	var all []types.StreamInfo
	for p := kinesisvideo.NewListStreamsPaginator(c.kv, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return c.fail(err, "stream")
		}
		all = append(all, page.StreamInfoList...)
	}
	return printStreams(stdout, *c.output, all)
}

func runStreamDelete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("stream delete", "NAME|ARN [flags]", stderr, "text", "json")
	pos, code, ok := c.open(ctx, args, 1, "stream name or ARN", nil)
	if !ok {
		return code
	}
	arn := pos[0]
	if !strings.HasPrefix(arn, "arn:") {
		res, err := c.kv.DescribeStream(ctx, describeStreamInput(arn))
		if err != nil {
			return c.fail(err, "stream")
		}
		arn = aws.ToString(res.StreamInfo.StreamARN)
	}
	if _, err := c.kv.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arn)}); err != nil {
		return c.fail(err, "stream")
	}
	return c.printARN(stdout, "Deleted", "DELETED", "deleted "+arn, arn) // text or json: no table
}

func runChannelStorage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("channel storage", "CHANNEL --stream NAME|ARN | --disable [flags]", stderr, "text", "json")
	stream := c.fs.String("stream", "", "record the channel's media (WebRTC ingestion) to this stream `NAME` or ARN (it must keep its media: kvswebrtc stream create NAME)")
	disable := c.fs.Bool("disable", false, "stop recording the channel's media")
	pos, code, ok := c.open(ctx, args, 1, "channel name or ARN", func([]string) string {
		if (*stream == "") == !*disable {
			return "give --stream NAME or --disable (one of them)"
		}
		return ""
	})
	if !ok {
		return code
	}
	ch, err := c.kv.DescribeSignalingChannel(ctx, describeInput(pos[0]))
	if err != nil {
		return c.fail(err, "channel")
	}
	r, err := channel.NewResolver(c.cfg, channel.ResolverOptions{})
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	ms := channel.MediaStorage{}
	if *stream != "" {
		st, err := c.kv.DescribeStream(ctx, describeStreamInput(*stream))
		if err != nil {
			return c.fail(err, "stream")
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
