package localkvs

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DASH of a streaming session (docs/protocol.md, "Playback"):
// getDASHManifest.mpd under /dash/v1/, one period with an AdaptationSet
// per track (H.264 video, Opus audio), whose SegmentLists name each
// fragment's getMP4MediaFragment.mp4 with TrackNumber=1 or 2 (one track per
// segment: players such as ffmpeg take one stream per representation)
// and, in a SegmentTimeline, its time on the session timeline (ms since
// the stream was created). Live and live-replay sessions are dynamic MPDs
// (availabilityStartTime: the stream's creation), on-demand ones static.
// The init and media segments are those of HLS (fmp4.go).

// xmlAttr escapes a value for an XML attribute.
func xmlAttr(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return strings.ReplaceAll(b.String(), `"`, "&#34;")
}

// isoDuration formats ms as an xs:duration ("PT12.345S").
func isoDuration(ms int64) string {
	return fmt.Sprintf("PT%.3fS", float64(ms)/1000)
}

func (s *Server) serveMPD(w http.ResponseWriter, ps playSession, st *streamRec, token string) error {
	frags, done := s.sessionFragments(ps, st)
	q := sessionQuery(token)
	codecs, width, height := "avc1.42e01f,opus", 0, 0
	bw := int64(0)
	target := int64(1000)
	var kept []fragmentMeta
	for _, m := range frags {
		h, ok := s.head(st, m)
		if !ok {
			continue
		}
		kept = append(kept, m)
		codecs, width, height = h.codecs, h.width, h.height
		if m.LengthMS > 0 {
			bw = max(bw, m.Size*8*1000/m.LengthMS)
		}
		target = max(target, m.LengthMS)
	}
	if bw == 0 {
		bw = 2_000_000
	}
	static := ps.Mode == playOnDemand || done
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011"`)
	if static {
		total := int64(0)
		for _, m := range kept {
			total += m.LengthMS
		}
		fmt.Fprintf(&b, ` type="static" mediaPresentationDuration="%s"`, isoDuration(total))
	} else {
		fmt.Fprintf(&b, ` type="dynamic" availabilityStartTime="%s" publishTime="%s" minimumUpdatePeriod="%s" timeShiftBufferDepth="%s" suggestedPresentationDelay="%s"`,
			time.UnixMilli(st.Created).UTC().Format(time.RFC3339Nano), s.clock.Now().UTC().Format(time.RFC3339Nano),
			isoDuration(min(target, 2000)), isoDuration(max(int64(len(kept))*target, 10000)), isoDuration(3*target))
	}
	fmt.Fprintf(&b, ` minBufferTime="%s">`+"\n", isoDuration(min(target, 4000)))
	b.WriteString(` <Period id="0" start="PT0S">` + "\n")
	pto := int64(0)
	if static && len(kept) > 0 {
		pto = mediaTime(st, kept[0].Producer) // the presentation starts at the first fragment
	}
	video, audio := codecs, ""
	if i := strings.LastIndex(codecs, ","); i >= 0 {
		video, audio = codecs[:i], codecs[i+1:]
	} else if codecs == "opus" {
		video, audio = "", codecs
	}
	sets := []struct {
		track           string
		mime, codecs    string
		bandwidth, w, h int64
	}{
		{"1", "video/mp4", video, bw, int64(width), int64(height)},
		{"2", "audio/mp4", audio, 64000, 0, 0},
	}
	for n, set := range sets {
		if set.codecs == "" {
			continue
		}
		fmt.Fprintf(&b, `  <AdaptationSet id="%d" mimeType="%s" segmentAlignment="true" startWithSAP="1">`+"\n", n, set.mime)
		fmt.Fprintf(&b, `   <Representation id="%s" bandwidth="%d" codecs="%s"`, set.track, set.bandwidth, xmlAttr(set.codecs))
		if set.w > 0 {
			fmt.Fprintf(&b, ` width="%d" height="%d"`, set.w, set.h)
		}
		if set.track == "2" {
			b.WriteString(` audioSamplingRate="48000"`)
		}
		b.WriteString(">\n")
		// No startNumber: the URLs are listed, and ffmpeg's demuxer takes
		// startNumber as an index into the list (it would skip the first).
		fmt.Fprintf(&b, `    <SegmentList timescale="1000" duration="%d" presentationTimeOffset="%d">`+"\n", target, pto)
		if len(kept) > 0 {
			fmt.Fprintf(&b, `     <Initialization sourceURL="%s"/>`+"\n", xmlAttr("getMP4InitFragment.mp4?FragmentNumber="+kept[0].Number+"&TrackNumber="+set.track+"&"+q))
			b.WriteString("     <SegmentTimeline>\n")
			for _, m := range kept {
				fmt.Fprintf(&b, `      <S t="%d" d="%d"/>`+"\n", mediaTime(st, m.Producer), max(m.LengthMS, 1))
			}
			b.WriteString("     </SegmentTimeline>\n")
			for _, m := range kept {
				fmt.Fprintf(&b, `     <SegmentURL media="%s"/>`+"\n", xmlAttr("getMP4MediaFragment.mp4?FragmentNumber="+m.Number+"&TrackNumber="+set.track+"&"+q))
			}
		}
		b.WriteString("    </SegmentList>\n   </Representation>\n  </AdaptationSet>\n")
	}
	b.WriteString(" </Period>\n</MPD>\n")
	writeMedia(w, "application/dash+xml", []byte(b.String()))
	return nil
}
