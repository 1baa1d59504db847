package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

func init() {
	register(&command{
		name:    "master",
		summary: "stream a camera (RTSP, RTP), a clip or your files as the master of a signaling channel",
		run:     runMaster,
	})
}

// syncWriter serialises writes from the peers' goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// natFlag registers --nat and returns a function that parses it.
func natFlag(fs *flag.FlagSet) func() (channel.NATTraversal, error) {
	s := fs.String("nat", "stun-turn", "NAT traversal: stun-turn, turn-only, stun-only or disabled (host candidates only)")
	return func() (channel.NATTraversal, error) {
		n, err := channel.ParseNATTraversal(*s)
		if err != nil {
			return 0, fmt.Errorf("--nat %q is not stun-turn, turn-only, stun-only or disabled", *s)
		}
		return n, nil
	}
}

// openSource opens a media file given with flag name for kind.
func openSource(flagName, path string, kind webrtc.RTPCodecType) (media.Source, error) {
	src, err := media.Open(path, media.Options{Loop: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	if src.Kind() != kind {
		src.Close()
		return nil, fmt.Errorf("%s %s holds %s (%s), not %s", flagName, path, src.Kind(), src.Codec().MimeType, kind)
	}
	return src, nil
}

// describeSource names a source's codec for the output.
func describeSource(src media.Source) string {
	return strings.TrimPrefix(strings.TrimPrefix(src.Codec().MimeType, "video/"), "audio/")
}

func runMaster(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	pf := newPeerFlags("master", stderr)
	fs := pf.fs
	source := fs.String("source", "", "what to stream: an RTSP camera `URL` (rtsp://[user:pass@]host[:port]/path), RTP sent to this host (rtp://127.0.0.1:5004 with --sdp), or a media FILE (as --video/--audio); default the embedded clip")
	sdpFile := fs.String("sdp", "", "session description `FILE` of an rtp:// --source, as ffmpeg -sdp_file writes it")
	transport := fs.String("transport", "tcp", "RTSP transport: tcp (RTP inside the RTSP connection) or udp")
	onDemand := fs.Bool("on-demand", false, "pull the RTSP camera only while at least one viewer is connected")
	skipUnsupported := fs.Bool("skip-unsupported", false, "drop camera tracks WebRTC cannot take (AAC audio, say) instead of failing")
	nackHistory := fs.Int("nack-history", 256, "sent RTP packets kept per viewer stream for retransmissions (a power of two; pion's default is 1024, 256 keeps a camera-side device's memory down)")
	recordViewers := fs.String("record-viewers", "", "write each viewer's audio (two-way audio) to `DIR`/<viewer>-<time>.ogg")
	videoPath := fs.String("video", "", "video `FILE` to loop: .ivf (VP8/VP9/AV1) or .h264 (Annex-B); with neither --video nor --audio the embedded clip (VP8 + Opus) is sent, with only one of them only that one")
	audioPath := fs.String("audio", "", "audio `FILE` to loop: .ogg/.opus (Opus); see --video")
	create := fs.Bool("create", false, "create the channel if it does not exist")
	ingest := ingestFlag(fs)
	maxViewers := fs.Int("max-viewers", peer.DefaultMaxViewers, "`N` viewers served at once, 1..10 (KVS allows 10 per channel)")
	statsEvery := fs.Duration("stats-interval", 10*time.Second, "print every viewer's stats this often; 0 turns it off")
	output := outputFlag(fs, "text", "json") // json: JSON lines on stdout, the text lines on stderr
	fs.Lookup("output").Usage = "output `FORMAT`: text, or json: JSON lines on stdout (started, viewerJoined, viewerLeft, stats every --stats-interval, stopped), the text on stderr"
	if code, ok := pf.parse(args, func() error {
		if *maxViewers < 1 || *maxViewers > peer.DefaultMaxViewers {
			return fmt.Errorf("--max-viewers %d is not between 1 and %d", *maxViewers, peer.DefaultMaxViewers)
		}
		if *statsEvery < 0 {
			return fmt.Errorf("--stats-interval %s must not be negative", *statsEvery)
		}
		return nil
	}); !ok {
		return code
	}

	var (
		video, audio media.Source
		live         *media.LiveStream
		err          error
	)
	switch {
	case *source != "" && (*videoPath != "" || *audioPath != ""):
		return pf.fail("--source and --video/--audio are alternatives: give one or the other")
	case *sdpFile != "" && !strings.HasPrefix(*source, "rtp://"):
		return pf.fail("--sdp goes with an rtp:// --source")
	case *onDemand && !strings.HasPrefix(*source, "rtsp"):
		return pf.fail("--on-demand needs an RTSP camera (--source rtsp://...)")
	case *recordViewers != "":
		if err := os.MkdirAll(*recordViewers, 0o755); err != nil {
			return pf.fail("--record-viewers: %v", err)
		}
	}
	if *transport != "tcp" && *transport != "udp" {
		return pf.fail("--transport %q is not tcp or udp", *transport)
	}
	switch {
	case strings.Contains(*source, "://"):
		fmt.Fprintf(stdout, "opening %s ...\n", media.RedactURL(*source))
		live, err = media.OpenURL(ctx, *source, media.URLOptions{
			Transport: *transport, SDP: *sdpFile, OnDemand: *onDemand, SkipUnsupported: *skipUnsupported, Logger: pf.logger,
		})
		if err != nil {
			return exitErr(stderr, "master", err)
		}
		defer live.Close()
		video, audio = live.Video, live.Audio
	case *source != "":
		src, err := media.Open(*source, media.Options{Loop: true})
		if err != nil {
			return pf.fail("--source: %v", err)
		}
		if src.Kind() == webrtc.RTPCodecTypeVideo {
			video = src
		} else {
			audio = src
		}
	case *videoPath == "" && *audioPath == "" && ingest.mode != peer.IngestOff: // ingestion takes H.264
		video = media.DefaultH264(media.Options{Loop: true})
		audio = media.DefaultAudio(media.Options{Loop: true})
	case *videoPath == "" && *audioPath == "":
		video = media.DefaultVideo(media.Options{Loop: true})
		audio = media.DefaultAudio(media.Options{Loop: true})
	}
	if *videoPath != "" {
		if video, err = openSource("--video", *videoPath, webrtc.RTPCodecTypeVideo); err != nil {
			return pf.fail("%v", err)
		}
	}
	if *audioPath != "" {
		if audio, err = openSource("--audio", *audioPath, webrtc.RTPCodecTypeAudio); err != nil {
			if video != nil {
				video.Close()
			}
			return pf.fail("%v", err)
		}
	}
	defer func() {
		for _, s := range []media.Source{video, audio} {
			if s != nil {
				s.Close()
			}
		}
	}()

	cfg, err := pf.aws.load(ctx, stderr)
	if err != nil {
		return exitErr(stderr, "master", err)
	}
	out := &syncWriter{w: textOut(*output, stdout, stderr)}
	mj := newMasterJSON(*output, stdout)
	mcfg := peer.MasterConfig{
		ChannelConfig:    peer.ChannelConfig{AWS: cfg, Channel: *pf.channel, CreateIfMissing: *create, NAT: pf.mode},
		Video:            video,
		Audio:            audio,
		MaxViewers:       *maxViewers,
		DisableFastStart: *onDemand, // the cached pictures of an on-demand camera are from its last session
		Settings:         peer.Settings{NACKHistory: *nackHistory},
		Logger:           pf.logger,
		Ingestion:        ingest.mode,
	}
	if *recordViewers != "" {
		mcfg.ViewerSinks = viewerRecorders(*recordViewers, out)
	}
	m, err := peer.NewMaster(ctx, mcfg)
	if err != nil {
		return peerErr(stderr, "master", missingChannel(err, *pf.channel, cfg.Region, &pf.aws))
	}
	defer m.Close()
	printIngestion(m, out)
	closing := make(chan struct{})
	var joinedMu sync.Mutex
	joined := map[string]bool{}
	m.OnViewerJoined(func(id string) {
		joinedMu.Lock()
		joined[id] = true
		joinedMu.Unlock()
		if live != nil {
			live.Acquire()
		}
		fmt.Fprintf(out, "%s viewer %s joined (%d connected)\n", stamp(), id, len(m.Viewers()))
		mj.joined(id, len(m.Viewers()))
	})
	m.OnViewerLeft(func(id string, reason error) {
		joinedMu.Lock()
		was := joined[id]
		delete(joined, id)
		joinedMu.Unlock()
		if was && live != nil {
			live.Release()
		}
		select {
		case <-closing:
			return
		default:
		}
		if errors.Is(reason, peer.ErrTooManyViewers) {
			fmt.Fprintf(out, "%s viewer %s refused: already serving %d viewers (--max-viewers)\n", stamp(), id, *maxViewers)
			return
		}
		fmt.Fprintf(out, "%s viewer %s left: %v\n", stamp(), id, reason)
		mj.left(id, reason)
	})
	if err := m.Start(ctx); err != nil {
		return exitErr(stderr, "master", err)
	}
	var sending []string
	if video != nil {
		sending = append(sending, describeSource(video)+" video")
	}
	if audio != nil {
		sending = append(sending, describeSource(audio)+" audio")
	}
	what, how := "the embedded clip", "looped"
	switch {
	case live != nil:
		what, how = live.String(), "passed through"
		if *onDemand {
			how += ", pulled while a viewer is connected"
		}
	case *source != "":
		what = *source
	case *videoPath != "" || *audioPath != "":
		what = strings.TrimSpace(*videoPath + " " + *audioPath)
	}
	res := m.Channel()
	mj.started(res.ChannelARN(), res.Region())
	fmt.Fprintf(out, "master on %s (%s, NAT %s): sending %s (%s, %s) to up to %d viewers; Ctrl-C to stop\n",
		res.ChannelARN(), res.Region(), pf.mode, what, strings.Join(sending, " + "), how, *maxViewers)
	if live != nil {
		live.OnStatus(func(s media.LiveStatus) {
			if s.Err != nil {
				fmt.Fprintf(out, "%s camera %s (attempt %d): %v\n", stamp(), s.State, s.Attempt, s.Err)
				return
			}
			fmt.Fprintf(out, "%s camera %s\n", stamp(), s.State)
		})
	}
	prog := masterProgress{m: m, live: live, last: time.Now()}

	var tick <-chan time.Time
	if *statsEvery > 0 {
		t := time.NewTicker(*statsEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			close(closing)
			err := m.Close()
			fmt.Fprintf(out, "%s master stopped\n", stamp())
			mj.stopped()
			if err != nil {
				pf.logger.Debug("closing the signaling connection", "err", err)
			}
			return 0
		case <-tick:
			if mj.stats(m) {
				continue
			}
			fmt.Fprintf(out, "%s %s\n", stamp(), prog.line())
			if st := m.Stats(); len(st) > 0 {
				fmt.Fprintf(out, "%s stats\n%s\n", stamp(), peer.FormatMasterStats(st))
			}
		}
	}
}

// peerErr prints err for command name and returns its exit code: 2 for a
// configuration the peer package refused (a flag's value), else 1.
func peerErr(stderr io.Writer, name string, err error) int {
	if errors.Is(err, peer.ErrInvalidConfig) {
		fmt.Fprintf(stderr, "kvswebrtc %s: %v\n", name, err)
		return 2
	}
	return exitErr(stderr, name, err)
}

// stamp is the time of day for event lines.
func stamp() string { return time.Now().Format("15:04:05") }

// masterProgress makes the master's periodic line: viewers connected, bitrate in
// (from the camera) and out (to all viewers), and the camera's state.
type masterProgress struct {
	m               *peer.Master
	live            *media.LiveStream
	last            time.Time
	lastIn, lastOut uint64
}

func (p *masterProgress) line() string {
	now := time.Now()
	secs := now.Sub(p.last).Seconds()
	var out uint64
	for _, st := range p.m.Stats() {
		out += st.BytesSent
	}
	kbps := func(delta uint64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(delta) * 8 / 1000 / secs
	}
	// A session that ended takes its bytes away: never print a negative rate.
	dOut := uint64(0)
	if out >= p.lastOut {
		dOut = out - p.lastOut
	}
	s := fmt.Sprintf("viewers %d  out %.0f kbit/s", len(p.m.Viewers()), kbps(dOut))
	if p.live != nil {
		st := p.live.Status()
		s += fmt.Sprintf("  in %.0f kbit/s  camera %s", kbps(st.BytesIn-p.lastIn), st.State)
		if st.Err != nil {
			s += fmt.Sprintf(" (%v)", st.Err)
		}
		p.lastIn = st.BytesIn
	}
	p.last, p.lastOut = now, out
	return s
}

// viewerRecorders returns the MasterConfig.ViewerSinks of --record-viewers:
// each viewer's audio goes to an Ogg file in dir.
func viewerRecorders(dir string, out io.Writer) func(string, *webrtc.TrackRemote) []media.Sink {
	return func(id string, track *webrtc.TrackRemote) []media.Sink {
		if track.Kind() != webrtc.RTPCodecTypeAudio || !strings.EqualFold(track.Codec().MimeType, webrtc.MimeTypeOpus) {
			return nil
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-%s.ogg", id, time.Now().Format("20060102-150405")))
		rec, err := media.NewRecorder(path)
		if err != nil {
			fmt.Fprintf(out, "%s viewer %s: cannot record its audio: %v\n", stamp(), id, err)
			return nil
		}
		fmt.Fprintf(out, "%s viewer %s: recording its audio to %s\n", stamp(), id, path)
		return []media.Sink{rec}
	}
}
