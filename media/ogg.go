package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

const (
	oggPageHeaderLen = 27
	oggMaxSegments   = 255
)

type oggSource struct {
	name   string
	tap    *tap
	rd     *oggreader.OggReader
	rw     *rewinder
	closer closeOnce

	serial   uint32
	queue    [][]byte // whole Opus packets not yet returned
	partial  []byte   // a packet that goes on into the next page
	pages    int      // pages read in this pass, for error messages
	returned int      // samples returned in this pass
}

// NewOgg returns a Source over an Ogg file holding one Opus stream. Each
// sample is one Opus packet; its Duration comes from the packet's own TOC
// byte (RFC 6716, 3.1), so pages may hold any number of packets. Pages of
// other logical streams in the file are skipped.
//
// NewOgg reads the Opus headers and the first packet before it returns. It
// does not close r.
func NewOgg(r io.Reader, opts Options) (Source, error) {
	return newOgg(r, opts, "Ogg stream", nil)
}

func newOgg(r io.Reader, opts Options, name string, c io.Closer) (Source, error) {
	rw, err := newRewinder(r, opts, name)
	if err != nil {
		return nil, err
	}
	s := &oggSource{
		name:   name,
		tap:    &tap{r: r, limit: oggPageHeaderLen + oggMaxSegments},
		rw:     rw,
		closer: closeOnce{c: c},
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	if err := s.fill(); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: Ogg file has Opus headers but no audio packets", ErrEmpty, name)
		}

		return nil, err
	}

	return s, nil
}

// start reads the OpusHead page from the current position.
func (s *oggSource) start() error {
	s.tap.reset()
	rd, _, err := oggreader.NewWith(s.tap)
	if err != nil {
		if s.tap.total == 0 && errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: %s: file is empty", ErrEmpty, s.name)
		}

		if b := s.tap.buf; len(b) >= 4 && string(b[:4]) != "OggS" {
			return fmt.Errorf("%w: %s: not an Ogg file: starts with %q, not \"OggS\"", ErrBadFormat, s.name, b[:4])
		}

		return fmt.Errorf("%w: %s: not an Ogg Opus file: %w", ErrBadFormat, s.name, err)
	}
	if len(s.tap.buf) < oggPageHeaderLen {
		return fmt.Errorf("%w: %s: short first page", ErrBadFormat, s.name)
	}
	s.rd = rd
	s.serial = binary.LittleEndian.Uint32(s.tap.buf[14:18])
	s.queue, s.partial = nil, nil
	s.pages, s.returned = 1, 0

	return nil
}

// fill reads pages until at least one packet is queued, or io.EOF.
func (s *oggSource) fill() error {
	for len(s.queue) == 0 {
		s.tap.reset()
		payload, hdr, err := s.rd.ParseNextPage()
		if errors.Is(err, io.EOF) {
			return io.EOF
		}
		if err != nil {
			return fmt.Errorf("%w: %s: page %d: %w", ErrBadFormat, s.name, s.pages, err)
		}
		s.pages++
		if hdr.Serial != s.serial {
			continue
		}
		buf := s.tap.buf
		if len(buf) < oggPageHeaderLen || len(buf) < oggPageHeaderLen+int(buf[26]) {
			return fmt.Errorf("%w: %s: page %d: short page header", ErrBadFormat, s.name, s.pages-1)
		}
		off := 0
		for _, seg := range buf[oggPageHeaderLen : oggPageHeaderLen+int(buf[26])] {
			s.partial = append(s.partial, payload[off:off+int(seg)]...)
			off += int(seg)
			if seg < oggMaxSegments { // a lacing value under 255 ends a packet
				s.packet(s.partial)
				s.partial = nil
			}
		}
	}

	return nil
}

// packet queues one whole packet, skipping the Opus header packets.
func (s *oggSource) packet(p []byte) {
	if len(p) == 0 || bytes.HasPrefix(p, []byte("OpusTags")) || bytes.HasPrefix(p, []byte("OpusHead")) {
		return
	}
	s.queue = append(s.queue, p)
}

func (s *oggSource) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }
func (s *oggSource) Close() error              { return s.closer.close() }

func (s *oggSource) Codec() webrtc.RTPCodecCapability {
	// WebRTC always signals Opus as two channels (RFC 7587, 7), whatever
	// the stream holds.
	return codecOpus
}

func (s *oggSource) Next(ctx context.Context) (media.Sample, error) {
	if err := checkNext(ctx, s.closer.closed); err != nil {
		return media.Sample{}, err
	}
	err := s.fill()
	if errors.Is(err, io.EOF) && s.rw != nil {
		if err = s.rw.rewind(s.name); err != nil {
			return media.Sample{}, err
		}
		if err = s.start(); err != nil {
			return media.Sample{}, err
		}
		if err = s.fill(); errors.Is(err, io.EOF) {
			return media.Sample{}, fmt.Errorf("%w: %s: no packets after rewinding", ErrEmpty, s.name)
		}
	}
	if err != nil {
		return media.Sample{}, err
	}
	p := s.queue[0]
	s.queue[0] = nil
	s.queue = s.queue[1:]
	dur, err := opusDuration(p)
	if err != nil {
		return media.Sample{}, fmt.Errorf("%w: %s: audio packet %d: %w", ErrBadFormat, s.name, s.returned, err)
	}
	s.returned++

	return media.Sample{Data: p, Duration: dur}, nil
}

// opusDuration is the playing time of one Opus packet (RFC 6716, 3.1 and 3.2).
func opusDuration(p []byte) (time.Duration, error) {
	if len(p) == 0 {
		return 0, errors.New("empty Opus packet")
	}
	toc := p[0]
	config := toc >> 3
	var frame time.Duration
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = [...]time.Duration{10, 20, 40, 60}[config&3] * time.Millisecond
	case config < 16: // hybrid: 10, 20 ms
		frame = [...]time.Duration{10, 20}[config&1] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [...]time.Duration{2500, 5000, 10000, 20000}[config&3] * time.Microsecond
	}
	var frames int
	switch toc & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	default:
		if len(p) < 2 {
			return 0, errors.New("code 3 Opus packet without a frame count")
		}
		frames = int(p[1] & 0x3f)
	}
	d := time.Duration(frames) * frame
	if d <= 0 || d > 120*time.Millisecond {
		return 0, fmt.Errorf("an Opus packet lasts %v, outside (0, 120ms]", d)
	}

	return d, nil
}
