package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// fakeClock is a virtual clock: SleepUntil moves it to the deadline at
// once and records the deadline. jump, if set, is called before each Now
// and may move the clock forward, as a stalled machine would.
type fakeClock struct {
	mu        sync.Mutex
	now       time.Time
	deadlines []time.Time
	jump      func(calls int) time.Duration
	calls     int
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.jump != nil {
		c.now = c.now.Add(c.jump(c.calls))
	}

	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadlines = append(c.deadlines, t)
	if t.After(c.now) {
		c.now = t
	}

	return ctx.Err()
}

// recorder is a SampleWriter that keeps what it gets.
type recorder struct {
	mu      sync.Mutex
	samples []media.Sample
	onWrite func(n int)
	err     error
}

func (r *recorder) WriteSample(s media.Sample) error {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	n := len(r.samples)
	fn := r.onWrite
	r.mu.Unlock()
	if fn != nil {
		fn(n)
	}

	return r.err
}

func (r *recorder) got() []media.Sample {
	r.mu.Lock()
	defer r.mu.Unlock()

	return append([]media.Sample(nil), r.samples...)
}

// limited ends a source after n samples.
type limited struct {
	Source
	n int
}

func (l *limited) Next(ctx context.Context) (media.Sample, error) {
	if l.n <= 0 {
		return media.Sample{}, errEndOfTest
	}
	l.n--

	return l.Source.Next(ctx)
}

var errEndOfTest = errors.New("end of test source")

// testWait bounds every wait of these tests for an event, so that a test
// fails with a message instead of hanging; generous for -race on a loaded
// 2-core machine.
const testWait = 20 * time.Second

// eventually polls cond every millisecond until it holds, and reports
// false if it still does not after testWait. It may run on any goroutine:
// the caller reports the failure.
func eventually(cond func() bool) bool {
	deadline := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}

	return true
}

// waitFor fails the test if cond does not hold within testWait. Call it
// from the test's goroutine only.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !eventually(cond) {
		t.Fatalf("timed out after %v waiting for %s", testWait, what)
	}
}

// receive returns the next value of ch, or fails the test if none comes
// within testWait. Call it from the test's goroutine only.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(testWait):
		t.Fatalf("timed out after %v waiting for %s", testWait, what)
		panic("unreachable")
	}
}

func TestBroadcasterPacing(t *testing.T) {
	want := readAll(t, DefaultVideo(Options{}))
	clk := newFakeClock()
	start := clk.now
	b := NewBroadcaster(DefaultVideo(Options{}))
	b.clk = clk
	writers := []*recorder{{}, {}, {}}
	for _, w := range writers {
		b.Add(w)
	}
	b.Add(writers[0]) // twice: no effect
	if b.Len() != 3 {
		t.Fatalf("Len() = %d, want 3", b.Len())
	}
	if err := b.Run(context.Background()); err != nil {
		t.Fatalf("Run = %v, want nil at the end of the clip", err)
	}

	// Sample n is due when the durations of the samples before it have
	// passed since the first one.
	if len(clk.deadlines) != len(want) {
		t.Fatalf("%d waits, want %d", len(clk.deadlines), len(want))
	}
	var at time.Duration
	for i, d := range clk.deadlines {
		if got := d.Sub(start); got != at {
			t.Fatalf("sample %d due at %v, want %v", i, got, at)
		}
		at += want[i].Duration
	}
	if got := clk.now.Sub(start); got != 5*time.Second-want[len(want)-1].Duration {
		t.Errorf("the last sample went out %v after the first", got)
	}
	for i, w := range writers {
		got := w.got()
		if len(got) != len(want) {
			t.Fatalf("writer %d got %d samples, want %d", i, len(got), len(want))
		}
		for j := range got {
			if !bytes.Equal(got[j].Data, want[j].Data) || got[j].Duration != want[j].Duration {
				t.Fatalf("writer %d, sample %d differs from the clip", i, j)
			}
		}
	}
}

// TestBroadcasterLag checks that after a stall the schedule starts again
// from now instead of sending the backlog at once.
func TestBroadcasterLag(t *testing.T) {
	clk := newFakeClock()
	// The 21st call to Now (the 21st sample) comes 3 s late.
	clk.jump = func(calls int) time.Duration {
		if calls == 21 {
			return 3 * time.Second
		}

		return 0
	}
	b := NewBroadcaster(&limited{Source: DefaultAudio(Options{}), n: 40})
	b.clk = clk
	b.Add(&recorder{})
	if err := b.Run(context.Background()); !errors.Is(err, errEndOfTest) {
		t.Fatalf("Run = %v, want the source's error", err)
	}
	for i := 1; i < len(clk.deadlines); i++ {
		gap := clk.deadlines[i].Sub(clk.deadlines[i-1])
		want := 20 * time.Millisecond
		if i == 20 {
			// The clock stood at sample 19 + 3 s: sample 20 goes out
			// then, and the pace goes on from it.
			want = 3 * time.Second
		}
		if gap != want {
			t.Errorf("gap before sample %d is %v, want %v", i, gap, want)
		}
	}
	// A lag under maxLag is caught up, not skipped.
	clk = newFakeClock()
	clk.jump = func(calls int) time.Duration {
		if calls == 5 {
			return maxLag / 2
		}

		return 0
	}
	b = NewBroadcaster(&limited{Source: DefaultAudio(Options{}), n: 10})
	b.clk = clk
	_ = b.Run(context.Background())
	if got := clk.deadlines[9].Sub(clk.deadlines[0]); got != 9*20*time.Millisecond {
		t.Errorf("after a small lag the 10th sample is due %v after the first, want 180ms", got)
	}
}

// joinLate runs a Broadcaster over src (with fast start or not) with one
// writer from the start and one added after it got n samples, and returns
// what each got.
func joinLate(t *testing.T, src Source, fastStart bool, n int) (early, late []media.Sample) {
	t.Helper()
	b := NewBroadcaster(src)
	b.clk = newFakeClock()
	b.SetFastStart(fastStart)
	lw := &recorder{}
	ew := &recorder{onWrite: func(got int) {
		if got == n {
			b.Add(lw)
		}
	}}
	b.Add(ew)
	if err := b.Run(context.Background()); err != nil && !errors.Is(err, errEndOfTest) {
		t.Fatal(err)
	}

	return ew.got(), lw.got()
}

// TestBroadcasterJoinAtKeyframe adds a writer in the middle of a group of
// pictures: it must start at the next key frame.
func TestBroadcasterJoinAtKeyframe(t *testing.T) {
	e, l := joinLate(t, DefaultVideo(Options{}), false, 10)
	if len(e) != DefaultVideoFrames {
		t.Fatalf("early writer got %d samples, want %d", len(e), DefaultVideoFrames)
	}
	// Key frames are every 30 frames: the late writer starts at frame 30.
	if len(l) != DefaultVideoFrames-30 {
		t.Fatalf("late writer got %d samples, want %d", len(l), DefaultVideoFrames-30)
	}
	if !IsKeyframe(webrtc.MimeTypeVP8, l[0].Data) || !bytes.Equal(l[0].Data, e[30].Data) {
		t.Error("late writer did not start at the key frame of frame 30")
	}

	// Audio has no key frames to wait for.
	if _, late := joinLate(t, &limited{Source: DefaultAudio(Options{}), n: 20}, false, 5); len(late) != 15 {
		t.Errorf("late audio writer got %d samples, want 15", len(late))
	}
}

// TestBroadcasterConcurrentWriters adds and removes writers from many
// goroutines while Run goes (run with -race).
func TestBroadcasterConcurrentWriters(t *testing.T) {
	b := NewBroadcaster(DefaultVideo(Options{Loop: true}))
	b.clk = newFakeClock() // no waiting: as fast as it goes
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	var wg sync.WaitGroup
	var bad, stuck atomic.Int32
	for range 10 {
		wg.Go(func() {
			for range 20 {
				w := &recorder{}
				b.Add(w)
				if !eventually(func() bool { return len(w.got()) >= 3 }) {
					stuck.Add(1)
					b.Remove(w)

					return
				}
				if !b.Remove(w) {
					bad.Add(1)
				}
				n := len(w.got())
				// With the fake clock Run writes as fast as it can: in
				// 20 ms dozens of samples would reach a writer still
				// attached. At most the sample in flight at Remove may
				// still land.
				time.Sleep(20 * time.Millisecond)
				if len(w.got()) > n+1 {
					bad.Add(1)
				}
				if got := w.got(); !IsKeyframe(b.mime, got[0].Data) {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if stuck.Load() != 0 {
		t.Errorf("%d writers got fewer than 3 samples within %v", stuck.Load(), testWait)
	}
	if bad.Load() != 0 {
		t.Errorf("%d writers saw samples after Remove, or did not start at a key frame", bad.Load())
	}
	if b.Len() != 0 {
		t.Errorf("Len() = %d after every writer was removed", b.Len())
	}
	if b.Remove(&recorder{}) {
		t.Error("Remove of a writer never added reported true")
	}
	cancel()
	if err := receive(t, done, "Run to return after cancel"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

// TestBroadcasterFastStart adds a writer in the middle of a group of
// pictures with fast start: it gets the samples since the key frame at
// once, 1 ms apart, and then the stream, with no gap.
func TestBroadcasterFastStart(t *testing.T) {
	// Frames 0-39 written: the group of pictures began at frame 30.
	e, l := joinLate(t, DefaultVideo(Options{}), true, 40)
	if len(l) != DefaultVideoFrames-30 {
		t.Fatalf("late writer got %d samples, want %d (from the key frame at frame 30)", len(l), DefaultVideoFrames-30)
	}
	for i, s := range l {
		if !bytes.Equal(s.Data, e[30+i].Data) {
			t.Fatalf("late writer's sample %d is not frame %d", i, 30+i)
		}
		want := e[30+i].Duration
		if i < 10 {
			want = burstDuration
		}
		if s.Duration != want {
			t.Errorf("late writer's sample %d lasts %v, want %v", i, s.Duration, want)
		}
	}

	// Turned off again, a late writer waits for the next key frame.
	b := NewBroadcaster(DefaultVideo(Options{}))
	b.SetFastStart(true)
	b.SetFastStart(false)
	if b.fastStart || b.gop.samples != nil {
		t.Error("SetFastStart(false) kept the cache")
	}
	if _, got := joinLate(t, DefaultVideo(Options{}), false, 40); len(got) != DefaultVideoFrames-60 || !bytes.Equal(got[0].Data, e[60].Data) {
		t.Errorf("without fast start the late writer got %d samples, want %d from frame 60", len(got), DefaultVideoFrames-60)
	}

	// Audio keeps nothing: every sample starts a stream.
	b = NewBroadcaster(DefaultAudio(Options{}))
	b.SetFastStart(true)
	if b.fastStart {
		t.Error("an audio Broadcaster took fast start")
	}
	if _, late := joinLate(t, &limited{Source: DefaultAudio(Options{}), n: 20}, true, 5); len(late) != 15 {
		t.Errorf("late audio writer got %d samples, want 15", len(late))
	}
}

// numbered numbers the samples of a source: it appends a 4-byte count to
// each sample's data (VP8 key frames are told by the first byte).
type numbered struct {
	Source
	n uint32
}

func (s *numbered) Next(ctx context.Context) (media.Sample, error) {
	smp, err := s.Source.Next(ctx)
	if err != nil {
		return smp, err
	}
	smp.Data = binary.BigEndian.AppendUint32(slices.Clone(smp.Data), s.n)
	s.n++

	return smp, nil
}

func number(s media.Sample) uint32 { return binary.BigEndian.Uint32(s.Data[len(s.Data)-4:]) }

// TestBroadcasterFastStartConcurrent adds writers with fast start from
// many goroutines while Run goes as fast as it can (run with -race): each
// writer's samples must be consecutive, from a key frame.
func TestBroadcasterFastStartConcurrent(t *testing.T) {
	b := NewBroadcaster(&numbered{Source: DefaultVideo(Options{Loop: true})})
	b.clk = newFakeClock()
	b.SetFastStart(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()

	var wg sync.WaitGroup
	writers := make([]*recorder, 40)
	var stuck atomic.Int32
	for i := range writers {
		w := &recorder{}
		writers[i] = w
		wg.Go(func() {
			time.Sleep(time.Duration(i) * time.Millisecond)
			b.Add(w)
			if !eventually(func() bool { return len(w.got()) >= 40 }) {
				stuck.Add(1)
			}
			b.Remove(w)
		})
	}
	wg.Wait()
	cancel()
	if err := receive(t, done, "Run to return after cancel"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if stuck.Load() != 0 {
		t.Fatalf("%d writers got fewer than 40 samples within %v", stuck.Load(), testWait)
	}
	for i, w := range writers {
		got := w.got()
		if !IsKeyframe(b.mime, got[0].Data) {
			t.Errorf("writer %d starts at sample %d, not a key frame", i, number(got[0]))
		}
		for j := 1; j < len(got); j++ {
			if number(got[j]) != number(got[j-1])+1 {
				t.Errorf("writer %d: sample %d came after sample %d", i, number(got[j]), number(got[j-1]))

				break
			}
		}
	}
}

func TestBroadcasterRunOnce(t *testing.T) {
	b := NewBroadcaster(DefaultAudio(Options{Loop: true}))
	started := make(chan struct{})
	var once sync.Once
	b.Add(&recorder{onWrite: func(int) { once.Do(func() { close(started) }) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	defer cancel()
	go func() { done <- b.Run(ctx) }()
	receive(t, started, "the first sample of Run")
	if err := b.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
	cancel()
	if err := receive(t, done, "Run to return after cancel"); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

func TestBroadcasterWriteErrors(t *testing.T) {
	b := NewBroadcaster(&limited{Source: DefaultAudio(Options{}), n: 5})
	b.clk = newFakeClock()
	failing := &recorder{err: errors.New("peer gone")}
	fine := &recorder{}
	b.Add(failing)
	b.Add(fine)
	var errs []error
	b.OnWriteError(func(w SampleWriter, err error) {
		if w != failing {
			t.Errorf("error reported for the wrong writer")
		}
		errs = append(errs, err)
	})
	if err := b.Run(context.Background()); !errors.Is(err, errEndOfTest) {
		t.Fatalf("Run = %v, want the source's error", err)
	}
	if len(errs) != 5 || len(failing.got()) != 5 || len(fine.got()) != 5 {
		t.Errorf("%d errors, failing writer got %d, fine writer got %d; want 5 each",
			len(errs), len(failing.got()), len(fine.got()))
	}
}

// TestStreamRealTime paces with the real clock. Only a lower bound is
// checked: a paced stream can be late on a busy machine but never early.
func TestStreamRealTime(t *testing.T) {
	const n = 10
	var w recorder
	start := time.Now()
	err := Stream(context.Background(), &limited{Source: DefaultAudio(Options{}), n: n}, &w)
	elapsed := time.Since(start)
	if !errors.Is(err, errEndOfTest) {
		t.Fatalf("Stream = %v", err)
	}
	if len(w.got()) != n {
		t.Fatalf("got %d samples, want %d", len(w.got()), n)
	}
	// n samples span (n-1) durations from the first to the last.
	if min := (n - 1) * 20 * time.Millisecond; elapsed < min {
		t.Errorf("%d samples of 20 ms went out in %v, faster than %v", n, elapsed, min)
	}

	// Cancelling stops a stream that waits for its next sample.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := Stream(ctx, DefaultVideo(Options{Loop: true}), &w); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stream = %v, want context.DeadlineExceeded", err)
	}
}
