package media

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// A SampleWriter takes encoded samples to send. *webrtc.TrackLocalStaticSample
// is one. WriteSample must not modify or keep s.Data past the call unless it
// copies it: the same sample goes to every writer of a Broadcaster.
type SampleWriter interface {
	// WriteSample sends s; an error is reported to OnWriteError.
	WriteSample(s media.Sample) error
}

// maxLag is how far behind its schedule a Broadcaster may fall (a stalled
// machine, a slow writer) before it gives up catching up and starts its
// schedule again from now, rather than send the backlog in a burst.
const maxLag = 200 * time.Millisecond

// A Broadcaster reads one Source in real time and writes each sample to
// every attached SampleWriter: the media is read once however many viewers
// there are. Writers can be added and removed from any goroutine while Run
// is going.
//
// Pacing: the n-th sample is written when the durations of the samples
// before it have passed since Run wrote the first, measured against that
// one start time, so that errors do not add up over hours. The broadcaster
// keeps time even with no writer attached, as a live camera would; a writer
// added later joins the stream where it is then. A live source (IsLive: a
// camera from OpenURL) is not paced: each sample goes out as it arrives.
//
// Key frames: a video writer added while Run is going gets its first sample
// at the next key frame (see IsKeyframe), so that its first frame can be
// decoded; with the embedded clip that is at most a second away. With fast
// start (SetFastStart) it gets at once the samples since the last key
// frame instead, and needs no wait.
type Broadcaster struct {
	src   Source
	mime  string
	video bool
	clk   clock

	mu        sync.Mutex
	writers   []*writerState // replaced, never changed in place, so Run can range over a copy without the lock
	onError   func(w SampleWriter, err error)
	fastStart bool
	gop       gopCache // the samples since the last key frame, with fast start

	running atomic.Bool
}

type writerState struct {
	w SampleWriter
	// mu is held while a sample is written to w: by Run, and by Add while
	// it writes the samples of fast start, so that Run's next sample comes
	// after them.
	mu    sync.Mutex
	start keyStart
}

// keyStart is the state of one receiver of a stream that must start at a
// key frame: it lets samples (frames) through from the first key frame on.
type keyStart struct{ open bool }

// pass tells whether a sample or frame goes through; key says whether it
// decodes on its own (IsKeyframe).
func (k *keyStart) pass(key bool) bool {
	if !k.open {
		if !key {
			return false
		}
		k.open = true
	}

	return true
}

// Limits of the fast start cache: past them the cache is dropped until the
// next key frame, and a writer added meanwhile waits for it.
const (
	gopMaxFrames = 300
	gopMaxBytes  = 8 << 20
	// burstDuration is the media time given to each cached sample written
	// to a writer that joins: the group of pictures is replayed at once
	// with timestamps close together, so that the first frame decodes at
	// once and a receiver's jitter buffer is not inflated by a second of
	// old media.
	burstDuration = time.Millisecond
)

// gopCache holds the samples since the last key frame (the group of
// pictures). Its slice is never written below its length once shared:
// a new group starts a new slice, so that Add can write a copy of the
// header without the lock.
type gopCache struct {
	samples []media.Sample
	bytes   int
	ok      bool // samples start at a key frame and are within the limits
}

// put adds s, which is a key frame or not.
func (g *gopCache) put(s media.Sample, key bool) {
	if key {
		*g = gopCache{ok: true}
	}
	if !g.ok {
		return
	}
	if len(g.samples) >= gopMaxFrames || g.bytes+len(s.Data) > gopMaxBytes {
		*g = gopCache{}

		return
	}
	s.Data = slices.Clone(s.Data)
	g.samples = append(g.samples, s)
	g.bytes += len(s.Data)
}

// held returns the cached samples, nil if there are none to start with.
func (g *gopCache) held() []media.Sample {
	if !g.ok {
		return nil
	}

	return slices.Clip(g.samples)
}

// NewBroadcaster returns a Broadcaster over src, which must not be nil. It
// does not read src until Run, and it never closes it.
func NewBroadcaster(src Source) *Broadcaster {
	codec := src.Codec()

	return &Broadcaster{src: src, mime: codec.MimeType, video: KindOf(codec) == webrtc.RTPCodecTypeVideo, clk: realClock{}}
}

// Add attaches w, which gets every sample from the next (for video, from
// the next key frame, or with fast start from the last one) until it is
// removed. Adding a writer that is already attached does nothing. w must
// be comparable, as pointers are.
//
// With fast start, Add writes the samples since the last key frame to w
// before it returns, on the caller's goroutine, each with a Duration of
// 1 ms; Run's next sample to w waits for them.
//
// pion drops, without an error, samples written to a
// *webrtc.TrackLocalStaticSample whose connection has not bound it yet;
// add such a track once its peer connection is connected, or its viewer
// waits for the key frame after the one it missed.
func (b *Broadcaster) Add(w SampleWriter) {
	b.mu.Lock()
	if slices.ContainsFunc(b.writers, func(s *writerState) bool { return s.w == w }) {
		b.mu.Unlock()

		return
	}
	ws := &writerState{w: w}
	var burst []media.Sample
	if b.fastStart {
		burst = b.gop.held()
	}
	onError := b.onError
	ws.mu.Lock() // before Run can see ws: its first sample comes after the burst
	defer ws.mu.Unlock()
	b.writers = append(slices.Clip(b.writers), ws)
	b.mu.Unlock()
	if len(burst) == 0 {
		return
	}
	ws.start.open = true
	for _, s := range burst {
		s.Duration = burstDuration
		if err := w.WriteSample(s); err != nil && onError != nil {
			onError(w, err)
		}
	}
}

// Remove detaches w and reports whether it was attached. A sample that Run
// is writing at that moment may still reach w.
func (b *Broadcaster) Remove(w SampleWriter) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.writers, func(s *writerState) bool { return s.w == w })
	if i < 0 {
		return false
	}
	b.writers = slices.Delete(slices.Clone(b.writers), i, i+1)

	return true
}

// Len is the number of writers attached.
func (b *Broadcaster) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()

	return len(b.writers)
}

// OnWriteError sets a function to call when a writer's WriteSample fails.
// The writer stays attached: a *webrtc.TrackLocalStaticSample, for one,
// fails while a peer connection is closing. The function is called on
// Run's goroutine (for the samples of fast start, on Add's) and delays the
// next sample while it runs; nil (the default) ignores write errors.
func (b *Broadcaster) OnWriteError(f func(w SampleWriter, err error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onError = f
}

// SetFastStart turns fast start on or off (it is off by default). With it,
// a video Broadcaster keeps the samples since the last key frame (up to
// 300 samples and 8 MiB; past that, nothing until the next key frame), and
// Add writes them at once to a new writer, so that its first frame is a
// key frame that needs no wait. Audio needs no key frame, and an audio
// Broadcaster keeps nothing. Turning it off drops what is kept.
func (b *Broadcaster) SetFastStart(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fastStart = on && b.video
	if !b.fastStart {
		b.gop = gopCache{}
	}
}

// Run reads the source and writes its samples in real time until the
// source ends (Run returns nil), ctx is done (ctx.Err()) or the source
// fails (its error). A source with Options.Loop never ends. Run does not
// return write errors; see OnWriteError. Only one Run may be in progress at
// a time; another returns ErrRunning. Run may be called again after it
// returns, and goes on from where the source is.
func (b *Broadcaster) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer b.running.Store(false)

	var (
		start time.Time
		at    time.Duration // media time of the next sample since start
		first = true
		live  = IsLive(b.src)
	)
	for {
		s, err := b.src.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if live {
			b.write(s) // a live source comes in real time already
			continue
		}
		if first {
			start, first = b.clk.Now(), false
		} else if lag := b.clk.Now().Sub(start.Add(at)); lag > maxLag {
			start = start.Add(lag)
		}
		if err := b.clk.SleepUntil(ctx, start.Add(at)); err != nil {
			return err
		}
		b.write(s)
		at += s.Duration
	}
}

// write hands one sample to each writer.
func (b *Broadcaster) write(s media.Sample) {
	key := IsKeyframe(b.mime, s.Data)
	b.mu.Lock()
	if b.fastStart {
		b.gop.put(s, key)
	}
	writers, onError := b.writers, b.onError
	b.mu.Unlock()

	for _, ws := range writers {
		ws.mu.Lock()
		if ws.start.pass(key) {
			if err := ws.w.WriteSample(s); err != nil && onError != nil {
				onError(ws.w, err)
			}
		}
		ws.mu.Unlock()
	}
}

// Stream writes src to each of writers in real time until src ends (it
// returns nil), ctx is done (ctx.Err()) or src fails: a Broadcaster with a
// fixed set of writers. Write errors are ignored; use a Broadcaster to see
// them or to change the writers on the way.
func Stream(ctx context.Context, src Source, writers ...SampleWriter) error {
	b := NewBroadcaster(src)
	for _, w := range writers {
		b.Add(w)
	}

	return b.Run(ctx)
}

// clock is the time a Broadcaster paces itself by; tests replace it.
type clock interface {
	Now() time.Time
	// SleepUntil returns at t, or with ctx.Err() when ctx is done first.
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// IsLive reports whether src is a live source (a camera opened with
// OpenURL): one whose Next returns each sample as it arrives, so that a
// Broadcaster writes it at once instead of pacing it by the durations.
func IsLive(src Source) bool {
	l, ok := src.(interface{ Live() bool })
	return ok && l.Live()
}
