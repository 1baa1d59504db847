package peer

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/kvswebrtc/kvswebrtc/media"
)

// outMedia is the media a Master or a Viewer sends: one media.Broadcaster
// a source, which reads it once, in real time, and writes each sample to
// the track of every connected session. Each session has its own
// TrackLocalStaticSample (so that a joining viewer can be started on its
// own), and packetisation is per session. The Broadcaster starts each
// track at a key frame and, with fast start, at once at the last one.
type outMedia struct {
	video, audio       *media.Broadcaster // nil for a source not set
	videoSrc, audioSrc media.Source
}

func newOutMedia(video, audio media.Source, fastStart bool) outMedia {
	o := outMedia{videoSrc: video, audioSrc: audio}
	if video != nil {
		o.video = media.NewBroadcaster(video)
		o.video.SetFastStart(fastStart)
	}
	if audio != nil {
		o.audio = media.NewBroadcaster(audio)
	}
	return o
}

// run reads each source that is set, on goroutines of t that end with ctx.
func (o outMedia) run(ctx context.Context, t *tracker, log *slog.Logger) {
	for _, s := range []struct {
		src media.Source
		b   *media.Broadcaster
	}{{o.videoSrc, o.video}, {o.audioSrc, o.audio}} {
		if s.b == nil {
			continue
		}
		t.goRun(func() {
			if err := s.b.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Warn("peer: media source failed", "codec", s.src.Codec().MimeType, "err", err)
			}
		})
	}
}

// add attaches a session's tracks (either may be nil).
func (o outMedia) add(video, audio *sendTrack) {
	if o.video != nil && video != nil {
		o.video.Add(video)
	}
	if o.audio != nil && audio != nil {
		o.audio.Add(audio)
	}
}

// remove detaches a session's tracks (either may be nil).
func (o outMedia) remove(video, audio *sendTrack) {
	if o.video != nil && video != nil {
		o.video.Remove(video)
	}
	if o.audio != nil && audio != nil {
		o.audio.Remove(audio)
	}
}

// sendTrack is one session's local track of a source; it counts the
// samples and bytes written to it.
type sendTrack struct {
	*webrtc.TrackLocalStaticSample
	frames, bytes atomic.Uint64
}

// WriteSample implements media.SampleWriter. It fails only while the
// peer connection closes.
func (t *sendTrack) WriteSample(s pmedia.Sample) error {
	if err := t.TrackLocalStaticSample.WriteSample(s); err != nil {
		return err
	}
	t.frames.Add(1)
	t.bytes.Add(uint64(len(s.Data)))
	return nil
}

// sent returns the samples and bytes written to the tracks (either may be
// nil).
func sent(tracks ...*sendTrack) (frames, bytes uint64) {
	for _, t := range tracks {
		if t != nil {
			frames += t.frames.Load()
			bytes += t.bytes.Load()
		}
	}
	return frames, bytes
}
