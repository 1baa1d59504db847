package localkvs

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Playback of the recordings (docs/protocol.md, "Playback"):
// GetHLSStreamingSessionURL and GetDASHStreamingSessionURL answer a session
// URL on this process, whose playlists, manifests, init and media segments
// are plain GETs with the session token as their only credential (hls.go,
// dash.go); GetClip answers one MP4 (clip.go). Everything is built from
// the fragments the media server stored (store_media.go, mkv.go): each
// fragment is parsed back from its Matroska bytes into frames, and each
// frame becomes an MP4 or MPEG-TS sample as it is, without decoding.
//
// The media timeline of every session of a stream starts at the stream's
// creation: a frame's time is its producer timestamp minus the stream's
// creation time, so that segments of different sessions and playlists
// agree and a player can join anywhere.

// Limits of the playback calls, as KVS documents them.
const (
	minSessionExpiry     = 300 * time.Second // Expires
	maxSessionExpiry     = 12 * time.Hour
	defaultSessionExpiry = 300 * time.Second
	maxPlaylistFragments = 5000 // MaxMediaPlaylistFragmentResults, MaxManifestFragmentResults
	defaultLiveFragments = 5    // LIVE and LIVE_REPLAY
	defaultVODFragments  = 1000 // ON_DEMAND
	maxOnDemandRange     = 24 * time.Hour
	// liveFreshness: a LIVE session needs a fragment this recent.
	liveFreshness = 30 * time.Second
)

// The playback modes.
const (
	playLive       = "LIVE"
	playLiveReplay = "LIVE_REPLAY"
	playOnDemand   = "ON_DEMAND"
)

// Error codes of the playback calls.
const (
	codeMissingParameter = "MissingParameterException"
	codeExpiredSession   = "ExpiredPlaylistException"
)

// playbackState is the playback side of a Server: the key that signs its
// session tokens (random, made on first use, so that tokens die with the
// process) and the cache of fragment heads (hls.go).
type playbackState struct {
	once  sync.Once
	key   []byte
	heads headCache
}

func (p *playbackState) get() []byte {
	p.once.Do(func() {
		p.key = make([]byte, 32)
		if _, err := rand.Read(p.key); err != nil {
			panic("localkvs: no randomness for the playback key: " + err.Error())
		}
	})
	return p.key
}

// playSession is what a session token carries, signed.
type playSession struct {
	Kind      string `json:"k"` // "hls" or "dash"
	Stream    string `json:"s"` // stream ARN
	Mode      string `json:"m"`
	Container string `json:"c"`           // FRAGMENTED_MP4 or MPEG_TS
	Selector  string `json:"t"`           // PRODUCER_TIMESTAMP or SERVER_TIMESTAMP
	Start     int64  `json:"a,omitempty"` // epoch ms
	End       int64  `json:"b,omitempty"` // epoch ms, 0 for none
	Max       int    `json:"n"`
	Disc      string `json:"d,omitempty"` // HLS DiscontinuityMode
	Display   bool   `json:"p,omitempty"` // DisplayFragmentTimestamp ALWAYS
	Created   int64  `json:"o"`           // epoch ms
	Expires   int64  `json:"x"`           // epoch s
}

// token signs a session: base64url(JSON) "." base64url(HMAC-SHA256).
func (s *Server) token(ps playSession) string {
	payload, _ := json.Marshal(ps)
	mac := hmac.New(sha256.New, s.playback.get())
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// session checks a session token: signature, expiry, stream.
func (s *Server) session(tok string, kind string) (playSession, *streamRec, error) {
	var ps playSession
	if tok == "" {
		return ps, nil, newAPIError(http.StatusBadRequest, codeMissingParameter, ErrInvalidArgument, "SessionToken is required")
	}
	p, sig, ok := strings.Cut(tok, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err1 != nil || err2 != nil {
		return ps, nil, newAPIError(http.StatusForbidden, codeAccessDenied, nil, "the SessionToken is not one this service issued")
	}
	want := hmac.New(sha256.New, s.playback.get())
	want.Write(payload)
	if !hmac.Equal(mac, want.Sum(nil)) || json.Unmarshal(payload, &ps) != nil {
		return ps, nil, newAPIError(http.StatusForbidden, codeAccessDenied, nil, "the SessionToken is not one this service issued")
	}
	if ps.Kind != kind {
		return ps, nil, newAPIError(http.StatusForbidden, codeAccessDenied, nil, "the SessionToken is for a %s session, not %s", strings.ToUpper(ps.Kind), strings.ToUpper(kind))
	}
	if s.clock.Now().Unix() >= ps.Expires {
		return ps, nil, newAPIError(http.StatusForbidden, codeExpiredSession, nil, "the streaming session expired at %s", time.Unix(ps.Expires, 0).UTC().Format(time.RFC3339))
	}
	st, ok := s.store.getStream("", ps.Stream)
	if !ok {
		return ps, nil, notFound("the stream of this session was deleted")
	}
	return ps, st, nil
}

// playbackHandlers are the signed API calls of playback.
func (s *Server) playbackHandlers() map[string]apiHandler {
	return map[string]apiHandler{
		"/gethlsstreamingsessionurl":  s.apiHLSSessionURL,
		"/getdashstreamingsessionurl": s.apiDASHSessionURL,
	}
}

// sessionRequest is the request of both session URL calls.
type sessionRequest struct {
	StreamName, StreamARN, PlaybackMode, ContainerFormat string
	DiscontinuityMode, DisplayFragmentTimestamp          string
	Expires                                              *int64
	MaxMediaPlaylistFragmentResults                      *int64
	MaxManifestFragmentResults                           *int64
	HLSFragmentSelector, DASHFragmentSelector            *struct {
		FragmentSelectorType string
		TimestampRange       *struct{ StartTimestamp, EndTimestamp *float64 }
	}
}

// newSession validates a session request into a playSession.
func (s *Server) newSession(kind string, body []byte) (playSession, *streamRec, error) {
	var in sessionRequest
	if err := decode(body, &in); err != nil {
		return playSession{}, nil, err
	}
	st, err := s.lookupStream(in.StreamName, in.StreamARN)
	if err != nil {
		return playSession{}, nil, err
	}
	now := s.clock.Now()
	ps := playSession{Kind: kind, Stream: st.ARN, Mode: in.PlaybackMode, Container: in.ContainerFormat, Selector: "PRODUCER_TIMESTAMP", Created: now.UnixMilli()}
	if ps.Mode == "" {
		ps.Mode = playLive
	}
	if ps.Mode != playLive && ps.Mode != playLiveReplay && ps.Mode != playOnDemand {
		return ps, nil, invalidArg("PlaybackMode %q must be LIVE, LIVE_REPLAY or ON_DEMAND", ps.Mode)
	}
	switch {
	case kind == "dash" && ps.Container != "":
		return ps, nil, invalidArg("GetDASHStreamingSessionURL takes no ContainerFormat (its segments are fragmented MP4)")
	case ps.Container == "":
		ps.Container = "FRAGMENTED_MP4"
	case ps.Container != "FRAGMENTED_MP4" && ps.Container != "MPEG_TS":
		return ps, nil, invalidArg("ContainerFormat %q must be FRAGMENTED_MP4 or MPEG_TS", ps.Container)
	}
	switch in.DiscontinuityMode {
	case "":
		if kind == "hls" {
			ps.Disc = "ALWAYS"
		}
	case "ALWAYS", "NEVER", "ON_DISCONTINUITY":
		if kind != "hls" {
			return ps, nil, invalidArg("DiscontinuityMode is an HLS setting")
		}
		ps.Disc = in.DiscontinuityMode
	default:
		return ps, nil, invalidArg("DiscontinuityMode %q must be ALWAYS, NEVER or ON_DISCONTINUITY", in.DiscontinuityMode)
	}
	switch in.DisplayFragmentTimestamp {
	case "", "NEVER":
	case "ALWAYS":
		ps.Display = true
	default:
		return ps, nil, invalidArg("DisplayFragmentTimestamp %q must be ALWAYS or NEVER", in.DisplayFragmentTimestamp)
	}
	exp := defaultSessionExpiry
	if in.Expires != nil {
		exp = time.Duration(*in.Expires) * time.Second
		if exp < minSessionExpiry || exp > maxSessionExpiry {
			return ps, nil, invalidArg("Expires %d must be between %d and %d seconds", *in.Expires, int(minSessionExpiry/time.Second), int(maxSessionExpiry/time.Second))
		}
	}
	ps.Expires = now.Add(exp).Unix()
	maxFrags := in.MaxMediaPlaylistFragmentResults
	field := "MaxMediaPlaylistFragmentResults"
	sel := in.HLSFragmentSelector
	if kind == "dash" {
		maxFrags, field, sel = in.MaxManifestFragmentResults, "MaxManifestFragmentResults", in.DASHFragmentSelector
	}
	ps.Max = defaultLiveFragments
	if ps.Mode == playOnDemand {
		ps.Max = defaultVODFragments
	}
	if maxFrags != nil {
		if *maxFrags < 1 || *maxFrags > maxPlaylistFragments {
			return ps, nil, invalidArg("%s %d must be between 1 and %d", field, *maxFrags, maxPlaylistFragments)
		}
		ps.Max = int(*maxFrags)
	}
	selField := strings.ToUpper(kind) + "FragmentSelector"
	if sel != nil {
		switch sel.FragmentSelectorType {
		case "", "PRODUCER_TIMESTAMP":
		case "SERVER_TIMESTAMP":
			ps.Selector = "SERVER_TIMESTAMP"
		default:
			return ps, nil, invalidArg("%s.FragmentSelectorType %q must be PRODUCER_TIMESTAMP or SERVER_TIMESTAMP", selField, sel.FragmentSelectorType)
		}
		if r := sel.TimestampRange; r != nil {
			var ok bool
			if r.StartTimestamp != nil {
				if ps.Start, ok = epochMS(r.StartTimestamp); !ok {
					return ps, nil, invalidArg("%s.TimestampRange.StartTimestamp is not a time", selField)
				}
			}
			if r.EndTimestamp != nil {
				if ps.End, ok = epochMS(r.EndTimestamp); !ok {
					return ps, nil, invalidArg("%s.TimestampRange.EndTimestamp is not a time", selField)
				}
			}
		}
	}
	switch ps.Mode {
	case playLive:
		if ps.Start != 0 || ps.End != 0 {
			return ps, nil, invalidArg("a LIVE session takes no %s.TimestampRange", selField)
		}
	case playLiveReplay:
		if ps.Start == 0 {
			return ps, nil, invalidArg("a LIVE_REPLAY session needs %s.TimestampRange.StartTimestamp", selField)
		}
	case playOnDemand:
		if ps.Start == 0 || ps.End == 0 {
			return ps, nil, invalidArg("an ON_DEMAND session needs %s.TimestampRange with StartTimestamp and EndTimestamp", selField)
		}
		if time.Duration(ps.End-ps.Start)*time.Millisecond > maxOnDemandRange {
			return ps, nil, invalidArg("an ON_DEMAND session spans at most 24 hours")
		}
	}
	if ps.End != 0 && ps.End < ps.Start {
		return ps, nil, invalidArg("%s.TimestampRange.EndTimestamp is before StartTimestamp", selField)
	}
	// As KVS, a session with nothing to play is refused at once.
	frags, _ := s.sessionFragments(ps, st)
	switch {
	case ps.Mode == playLive && (len(frags) == 0 || now.UnixMilli()-frags[len(frags)-1].Server > liveFreshness.Milliseconds()):
		return ps, nil, notFound("no fragments in the stream %q in the last %v: is the master ingesting (JoinStorageSession)?", st.Name, liveFreshness)
	case len(frags) == 0 && ps.Mode == playOnDemand:
		return ps, nil, notFound("no fragments in the stream %q for the requested range", st.Name)
	}
	return ps, st, nil
}

func (s *Server) apiHLSSessionURL(_ context.Context, r *http.Request, body []byte) (any, error) {
	ps, _, err := s.newSession("hls", body)
	if err != nil {
		return nil, err
	}
	u := s.endpointFor(r) + "/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=" + url.QueryEscape(s.token(ps))
	return map[string]string{"HLSStreamingSessionURL": u}, nil
}

func (s *Server) apiDASHSessionURL(_ context.Context, r *http.Request, body []byte) (any, error) {
	ps, _, err := s.newSession("dash", body)
	if err != nil {
		return nil, err
	}
	u := s.endpointFor(r) + "/dash/v1/getDASHManifest.mpd?SessionToken=" + url.QueryEscape(s.token(ps))
	return map[string]string{"DASHStreamingSessionURL": u}, nil
}

// sessionFragments picks the fragments of a session now, in order, and
// whether the list is complete (no fragment will be added: ON_DEMAND, or a
// LIVE_REPLAY whose end has passed).
func (s *Server) sessionFragments(ps playSession, st *streamRec) ([]fragmentMeta, bool) {
	now := s.clock.Now()
	all := s.media.store.list(st.ARN, time.Duration(st.Retention)*time.Hour, now)
	ts := func(m fragmentMeta) int64 {
		if ps.Selector == "SERVER_TIMESTAMP" {
			return m.Server
		}
		return m.Producer
	}
	switch ps.Mode {
	case playOnDemand:
		var out []fragmentMeta
		for _, m := range all {
			if ts(m)+m.LengthMS > ps.Start && ts(m) <= ps.End && len(out) < ps.Max {
				out = append(out, m)
			}
		}
		return out, true
	case playLiveReplay:
		var from []fragmentMeta
		for _, m := range all {
			if ts(m)+m.LengthMS > ps.Start && (ps.End == 0 || ts(m) <= ps.End) {
				from = append(from, m)
			}
		}
		// The window moves on in real time from the start, a few
		// fragments behind the play position.
		cursor := ps.Start + (now.UnixMilli() - ps.Created)
		i := sort.Search(len(from), func(i int) bool { return ts(from[i])+from[i].LengthMS > cursor })
		i = max(0, i-2)
		out := from[i:min(len(from), i+ps.Max)]
		done := ps.End != 0 && len(all) > 0 && ts(all[len(all)-1]) > ps.End && i+len(out) == len(from)
		return out, done
	default: // LIVE: the newest fragments
		return all[max(0, len(all)-ps.Max):], false
	}
}

// servePlayback answers the GETs of a session URL; it reports false for
// a path that is not one (the signaling WebSocket is served on any other).
func (s *Server) servePlayback(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	var kind, name string
	switch {
	case strings.HasPrefix(p, "/hls/v1/"):
		kind, name = "hls", p[len("/hls/v1/"):]
	case strings.HasPrefix(p, "/dash/v1/"):
		kind, name = "dash", p[len("/dash/v1/"):]
	default:
		return false
	}
	q := r.URL.Query()
	ps, st, err := s.session(q.Get("SessionToken"), kind)
	if err != nil {
		ae, _ := asAPIError(err)
		s.log.Debug("localkvs: playback refused", "path", p, "msg", ae.msg)
		writeError(w, ae)
		return true
	}
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case kind == "hls" && name == "getHLSMasterPlaylist.m3u8":
		err = s.serveHLSMaster(w, ps, st, q.Get("SessionToken"))
	case kind == "hls" && name == "getHLSMediaPlaylist.m3u8":
		err = s.serveHLSMedia(w, ps, st, q.Get("SessionToken"))
	case kind == "dash" && name == "getDASHManifest.mpd":
		err = s.serveMPD(w, ps, st, q.Get("SessionToken"))
	case name == "getMP4InitFragment.mp4" && ps.Container == "FRAGMENTED_MP4":
		err = s.serveInit(w, ps, st, q.Get("FragmentNumber"), q.Get("TrackNumber"))
	case name == "getMP4MediaFragment.mp4" && ps.Container == "FRAGMENTED_MP4":
		err = s.serveMP4Fragment(w, ps, st, q.Get("FragmentNumber"), q.Get("TrackNumber"))
	case kind == "hls" && name == "getTSFragment.ts" && ps.Container == "MPEG_TS":
		err = s.serveTSFragment(w, ps, st, q.Get("FragmentNumber"))
	default:
		err = notFound("no %s resource %q for this session", strings.ToUpper(kind), name)
	}
	if err != nil {
		ae, ok := asAPIError(err)
		if !ok {
			s.log.Warn("localkvs: playback failed", "path", p, "err", err)
			ae = errInternal
		}
		writeError(w, ae)
	}
	return true
}
