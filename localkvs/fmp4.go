package localkvs

import (
	"net/http"
	"strconv"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
)

// The fragmented MP4 of the HLS and DASH sessions, written with
// mediacommon's fmp4 package: one init segment (ftyp, moov) for a
// fragment's tracks, and one media segment (moof, mdat) per fragment.
// Video is H.264 (avc1, the stored AVC samples as they are, parameter sets
// in band too), audio Opus ("Opus" with dOps, valid in ISO BMFF and played
// by Chromium and ffmpeg; real KVS stores AAC, see docs/protocol.md,
// "Differences from KVS").

// Track ids and time scales of the MP4s.
const (
	mp4VideoID    = 1
	mp4AudioID    = 2
	mp4VideoScale = 90000
	mp4AudioScale = 48000
)

// mp4Init returns the init segment of a fragment's tracks: both, or only
// track (mp4VideoID or mp4AudioID, as DASH's separate representations ask).
func mp4Init(f *playFragment, track int) ([]byte, error) {
	var init fmp4.Init
	if f.tracks.AVC != nil && track != mp4AudioID {
		if f.sps == nil || f.pps == nil {
			return nil, errInternal
		}
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: mp4VideoID, TimeScale: mp4VideoScale, Codec: &fmp4.CodecH264{SPS: f.sps, PPS: f.pps}})
	}
	if f.tracks.Audio && track != mp4VideoID {
		init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: mp4AudioID, TimeScale: mp4AudioScale, Codec: &fmp4.CodecOpus{ChannelCount: f.tracks.Channels}})
	}
	if len(init.Tracks) == 0 {
		return nil, notFound("the fragment has no such track")
	}
	var b seekablebuffer.Buffer
	if err := init.Marshal(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// mp4Part returns the media segment of a fragment (both tracks, or only
// track); seq is its sequence number (mfhd).
func mp4Part(st *streamRec, f *playFragment, seq uint32, track int) ([]byte, error) {
	part := fmp4.Part{SequenceNumber: seq}
	add := func(id int, track uint64, scale int64) {
		frames, durs := f.trackFrames(track)
		if len(frames) == 0 {
			return
		}
		pt := &fmp4.PartTrack{ID: id, BaseTime: uint64(mediaTime(st, frames[0].ts) * scale / 1000)}
		for i, fr := range frames {
			pt.Samples = append(pt.Samples, &fmp4.Sample{
				Duration:        uint32(durs[i] * scale / 1000),
				IsNonSyncSample: track == mkvVideoTrack && !fr.key,
				Payload:         fr.data,
			})
		}
		part.Tracks = append(part.Tracks, pt)
	}
	if f.tracks.AVC != nil && track != mp4AudioID {
		add(mp4VideoID, mkvVideoTrack, mp4VideoScale)
	}
	if f.tracks.Audio && track != mp4VideoID {
		add(mp4AudioID, mkvAudioTrack, mp4AudioScale)
	}
	if len(part.Tracks) == 0 {
		return nil, notFound("the fragment has no such track")
	}
	var b seekablebuffer.Buffer
	if err := part.Marshal(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// trackParam reads the TrackNumber query parameter: 0 (both tracks, when
// absent), 1 (video) or 2 (audio).
func trackParam(v string) (int, error) {
	switch v {
	case "":
		return 0, nil
	case "1":
		return mp4VideoID, nil
	case "2":
		return mp4AudioID, nil
	}
	return 0, invalidArg("TrackNumber %q must be 1 (video) or 2 (audio)", v)
}

// serveInit answers getMP4InitFragment.mp4: the init segment for the
// tracks (TrackNumber: one of them) of fragment number (the session's
// first fragment when empty).
func (s *Server) serveInit(w http.ResponseWriter, ps playSession, st *streamRec, number, trackNumber string) error {
	track, err := trackParam(trackNumber)
	if err != nil {
		return err
	}
	if number == "" {
		frags, _ := s.sessionFragments(ps, st)
		if len(frags) == 0 {
			return notFound("no fragments in this session yet")
		}
		number = frags[0].Number
	}
	f, err := s.loadFragment(st, number)
	if err != nil {
		return err
	}
	b, err := mp4Init(f, track)
	if err != nil {
		return err
	}
	writeMedia(w, "video/mp4", b)
	return nil
}

// serveMP4Fragment answers getMP4MediaFragment.mp4.
func (s *Server) serveMP4Fragment(w http.ResponseWriter, ps playSession, st *streamRec, number, trackNumber string) error {
	track, err := trackParam(trackNumber)
	if err != nil {
		return err
	}
	f, err := s.loadFragment(st, number)
	if err != nil {
		return err
	}
	b, err := mp4Part(st, f, uint32(seqOf(number)), track)
	if err != nil {
		return err
	}
	writeMedia(w, "video/mp4", b)
	return nil
}

// writeMedia answers 200 with a body of a content type.
func writeMedia(w http.ResponseWriter, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
