package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// A Recorder is a Sink that writes the frames it gets to a file a player
// opens, in the container its extension names: .ivf for VP8, VP9 or AV1;
// .ogg, .opus or .oga for Opus; .h264, .264 or .avc for H.264 (Annex-B).
// It writes with pion's ivfwriter, oggwriter and h264writer.
//
// Video is written from the first key frame on (for H.264, the first frame
// with a sequence parameter set), as a player needs. IVF timestamps are the
// RTP timestamps, with the codec's clock rate (90 kHz) as the time base, so
// the file plays at the pace the frames were sent.
//
// A Recorder is safe for concurrent use. Close it to finish the file.
type Recorder struct {
	path   string
	format format

	mu      sync.Mutex
	file    *os.File
	w       rtpWriter // made at the first frame, once the codec is known
	ssrc    uint32    // of the Ogg track
	frames  uint64
	closed  bool
	lastErr error
}

type rtpWriter interface {
	WriteRTP(p *rtp.Packet) error
	Close() error
}

// NewRecorder creates (or truncates) the file at path for a Recorder,
// choosing the container by extension. It fails with ErrUnknownFormat for
// any other extension, and with the os error if the file cannot be created.
func NewRecorder(path string) (*Recorder, error) {
	f := formatOf(path)
	if f == formatUnknown {
		return nil, unknownFormat(path)
	}
	file, err := os.Create(path) //nolint:gosec // creating the caller's file is the point
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}

	return &Recorder{path: path, format: f, file: file}, nil
}

// Path is the file the Recorder writes.
func (r *Recorder) Path() string { return r.path }

// Frames is the number of frames written so far (not counting those before
// the first key frame, which are skipped).
func (r *Recorder) Frames() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()

	return r.frames
}

// WriteFrame writes f to the file. It fails with ErrCodecMismatch if the
// file's container cannot hold f's codec, with ErrClosed after Close, and
// with the writer's error if writing fails; after a failure the file is
// abandoned and every later call fails the same way.
func (r *Recorder) WriteFrame(f Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("%w: recorder %s", ErrClosed, r.path)
	}
	if r.lastErr != nil {
		return r.lastErr
	}
	if r.w == nil {
		if err := r.check(f.Codec.MimeType); err != nil {
			r.lastErr = err

			return err
		}
		if !canStart(f) {
			return nil // a player cannot start here
		}
		if err := r.open(f); err != nil {
			r.lastErr = fmt.Errorf("media: record %s: %w", r.path, err)

			return r.lastErr
		}
	}
	for _, p := range f.Packets {
		if r.format == formatOgg && p.SSRC != r.ssrc {
			q := *p
			q.SSRC = r.ssrc
			p = &q
		}
		if err := r.w.WriteRTP(p); err != nil {
			r.lastErr = fmt.Errorf("media: record %s: %w", r.path, err)

			return r.lastErr
		}
	}
	r.frames++

	return nil
}

// canStart tells whether a file can start with f.
func canStart(f Frame) bool {
	if KindOf(f.Codec.RTPCodecCapability) != webrtc.RTPCodecTypeVideo {
		return true
	}
	if strings.EqualFold(f.Codec.MimeType, webrtc.MimeTypeH264) {
		// h264writer drops everything before a sequence parameter set.
		sps := false
		forEachNAL(f.Sample.Data, func(nal []byte) { sps = sps || nal[0]&0x1f == nalSPS })

		return sps
	}

	return f.Keyframe
}

// check tells whether the container can hold the codec.
func (r *Recorder) check(mime string) error {
	var ok bool
	var holds string
	switch r.format {
	case formatIVF:
		ok, holds = ivfCodec(mime) != "", "VP8, VP9 or AV1"
	case formatOgg:
		ok, holds = strings.EqualFold(mime, webrtc.MimeTypeOpus), "Opus"
	default:
		ok, holds = strings.EqualFold(mime, webrtc.MimeTypeH264), "H.264"
	}
	if !ok {
		return fmt.Errorf("%w: %s holds %s, not %s", ErrCodecMismatch, r.path, holds, mime)
	}

	return nil
}

// ivfCodec is the ivfwriter name of a codec an IVF file can hold, or "".
func ivfCodec(mime string) string {
	for _, m := range []string{webrtc.MimeTypeVP8, webrtc.MimeTypeVP9, webrtc.MimeTypeAV1} {
		if strings.EqualFold(mime, m) {
			return m
		}
	}

	return ""
}

// open makes the pion writer for the first frame.
func (r *Recorder) open(f Frame) error {
	switch r.format {
	case formatIVF:
		width, height := uint16(640), uint16(480)
		if w, h, ok := vp8Size(f.Codec.MimeType, f.Sample.Data); ok {
			width, height = w, h
		}
		clock := f.Codec.ClockRate
		if clock == 0 {
			clock = 90000
		}
		w, err := ivfwriter.NewWith(r.file,
			ivfwriter.WithCodec(ivfCodec(f.Codec.MimeType)),
			ivfwriter.WithWidthAndHeight(width, height),
			ivfwriter.WithFrameRate(1, clock),
			ivfwriter.WithDirectPTS())
		if err != nil {
			return err
		}
		r.w = w
	case formatOgg:
		ssrc := uint32(0)
		if len(f.Packets) > 0 {
			ssrc = f.Packets[0].SSRC
		}

		return r.openOgg(ssrc, f.Codec.Channels)
	default:
		r.w = h264writer.NewWith(r.file)
	}

	return nil
}

func (r *Recorder) openOgg(ssrc uint32, channels uint16) error {
	if channels == 0 {
		channels = 2
	}
	w, err := oggwriter.NewWriter(r.file,
		oggwriter.WithSeekableOutput(r.file),
		oggwriter.WithSampleRate(48000),
		oggwriter.WithChannelCount(channels))
	if err != nil {
		return err
	}
	t, err := w.NewTrack(ssrc)
	if err != nil {
		return errors.Join(err, w.Close())
	}
	r.w, r.ssrc = oggTrack{t: t, w: w}, ssrc

	return nil
}

// oggTrack writes to one track of an Ogg writer and closes the writer.
type oggTrack struct {
	t *oggwriter.Track
	w *oggwriter.Writer
}

func (o oggTrack) WriteRTP(p *rtp.Packet) error { return o.t.WriteRTP(p) }
func (o oggTrack) Close() error                 { return o.w.Close() }

// vp8Size reads the frame size from a VP8 key frame header (RFC 6386, 9.1).
func vp8Size(mime string, data []byte) (width, height uint16, ok bool) {
	if !strings.EqualFold(mime, webrtc.MimeTypeVP8) || len(data) < 10 || data[0]&0x01 != 0 ||
		data[3] != 0x9d || data[4] != 0x01 || data[5] != 0x2a {
		return 0, 0, false
	}
	width = binary.LittleEndian.Uint16(data[6:8]) & 0x3fff
	height = binary.LittleEndian.Uint16(data[8:10]) & 0x3fff

	return width, height, width > 0 && height > 0
}

// Close finishes the file (an IVF header with the frame count, an Ogg end
// of stream) and closes it. A file that got no frame is left as a valid,
// empty file of its container. Close is idempotent.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.w == nil {
		var err error
		switch r.format {
		case formatIVF:
			r.w, err = ivfwriter.NewWith(r.file, ivfwriter.WithFrameRate(1, 90000), ivfwriter.WithDirectPTS())
		case formatOgg:
			err = r.openOgg(0, 2)
		}
		if err != nil || r.w == nil {
			return errors.Join(err, r.closeFile())
		}
	}
	if err := r.w.Close(); err != nil {
		return fmt.Errorf("media: close %s: %w", r.path, err)
	}

	return nil
}

func (r *Recorder) closeFile() error {
	if err := r.file.Close(); err != nil {
		return fmt.Errorf("media: close %s: %w", r.path, err)
	}

	return nil
}

// A Counter is a Sink that counts frames and bytes and notes when the first
// frame arrived. Its zero value is ready to use, and it is safe for
// concurrent use: read the counts from any goroutine while Consume runs.
type Counter struct {
	frames    atomic.Uint64
	bytes     atomic.Uint64
	keyframes atomic.Uint64

	mu      sync.Mutex
	first   time.Time
	onFirst func(f Frame)
}

// WriteFrame counts f. For the first frame it records f.Received and calls
// the OnFirstFrame function. It never fails.
func (c *Counter) WriteFrame(f Frame) error {
	c.frames.Add(1)
	c.bytes.Add(uint64(len(f.Sample.Data)))
	if f.Keyframe {
		c.keyframes.Add(1)
	}
	c.mu.Lock()
	var fn func(Frame)
	if c.first.IsZero() {
		c.first = f.Received
		if c.first.IsZero() {
			c.first = time.Now()
		}
		fn = c.onFirst
	}
	c.mu.Unlock()
	if fn != nil {
		fn(f)
	}

	return nil
}

// Frames is the number of frames counted.
func (c *Counter) Frames() uint64 { return c.frames.Load() }

// Bytes is the number of media bytes counted: the frames' data without RTP
// or payload headers.
func (c *Counter) Bytes() uint64 { return c.bytes.Load() }

// Keyframes is the number of frames counted that decode on their own.
func (c *Counter) Keyframes() uint64 { return c.keyframes.Load() }

// FirstFrame is when the first frame counted was complete (its
// Frame.Received), and false if none has been counted yet.
func (c *Counter) FirstFrame() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.first, !c.first.IsZero()
}

// OnFirstFrame sets a function to call with the first frame counted: its
// Received time ends a "time to first frame" measure. It is called once, on
// the goroutine that calls WriteFrame (Consume's), after the frame is
// counted; set it before frames arrive.
func (c *Counter) OnFirstFrame(fn func(f Frame)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onFirst = fn
}
