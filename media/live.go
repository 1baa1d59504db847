package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gformat "github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Errors of live streams (OpenURL). Test for them with errors.Is.
var (
	// ErrBFrames means an H.264 or H.265 stream has B-frames (its
	// presentation times go backwards), which WebRTC decoders in browsers do
	// not take. The error says how to re-encode the stream.
	ErrBFrames = errors.New("media: video has B-frames")
	// ErrNoTracks means a stream has no video or audio track this package
	// can send.
	ErrNoTracks = errors.New("media: stream has no track to send")
	// ErrBadURL means the URL of OpenURL is not one it reads.
	ErrBadURL = errors.New("media: unsupported source URL")
)

// LiveState is the state of a live stream's link to its camera or sender.
type LiveState int

// The states of a live stream.
const (
	// LiveConnecting: the first connection is being made.
	LiveConnecting LiveState = iota
	// LiveConnected: media is flowing (RTSP: the session plays; RTP:
	// packets arrive).
	LiveConnected
	// LiveReconnecting: the camera dropped (or, for RTP, no packet came for
	// URLOptions.RTPTimeout); the stream tries again with backoff, and its
	// Sources carry on from the next key frame once it is back.
	LiveReconnecting
	// LiveIdle: an on-demand stream with no consumer (see LiveStream.Acquire).
	LiveIdle
	// LiveClosed: Close was called.
	LiveClosed
)

// String returns "connecting", "connected", "reconnecting", "idle" or "closed".
func (s LiveState) String() string {
	switch s {
	case LiveConnecting:
		return "connecting"
	case LiveConnected:
		return "connected"
	case LiveReconnecting:
		return "reconnecting"
	case LiveIdle:
		return "idle"
	case LiveClosed:
		return "closed"
	}
	return fmt.Sprintf("LiveState(%d)", int(s))
}

// LiveStatus is a snapshot of a live stream's state.
type LiveStatus struct {
	// State is the stream's state when the snapshot was taken.
	State LiveState
	// Err is why the stream is reconnecting (the last failure), nil
	// otherwise. It never holds the URL's password.
	Err error
	// Attempt counts the reconnect attempts since media last flowed.
	Attempt int
	// BytesIn is the RTP payload bytes received since the stream opened.
	BytesIn uint64
}

// liveTrack is one track of a live stream: a Source fed by the stream's
// receiving goroutine through a bounded queue.
type liveTrack struct {
	stream *LiveStream
	kind   webrtc.RTPCodecType
	codec  webrtc.RTPCodecCapability
	clock  uint32 // RTP clock rate

	queue  chan media.Sample
	failed chan struct{}         // closed by fail, once
	failOn sync.Once             // guards failed and fatal
	fatal  atomic.Pointer[error] // why the track failed; Next returns it
	done   chan struct{}
	closed atomic.Bool

	// touched only by the receiving goroutine
	pkt      packetizer
	prevTS   uint32
	havePrev bool
	lastWall time.Time
	needKey  bool
	dropped  uint64
}

// queueLen is the number of samples a live track holds for a Source reader
// that is behind: about 2 s of 30 fps video with its audio.
const queueLen = 128

func newLiveTrack(st *LiveStream, kind webrtc.RTPCodecType, codec webrtc.RTPCodecCapability, p packetizer) *liveTrack {
	return &liveTrack{
		stream: st, kind: kind, codec: codec, clock: codec.ClockRate, pkt: p,
		queue: make(chan media.Sample, queueLen), failed: make(chan struct{}),
		done: make(chan struct{}), needKey: kind == webrtc.RTPCodecTypeVideo,
	}
}

func (t *liveTrack) Kind() webrtc.RTPCodecType        { return t.kind }
func (t *liveTrack) Codec() webrtc.RTPCodecCapability { return t.codec }

// Live marks the Source as live: its samples come in real time, so a
// Broadcaster writes each one as soon as it arrives instead of pacing it.
func (t *liveTrack) Live() bool { return true }

// Next returns the next sample as it arrives from the camera.
func (t *liveTrack) Next(ctx context.Context) (media.Sample, error) {
	if t.closed.Load() {
		return media.Sample{}, ErrClosed
	}
	select {
	case s := <-t.queue:
		return s, nil
	case <-t.failed:
		return media.Sample{}, *t.fatal.Load()
	case <-t.done:
		return media.Sample{}, ErrClosed
	case <-ctx.Done():
		return media.Sample{}, ctx.Err()
	}
}

// Close detaches this Source; the stream stops when all its Sources are
// closed (or on LiveStream.Close).
func (t *liveTrack) Close() error {
	if t.closed.CompareAndSwap(false, true) {
		close(t.done)
		t.stream.trackClosed()
	}
	return nil
}

// fail stops the track with err (a stream it cannot send).
func (t *liveTrack) fail(err error) {
	t.failOn.Do(func() {
		t.fatal.Store(&err)
		close(t.failed)
	})
}

// restart is called when the stream reconnects: partial frames go, and
// video waits for a key frame.
func (t *liveTrack) restart() {
	t.pkt.reset()
	t.havePrev = false
	t.needKey = t.kind == webrtc.RTPCodecTypeVideo
}

// push takes one RTP packet of this track, in sequence order.
func (t *liveTrack) push(p *rtp.Packet, now time.Time) {
	if t.closed.Load() {
		return
	}
	data, key, err := t.pkt.decode(p)
	if err != nil || data == nil {
		return // more packets needed, or a damaged frame the next key frame repairs
	}
	if t.needKey {
		if !key {
			return
		}
		t.needKey = false
	}
	var d time.Duration
	if t.havePrev {
		diff := int32(p.Timestamp - t.prevTS)
		if diff < 0 && t.kind == webrtc.RTPCodecTypeVideo {
			t.fail(fmt.Errorf("%w: %s presentation times go backwards (%d to %d); browsers need a stream without B-frames: "+
				"re-encode it, e.g. ffmpeg -i INPUT -c:v libx264 -bf 0 -tune zerolatency -c:a libopus -f rtsp rtsp://HOST/PATH",
				ErrBFrames, t.codec.MimeType, t.prevTS, p.Timestamp))
			return
		}
		d = time.Duration(int64(diff)) * time.Second / time.Duration(t.clock)
	} else if !t.lastWall.IsZero() {
		d = min(now.Sub(t.lastWall), 5*time.Second) // the gap of a reconnect
	}
	if d <= 0 {
		d = t.nominal(data)
	}
	t.prevTS, t.havePrev, t.lastWall = p.Timestamp, true, now
	select {
	case t.queue <- media.Sample{Data: data, Duration: d}:
	default:
		// The reader is behind by a whole queue: drop, and let video start
		// again at a key frame so that no viewer decodes a broken picture.
		t.dropped++
		t.needKey = t.kind == webrtc.RTPCodecTypeVideo
		if t.dropped == 1 || t.dropped%1000 == 0 {
			t.stream.log.Warn("media: live source reader is behind, samples dropped", "url", t.stream.display, "codec", t.codec.MimeType, "dropped", t.dropped)
		}
	}
}

// nominal is the duration given to a sample whose predecessor is unknown.
func (t *liveTrack) nominal(data []byte) time.Duration {
	switch {
	case t.kind == webrtc.RTPCodecTypeVideo:
		return time.Second / 30
	case strings.EqualFold(t.codec.MimeType, webrtc.MimeTypeOpus):
		if d, err := opusDuration(data); err == nil && d > 0 {
			return d
		}
		return 20 * time.Millisecond
	default: // G.711: one byte a sample
		return time.Duration(len(data)) * time.Second / time.Duration(t.clock)
	}
}

// RedactURL returns rawURL with the password of its user info, if any,
// replaced by "xxxxx", for logs and errors. A string that does not parse
// as a URL is returned with everything between "://" and "@" hidden.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i, j := strings.Index(rawURL, "://"), strings.LastIndex(rawURL, "@"); i >= 0 && j > i {
			return rawURL[:i+3] + "xxxxx" + rawURL[j:]
		}
		return rawURL
	}
	return u.Redacted()
}

// scrubbed is an error whose text had the URL's secrets removed. It
// unwraps to the package sentinels it was given, not to the raw error.
type scrubbed struct {
	msg    string
	causes []error
}

func (e *scrubbed) Error() string   { return e.msg }
func (e *scrubbed) Unwrap() []error { return e.causes }

// scrub returns err with the password (and the whole user info) of
// rawURL removed from its text. Sentinels of this package and context
// errors stay testable with errors.Is.
func scrub(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if u, perr := url.Parse(rawURL); perr == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
			msg = strings.ReplaceAll(msg, url.QueryEscape(pw), "xxxxx")
		}
	}
	var causes []error
	for _, s := range []error{ErrUnsupportedCodec, ErrBFrames, ErrNoTracks, ErrBadURL, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			causes = append(causes, s)
		}
	}
	return &scrubbed{msg: msg, causes: causes}
}

// LiveStream is a live source opened by OpenURL: one RTSP session (or one set
// of RTP ports) whose tracks are read once and shared by every consumer.
type LiveStream struct {
	// Video is the stream's video Source, nil when it has none.
	Video Source
	// Audio is the stream's audio Source, nil when it has none.
	Audio Source

	display string // the URL with its password redacted
	log     *slog.Logger
	tracks  []*liveTrack
	run     func(ctx context.Context) // the receiving loop, with reconnects
	onDem   bool

	mu       sync.Mutex
	status   LiveStatus
	onStatus func(LiveStatus)
	users    int                // Acquire count of an on-demand stream
	cancel   context.CancelFunc // stops the running session
	stopped  chan struct{}      // closed when the running session returns
	open     int                // Sources not closed yet
	closed   bool
	bytesIn  atomic.Uint64
}

// String returns the stream's URL with its password redacted.
func (s *LiveStream) String() string { return s.display }

// Status returns the stream's state now.
func (s *LiveStream) Status() LiveStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.BytesIn = s.bytesIn.Load()
	return st
}

// OnStatus sets a function called on each change of state, on the
// stream's own goroutine: it must not block. nil removes it.
func (s *LiveStream) OnStatus(fn func(LiveStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onStatus = fn
}

func (s *LiveStream) setState(state LiveState, err error, attempt int) {
	s.mu.Lock()
	if s.closed && state != LiveClosed {
		s.mu.Unlock()
		return
	}
	changed := s.status.State != state || (err != nil && (s.status.Err == nil || err.Error() != s.status.Err.Error()))
	s.status = LiveStatus{State: state, Err: err, Attempt: attempt}
	fn := s.onStatus
	st := s.status
	st.BytesIn = s.bytesIn.Load()
	s.mu.Unlock()
	if changed {
		switch {
		case err != nil:
			s.log.Warn("media: live source "+state.String(), "url", s.display, "attempt", attempt, "err", err)
		default:
			s.log.Info("media: live source "+state.String(), "url", s.display)
		}
		if fn != nil {
			fn(st)
		}
	}
}

// Acquire starts an on-demand stream (URLOptions.OnDemand) on the first
// call; each call must be paired with Release. On a stream that is not on
// demand it does nothing.
func (s *LiveStream) Acquire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.onDem || s.closed {
		return
	}
	s.users++
	if s.users == 1 {
		s.startLocked()
	}
}

// Release undoes one Acquire; the last one stops an on-demand stream's
// session until the next Acquire.
func (s *LiveStream) Release() {
	s.mu.Lock()
	if !s.onDem || s.closed || s.users == 0 {
		s.mu.Unlock()
		return
	}
	s.users--
	if s.users > 0 {
		s.mu.Unlock()
		return
	}
	stopped := s.stopLocked()
	s.status = LiveStatus{State: LiveIdle}
	s.mu.Unlock()
	if stopped != nil {
		<-stopped
	}
	s.log.Info("media: live source idle (no consumer)", "url", s.display)
}

func (s *LiveStream) startLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.cancel, s.stopped = cancel, done
	for _, t := range s.tracks {
		t.restart()
	}
	go func() {
		defer close(done)
		s.run(ctx)
	}()
}

func (s *LiveStream) stopLocked() chan struct{} {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	done := s.stopped
	s.cancel, s.stopped = nil, nil
	return done
}

// Close stops the stream and its Sources (their Next returns ErrClosed).
func (s *LiveStream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	stopped := s.stopLocked()
	s.status = LiveStatus{State: LiveClosed}
	s.mu.Unlock()
	if stopped != nil {
		<-stopped
	}
	for _, t := range s.tracks {
		if t.closed.CompareAndSwap(false, true) {
			close(t.done)
		}
	}
	return nil
}

func (s *LiveStream) trackClosed() {
	s.mu.Lock()
	s.open--
	last := s.open == 0
	s.mu.Unlock()
	if last {
		_ = s.Close()
	}
}

// addTracks makes the stream's Sources from formats, one video and one
// audio at most (the first of each that can be sent). Formats it cannot
// send fail the call unless skip is set.
func (s *LiveStream) addTracks(formats []gformat.Format, skip bool) (map[gformat.Format]*liveTrack, error) {
	byFormat := map[gformat.Format]*liveTrack{}
	var firstErr error
	for _, f := range formats {
		t, err := trackFor(s, f)
		if err != nil {
			if !skip {
				return nil, err
			}
			if firstErr == nil {
				firstErr = err
			}
			s.log.Warn("media: live source track skipped", "url", s.display, "err", err)
			continue
		}
		switch {
		case t.kind == webrtc.RTPCodecTypeVideo && s.Video == nil:
			s.Video = t
		case t.kind == webrtc.RTPCodecTypeAudio && s.Audio == nil:
			s.Audio = t
		default:
			continue // a second track of a kind: not sent
		}
		s.tracks = append(s.tracks, t)
		byFormat[f] = t
	}
	if len(s.tracks) == 0 {
		if firstErr != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoTracks, firstErr)
		}
		return nil, ErrNoTracks
	}
	s.open = len(s.tracks)
	return byFormat, nil
}
