package localkvs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
)

// Stored fragments back into frames, for the playback handlers
// (playback.go): the Matroska parsed, access units merged, codec strings.

// playFragment is one stored fragment parsed back: its tracks and frames.
type playFragment struct {
	meta   fragmentMeta
	tracks mkvTracksInfo
	sps    []byte
	pps    []byte
	frames []mkvFrame // in timestamp order; video data is AVC (4-byte lengths)
}

// end is the producer time (epoch ms) the fragment ends at.
func (f *playFragment) end() int64 { return f.meta.Producer + f.meta.LengthMS }

// loadFragment reads and parses one fragment of a stream by number.
func (s *Server) loadFragment(st *streamRec, number string) (*playFragment, error) {
	if number == "" {
		return nil, newAPIError(http.StatusBadRequest, codeMissingParameter, ErrInvalidArgument, "FragmentNumber is required")
	}
	var meta *fragmentMeta
	for _, m := range s.media.store.list(st.ARN, time.Duration(st.Retention)*time.Hour, s.clock.Now()) {
		if m.Number == number {
			meta = &m
			break
		}
	}
	if meta == nil {
		return nil, notFound("the stream %q has no fragment %q (or it is past the retention)", st.Name, number)
	}
	data, err := s.media.store.read(st.ARN, number)
	if err != nil {
		return nil, notFound("the fragment %q is no longer stored", number)
	}
	return parseFragment(*meta, data)
}

// parseFragment turns a stored fragment (Info, Tracks, Cluster) into frames.
func parseFragment(m fragmentMeta, data []byte) (*playFragment, error) {
	if m.TracksLen > len(data) {
		return nil, fmt.Errorf("fragment %s: %d bytes of tracks in %d bytes", m.Number, m.TracksLen, len(data))
	}
	var head struct {
		Info   webm.Info   `ebml:"Info"`
		Tracks webm.Tracks `ebml:"Tracks"`
	}
	if err := ebml.Unmarshal(bytes.NewReader(data[:m.TracksLen]), &head); err != nil {
		return nil, fmt.Errorf("fragment %s: tracks: %w", m.Number, err)
	}
	var body struct {
		Cluster webm.Cluster `ebml:"Cluster"`
	}
	if len(data) > m.TracksLen {
		if err := ebml.Unmarshal(bytes.NewReader(data[m.TracksLen:]), &body); err != nil {
			return nil, fmt.Errorf("fragment %s: cluster: %w", m.Number, err)
		}
	}
	f := &playFragment{meta: m}
	for _, t := range head.Tracks.TrackEntry {
		switch t.CodecID {
		case mkvCodecH264:
			f.tracks.AVC = t.CodecPrivate
			if t.Video != nil {
				f.tracks.Width, f.tracks.Height = int(t.Video.PixelWidth), int(t.Video.PixelHeight)
			}
			f.sps, f.pps = parseAVCConfig(t.CodecPrivate)
		case mkvCodecOpus:
			f.tracks.Audio = true
			f.tracks.Channels = 2
			if t.Audio != nil && t.Audio.Channels > 0 {
				f.tracks.Channels = int(t.Audio.Channels)
			}
		}
	}
	base := int64(body.Cluster.Timecode)
	for _, b := range body.Cluster.SimpleBlock {
		if len(b.Data) == 0 || (b.TrackNumber != mkvVideoTrack && b.TrackNumber != mkvAudioTrack) {
			continue
		}
		f.frames = append(f.frames, mkvFrame{track: b.TrackNumber, ts: base + int64(b.Timecode), key: b.Keyframe, data: b.Data[0]})
	}
	sort.SliceStable(f.frames, func(i, j int) bool { return f.frames[i].ts < f.frames[j].ts })
	f.frames = mergeAccessUnits(f.frames)
	return f, nil
}

// mergeAccessUnits joins the video frames that share a timestamp into one
// (an access unit is every NAL unit of one picture time: the recorder may
// store parameter sets apart from the picture they precede). Left apart,
// the first would be a sample of zero duration, and a Media Source
// Extensions player takes the step to the next as a discontinuity and
// drops every frame up to the next key frame.
func mergeAccessUnits(frames []mkvFrame) []mkvFrame {
	out := frames[:0]
	lastVideo := -1
	for _, fr := range frames {
		if fr.track == mkvVideoTrack && lastVideo >= 0 && out[lastVideo].ts == fr.ts {
			prev := &out[lastVideo]
			prev.data = append(append([]byte(nil), prev.data...), fr.data...)
			prev.key = prev.key || fr.key
			continue
		}
		out = append(out, fr)
		if fr.track == mkvVideoTrack {
			lastVideo = len(out) - 1
		}
	}
	return out
}

// parseAVCConfig returns the first SPS and PPS of an
// AVCDecoderConfigurationRecord.
func parseAVCConfig(b []byte) (sps, pps []byte) {
	if len(b) < 8 {
		return nil, nil
	}
	n := int(binary.BigEndian.Uint16(b[6:]))
	if 8+n > len(b) {
		return nil, nil
	}
	sps = b[8 : 8+n]
	rest := b[8+n:]
	if len(rest) < 3 || rest[0] == 0 {
		return sps, nil
	}
	m := int(binary.BigEndian.Uint16(rest[1:]))
	if 3+m > len(rest) {
		return sps, nil
	}
	return sps, rest[3 : 3+m]
}

// avcCodecString is the RFC 6381 codec of an SPS: "avc1.PPCCLL".
func avcCodecString(sps []byte) string {
	if len(sps) < 4 {
		return "avc1.42e01f"
	}
	return fmt.Sprintf("avc1.%02x%02x%02x", sps[1], sps[2], sps[3])
}

// codecs is the CODECS attribute of a fragment's tracks.
func (f *playFragment) codecs() string {
	var c []string
	if f.tracks.AVC != nil {
		c = append(c, avcCodecString(f.sps))
	}
	if f.tracks.Audio {
		c = append(c, "opus")
	}
	return strings.Join(c, ",")
}

// trackFrames returns a track's frames and each one's duration in ms: to
// the next frame of the track; the last one lasts as its Opus packet says
// (audio) or as the step before it (video). Not to the fragment's end: the
// next fragment's first frame of the track need not come at that time, and
// a Media Source Extensions player takes a step of more than twice the
// last duration as a discontinuity, dropping the video up to its next key
// frame.
func (f *playFragment) trackFrames(track uint64) ([]mkvFrame, []int64) {
	var fr []mkvFrame
	for _, x := range f.frames {
		if x.track == track {
			fr = append(fr, x)
		}
	}
	d := make([]int64, len(fr))
	for i := range fr {
		switch {
		case i+1 < len(fr):
			d[i] = fr[i+1].ts - fr[i].ts
		case track == mkvAudioTrack && opusDurationMS(fr[i].data) > 0:
			d[i] = opusDurationMS(fr[i].data)
		case i > 0:
			d[i] = d[i-1]
		case track == mkvAudioTrack:
			d[i] = 20
		default:
			d[i] = 33
		}
		d[i] = max(d[i], 1)
	}
	return fr, d
}

// opusDurationMS is the duration of an Opus packet from its TOC byte (RFC
// 6716, 3.1), rounded to ms; 0 when it does not parse.
func opusDurationMS(p []byte) int64 {
	if len(p) == 0 {
		return 0
	}
	config := p[0] >> 3
	var us int64 // one frame, in microseconds
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		us = []int64{10000, 20000, 40000, 60000}[config%4]
	case config < 16: // hybrid: 10, 20 ms
		us = []int64{10000, 20000}[config%2]
	default: // CELT: 2.5, 5, 10, 20 ms
		us = []int64{2500, 5000, 10000, 20000}[config%4]
	}
	frames := int64(1)
	switch p[0] & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0
		}
		frames = int64(p[1] & 0x3F)
	}
	return (frames*us + 500) / 1000
}

// mediaTime is a frame time on the session timeline (ms since the
// stream's creation), never negative.
func mediaTime(st *streamRec, ts int64) int64 { return max(0, ts-st.Created) }
