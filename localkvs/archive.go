package localkvs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Reading the recordings back, on the endpoint GetDataEndpoint returns
// (docs/protocol.md, "Streams and storage"): ListFragments and
// GetMediaForFragmentList (kinesisvideoarchivedmedia) and GetMedia
// (kinesisvideomedia).

// The limits of the archived media calls.
const (
	maxListFragments    = 1000 // MaxResults of ListFragments
	defaultListFragment = 1000
	maxFragmentList     = 1000 // Fragments of GetMediaForFragmentList
)

// mkvContentType is the Content-Type of GetMedia and
// GetMediaForFragmentList answers, as KVS sends it.
const mkvContentType = "video/webm"

type fragmentJSON struct {
	FragmentLengthInMilliseconds int64       `json:"FragmentLengthInMilliseconds"`
	FragmentNumber               string      `json:"FragmentNumber"`
	FragmentSizeInBytes          int64       `json:"FragmentSizeInBytes"`
	ProducerTimestamp            json.Number `json:"ProducerTimestamp"`
	ServerTimestamp              json.Number `json:"ServerTimestamp"`
}

func epochJSON(ms int64) json.Number {
	return json.Number(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64))
}

// epochMS reads a JSON timestamp (epoch seconds) as epoch ms.
func epochMS(v *float64) (int64, bool) {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return 0, false
	}
	return int64(math.Round(*v * 1000)), true
}

// streamFragmentsFor returns the stream and its fragments, after the
// retention.
func (s *Server) streamFragmentsFor(name, arn string) (*streamRec, []fragmentMeta, error) {
	st, err := s.lookupStream(name, arn)
	if err != nil {
		return nil, nil, err
	}
	return st, s.media.store.list(st.ARN, time.Duration(st.Retention)*time.Hour, s.clock.Now()), nil
}

func (s *Server) apiListFragments(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct {
		StreamName, StreamARN string
		MaxResults            *int64
		NextToken             string
		FragmentSelector      *struct {
			FragmentSelectorType string
			TimestampRange       *struct{ StartTimestamp, EndTimestamp *float64 }
		}
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	max := int64(defaultListFragment)
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxListFragments {
			return nil, invalidArg("MaxResults %d must be between 1 and %d", *in.MaxResults, maxListFragments)
		}
		max = *in.MaxResults
	}
	keep := func(fragmentMeta) bool { return true }
	if fs := in.FragmentSelector; fs != nil {
		var pick func(m fragmentMeta) int64
		switch fs.FragmentSelectorType {
		case "PRODUCER_TIMESTAMP":
			pick = func(m fragmentMeta) int64 { return m.Producer }
		case "SERVER_TIMESTAMP":
			pick = func(m fragmentMeta) int64 { return m.Server }
		default:
			return nil, invalidArg("FragmentSelector.FragmentSelectorType %q must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP", fs.FragmentSelectorType)
		}
		if fs.TimestampRange == nil {
			return nil, invalidArg("FragmentSelector.TimestampRange is required")
		}
		from, ok1 := epochMS(fs.TimestampRange.StartTimestamp)
		to, ok2 := epochMS(fs.TimestampRange.EndTimestamp)
		if !ok1 || !ok2 {
			return nil, invalidArg("FragmentSelector.TimestampRange needs StartTimestamp and EndTimestamp")
		}
		if from > to {
			return nil, invalidArg("FragmentSelector.TimestampRange.StartTimestamp is after EndTimestamp")
		}
		keep = func(m fragmentMeta) bool { t := pick(m); return t >= from && t <= to }
	}
	after := ""
	if in.NextToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err != nil || len(b) == 0 {
			return nil, invalidArg("NextToken is not a token returned by ListFragments")
		}
		after = string(b)
	}
	_, frags, err := s.streamFragmentsFor(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	list := []fragmentJSON{}
	more := false
	last := ""
	for _, m := range frags {
		if m.Number <= after || !keep(m) {
			continue
		}
		if int64(len(list)) == max {
			more = true
			break
		}
		list = append(list, fragmentJSON{
			FragmentLengthInMilliseconds: m.LengthMS, FragmentNumber: m.Number, FragmentSizeInBytes: m.Size,
			ProducerTimestamp: epochJSON(m.Producer), ServerTimestamp: epochJSON(m.Server),
		})
		last = m.Number
	}
	out := map[string]any{"Fragments": list}
	if more {
		out["NextToken"] = base64.RawURLEncoding.EncodeToString([]byte(last))
	}
	return out, nil
}

// mediaHandler answers a call whose success is a stream of MKV rather than
// JSON. It returns an error (an apiError) only before it wrote anything.
type mediaHandler func(w http.ResponseWriter, r *http.Request, body []byte) error

func (s *Server) mediaHandlers() map[string]mediaHandler {
	return map[string]mediaHandler{
		"/getmediaforfragmentlist": s.serveFragmentList,
		"/getmedia":                s.serveGetMedia,
		"/getclip":                 s.serveClip, // clip.go
	}
}

// startMedia writes the success headers of a media answer.
func startMedia(w http.ResponseWriter) {
	w.Header().Set("Content-Type", mkvContentType)
	w.WriteHeader(http.StatusOK)
}

// mediaWriter writes a media answer, pushing each chunk out and keeping
// the write deadline ahead (a server WriteTimeout would cut a GetMedia
// stream).
type mediaWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (mw mediaWriter) Write(p []byte) (int, error) {
	_ = mw.rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	return mw.w.Write(p)
}

func (mw mediaWriter) flush() { _ = mw.rc.Flush() }

func (s *Server) serveFragmentList(w http.ResponseWriter, r *http.Request, body []byte) error {
	var in struct {
		StreamName, StreamARN string
		Fragments             []string
	}
	if err := decode(body, &in); err != nil {
		return err
	}
	if len(in.Fragments) == 0 || len(in.Fragments) > maxFragmentList {
		return invalidArg("Fragments must list 1 to %d fragment numbers", maxFragmentList)
	}
	st, frags, err := s.streamFragmentsFor(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	byNumber := make(map[string]fragmentMeta, len(frags))
	for _, m := range frags {
		byNumber[m.Number] = m
	}
	want := make([]fragmentMeta, 0, len(in.Fragments))
	for _, n := range in.Fragments {
		m, ok := byNumber[n]
		if !ok {
			return notFound("the stream %q has no fragment %q (or it is past the retention)", st.Name, n)
		}
		want = append(want, m)
	}
	startMedia(w)
	mw := mediaWriter{w, http.NewResponseController(w)}
	for _, m := range want {
		data, err := s.media.store.read(st.ARN, m.Number)
		if err != nil {
			mw.Write(encodeTags("AWS_KINESISVIDEO_FRAGMENT_NUMBER", m.Number,
				"AWS_KINESISVIDEO_EXCEPTION_ERROR_CODE", "4",
				"AWS_KINESISVIDEO_EXCEPTION_MESSAGE", "the fragment is no longer stored"))
			continue
		}
		tags := encodeTags("AWS_KINESISVIDEO_FRAGMENT_NUMBER", m.Number,
			"AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP", kvsTime(m.Server),
			"AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP", kvsTime(m.Producer))
		if err := writeChunk(mw, m, data, tags); err != nil {
			return nil // the client went away
		}
	}
	return nil
}

func (s *Server) serveGetMedia(w http.ResponseWriter, r *http.Request, body []byte) error {
	var in struct {
		StreamName, StreamARN string
		StartSelector         *struct {
			StartSelectorType   string
			AfterFragmentNumber string
			StartTimestamp      *float64
			ContinuationToken   string
		}
	}
	if err := decode(body, &in); err != nil {
		return err
	}
	sel := in.StartSelector
	if sel == nil {
		return invalidArg("StartSelector is required")
	}
	st, frags, err := s.streamFragmentsFor(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	// from picks the first fragment to send among those stored now; live
	// ones follow.
	var from int
	switch sel.StartSelectorType {
	case "NOW":
		from = len(frags)
	case "EARLIEST":
		from = 0
	case "FRAGMENT_NUMBER":
		if sel.AfterFragmentNumber == "" {
			return invalidArg("StartSelector.AfterFragmentNumber is required with FRAGMENT_NUMBER")
		}
		from = sort.Search(len(frags), func(i int) bool { return frags[i].Number >= sel.AfterFragmentNumber })
		if from == len(frags) || frags[from].Number != sel.AfterFragmentNumber {
			return notFound("the stream %q has no fragment %q", st.Name, sel.AfterFragmentNumber)
		}
	case "CONTINUATION_TOKEN":
		if sel.ContinuationToken == "" {
			return invalidArg("StartSelector.ContinuationToken is required with CONTINUATION_TOKEN")
		}
		from = sort.Search(len(frags), func(i int) bool { return frags[i].Number > sel.ContinuationToken })
	case "SERVER_TIMESTAMP", "PRODUCER_TIMESTAMP":
		t, ok := epochMS(sel.StartTimestamp)
		if !ok {
			return invalidArg("StartSelector.StartTimestamp is required with %s", sel.StartSelectorType)
		}
		from = len(frags)
		for i, m := range frags {
			ts := m.Server
			if sel.StartSelectorType == "PRODUCER_TIMESTAMP" {
				ts = m.Producer
			}
			if ts+m.LengthMS > t {
				from = i
				break
			}
		}
	default:
		return invalidArg("StartSelector.StartSelectorType %q must be one of FRAGMENT_NUMBER, SERVER_TIMESTAMP, PRODUCER_TIMESTAMP, NOW, EARLIEST, CONTINUATION_TOKEN", sel.StartSelectorType)
	}
	last := ""
	if from > 0 {
		last = frags[from-1].Number
	}
	startMedia(w)
	mw := mediaWriter{w, http.NewResponseController(w)}
	mw.flush()
	retention := time.Duration(st.Retention) * time.Hour
	for {
		changed := s.media.store.watch(st.ARN)
		list := s.media.store.list(st.ARN, retention, s.clock.Now())
		live := s.media.store.live(st.ARN)
		i := sort.Search(len(list), func(i int) bool { return list[i].Number > last })
		j := sort.Search(len(live), func(j int) bool { return live[j].number > last })
		for i < len(list) || j < len(live) {
			if j < len(live) && (i == len(list) || live[j].number < list[i].Number) {
				// Not stored yet: its frames as they are recorded, then
				// the list again (fragments may have been stored meanwhile).
				if !s.sendLive(mw, r, st.ARN, live[j]) {
					return nil
				}
				last = live[j].number
				break
			}
			m := list[i]
			i++
			data, err := s.media.store.read(st.ARN, m.Number)
			if err != nil {
				continue
			}
			newest := list[len(list)-1]
			if err := writeChunk(mw, m, data, getMediaHead(m.Number, m.Server, m.Producer)); err != nil {
				return nil
			}
			if _, err := mw.Write(getMediaTail(m.Number, max(newest.Server-m.Server, 0))); err != nil {
				return nil
			}
			mw.flush()
			last = m.Number
		}
		if j < len(live) && last == live[j].number {
			continue
		}
		select {
		case <-changed:
			if _, ok := s.store.getStream("", st.ARN); !ok {
				return nil // the stream was deleted
			}
		case <-r.Context().Done():
			return nil
		case <-s.media.done:
			return nil
		}
	}
}

// getMediaHead is the Tags element before a GetMedia chunk's Cluster: the
// fragment's number and its server and producer timestamps (epoch ms).
func getMediaHead(number string, server, producer int64) []byte {
	return encodeTags("AWS_KINESISVIDEO_FRAGMENT_NUMBER", number,
		"AWS_KINESISVIDEO_SERVER_TIMESTAMP", kvsTime(server),
		"AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", kvsTime(producer))
}

// getMediaTail is the Tags element that ends a GetMedia chunk, as KVS
// ends one: how far the fragment is behind the newest stored one, and the
// continuation token (the fragment's number: a GetMedia that starts from
// it goes on with the next fragment). They come after the Cluster, so a
// client cut off in the middle of a fragment has not seen the token that
// would skip it.
func getMediaTail(number string, behindMS int64) []byte {
	return encodeTags("AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", strconv.FormatInt(behindMS, 10),
		"AWS_KINESISVIDEO_CONTINUATION_TOKEN", number)
}

// sendLive sends, as a GetMedia chunk, a fragment that is being recorded:
// its head and tags at once, its Cluster (of unknown size) frame by frame
// as the recorder releases them, and the tail once the fragment is
// closed. It reports false when the client went away, the stream was
// deleted or the service is stopping.
func (s *Server) sendLive(mw mediaWriter, r *http.Request, stream string, f *liveFragment) bool {
	for _, p := range [][]byte{mkvChunkHead, f.head, getMediaHead(f.number, f.server, f.producer), openCluster(f.producer)} {
		if _, err := mw.Write(p); err != nil {
			return false
		}
	}
	sent := 0
	for {
		frames, done, changed := f.next(sent)
		if len(frames) > 0 {
			b, err := encodeBlocks(f.producer, frames)
			if err != nil {
				return false
			}
			if _, err := mw.Write(b); err != nil {
				return false
			}
			sent += len(frames)
		}
		if done {
			if _, err := mw.Write(getMediaTail(f.number, 0)); err != nil {
				return false
			}
			mw.flush()
			return true
		}
		mw.flush()
		select {
		case <-changed:
		case <-s.media.store.watch(stream):
			if s.media.store.gone(stream) {
				return false
			}
		case <-r.Context().Done():
			return false
		case <-s.media.done:
			return false
		}
	}
}

// serveMediaCall runs a media handler and answers its error as serveAPI
// answers those of the JSON calls.
func (s *Server) serveMediaCall(w http.ResponseWriter, r *http.Request, body []byte, h mediaHandler, key string) {
	err := h(w, r, body)
	if err == nil {
		s.log.Debug("localkvs: api call", "path", r.URL.Path, "key", key)
		return
	}
	ae, ok := asAPIError(err)
	if ok {
		s.log.Debug("localkvs: api error", "path", r.URL.Path, "code", ae.code, "msg", ae.msg, "key", key)
	} else {
		s.log.Warn("localkvs: api call failed", "path", r.URL.Path, "err", err, "key", key)
		ae = errInternal
	}
	writeError(w, ae)
}
