package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// A Frame is one complete frame (for audio, one packet) received on a
// track, rebuilt from its RTP packets.
type Frame struct {
	// Codec is the codec of the track it came on.
	Codec webrtc.RTPCodecParameters
	// Sample holds the frame's media, with the RTP payload headers taken
	// off: Data is what a decoder takes (for H.264, Annex-B NAL units),
	// PacketTimestamp the RTP timestamp. Duration is the gap to the next
	// frame's timestamp, zero for the last frame of a track.
	Sample media.Sample
	// Packets are the RTP packets the frame was rebuilt from, in sequence
	// order.
	Packets []*rtp.Packet
	// Received is when the last of Packets arrived: the moment the frame
	// was complete.
	Received time.Time
	// Keyframe tells whether the frame decodes on its own (see IsKeyframe).
	Keyframe bool
}

// A Sink takes the frames that Consume rebuilds. [Recorder] and [Counter]
// are sinks; [SinkFunc] makes one of a function.
type Sink interface {
	// WriteFrame takes one frame. It must not modify f's data, which other
	// sinks see too. An error stops Consume.
	WriteFrame(f Frame) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(f Frame) error

// WriteFrame calls fn(f).
func (fn SinkFunc) WriteFrame(f Frame) error { return fn(f) }

// FromKeyframe returns a Sink that passes frames on to each of sinks in
// turn from the first key frame on (Frame.Keyframe), so that every sink
// starts on a frame it can decode: a Broadcaster's writers start the same
// way. Audio frames are all key frames. The first error of a sink stops
// the others from getting the frame, and is returned. The Sink is for one
// track: it is not safe for concurrent use.
func FromKeyframe(sinks ...Sink) Sink {
	return &keyGate{sinks: sinks}
}

type keyGate struct {
	start keyStart
	sinks []Sink
}

func (g *keyGate) WriteFrame(f Frame) error {
	if !g.start.pass(f.Keyframe) {
		return nil
	}
	for _, s := range g.sinks {
		if err := s.WriteFrame(f); err != nil {
			return err
		}
	}

	return nil
}

// RTPReader is what Consume reads packets from. *webrtc.TrackRemote is one.
// If it also has a SetReadDeadline(time.Time) error method, as
// *webrtc.TrackRemote does, Consume uses it to stop a blocked read when its
// context is done.
type RTPReader interface {
	// ReadRTP returns the next packet received; io.EOF ends the track.
	ReadRTP() (*rtp.Packet, interceptor.Attributes, error)
	// Codec is the codec the track was negotiated with.
	Codec() webrtc.RTPCodecParameters
}

// How long frames wait for a late or lost packet: at most maxLate packets
// (enough for a large key frame to arrive out of order) and at most
// maxDelay, after which the frames complete so far are passed on and the
// rest dropped.
//
// The time limit is kept here rather than with samplebuilder's
// WithMaxTimeDelay: with that option its Flush (and its purge after a
// stall) can walk the whole 65536-entry ring once per entry, taking most
// of a second.
const (
	videoMaxLate = 256
	audioMaxLate = 16
	maxDelay     = 500 * time.Millisecond
)

// Consume reads RTP packets from track until the track ends (Consume
// returns nil), ctx is done (ctx.Err()), a read fails (that error) or a
// sink fails (that error). It puts the packets back in sequence order,
// rebuilds complete frames with pion's samplebuilder and gives each frame
// to every sink in turn, on the calling goroutine; a slow sink delays the
// next frame.
//
// A frame is passed on when the packet after it arrives. A frame waits for
// a late packet until 256 packets (16 for audio) have come after it or for
// half a second, whichever is first; then the frames complete so far are
// passed on. Frames with a lost packet are dropped, never passed on
// damaged; a loss that is never repaired (by NACK) can cost the frame or
// two after it as well, which is how pion's samplebuilder purges. When
// Consume returns it has passed on every complete frame it held. It does
// not close the sinks. If Consume stopped a read with SetReadDeadline, the
// deadline stays set.
//
// Consume knows the codecs it can rebuild frames of: VP8, VP9, AV1, H.264, H.265,
// Opus, PCMU, PCMA and G722. For others it returns ErrUnsupportedCodec.
func Consume(ctx context.Context, track RTPReader, sinks ...Sink) error {
	return consume(ctx, track, time.Now, sinks)
}

func consume(ctx context.Context, track RTPReader, now func() time.Time, sinks []Sink) error {
	codec := track.Codec()
	depack, maxLate, err := depacketizerFor(codec.MimeType)
	if err != nil {
		return err
	}
	if dl, ok := track.(interface{ SetReadDeadline(time.Time) error }); ok {
		stop := context.AfterFunc(ctx, func() { _ = dl.SetReadDeadline(time.Now()) })
		defer stop()
	}

	c := &consumer{
		codec:    codec,
		sinks:    sinks,
		received: map[uint16]arrival{},
		maxLate:  maxLate,
		audio:    KindOf(codec.RTPCodecCapability) == webrtc.RTPCodecTypeAudio,
	}
	c.sb = samplebuilder.New(maxLate, depack, codec.ClockRate, samplebuilder.WithRTPHeaders(true),
		samplebuilder.WithPacketReleaseHandler(func(*rtp.Packet) { c.released++ }))

	for {
		p, _, readErr := track.ReadRTP()
		at := now()
		if readErr != nil {
			if err := c.flush(); err != nil {
				return err
			}
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(readErr, io.EOF):
				return nil
			default:
				return fmt.Errorf("media: read RTP: %w", readErr)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if len(p.Payload) == 0 {
			// A padding-only packet (a bandwidth probe) holds a sequence
			// number, so it goes in; but samplebuilder would join it to
			// a one-packet frame after it and drop both, as a frame with
			// no start. Marked, it ends its own group and is dropped alone.
			q := *p
			q.Marker = true
			p = &q
		}
		if c.waiting(at) > maxDelay {
			// Stuck behind a lost packet, or the track paused: let go of
			// what is held before taking the new packet, which may start
			// a frame of its own.
			if err := c.flush(); err != nil {
				return err
			}
		}
		c.received[p.SequenceNumber] = arrival{p: p, at: at}
		c.sb.Push(p)
		if err := c.pop(); err != nil {
			return err
		}
	}
}

type arrival struct {
	p  *rtp.Packet
	at time.Time
}

type consumer struct {
	codec    webrtc.RTPCodecParameters
	sinks    []Sink
	sb       *samplebuilder.SampleBuilder
	received map[uint16]arrival // packets pushed and not yet part of a popped frame
	maxLate  uint16
	audio    bool
	released int // packets the samplebuilder let go of: a sign it moved on
}

// pop passes on every frame the samplebuilder has ready. Pop builds at most
// one frame a call, and returns nil when it drops a group of packets that
// is no frame (padding, or a frame whose start was lost) even if a whole
// frame follows; so pop goes on while Pop makes progress.
func (c *consumer) pop() error {
	for {
		before := c.released
		s := c.sb.Pop()
		if s == nil {
			if c.released == before {
				break
			}

			continue
		}
		hs := s.RTPHeaders
		if len(hs) == 0 || len(s.Data) == 0 || !c.whole(hs) {
			continue
		}
		f := Frame{Codec: c.codec, Sample: *s, Packets: make([]*rtp.Packet, 0, len(hs))}
		f.Sample.RTPHeaders = nil
		for _, h := range hs {
			if a, ok := c.received[h.SequenceNumber]; ok {
				f.Packets = append(f.Packets, a.p)
				if a.at.After(f.Received) {
					f.Received = a.at
				}
			}
		}
		c.forget(hs[len(hs)-1].SequenceNumber)
		f.Keyframe = IsKeyframe(c.codec.MimeType, f.Sample.Data)
		for _, sink := range c.sinks {
			if err := sink.WriteFrame(f); err != nil {
				return err
			}
		}
	}
	c.trim()

	return nil
}

// flush passes on every complete frame held and drops the rest.
func (c *consumer) flush() error {
	c.sb.Flush()
	err := c.pop()
	clear(c.received)

	return err
}

// waiting is how long the oldest packet held has waited to be part of a
// frame.
func (c *consumer) waiting(now time.Time) time.Duration {
	var longest time.Duration
	for _, a := range c.received {
		longest = max(longest, now.Sub(a.at))
	}

	return longest
}

// whole tells whether a rebuilt frame has all its packets. The samplebuilder
// drops a frame that lost its first packet, but a frame that lost its last
// one ends where the next timestamp begins; for video the last packet of a
// frame carries the marker bit (RFC 7741, 6184, and the VP9 and AV1 formats).
func (c *consumer) whole(hs []*rtp.Header) bool {
	for i := 1; i < len(hs); i++ {
		if hs[i].SequenceNumber != hs[i-1].SequenceNumber+1 {
			return false
		}
	}

	return c.audio || hs[len(hs)-1].Marker
}

// forget drops the packets up to and including last: they are in a frame
// already, or were dropped by the samplebuilder.
func (c *consumer) forget(last uint16) {
	for seq := range c.received {
		if int16(seq-last) <= 0 { //nolint:gosec // sequence numbers compare modulo 2^16
			delete(c.received, seq)
		}
	}
}

// trim bounds the memory of packets that never became a frame (a stream
// that keeps losing packets).
func (c *consumer) trim() {
	limit := 4 * int(c.maxLate)
	if len(c.received) <= limit {
		return
	}
	var newest uint16
	first := true
	for seq := range c.received {
		if first || int16(seq-newest) > 0 { //nolint:gosec // modulo 2^16
			newest, first = seq, false
		}
	}
	for seq := range c.received {
		if int(newest-seq) > 2*int(c.maxLate) {
			delete(c.received, seq)
		}
	}
}

func depacketizerFor(mime string) (rtp.Depacketizer, uint16, error) {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		return &codecs.VP8Packet{}, videoMaxLate, nil
	case strings.ToLower(webrtc.MimeTypeVP9):
		return &codecs.VP9Packet{}, videoMaxLate, nil
	case strings.ToLower(webrtc.MimeTypeAV1):
		return &codecs.AV1Depacketizer{}, videoMaxLate, nil
	case strings.ToLower(webrtc.MimeTypeH264):
		return &codecs.H264Packet{}, videoMaxLate, nil
	case strings.ToLower(webrtc.MimeTypeH265):
		return &codecs.H265Depacketizer{}, videoMaxLate, nil
	case strings.ToLower(webrtc.MimeTypeOpus):
		return &codecs.OpusPacket{}, audioMaxLate, nil
	case strings.ToLower(webrtc.MimeTypePCMU), strings.ToLower(webrtc.MimeTypePCMA),
		strings.ToLower(webrtc.MimeTypeG722):
		return rawAudio{}, audioMaxLate, nil
	default:
		return nil, 0, fmt.Errorf("%w: cannot rebuild frames of %q", ErrUnsupportedCodec, mime)
	}
}

// rawAudio depacketizes audio formats whose RTP payload is the media itself,
// one frame a packet (RFC 3551).
type rawAudio struct{}

func (rawAudio) Unmarshal(payload []byte) ([]byte, error) { return payload, nil }
func (rawAudio) IsPartitionHead([]byte) bool              { return true }
func (rawAudio) IsPartitionTail(bool, []byte) bool        { return true }
