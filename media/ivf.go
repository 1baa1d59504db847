package media

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

const ivfFrameHeaderLen = 12

type ivfFrame struct {
	data []byte
	pts  uint64
}

type ivfSource struct {
	name   string
	codec  webrtc.RTPCodecCapability
	tap    *tap
	rd     *ivfreader.IVFReader
	rw     *rewinder
	closer closeOnce

	num, den uint64        // time base: a pts unit lasts num/den seconds
	tick     time.Duration // one unit of pts, rounded
	next     *ivfFrame     // read ahead, to know the duration of the current one
	index    int           // frames read in this pass, for error messages
	lastStep uint64        // pts units between the last two frames
}

// NewIVF returns a Source over an IVF file holding VP8, VP9 or AV1 (FourCC
// VP80, VP90 or AV01). Each sample is one frame; its Duration is the gap to
// the next frame's timestamp in the file's time base, and the last frame
// lasts as long as the one before it.
//
// NewIVF reads the file header and the first frame before it returns. It
// does not close r.
func NewIVF(r io.Reader, opts Options) (Source, error) {
	return newIVF(r, opts, "IVF stream", nil)
}

func newIVF(r io.Reader, opts Options, name string, c io.Closer) (Source, error) {
	rw, err := newRewinder(r, opts, name)
	if err != nil {
		return nil, err
	}
	s := &ivfSource{
		name:     name,
		tap:      &tap{r: r, limit: ivfFrameHeaderLen},
		rw:       rw,
		closer:   closeOnce{c: c},
		lastStep: 1,
	}
	hdr, err := s.start()
	if err != nil {
		return nil, err
	}
	switch hdr.FourCC {
	case "VP80":
		s.codec = codecVP8
	case "VP90":
		s.codec = codecVP9
	case "AV01":
		s.codec = codecAV1
	default:
		return nil, fmt.Errorf("%w: %s: IVF FourCC %q is not VP80, VP90 or AV01", ErrUnsupportedCodec, name, hdr.FourCC)
	}
	s.num, s.den = uint64(hdr.TimebaseNumerator), uint64(hdr.TimebaseDenominator)
	s.tick = s.ptsTime(1)
	if s.tick <= 0 {
		return nil, fmt.Errorf("%w: %s: IVF time base %d/%d is not positive", ErrBadFormat, name,
			hdr.TimebaseNumerator, hdr.TimebaseDenominator)
	}
	if s.next, err = s.read(); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: IVF file has a header but no frames", ErrEmpty, name)
		}

		return nil, err
	}

	return s, nil
}

// start reads the file header from the current position.
func (s *ivfSource) start() (*ivfreader.IVFFileHeader, error) {
	s.index = 0
	s.tap.vet = nil
	s.tap.reset()
	rd, hdr, err := ivfreader.NewWith(s.tap)
	if err != nil {
		if s.tap.total == 0 && errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: file is empty", ErrEmpty, s.name)
		}

		return nil, fmt.Errorf("%w: %s: not an IVF file: %w", ErrBadFormat, s.name, err)
	}
	s.rd = rd
	s.tap.vet = s.vetFrameHeader

	return hdr, nil
}

// maxIVFFrame bounds the frame size an IVF frame header may declare: far
// above any real frame, far below what a corrupt header could make the
// reader allocate (4 GiB).
const maxIVFFrame = 64 << 20

func (s *ivfSource) vetFrameHeader(head []byte) error {
	if size := binary.LittleEndian.Uint32(head[:4]); size > maxIVFFrame {
		return fmt.Errorf("%w: %s: frame %d: header declares %d bytes, over the %d MiB limit",
			ErrBadFormat, s.name, s.index, size, maxIVFFrame>>20)
	}

	return nil
}

// read returns the next frame of this pass, or io.EOF.
func (s *ivfSource) read() (*ivfFrame, error) {
	s.tap.reset()
	data, _, err := s.rd.ParseNextFrame()
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if errors.Is(err, ErrBadFormat) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: frame %d: %w", ErrBadFormat, s.name, s.index, err)
	}
	if len(s.tap.buf) < ivfFrameHeaderLen {
		return nil, fmt.Errorf("%w: %s: frame %d: short frame header", ErrBadFormat, s.name, s.index)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: %s: frame %d is empty", ErrBadFormat, s.name, s.index)
	}
	s.index++

	return &ivfFrame{data: data, pts: binary.LittleEndian.Uint64(s.tap.buf[4:12])}, nil
}

func (s *ivfSource) Kind() webrtc.RTPCodecType        { return KindOf(s.codec) }
func (s *ivfSource) Codec() webrtc.RTPCodecCapability { return s.codec }
func (s *ivfSource) Close() error                     { return s.closer.close() }

func (s *ivfSource) Next(ctx context.Context) (media.Sample, error) {
	if err := checkNext(ctx, s.closer.closed); err != nil {
		return media.Sample{}, err
	}
	cur := s.next
	if cur == nil {
		return media.Sample{}, io.EOF
	}
	next, err := s.read()
	wrapped := false
	if errors.Is(err, io.EOF) {
		next = nil
		if s.rw != nil {
			if next, err = s.loop(); err != nil {
				return media.Sample{}, err
			}
			wrapped = true
		}
	} else if err != nil {
		return media.Sample{}, err
	}
	s.next = next

	// The last frame of a pass lasts as many pts units as the one before.
	if next != nil && !wrapped && next.pts > cur.pts {
		s.lastStep = next.pts - cur.pts
	}
	dur := s.ptsTime(cur.pts+s.lastStep) - s.ptsTime(cur.pts)
	if dur <= 0 {
		dur = s.tick
	}

	return media.Sample{Data: cur.data, Duration: dur}, nil
}

// ptsTime is the time of a pts, counted from pts 0 and rounded down to the
// nanosecond, so that consecutive durations add up to the exact total.
func (s *ivfSource) ptsTime(pts uint64) time.Duration {
	hi, lo := bits.Mul64(pts, s.num*uint64(time.Second))
	if hi >= s.den {
		return time.Duration(math.MaxInt64)
	}
	q, _ := bits.Div64(hi, lo, s.den)
	if q > math.MaxInt64 {
		return time.Duration(math.MaxInt64)
	}

	return time.Duration(q)
}

// loop rewinds to the first frame.
func (s *ivfSource) loop() (*ivfFrame, error) {
	if err := s.rw.rewind(s.name); err != nil {
		return nil, err
	}
	if _, err := s.start(); err != nil {
		return nil, err
	}
	f, err := s.read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: no frames after rewinding", ErrEmpty, s.name)
	}

	return f, err
}
