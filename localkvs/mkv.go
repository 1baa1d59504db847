package localkvs

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
)

// The Matroska (MKV) side of the recording (docs/protocol.md, "Streams and
// storage"). A fragment is stored as its Info and Tracks elements followed
// by one Cluster (known size, absolute timecode in ms, SimpleBlocks); what
// the data plane sends for it is a chunk as KVS sends one: an EBML header,
// a Segment of unknown size, the stored Info and Tracks, a Tags element
// with the fragment's number and timestamps, then the stored Cluster
// (GetMedia: and a Tags element after it). GetMedia sends the fragment
// being recorded with a Cluster of unknown size, its SimpleBlocks as they
// come (livefragment.go).

// Track numbers of a recording.
const (
	mkvVideoTrack = 1
	mkvAudioTrack = 2
)

// The codec ids of the tracks the media server records.
const (
	mkvCodecH264 = "V_MPEG4/ISO/AVC"
	mkvCodecOpus = "A_OPUS"
)

type mkvSimpleTag struct {
	TagName   string `ebml:"TagName"`
	TagString string `ebml:"TagString"`
}

type mkvTag struct {
	SimpleTag []mkvSimpleTag `ebml:"SimpleTag"`
}

type mkvTags struct {
	Tag []mkvTag `ebml:"Tag"`
}

// mkvChunkHead is what starts every chunk: the EBML header and the
// opening of a Segment of unknown size (its elements follow).
var mkvChunkHead = func() []byte {
	var b bytes.Buffer
	head := struct {
		Header  webm.EBMLHeader `ebml:"EBML"`
		Segment struct{}        `ebml:"Segment,size=unknown"`
	}{Header: webm.EBMLHeader{
		EBMLVersion: 1, EBMLReadVersion: 1, EBMLMaxIDLength: 4, EBMLMaxSizeLength: 8,
		DocType: "matroska", DocTypeVersion: 4, DocTypeReadVersion: 2,
	}}
	if err := ebml.Marshal(&head, &b); err != nil {
		panic("localkvs: encoding the MKV header: " + err.Error())
	}
	return b.Bytes()
}()

// mkvTracksInfo is the format of a recording's tracks, as its Info and
// Tracks elements encode it.
type mkvTracksInfo struct {
	// AVC is the AVCDecoderConfigurationRecord of the video, nil without video.
	AVC           []byte
	Width, Height int
	// Audio is true with an Opus track; Channels is its channel count.
	Audio    bool
	Channels int
}

// opusPreSkip is the encoder delay the OpusHead names (WebRTC does not
// signal it; 312 samples at 48 kHz is libopus's).
const opusPreSkip = 312

// opusHead returns the OpusHead codec private data (RFC 7845, 5.1).
func opusHead(channels int) []byte {
	b := make([]byte, 19)
	copy(b, "OpusHead")
	b[8] = 1
	b[9] = byte(channels)
	binary.LittleEndian.PutUint16(b[10:], opusPreSkip)
	binary.LittleEndian.PutUint32(b[12:], 48000)
	return b
}

// encode returns the Info and Tracks elements.
func (t mkvTracksInfo) encode() ([]byte, error) {
	var entries []webm.TrackEntry
	if t.AVC != nil {
		entries = append(entries, webm.TrackEntry{
			Name: "video", TrackNumber: mkvVideoTrack, TrackUID: mkvVideoTrack, CodecID: mkvCodecH264,
			CodecPrivate: t.AVC, TrackType: 1,
			Video: &webm.Video{PixelWidth: uint64(t.Width), PixelHeight: uint64(t.Height)},
		})
	}
	if t.Audio {
		ch := t.Channels
		if ch == 0 {
			ch = 2
		}
		entries = append(entries, webm.TrackEntry{
			Name: "audio", TrackNumber: mkvAudioTrack, TrackUID: mkvAudioTrack, CodecID: mkvCodecOpus,
			CodecPrivate: opusHead(ch), TrackType: 2,
			CodecDelay:  uint64(opusPreSkip * time.Second / 48000),
			SeekPreRoll: uint64(80 * time.Millisecond),
			Audio:       &webm.Audio{SamplingFrequency: 48000, Channels: uint64(ch)},
		})
	}
	v := struct {
		Info   webm.Info   `ebml:"Info"`
		Tracks webm.Tracks `ebml:"Tracks"`
	}{
		Info:   webm.Info{TimecodeScale: uint64(time.Millisecond), MuxingApp: "kvswebrtc localkvs", WritingApp: "kvswebrtc localkvs media server"},
		Tracks: webm.Tracks{TrackEntry: entries},
	}
	var b bytes.Buffer
	if err := ebml.Marshal(&v, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// mkvFrame is one recorded frame.
type mkvFrame struct {
	track uint64
	ts    int64 // epoch ms
	key   bool
	data  []byte
}

// encodeCluster returns a Cluster element of frames (in timestamp order)
// with timecode start (epoch ms).
func encodeCluster(start int64, frames []mkvFrame) ([]byte, error) {
	v := struct {
		Cluster webm.Cluster `ebml:"Cluster"`
	}{webm.Cluster{Timecode: uint64(start), SimpleBlock: blocks(start, frames)}}
	var b bytes.Buffer
	if err := ebml.Marshal(&v, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// blocks makes the SimpleBlocks of frames in a cluster with timecode start.
func blocks(start int64, frames []mkvFrame) []ebml.Block {
	out := make([]ebml.Block, 0, len(frames))
	for _, f := range frames {
		rel := max(min(f.ts-start, 32767), -32768)
		out = append(out, ebml.Block{
			TrackNumber: f.track, Timecode: int16(rel), Keyframe: f.key || f.track == mkvAudioTrack, Data: [][]byte{f.data},
		})
	}
	return out
}

// openCluster returns the start of a Cluster of unknown size with
// timecode start (epoch ms): its SimpleBlocks follow as they are recorded
// (encodeBlocks), and the next top-level element ends it.
func openCluster(start int64) []byte {
	v := struct {
		Cluster struct {
			Timecode uint64 `ebml:"Timecode"`
		} `ebml:"Cluster,size=unknown"`
	}{}
	v.Cluster.Timecode = uint64(start)
	var b bytes.Buffer
	if err := ebml.Marshal(&v, &b); err != nil {
		panic("localkvs: encoding an MKV cluster head: " + err.Error())
	}
	return b.Bytes()
}

// encodeBlocks returns the SimpleBlock elements of frames in a cluster
// with timecode start.
func encodeBlocks(start int64, frames []mkvFrame) ([]byte, error) {
	v := struct {
		SimpleBlock []ebml.Block `ebml:"SimpleBlock"`
	}{blocks(start, frames)}
	var b bytes.Buffer
	if err := ebml.Marshal(&v, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// kvsTime formats an epoch-ms time as the tags carry it: seconds with
// three decimals.
func kvsTime(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}

// encodeTags returns a Tags element with one tag of the name/value pairs.
func encodeTags(pairs ...string) []byte {
	var t mkvTag
	for i := 0; i+1 < len(pairs); i += 2 {
		t.SimpleTag = append(t.SimpleTag, mkvSimpleTag{pairs[i], pairs[i+1]})
	}
	v := struct {
		Tags mkvTags `ebml:"Tags"`
	}{mkvTags{Tag: []mkvTag{t}}}
	var b bytes.Buffer
	if err := ebml.Marshal(&v, &b); err != nil {
		panic("localkvs: encoding MKV tags: " + err.Error())
	}
	return b.Bytes()
}

// writeChunk writes one fragment as a chunk: the head, the stored Info and
// Tracks, the tags, the stored Cluster.
func writeChunk(w interface{ Write([]byte) (int, error) }, m fragmentMeta, data []byte, tags []byte) error {
	if m.TracksLen > len(data) {
		return errFragmentGone
	}
	for _, p := range [][]byte{mkvChunkHead, data[:m.TracksLen], tags, data[m.TracksLen:]} {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// avcConfig builds an AVCDecoderConfigurationRecord (ISO 14496-15) from one
// SPS and one PPS.
func avcConfig(sps, pps []byte) []byte {
	if len(sps) < 4 {
		return nil
	}
	b := []byte{1, sps[1], sps[2], sps[3], 0xFF, 0xE1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	return append(b, pps...)
}
