package media

import (
	"fmt"

	gformat "github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mch265 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// This file holds the codecs of live streams (OpenURL): which formats a
// live track takes, and the depacketizers that make whole samples of
// their RTP packets.

// packetizer turns RTP packets of one codec into whole samples.
type packetizer interface {
	// decode returns the sample data of a complete frame (nil while more
	// packets are needed) and whether it is a key frame.
	decode(p *rtp.Packet) (data []byte, key bool, err error)
	// reset forgets partial frames (after a reconnect).
	reset()
}

// h264Packetizer depacketizes H.264 (RFC 6184) into Annex-B access units,
// with SPS and PPS in front of every IDR frame.
type h264Packetizer struct {
	f   *gformat.H264
	dec *rtph264.Decoder
	ps  paramSets // SPS, PPS
}

func newH264Packetizer(f *gformat.H264) (*h264Packetizer, error) {
	d, err := f.CreateDecoder()
	if err != nil {
		return nil, err
	}
	p := &h264Packetizer{f: f, dec: d}
	sps, pps := f.SafeParams()
	p.ps = paramSets{sets: [][]byte{sps, pps}}
	return p, nil
}

func (p *h264Packetizer) reset() {
	if d, err := p.f.CreateDecoder(); err == nil {
		p.dec = d
	}
}

func (p *h264Packetizer) decode(pkt *rtp.Packet) ([]byte, bool, error) {
	au, err := p.dec.Decode(pkt)
	if err != nil {
		return nil, false, err
	}
	key := false
	has := make([]bool, 2)
	for _, n := range au {
		if len(n) == 0 {
			continue
		}
		switch mch264.NALUType(n[0] & 0x1f) {
		case mch264.NALUTypeSPS:
			p.ps.keep(0, n, has)
		case mch264.NALUTypePPS:
			p.ps.keep(1, n, has)
		case mch264.NALUTypeIDR:
			key = true
		}
	}
	if key {
		au = p.ps.complete(au, has)
	}
	return annexB(au), key, nil
}

// h265Packetizer depacketizes H.265 (RFC 7798) into Annex-B access units,
// with VPS, SPS and PPS in front of every random-access picture.
type h265Packetizer struct {
	f   *gformat.H265
	dec *rtph265.Decoder
	ps  paramSets // VPS, SPS, PPS
}

func newH265Packetizer(f *gformat.H265) (*h265Packetizer, error) {
	d, err := f.CreateDecoder()
	if err != nil {
		return nil, err
	}
	p := &h265Packetizer{f: f, dec: d}
	vps, sps, pps := f.SafeParams()
	p.ps = paramSets{sets: [][]byte{vps, sps, pps}}
	return p, nil
}

func (p *h265Packetizer) reset() {
	if d, err := p.f.CreateDecoder(); err == nil {
		p.dec = d
	}
}

func (p *h265Packetizer) decode(pkt *rtp.Packet) ([]byte, bool, error) {
	au, err := p.dec.Decode(pkt)
	if err != nil {
		return nil, false, err
	}
	has := make([]bool, 3)
	for _, n := range au {
		if len(n) < 2 {
			continue
		}
		switch mch265.NALUType((n[0] >> 1) & 0x3f) {
		case mch265.NALUType_VPS_NUT:
			p.ps.keep(0, n, has)
		case mch265.NALUType_SPS_NUT:
			p.ps.keep(1, n, has)
		case mch265.NALUType_PPS_NUT:
			p.ps.keep(2, n, has)
		}
	}
	key := mch265.IsRandomAccess(au)
	if key {
		au = p.ps.complete(au, has)
	}
	return annexB(au), key, nil
}

// paramSets are the latest parameter sets of an H.264 or H.265 stream, in
// the order they go in front of a random-access picture.
type paramSets struct {
	sets [][]byte
}

// keep takes NAL unit n as parameter set i, seen in the current access
// unit (has[i]).
func (p *paramSets) keep(i int, n []byte, has []bool) {
	p.sets[i], has[i] = append([]byte(nil), n...), true
}

// complete puts in front of au the parameter sets it does not hold
// itself (has) and that are known.
func (p *paramSets) complete(au [][]byte, has []bool) [][]byte {
	var pre [][]byte
	for i, ps := range p.sets {
		if !has[i] && ps != nil {
			pre = append(pre, ps)
		}
	}
	return append(pre, au...)
}

// audioPacketizer passes audio payloads through: one RTP packet is one
// Opus packet, or a run of G.711 samples.
type audioPacketizer struct{}

func (audioPacketizer) reset() {}

func (audioPacketizer) decode(pkt *rtp.Packet) ([]byte, bool, error) {
	if len(pkt.Payload) == 0 {
		return nil, false, nil
	}
	return append([]byte(nil), pkt.Payload...), true, nil
}

// annexB joins NAL units with 4-byte start codes.
func annexB(au [][]byte) []byte {
	n := 0
	for _, u := range au {
		n += 4 + len(u)
	}
	b := make([]byte, 0, n)
	for _, u := range au {
		b = append(b, 0, 0, 0, 1)
		b = append(b, u...)
	}
	return b
}

// Codecs of live tracks, as pion's sample tracks take them.
var (
	codecH265 = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000}
	codecPCMU = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}
	codecPCMA = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}
)

// trackFor returns the live track for a format of a stream, or an error
// that names the codec and how to re-encode it when the browser cannot
// take it.
func trackFor(st *LiveStream, f gformat.Format) (*liveTrack, error) {
	switch f := f.(type) {
	case *gformat.H264:
		p, err := newH264Packetizer(f)
		if err != nil {
			return nil, err
		}
		return newLiveTrack(st, webrtc.RTPCodecTypeVideo, codecH264, p), nil
	case *gformat.H265:
		p, err := newH265Packetizer(f)
		if err != nil {
			return nil, err
		}
		return newLiveTrack(st, webrtc.RTPCodecTypeVideo, codecH265, p), nil
	case *gformat.Opus:
		return newLiveTrack(st, webrtc.RTPCodecTypeAudio, codecOpus, audioPacketizer{}), nil
	case *gformat.G711:
		if f.SampleRate != 8000 || f.ChannelCount != 1 {
			return nil, fmt.Errorf("%w: G.711 at %d Hz with %d channels (WebRTC takes 8000 Hz mono): re-encode it, e.g. ffmpeg -i INPUT -c:v copy -c:a libopus -f rtsp rtsp://HOST/PATH",
				ErrUnsupportedCodec, f.SampleRate, f.ChannelCount)
		}
		if f.MULaw {
			return newLiveTrack(st, webrtc.RTPCodecTypeAudio, codecPCMU, audioPacketizer{}), nil
		}
		return newLiveTrack(st, webrtc.RTPCodecTypeAudio, codecPCMA, audioPacketizer{}), nil
	case *gformat.MPEG4Audio, *gformat.MPEG4AudioLATM:
		return nil, fmt.Errorf("%w: AAC audio (%s): browsers' WebRTC takes Opus, PCMU or PCMA; re-encode the audio, e.g. ffmpeg -i INPUT -c:v copy -c:a libopus -f rtsp rtsp://HOST/PATH, or drop it with URLOptions.SkipUnsupported (--skip-unsupported)",
			ErrUnsupportedCodec, f.Codec())
	default:
		kind := "video"
		if f.Codec() != "" && isAudioFormat(f) {
			kind = "audio"
		}
		hint := "-c:v libx264 -bf 0 -c:a copy"
		if kind == "audio" {
			hint = "-c:v copy -c:a libopus"
		}
		return nil, fmt.Errorf("%w: %s %s: the master sends H.264, H.265, Opus, PCMU or PCMA as they are; re-encode it, e.g. ffmpeg -i INPUT %s -f rtsp rtsp://HOST/PATH, or drop it with URLOptions.SkipUnsupported (--skip-unsupported)",
			ErrUnsupportedCodec, kind, f.Codec(), hint)
	}
}

func isAudioFormat(f gformat.Format) bool {
	switch f.(type) {
	case *gformat.G722, *gformat.G726, *gformat.LPCM, *gformat.MPEG1Audio, *gformat.AC3, *gformat.Vorbis, *gformat.Speex:
		return true
	}
	return false
}
