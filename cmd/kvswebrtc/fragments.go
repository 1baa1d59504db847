package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/kvswebrtc/kvswebrtc/archive"
)

func init() {
	register(&command{name: "fragments", summary: "list a stream's recorded fragments, save them as MKV, or follow it live", run: runFragments})
}

func runFragments(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newStreamCmd("fragments", "--stream NAME|ARN [--save out.mkv] [--follow] [flags]", stderr, "table", "json", "text")
	stream := c.fs.String("stream", "", "the stream `NAME` or ARN (required)")
	save := c.fs.String("save", "", "write the fragments listed to `FILE` as MKV (GetMediaForFragmentList); ffmpeg, ffplay and VLC play it")
	since := c.fs.Duration("since", 0, "only fragments whose producer timestamp is within this long before now (0: all)")
	follow := c.fs.Bool("follow", false, "with --save: then append the stream live (GetMedia: the fragment being recorded, frame by frame), until interrupted")
	if _, code, ok := c.parse(args, 0, ""); !ok {
		return code
	}
	if *stream == "" {
		usageErr(stderr, c.fs, "--stream is required (a stream name or ARN)")
		return 2
	}
	if *follow && *save == "" {
		usageErr(stderr, c.fs, "--follow needs --save FILE")
		return 2
	}
	cfg, err := c.af.load(ctx, stderr)
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	ac, err := archive.New(cfg, archive.Options{})
	if err != nil {
		return exitErr(stderr, c.name, err)
	}
	var sel *archive.Selector
	if *since > 0 {
		now := time.Now()
		sel = &archive.Selector{Type: archive.ProducerTimestamp, Start: now.Add(-*since), End: now}
	}
	list, err := ac.ListFragments(ctx, *stream, sel)
	if err != nil {
		return fragmentsErr(stderr, err, cfg.Region)
	}
	if *save != "" {
		return saveFragments(ctx, ac, *stream, list, *save, *follow, stdout, stderr)
	}
	var total time.Duration
	var bytes int64
	rows := make([][]string, 0, len(list))
	for _, f := range list {
		total += f.Length
		bytes += f.Size
		rows = append(rows, []string{f.Number, f.Producer.UTC().Format("2006-01-02T15:04:05.000Z"),
			f.Server.UTC().Format("2006-01-02T15:04:05.000Z"), seconds(f.Length), strconv.FormatInt(f.Size, 10)})
	}
	switch *c.output {
	case "json":
		return printJSON(stdout, list)
	case "text":
		for _, r := range rows {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\t%s\n", r[0], r[1], r[2], r[3], r[4])
		}
	default:
		printTable(stdout, []string{"FRAGMENT", "PRODUCER", "SERVER", "LENGTH", "BYTES"}, rows)
		fmt.Fprintf(stdout, "%d fragments, %s, %d bytes\n", len(list), seconds(total), bytes)
	}
	return 0
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "s" }

func fragmentsErr(stderr io.Writer, err error, region string) int {
	if errors.Is(err, archive.ErrNotFound) {
		err = fmt.Errorf("%w (kvswebrtc stream list shows the streams in %s)", err, region)
	}
	return exitErr(stderr, "fragments", err)
}

// saveFragments writes the media of list (and, with follow, what comes
// next) to path.
func saveFragments(ctx context.Context, ac *archive.Client, stream string, list []archive.Fragment, path string, follow bool, stdout, stderr io.Writer) int {
	if len(list) == 0 && !follow {
		fmt.Fprintf(stderr, "kvswebrtc fragments: the stream %s has no fragments to save (is a master ingesting? kvswebrtc master --ingest)\n", stream)
		return 1
	}
	f, err := os.Create(path)
	if err != nil {
		return exitErr(stderr, "fragments", err)
	}
	defer f.Close()
	var written int64
	for i := 0; i < len(list); i += 1000 {
		nums := make([]string, 0, 1000)
		for _, fr := range list[i:min(i+1000, len(list))] {
			nums = append(nums, fr.Number)
		}
		rc, err := ac.GetMediaForFragmentList(ctx, stream, nums)
		if err != nil {
			return fragmentsErr(stderr, err, "")
		}
		n, err := io.Copy(f, rc)
		rc.Close()
		written += n
		if err != nil {
			return exitErr(stderr, "fragments", err)
		}
	}
	var total time.Duration
	for _, fr := range list {
		total += fr.Length
	}
	fmt.Fprintf(stdout, "saved %d fragments (%s, %d bytes) to %s\n", len(list), seconds(total), written, path)
	if !follow {
		return 0
	}
	start := archive.Start{Type: archive.StartNow}
	if len(list) > 0 {
		start = archive.Start{Type: archive.StartContinuationToken, ContinuationToken: list[len(list)-1].Number}
	}
	rc, err := ac.GetMedia(ctx, stream, start)
	if err != nil {
		return fragmentsErr(stderr, err, "")
	}
	defer rc.Close()
	fmt.Fprintf(stdout, "following %s (GetMedia); interrupt to stop\n", stream)
	n, err := io.Copy(f, rc)
	fmt.Fprintf(stdout, "appended %d bytes\n", n)
	if err != nil && ctx.Err() == nil {
		return exitErr(stderr, "fragments", err)
	}
	return 0
}
