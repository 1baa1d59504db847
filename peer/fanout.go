package peer

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/kvswebrtc/kvswebrtc/media"
)

// Limits of the GOP cache of a video fanout: past them the cache is dropped
// until the next key frame, and a viewer that joins meanwhile waits for it.
const (
	gopMaxFrames = 300
	gopMaxBytes  = 8 << 20
	// burstDuration is the media time given to each cached frame sent to a
	// joining viewer: the cached group of pictures is replayed at once with
	// timestamps close together, so the first frame decodes at once and the
	// receiver's jitter buffer is not inflated by a second of old media.
	burstDuration = time.Millisecond
)

// fanout is the one writer a media.Broadcaster feeds for a Master: it
// writes each sample to the track of every connected session. The
// Broadcaster reads and paces the source once; each session has its own
// TrackLocalStaticSample (so that a joining viewer can be started on its
// own), and packetisation is per session.
//
// For video it keeps the samples since the last key frame (the group of
// pictures): a session that joins gets them at once, so its first frame is
// a key frame that needs no wait (fast start).
type fanout struct {
	mime  string
	video bool
	cache bool

	mu       sync.Mutex
	tracks   []*fanTrack
	gop      []pmedia.Sample
	gopBytes int
	gopOK    bool
}

type fanTrack struct {
	t             *webrtc.TrackLocalStaticSample
	started       bool
	frames, bytes uint64
}

func newFanout(codec webrtc.RTPCodecCapability, cache bool) *fanout {
	video := media.KindOf(codec) == webrtc.RTPCodecTypeVideo
	return &fanout{mime: codec.MimeType, video: video, cache: cache && video}
}

// WriteSample implements media.SampleWriter.
func (f *fanout) WriteSample(s pmedia.Sample) error {
	key := !f.video || media.IsKeyframe(f.mime, s.Data)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cache {
		if key {
			clear(f.gop)
			f.gop, f.gopBytes, f.gopOK = f.gop[:0], 0, true
		}
		if f.gopOK {
			if len(f.gop) >= gopMaxFrames || f.gopBytes+len(s.Data) > gopMaxBytes {
				clear(f.gop)
				f.gop, f.gopBytes, f.gopOK = f.gop[:0], 0, false
			} else {
				c := s
				c.Data = slices.Clone(s.Data)
				f.gop = append(f.gop, c)
				f.gopBytes += len(c.Data)
			}
		}
	}
	for _, ft := range f.tracks {
		if !ft.started {
			if !key {
				continue
			}
			ft.started = true
		}
		if ft.t.WriteSample(s) == nil { // fails only while a connection closes
			ft.frames++
			ft.bytes += uint64(len(s.Data))
		}
	}
	return nil
}

// add attaches t; for video it first writes the cached group of pictures.
func (f *fanout) add(t *webrtc.TrackLocalStaticSample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.ContainsFunc(f.tracks, func(ft *fanTrack) bool { return ft.t == t }) {
		return
	}
	ft := &fanTrack{t: t, started: !f.video}
	if f.cache && f.gopOK && len(f.gop) > 0 {
		for _, s := range f.gop {
			s.Duration = burstDuration
			if t.WriteSample(s) == nil {
				ft.frames++
				ft.bytes += uint64(len(s.Data))
			}
		}
		ft.started = true
	}
	f.tracks = append(f.tracks, ft)
}

// remove detaches t.
func (f *fanout) remove(t *webrtc.TrackLocalStaticSample) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tracks = slices.DeleteFunc(f.tracks, func(ft *fanTrack) bool { return ft.t == t })
}

// counts returns the samples and bytes written to t.
func (f *fanout) counts(t *webrtc.TrackLocalStaticSample) (frames, bytes uint64) {
	if f == nil || t == nil {
		return 0, 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ft := range f.tracks {
		if ft.t == t {
			return ft.frames, ft.bytes
		}
	}
	return 0, 0
}

// sendMedia reads each source that is set once, in real time, into its
// fan-out, on goroutines of t that end with ctx.
func sendMedia(ctx context.Context, t *tracker, log *slog.Logger, video media.Source, vf *fanout, audio media.Source, af *fanout) {
	for _, s := range []struct {
		src media.Source
		f   *fanout
	}{{video, vf}, {audio, af}} {
		if s.src == nil {
			continue
		}
		b := media.NewBroadcaster(s.src)
		b.Add(s.f)
		t.goRun(func() {
			if err := b.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("peer: media source failed", "codec", s.src.Codec().MimeType, "err", err)
			}
		})
	}
}
