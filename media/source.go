package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Errors returned by this package. Test for them with errors.Is; the error
// itself says which file and what was wrong.
var (
	// ErrUnknownFormat means a file name's extension names no format this
	// package reads or writes.
	ErrUnknownFormat = errors.New("media: unknown file format")
	// ErrBadFormat means the data is not what its format says it should be:
	// a wrong magic number, a truncated header or frame, a broken page.
	ErrBadFormat = errors.New("media: malformed file")
	// ErrEmpty means a file holds no samples at all.
	ErrEmpty = errors.New("media: no samples")
	// ErrNotSeekable means Options.Loop was asked of a reader that cannot
	// seek back to its start.
	ErrNotSeekable = errors.New("media: looping needs an io.Seeker")
	// ErrUnsupportedCodec means a codec that this package cannot handle in
	// the place it was met: an IVF FourCC it does not know, or a received
	// track it cannot depacketize.
	ErrUnsupportedCodec = errors.New("media: unsupported codec")
	// ErrCodecMismatch means media of one codec was sent to a file whose
	// extension holds another (Opus into .ivf, say).
	ErrCodecMismatch = errors.New("media: codec does not fit the file format")
	// ErrClosed is returned by calls on a Source or Recorder after Close.
	ErrClosed = errors.New("media: closed")
	// ErrRunning is returned by Broadcaster.Run while another Run of the
	// same Broadcaster is in progress.
	ErrRunning = errors.New("media: broadcaster already running")
)

// A Source yields encoded media samples, one video frame or one audio packet
// at a time, in presentation order.
//
// A Source is not safe for concurrent use; a [Broadcaster] reads it from one
// goroutine and shares the samples.
type Source interface {
	// Kind is webrtc.RTPCodecTypeVideo or webrtc.RTPCodecTypeAudio.
	Kind() webrtc.RTPCodecType
	// Codec describes the samples, in the form
	// webrtc.NewTrackLocalStaticSample takes: MimeType and ClockRate are
	// always set.
	Codec() webrtc.RTPCodecCapability
	// Next returns the next sample, with Data and a Duration greater than
	// zero set. It does not wait for the sample's time to come (see
	// Broadcaster). At the end of a source that does not loop it returns
	// io.EOF; it returns ctx.Err() if ctx is done. The caller must not
	// modify Data.
	Next(ctx context.Context) (media.Sample, error)
	// Close releases the file behind the source, if the source opened it.
	// Next returns ErrClosed afterwards.
	Close() error
}

// Options tune how a file is read. The zero value reads the file once.
type Options struct {
	// Loop starts the file over when it ends, so that Next never returns
	// io.EOF. The reader must be an io.Seeker (files and bytes.Readers are).
	Loop bool
	// FrameRate is the frames per second of an H.264 stream, which Annex-B
	// does not record. Zero means 30. IVF and Ogg files carry their own
	// timing and ignore it.
	FrameRate float64
}

// Formats recognised by extension (lower case, with the dot).
var (
	ivfExts  = []string{".ivf"}
	h264Exts = []string{".h264", ".264", ".avc"}
	oggExts  = []string{".ogg", ".opus", ".oga"}
)

type format int

const (
	formatUnknown format = iota
	formatIVF
	formatH264
	formatOgg
)

func formatOf(path string) format {
	ext := strings.ToLower(filepath.Ext(path))
	for _, list := range []struct {
		exts []string
		f    format
	}{{ivfExts, formatIVF}, {h264Exts, formatH264}, {oggExts, formatOgg}} {
		for _, e := range list.exts {
			if ext == e {
				return list.f
			}
		}
	}

	return formatUnknown
}

func unknownFormat(path string) error {
	ext := filepath.Ext(path)
	if ext == "" {
		ext = "(none)"
	}

	return fmt.Errorf("%w: %s: extension %s is none of %s (IVF), %s (H.264), %s (Ogg)", ErrUnknownFormat, path, ext,
		strings.Join(ivfExts, " "), strings.Join(h264Exts, " "), strings.Join(oggExts, " "))
}

// Open opens the file at path as a Source, choosing the reader by extension:
// .ivf for [NewIVF]; .h264, .264 or .avc for [NewH264]; .ogg, .opus or .oga
// for [NewOgg]. The source closes the file when it is closed.
//
// Open reads the first sample before it returns, so a file that is empty,
// not of its format or without samples fails here with an error that names
// it.
func Open(path string, opts Options) (Source, error) {
	f := formatOf(path)
	if f == formatUnknown {
		return nil, unknownFormat(path)
	}
	file, err := os.Open(path) //nolint:gosec // opening the caller's file is the point
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	var src Source
	switch f {
	case formatIVF:
		src, err = newIVF(file, opts, path, file)
	case formatH264:
		src, err = newH264(file, opts, path, file)
	default:
		src, err = newOgg(file, opts, path, file)
	}
	if err != nil {
		return nil, errors.Join(err, file.Close())
	}

	return src, nil
}

// rewinder returns to a reader's starting offset, for looping.
// newRewinder, which every source calls first, also refuses a nil reader;
// without Loop it returns nil.
type rewinder struct {
	s     io.Seeker
	start int64
}

func newRewinder(r io.Reader, opts Options, name string) (*rewinder, error) {
	if r == nil {
		return nil, fmt.Errorf("media: %s: reader is nil", name)
	}
	if !opts.Loop {
		return nil, nil //nolint:nilnil // no rewinder is needed without Loop
	}
	s, ok := r.(io.Seeker)
	if !ok {
		return nil, fmt.Errorf("%w: %s: reader is a %T", ErrNotSeekable, name, r)
	}
	start, err := s.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotSeekable, name, err)
	}

	return &rewinder{s: s, start: start}, nil
}

func (w *rewinder) rewind(name string) error {
	if _, err := w.s.Seek(w.start, io.SeekStart); err != nil {
		return fmt.Errorf("media: %s: seek to start for loop: %w", name, err)
	}

	return nil
}

// tap passes reads through and keeps the first limit bytes read since the
// last reset. The pion readers do not expose the raw IVF timestamp or the
// Ogg lacing table; the tap sees them go by. If vet is set, the tap shows
// it the first limit bytes as soon as they are read, and fails that read
// if vet does: the IVF reader allocates a frame's declared size before it
// reads the frame, so a corrupt size must be stopped before it gets there.
type tap struct {
	r     io.Reader
	limit int
	buf   []byte
	total int64
	vet   func(head []byte) error
}

func (t *tap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.total += int64(n)
	if room := t.limit - len(t.buf); room > 0 {
		t.buf = append(t.buf, p[:min(n, room)]...)
		if t.vet != nil && len(t.buf) == t.limit {
			if verr := t.vet(t.buf); verr != nil {
				return 0, verr
			}
		}
	}

	return n, err
}

func (t *tap) reset() { t.buf = t.buf[:0] }

// closeOnce holds the closer of a source opened by path.
type closeOnce struct {
	c      io.Closer
	closed bool
}

func (c *closeOnce) close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	if c.c != nil {
		return c.c.Close()
	}

	return nil
}

func checkNext(ctx context.Context, closed bool) error {
	if closed {
		return ErrClosed
	}

	return ctx.Err()
}

// KindOf tells the kind of media a codec carries from its MIME type:
// webrtc.RTPCodecTypeVideo for "video/...", webrtc.RTPCodecTypeAudio for
// "audio/...", 0 otherwise.
func KindOf(codec webrtc.RTPCodecCapability) webrtc.RTPCodecType {
	mime := strings.ToLower(codec.MimeType)
	switch {
	case strings.HasPrefix(mime, "video/"):
		return webrtc.RTPCodecTypeVideo
	case strings.HasPrefix(mime, "audio/"):
		return webrtc.RTPCodecTypeAudio
	default:
		return 0
	}
}

// Codec capabilities of the sources, matching those pion registers by default.
var (
	codecVP8  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	codecVP9  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0"}
	codecAV1  = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000}
	codecH264 = webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeH264,
		ClockRate:   90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}
	codecOpus = webrtc.RTPCodecCapability{
		MimeType:    webrtc.MimeTypeOpus,
		ClockRate:   48000,
		Channels:    2,
		SDPFmtpLine: "minptime=10;useinbandfec=1",
	}
)

// IsKeyframe reports whether data, one encoded sample of the given codec,
// can be decoded on its own: a VP8 or VP9 key frame, an H.264 access unit
// holding an IDR slice or a sequence parameter set, or an H.265 access unit
// holding a random-access picture or its parameter sets. Audio samples always
// are. For codecs it cannot inspect (AV1, say) it reports true, so that
// nothing waits for a key frame it would never recognise.
func IsKeyframe(mimeType string, data []byte) bool {
	switch strings.ToLower(mimeType) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		// Frame tag, bit 0: 0 for a key frame (RFC 6386, 9.1).
		return len(data) > 0 && data[0]&0x01 == 0
	case strings.ToLower(webrtc.MimeTypeVP9):
		return vp9Keyframe(data)
	case strings.ToLower(webrtc.MimeTypeH264):
		key := false
		forEachNAL(data, func(nal []byte) {
			if t := nal[0] & 0x1f; t == 5 || t == 7 {
				key = true
			}
		})

		return key
	case strings.ToLower(webrtc.MimeTypeH265):
		key := false
		forEachNAL(data, func(nal []byte) {
			// IRAP pictures (BLA, IDR, CRA: 16..21) and the VPS and SPS
			// sent in front of them (32, 33).
			if t := (nal[0] >> 1) & 0x3f; t >= 16 && t <= 21 || t == 32 || t == 33 {
				key = true
			}
		})

		return key
	default:
		return true
	}
}

// vp9Keyframe reads the start of a VP9 uncompressed header.
func vp9Keyframe(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	b := data[0]
	if b>>6 != 2 { // frame_marker
		return false
	}
	profile := (b>>5)&1 | ((b>>4)&1)<<1
	bit := 4 // next bit to read, counted from the top
	if profile == 3 {
		bit++ // reserved_zero
	}
	if (b>>(7-bit))&1 == 1 { // show_existing_frame
		return false
	}
	bit++

	return (b>>(7-bit))&1 == 0 // frame_type: 0 is KEY_FRAME
}

// forEachNAL calls fn with each NAL unit (header byte first) of an Annex-B
// buffer.
func forEachNAL(data []byte, fn func(nal []byte)) {
	start := -1
	for i := 0; i+2 < len(data); i++ {
		if data[i] != 0 || data[i+1] != 0 || data[i+2] != 1 {
			continue
		}
		if start >= 0 {
			end := i
			for end > start && data[end-1] == 0 {
				end--
			}
			if end > start {
				fn(data[start:end])
			}
		}
		start = i + 3
		i += 2
	}
	if start >= 0 && start < len(data) {
		fn(data[start:])
	}
}
