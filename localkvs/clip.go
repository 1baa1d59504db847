package localkvs

import (
	"bytes"
	"net/http"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// GetClip (docs/protocol.md, "Playback"): one progressive MP4 (ftyp,
// moov, mdat, written with mediacommon's pmp4) of the fragments that
// overlap ClipFragmentSelector's range, whole: the clip starts at the key
// frame that starts the first of them. Its timeline starts at zero; a
// track that starts later than the other gets an edit list delay.

// Limits of GetClip, as KVS documents them.
const (
	maxClipFragments = 200
	maxClipBytes     = 100 << 20
)

func (s *Server) serveClip(w http.ResponseWriter, r *http.Request, body []byte) error {
	var in struct {
		StreamName, StreamARN string
		ClipFragmentSelector  *struct {
			FragmentSelectorType string
			TimestampRange       *struct{ StartTimestamp, EndTimestamp *float64 }
		}
	}
	if err := decode(body, &in); err != nil {
		return err
	}
	sel := in.ClipFragmentSelector
	if sel == nil || sel.TimestampRange == nil {
		return invalidArg("ClipFragmentSelector with a TimestampRange is required")
	}
	from, ok1 := epochMS(sel.TimestampRange.StartTimestamp)
	to, ok2 := epochMS(sel.TimestampRange.EndTimestamp)
	if !ok1 || !ok2 {
		return invalidArg("ClipFragmentSelector.TimestampRange needs StartTimestamp and EndTimestamp")
	}
	if to < from {
		return invalidArg("ClipFragmentSelector.TimestampRange.EndTimestamp is before StartTimestamp")
	}
	server := false
	switch sel.FragmentSelectorType {
	case "PRODUCER_TIMESTAMP":
	case "SERVER_TIMESTAMP":
		server = true
	default:
		return invalidArg("ClipFragmentSelector.FragmentSelectorType %q must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP", sel.FragmentSelectorType)
	}
	st, frags, err := s.streamFragmentsFor(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	var pick []fragmentMeta
	size := int64(0)
	for _, m := range frags {
		t := m.Producer
		if server {
			t = m.Server
		}
		if t+m.LengthMS > from && t <= to {
			pick = append(pick, m)
			size += m.Size
		}
	}
	switch {
	case len(pick) == 0:
		return notFound("no fragments in the stream %q for the requested range", st.Name)
	case len(pick) > maxClipFragments || size > maxClipBytes:
		return newAPIError(http.StatusBadRequest, "ClientLimitExceededException", ErrLimitExceeded,
			"the clip would hold %d fragments (%d bytes): at most %d fragments and %d bytes; ask for a shorter range", len(pick), size, maxClipFragments, maxClipBytes)
	}
	var parsed []*playFragment
	for _, m := range pick {
		f, err := s.loadFragment(st, m.Number)
		if err != nil {
			continue // gone since it was listed
		}
		parsed = append(parsed, f)
	}
	if len(parsed) == 0 {
		return notFound("the fragments of the requested range are no longer stored")
	}
	b, err := clipMP4(parsed)
	if err != nil {
		return err
	}
	writeMedia(w, "video/mp4", b)
	return nil
}

// clipMP4 writes fragments (in order) as one MP4.
func clipMP4(frags []*playFragment) ([]byte, error) {
	first := frags[0]
	var pres pmp4.Presentation
	start := int64(-1)
	for _, f := range frags {
		for _, fr := range f.frames {
			if start < 0 || fr.ts < start {
				start = fr.ts
			}
		}
	}
	add := func(id int, track uint64, scale int64, codec mp4.Codec) {
		t := &pmp4.Track{ID: id, TimeScale: uint32(scale), Codec: codec}
		for _, f := range frags {
			frames, durs := f.trackFrames(track)
			for i, fr := range frames {
				if len(t.Samples) == 0 {
					t.TimeOffset = int32((fr.ts - start) * scale / 1000)
				}
				data := fr.data
				t.Samples = append(t.Samples, &pmp4.Sample{
					Duration:        uint32(durs[i] * scale / 1000),
					IsNonSyncSample: track == mkvVideoTrack && !fr.key,
					PayloadSize:     uint32(len(data)),
					GetPayload:      func() ([]byte, error) { return data, nil },
				})
			}
		}
		if len(t.Samples) > 0 {
			pres.Tracks = append(pres.Tracks, t)
		}
	}
	if first.tracks.AVC != nil && first.sps != nil && first.pps != nil {
		add(mp4VideoID, mkvVideoTrack, mp4VideoScale, &mp4.CodecH264{SPS: first.sps, PPS: first.pps})
	}
	if first.tracks.Audio {
		add(mp4AudioID, mkvAudioTrack, mp4AudioScale, &mp4.CodecOpus{ChannelCount: first.tracks.Channels})
	}
	if len(pres.Tracks) == 0 {
		return nil, notFound("the requested range holds no frames")
	}
	var b bytes.Buffer
	if err := pres.Marshal(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
