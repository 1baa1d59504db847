package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

func init() {
	register(&command{
		name:    "viewer",
		summary: "join a signaling channel as a viewer, show live stats, optionally record",
		run:     runViewer,
	})
}

// isTerminal reports whether w is a character device (a terminal), where
// a progress line can be rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress prints a status line that a terminal rewrites in place (\r) and
// other outputs get as plain lines, and ordinary lines that do not get
// mixed with it.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	pending bool // a progress line is on the terminal without its newline
	// dedupe: off a terminal, a keyed status (statusKeyed) is printed only
	// when its key differs from the last status's, so that "waiting" does
	// not fill a log once a second.
	dedupe  bool
	lastKey string
}

// status prints the progress line.
func (p *progress) status(line string) { p.statusKeyed("", line) }

// statusKeyed prints the progress line; off a terminal with dedupe set, a
// line with the same non-empty key as the last one is not printed.
func (p *progress) statusKeyed(key, line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	repeat := key != "" && key == p.lastKey
	p.lastKey = key
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.pending = true
		return
	}
	if repeat && p.dedupe {
		return
	}
	fmt.Fprintln(p.w, line)
}

// println prints a line of its own, below the progress line.
func (p *progress) println(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.pending = false
	}
	fmt.Fprintln(p.w, line)
}

// done ends the progress line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending {
		fmt.Fprintln(p.w)
		p.pending = false
	}
}

// ms formats a duration in milliseconds, "-" for zero.
func ms(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0fms", float64(d)/float64(time.Millisecond))
}

// kbps is the bit rate of n bytes over d in kbit/s.
func kbps(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) * 8 / d.Seconds() / 1000
}

// pair formats the selected candidate pair.
func pair(s peer.SessionStats) string {
	if s.Local.Type == "" {
		return "-"
	}
	return s.Local.String() + " <-> " + s.Remote.String()
}

func runViewer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	pf := newPeerFlags("viewer", stderr)
	fs := pf.fs
	record := fs.String("record", "", "write the received media to `FILE`, by extension: .ivf (VP8/VP9/AV1 video), .h264 (H.264 video) or .ogg/.opus (Opus audio)")
	duration := fs.Duration("duration", 0, "stop after this long and print the summary (0: run until Ctrl-C)")
	clientID := fs.String("client-id", "", `the viewer's client `+"`ID`"+`, [a-zA-Z0-9_.-]{1,256} (default a random "viewer-<hex>")`)
	create := fs.Bool("create", false, "create the channel if it does not exist (a master can join it later)")
	nonTrickle := fs.Bool("non-trickle", false, "gather every ICE candidate first and send them in the offer (no trickle ICE)")
	joinStorage := fs.Bool("join-storage-session", false, "join the channel's storage session (JoinStorageSessionAsViewer) and get the master's media from the KVS media server; the master must be ingesting (master --ingest)")
	output := outputFlag(fs, "text", "json")
	fs.Lookup("output").Usage = "output `FORMAT`: text, or json: JSON lines on stdout (started, firstFrame, stats every second, summary)"
	if code, ok := pf.parse(args, func() error {
		if *duration < 0 {
			return fmt.Errorf("--duration %s must not be negative", *duration)
		}
		return nil
	}); !ok {
		return code
	}

	cfg := peer.ViewerConfig{ClientID: *clientID, NonTrickle: *nonTrickle, JoinStorageSession: *joinStorage, Logger: pf.logger}
	var (
		rec *media.Recorder
		err error
	)
	if *record != "" {
		if rec, err = media.NewRecorder(*record); err != nil {
			if errors.Is(err, media.ErrUnknownFormat) {
				return pf.fail("--record: %v", err)
			}
			return exitErr(stderr, "viewer", err)
		}
		defer rec.Close()
		switch strings.ToLower(filepath.Ext(*record)) {
		case ".ogg", ".opus", ".oga":
			cfg.AudioSinks = []media.Sink{rec}
		default:
			cfg.VideoSinks = []media.Sink{rec}
		}
	}

	awsCfg, err := pf.aws.load(ctx, stderr)
	if err != nil {
		return exitErr(stderr, "viewer", err)
	}
	cfg.ChannelConfig = peer.ChannelConfig{AWS: awsCfg, Channel: *pf.channel, NAT: pf.mode, CreateIfMissing: *create}
	v, err := peer.NewViewer(ctx, cfg)
	if err != nil {
		return peerErr(stderr, "viewer", missingChannel(err, *pf.channel, awsCfg.Region, &pf.aws))
	}
	defer v.Close()

	jsonOut := *output == "json"
	p := &progress{w: stdout, tty: isTerminal(stdout), dedupe: true}
	if jsonOut {
		p.w = io.Discard
	}
	runCtx := ctx
	if *duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	start := time.Now()
	if err := v.Start(runCtx); err != nil {
		if errors.Is(err, peer.ErrClientLimitExceeded) {
			err = fmt.Errorf("%w (the channel has its 10 viewers, or clients connect faster than KVS allows: 3 a second per channel; try again)", err)
		}
		return peerErr(stderr, "viewer", missingChannel(err, *pf.channel, awsCfg.Region, &pf.aws))
	}
	res := v.Channel()
	p.println(fmt.Sprintf("viewer %s on %s (%s, NAT %s): offer sent", v.ClientID(), res.ChannelARN(), res.Region(), pf.mode))
	if jsonOut {
		emitJSON(stdout, jsonLine{Event: "started", ChannelARN: res.ChannelARN(), Region: res.Region(), ClientID: v.ClientID()})
	}
	// What to say while no master answers, and after: a master on the same
	// channel, endpoint and region.
	startMaster := "kvswebrtc master --channel " + *pf.channel + pf.aws.sameService()

	ffDone := make(chan struct{})
	go func() {
		defer close(ffDone)
		if d, err := v.WaitFirstFrame(runCtx); err == nil {
			p.println(fmt.Sprintf("first frame after %s", ms(d)))
			if jsonOut {
				emitJSON(stdout, jsonLine{Event: "firstFrame", ClientID: v.ClientID(), TTFFMs: msf(d)})
			}
		}
	}()

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastBytes uint64
	last := start
	answered := false
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case now := <-tick.C:
			st := v.Stats()
			rate := kbps(st.BytesReceived-lastBytes, now.Sub(last))
			lastBytes, last = st.BytesReceived, now
			answered = answered || st.OfferToAnswer > 0 || st.Frames > 0
			if jsonOut {
				sj := sessionToJSON(st.SessionStats)
				sj.Reoffers, sj.Reconnects = st.Reoffers, st.SignalingReconnects
				emitJSON(stdout, jsonLine{Event: "stats", ClientID: v.ClientID(), ElapsedSeconds: now.Sub(start).Seconds(), KbpsIn: &rate, Session: &sj})
				continue
			}
			head := fmt.Sprintf("%4.0fs  %-10s", now.Sub(start).Seconds(), st.State)
			switch {
			case !answered && now.Sub(start) >= 3*time.Second:
				p.statusKeyed("noanswer", head+"  no master has answered the offer yet; start one: "+startMaster)
			case !answered:
				p.statusKeyed("waiting", head+"  waiting for the master's answer")
			case st.Frames == 0 && st.AudioFrames == 0:
				p.statusKeyed("nomedia", head+"  answered; waiting for media")
			default:
				p.status(head + fmt.Sprintf("  ttff %s  video %d frames (%d key)  audio %d  %.0f kbit/s  lost %d",
					ms(st.TimeToFirstFrame), st.Frames, st.Keyframes, st.AudioFrames, rate, st.PacketsLost))
			}
		}
	}
	<-ffDone
	elapsed := time.Since(start)
	st := v.Stats()
	answered = answered || st.OfferToAnswer > 0 || st.Frames > 0
	v.Close()
	p.done()

	flowing := elapsed - st.TimeToFirstFrame
	var recErr error
	if rec != nil {
		recErr = rec.Close()
	}
	if jsonOut {
		sj := sessionToJSON(st.SessionStats)
		sj.Reoffers, sj.Reconnects = st.Reoffers, st.SignalingReconnects
		rate := kbps(st.BytesReceived, flowing)
		emitJSON(stdout, jsonLine{Event: "summary", ClientID: v.ClientID(), ElapsedSeconds: elapsed.Seconds(), KbpsIn: &rate, Session: &sj})
	} else {
		fmt.Fprintf(stdout, "summary: viewer %s, %s\n", v.ClientID(), elapsed.Round(time.Millisecond))
		if st.TimeToFirstFrame > 0 {
			fmt.Fprintf(stdout, "  time to first frame  %s (connected after %s)\n", ms(st.TimeToFirstFrame), ms(st.Connect))
		} else {
			fmt.Fprintf(stdout, "  time to first frame  none (connected after %s)\n", ms(st.Connect))
		}
		fmt.Fprintf(stdout, "  frames               video %d (key %d), audio %d\n", st.Frames, st.Keyframes, st.AudioFrames)
		fmt.Fprintf(stdout, "  received             %d bytes in %d packets, %.0f kbit/s, %d lost\n",
			st.BytesReceived, st.PacketsReceived, kbps(st.BytesReceived, flowing), st.PacketsLost)
		fmt.Fprintf(stdout, "  candidate pair       %s\n", pair(st.SessionStats))
		if rec != nil {
			fmt.Fprintf(stdout, "  recorded             %d frames to %s\n", rec.Frames(), rec.Path())
		}
	}
	if recErr != nil {
		fmt.Fprintf(stderr, "kvswebrtc viewer: --record: %v\n", recErr)
	}
	switch {
	case st.Frames > 0:
		return 0
	case !answered:
		fmt.Fprintf(stderr, "kvswebrtc viewer: no master answered the offer on channel %q in %s; start one: %s\n",
			*pf.channel, elapsed.Round(100*time.Millisecond), startMaster)
	default:
		fmt.Fprintf(stderr, "kvswebrtc viewer: no media: the master answered, but no video frame arrived in %s\n", elapsed.Round(100*time.Millisecond))
	}
	return 1
}

// missingChannel turns a "channel not found" error into one sentence that
// says how to create it; other errors are returned as they are.
func missingChannel(err error, name, region string, af *awsFlags) error {
	if !errors.Is(err, channel.ErrChannelNotFound) {
		return err
	}
	return fmt.Errorf("signaling channel %q does not exist in %s; create it with `kvswebrtc channel create %s%s`, or add --create",
		name, region, name, af.sameService())
}
