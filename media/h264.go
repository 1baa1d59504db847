package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
)

// NAL unit types (ITU-T H.264, table 7-1) that decide access unit bounds.
const (
	nalSliceNonIDR = 1
	nalSliceIDR    = 5
	nalSEI         = 6
	nalSPS         = 7
	nalPPS         = 8
	nalAUD         = 9
	nalFiller      = 12
)

var annexBStartCode = []byte{0, 0, 0, 1}

const defaultFrameRate = 30

type h264Source struct {
	name   string
	tap    *tap
	rd     *h264reader.H264Reader
	rw     *rewinder
	closer closeOnce

	fps     float64
	sent    int64  // samples returned, for exact cumulative timing
	pending []byte // a NAL read past the end of the previous access unit
	index   int    // access units read in this pass
	first   []byte // the first access unit, read ahead by the constructor
}

// NewH264 returns a Source over an H.264 Annex-B byte stream. Each sample is
// one access unit (one frame): its NAL units, each after a four-byte start
// code. SEI, access unit delimiter and filler NAL units are dropped, as the
// WebRTC packetizer drops them anyway. Every sample lasts 1/FrameRate
// seconds (Options.FrameRate, 30 if zero). The stream should not hold
// B-frames: samples are sent in the order they are stored.
//
// NewH264 reads the first access unit before it returns. It does not close r.
func NewH264(r io.Reader, opts Options) (Source, error) {
	return newH264(r, opts, "H.264 stream", nil)
}

func newH264(r io.Reader, opts Options, name string, c io.Closer) (Source, error) {
	if opts.FrameRate < 0 {
		return nil, fmt.Errorf("media: %s: Options.FrameRate %v is negative", name, opts.FrameRate)
	}
	fps := opts.FrameRate
	if fps == 0 {
		fps = defaultFrameRate
	}
	rw, err := newRewinder(r, opts, name)
	if err != nil {
		return nil, err
	}
	s := &h264Source{
		name:   name,
		tap:    &tap{r: r},
		rw:     rw,
		closer: closeOnce{c: c},
		fps:    fps,
	}
	if time.Duration(float64(time.Second)/fps) <= 0 {
		return nil, fmt.Errorf("media: %s: Options.FrameRate %v is too high", name, opts.FrameRate)
	}
	s.start()
	first, err := s.readAU()
	if errors.Is(err, io.EOF) {
		if s.tap.total == 0 {
			return nil, fmt.Errorf("%w: %s: file is empty", ErrEmpty, name)
		}

		return nil, fmt.Errorf("%w: %s: no H.264 frames", ErrEmpty, name)
	}
	if err != nil {
		return nil, err
	}
	s.first = first

	return s, nil
}

func (s *h264Source) start() {
	// NewReader fails only on a nil reader, which the tap is not.
	s.rd, _ = h264reader.NewReader(s.tap)
	s.pending = nil
	s.index = 0
}

// readAU returns the next access unit of this pass, or io.EOF.
func (s *h264Source) readAU() ([]byte, error) {
	var (
		au     []byte
		hasVCL bool
	)
	for {
		nal := s.pending
		s.pending = nil
		if nal == nil {
			n, err := s.rd.NextNAL()
			if errors.Is(err, io.EOF) {
				if !hasVCL { // parameter sets with no picture after them
					return nil, io.EOF
				}
				s.index++

				return au, nil
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %s: not an H.264 Annex-B stream: %w", ErrBadFormat, s.name, err)
			}
			nal = n.Data
		}
		if len(nal) == 0 {
			continue
		}
		typ := nal[0] & 0x1f
		switch typ {
		case nalAUD, nalFiller, nalSEI:
			// An AUD or SEI also starts a new access unit.
			if hasVCL {
				s.index++

				return au, nil
			}

			continue
		case nalSPS, nalPPS:
			if hasVCL {
				s.pending = nal
				s.index++

				return au, nil
			}
		case nalSliceNonIDR, nalSliceIDR:
			// first_mb_in_slice is ue(v) and opens the slice header: a
			// leading 1 bit means 0, the first slice of a new picture.
			firstSlice := len(nal) > 1 && nal[1]&0x80 != 0
			if hasVCL && firstSlice {
				s.pending = nal
				s.index++

				return au, nil
			}
			hasVCL = true
		}
		au = append(au, annexBStartCode...)
		au = append(au, nal...)
	}
}

func (s *h264Source) Kind() webrtc.RTPCodecType        { return webrtc.RTPCodecTypeVideo }
func (s *h264Source) Codec() webrtc.RTPCodecCapability { return codecH264 }
func (s *h264Source) Close() error                     { return s.closer.close() }

func (s *h264Source) Next(ctx context.Context) (media.Sample, error) {
	if err := checkNext(ctx, s.closer.closed); err != nil {
		return media.Sample{}, err
	}
	if au := s.first; au != nil {
		s.first = nil

		return s.sample(au), nil
	}
	au, err := s.readAU()
	if errors.Is(err, io.EOF) && s.rw != nil {
		if err = s.rw.rewind(s.name); err != nil {
			return media.Sample{}, err
		}
		s.start()
		au, err = s.readAU()
		if errors.Is(err, io.EOF) {
			return media.Sample{}, fmt.Errorf("%w: %s: no frames after rewinding", ErrEmpty, s.name)
		}
	}
	if err != nil {
		return media.Sample{}, err
	}

	return s.sample(au), nil
}

// sample times the next access unit: the durations alternate between the
// nanoseconds around 1/fps so that n samples last n/fps seconds exactly.
func (s *h264Source) sample(au []byte) media.Sample {
	at := func(n int64) time.Duration { return time.Duration(float64(n) * float64(time.Second) / s.fps) }
	d := at(s.sent+1) - at(s.sent)
	s.sent++

	return media.Sample{Data: au, Duration: d}
}
