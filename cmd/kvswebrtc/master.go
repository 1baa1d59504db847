package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
		summary: "stream a clip (or your files) as the master of a signaling channel",
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
	fs := newFlagSet("master", "--channel NAME [flags]", stderr)
	chName := fs.String("channel", "", "signaling channel `NAME` or ARN (required)")
	var af awsFlags
	af.register(fs)
	videoPath := fs.String("video", "", "video `FILE` to loop: .ivf (VP8/VP9/AV1) or .h264 (Annex-B); with neither --video nor --audio the embedded clip (VP8 + Opus) is sent, with only one of them only that one")
	audioPath := fs.String("audio", "", "audio `FILE` to loop: .ogg/.opus (Opus); see --video")
	create := fs.Bool("create", false, "create the channel if it does not exist")
	nat := natFlag(fs)
	maxViewers := fs.Int("max-viewers", peer.DefaultMaxViewers, "`N` viewers served at once, 1..10 (KVS allows 10 per channel)")
	statsEvery := fs.Duration("stats-interval", 10*time.Second, "print every viewer's stats this often; 0 turns it off")
	level := fs.String("log-level", "warn", "log level: debug, info or warn")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "kvswebrtc master: "+format+"\n", a...)
		return 2
	}
	if *chName == "" {
		return fail("--channel is required (a signaling channel name or ARN)")
	}
	mode, err := nat()
	if err != nil {
		return fail("%v", err)
	}
	if *maxViewers < 1 || *maxViewers > peer.DefaultMaxViewers {
		return fail("--max-viewers %d is not between 1 and %d", *maxViewers, peer.DefaultMaxViewers)
	}
	if *statsEvery < 0 {
		return fail("--stats-interval %s must not be negative", *statsEvery)
	}
	logger, err := newLogger(*level, stderr)
	if err != nil {
		return fail("%v", err)
	}

	var video, audio media.Source
	if *videoPath == "" && *audioPath == "" {
		video = media.DefaultVideo(media.Options{Loop: true})
		audio = media.DefaultAudio(media.Options{Loop: true})
	}
	if *videoPath != "" {
		if video, err = openSource("--video", *videoPath, webrtc.RTPCodecTypeVideo); err != nil {
			return fail("%v", err)
		}
	}
	if *audioPath != "" {
		if audio, err = openSource("--audio", *audioPath, webrtc.RTPCodecTypeAudio); err != nil {
			if video != nil {
				video.Close()
			}
			return fail("%v", err)
		}
	}
	defer func() {
		for _, s := range []media.Source{video, audio} {
			if s != nil {
				s.Close()
			}
		}
	}()

	cfg, err := af.load(ctx, stderr)
	if err != nil {
		return exitErr(stderr, "master", err)
	}
	out := &syncWriter{w: stdout}
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: cfg, Channel: *chName, CreateIfMissing: *create, NAT: mode},
		Video:         video,
		Audio:         audio,
		MaxViewers:    *maxViewers,
		Logger:        logger,
	})
	if err != nil {
		if errors.Is(err, channel.ErrChannelNotFound) && !*create {
			err = fmt.Errorf("%w (add --create to create it)", err)
		}
		return peerErr(stderr, "master", err)
	}
	defer m.Close()
	closing := make(chan struct{})
	m.OnViewerJoined(func(id string) {
		fmt.Fprintf(out, "%s viewer %s joined (%d connected)\n", stamp(), id, len(m.Viewers()))
	})
	m.OnViewerLeft(func(id string, reason error) {
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
	what := "the embedded clip"
	if *videoPath != "" || *audioPath != "" {
		what = strings.TrimSpace(*videoPath + " " + *audioPath)
	}
	res := m.Channel()
	fmt.Fprintf(out, "master on %s (%s, NAT %s): sending %s (%s, looped) to up to %d viewers; Ctrl-C to stop\n",
		res.ChannelARN(), res.Region(), mode, what, strings.Join(sending, " + "), *maxViewers)

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
			if err != nil {
				logger.Debug("closing the signaling connection", "err", err)
			}
			return 0
		case <-tick:
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
