package localkvs

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/mpegts"
)

// HLS of a streaming session (docs/protocol.md, "Playback"): the URLs
// GetHLSStreamingSessionURL hands out, as KVS names them under /hls/v1/:
//
//	getHLSMasterPlaylist.m3u8   one variant: the media playlist, CODECS and RESOLUTION
//	getHLSMediaPlaylist.m3u8    the session's fragments, one segment each
//	getMP4InitFragment.mp4      init segment (FRAGMENTED_MP4), for the tracks of FragmentNumber
//	getMP4MediaFragment.mp4     one fragment as moof+mdat
//	getTSFragment.ts            one fragment as MPEG-TS (MPEG_TS)
//
// The playlists are written by hand (a dozen tags: no Go library writes
// HLS playlists without also being a server); the media through
// mediacommon.

// fragmentHead is what a playlist needs of a fragment without its frames:
// a hash of its tracks (an init segment changes with it), its codecs and
// size.
type fragmentHead struct {
	hash          uint64
	codecs        string
	width, height int
}

// headCache keeps the heads of fragments (they never change), so that a
// playlist of a thousand fragments does not read them all each time.
type headCache struct {
	mu sync.Mutex
	m  map[string]fragmentHead // stream ARN "|" number ->
}

// maxHeads bounds the cache; it starts over when full.
const maxHeads = 20000

// head returns the head of a fragment, reading it once.
func (s *Server) head(st *streamRec, m fragmentMeta) (fragmentHead, bool) {
	key := st.ARN + "|" + m.Number
	c := &s.playback.heads
	c.mu.Lock()
	h, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return h, true
	}
	data, err := s.media.store.read(st.ARN, m.Number)
	if err != nil || m.TracksLen > len(data) {
		return h, false
	}
	f, err := parseFragment(fragmentMeta{Number: m.Number, TracksLen: m.TracksLen}, data[:m.TracksLen])
	if err != nil {
		return h, false
	}
	sum := fnv.New64a()
	sum.Write(data[:m.TracksLen])
	h = fragmentHead{hash: sum.Sum64(), codecs: f.codecs(), width: f.tracks.Width, height: f.tracks.Height}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxHeads {
		c.m = map[string]fragmentHead{}
	}
	c.m[key] = h
	c.mu.Unlock()
	return h, true
}

// sessionQuery is the query every URL of a session carries.
func sessionQuery(token string) string { return "SessionToken=" + url.QueryEscape(token) }

func (s *Server) serveHLSMaster(w http.ResponseWriter, ps playSession, st *streamRec, token string) error {
	frags, _ := s.sessionFragments(ps, st)
	codecs, res := "avc1.42e01f,opus", ""
	bw := int64(0)
	if len(frags) > 0 {
		if h, ok := s.head(st, frags[len(frags)-1]); ok {
			codecs = h.codecs
			if h.width > 0 {
				res = fmt.Sprintf(",RESOLUTION=%dx%d", h.width, h.height)
			}
		}
		for _, m := range frags {
			if m.LengthMS > 0 {
				bw = max(bw, m.Size*8*1000/m.LengthMS)
			}
		}
	}
	if bw == 0 {
		bw = 2_000_000
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d,CODECS=\"%s\"%s\n", bw, codecs, res)
	b.WriteString("getHLSMediaPlaylist.m3u8?" + sessionQuery(token) + "\n")
	writeMedia(w, "application/vnd.apple.mpegurl", []byte(b.String()))
	return nil
}

// discontinuityGap is a jump between fragments that counts as a
// discontinuity in ON_DISCONTINUITY mode.
const discontinuityGap = 500 // ms

func (s *Server) serveHLSMedia(w http.ResponseWriter, ps playSession, st *streamRec, token string) error {
	frags, done := s.sessionFragments(ps, st)
	q := sessionQuery(token)
	target := int64(1)
	for _, m := range frags {
		target = max(target, int64(math.Ceil(float64(m.LengthMS)/1000)))
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", target)
	seq := uint64(0)
	if len(frags) > 0 {
		seq = seqOf(frags[0].Number)
	}
	fmt.Fprintf(&b, "#EXT-X-MEDIA-SEQUENCE:%d\n", seq)
	if ps.Disc == "ALWAYS" && seq > 0 {
		fmt.Fprintf(&b, "#EXT-X-DISCONTINUITY-SEQUENCE:%d\n", seq-1)
	}
	if ps.Mode == playOnDemand {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	var prevHash uint64
	var prevEnd int64
	for i, m := range frags {
		h, ok := s.head(st, m)
		if !ok {
			continue // gone since it was listed
		}
		if i > 0 {
			gap := m.Producer-prevEnd > discontinuityGap || m.Producer < prevEnd-discontinuityGap
			if ps.Disc == "ALWAYS" || (ps.Disc == "ON_DISCONTINUITY" && (gap || h.hash != prevHash)) {
				b.WriteString("#EXT-X-DISCONTINUITY\n")
			}
		}
		if ps.Container == "FRAGMENTED_MP4" && (i == 0 || h.hash != prevHash) {
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=\"getMP4InitFragment.mp4?FragmentNumber=%s&%s\"\n", m.Number, q)
		}
		if ps.Display {
			fmt.Fprintf(&b, "#EXT-X-PROGRAM-DATE-TIME:%s\n", time.UnixMilli(m.Producer).UTC().Format("2006-01-02T15:04:05.000Z"))
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n", float64(max(m.LengthMS, 1))/1000)
		if ps.Container == "MPEG_TS" {
			fmt.Fprintf(&b, "getTSFragment.ts?FragmentNumber=%s&%s\n", m.Number, q)
		} else {
			fmt.Fprintf(&b, "getMP4MediaFragment.mp4?FragmentNumber=%s&%s\n", m.Number, q)
		}
		prevHash, prevEnd = h.hash, m.Producer+m.LengthMS
	}
	if done {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	writeMedia(w, "application/vnd.apple.mpegurl", []byte(b.String()))
	return nil
}

// tsFragment returns a fragment as MPEG-TS: H.264 (Annex B, with an access
// unit delimiter, as the writer puts it) and Opus (ETSI TS 102 366
// framing), timestamps on the session timeline in 90 kHz.
func tsFragment(st *streamRec, f *playFragment) ([]byte, error) {
	var tracks []*mpegts.Track
	var video, audio *mpegts.Track
	if f.tracks.AVC != nil {
		video = &mpegts.Track{Codec: &mpegts.CodecH264{}}
		tracks = append(tracks, video)
	}
	if f.tracks.Audio {
		audio = &mpegts.Track{Codec: &mpegts.CodecOpus{ChannelCount: f.tracks.Channels}}
		tracks = append(tracks, audio)
	}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	tw := &mpegts.Writer{W: bw, Tracks: tracks}
	if err := tw.Initialize(); err != nil {
		return nil, err
	}
	keySeen := false
	for _, fr := range f.frames {
		pts := mediaTime(st, fr.ts) * 90
		switch {
		case fr.track == mkvVideoTrack && video != nil:
			au := nalus(fr.data)
			if len(au) == 0 {
				continue
			}
			if !keySeen && f.sps != nil && f.pps != nil {
				// The parameter sets lead the first access unit, for
				// players that join at this segment.
				au = append([][]byte{f.sps, f.pps}, au...)
				keySeen = true
			}
			if err := tw.WriteH264(video, pts, pts, au); err != nil {
				return nil, err
			}
		case fr.track == mkvAudioTrack && audio != nil:
			if err := tw.WriteOpus(audio, pts, [][]byte{fr.data}); err != nil {
				return nil, err
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s *Server) serveTSFragment(w http.ResponseWriter, _ playSession, st *streamRec, number string) error {
	f, err := s.loadFragment(st, number)
	if err != nil {
		return err
	}
	b, err := tsFragment(st, f)
	if err != nil {
		return err
	}
	writeMedia(w, "video/mp2t", b)
	return nil
}
