package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/kvswebrtc/kvswebrtc/archive"
)

// The recording viewer's calls: a streaming session URL (HLS or DASH) the
// page's player opens by itself (the session token in it is its only
// credential), and GetClip, which the server fetches and hands over as a
// download.
//
//	POST /api/playback/session {"streamName", "protocol" (hls|dash), "playbackMode",
//	                            "containerFormat", "start", "end" (RFC 3339),
//	                            "maxResults", "expiresSeconds"} -> {"url", "expiresAt"}
//	POST /api/playback/clip    {"streamName", "start", "end"} -> the MP4
//	                            (Content-Disposition: attachment)

func (s *Server) routePlayback() {
	s.mux.HandleFunc("POST /api/playback/session", s.handlePlaybackSession)
	s.mux.HandleFunc("POST /api/playback/clip", s.handleClip)
}

type playbackRequest struct {
	StreamName      string `json:"streamName"`
	Protocol        string `json:"protocol"`
	PlaybackMode    string `json:"playbackMode"`
	ContainerFormat string `json:"containerFormat"`
	Start           string `json:"start"`
	End             string `json:"end"`
	MaxResults      int    `json:"maxResults"`
	ExpiresSeconds  int    `json:"expiresSeconds"`
	endpointChoice
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q is not an RFC 3339 time", ErrInvalidRequest, field, v)
	}
	return t, nil
}

// archiveStatus maps an archive error to an HTTP status for the page.
func archiveStatus(err error) int {
	var ae *archive.APIError
	switch {
	case errors.Is(err, archive.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, archive.ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, archive.ErrAccessDenied):
		return http.StatusForbidden
	case errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500:
		return ae.StatusCode
	}
	return statusOf(err)
}

// readPlayback reads a playback request, its endpoint variant and its
// stream name, answering the error itself (ok false).
func (s *Server) readPlayback(w http.ResponseWriter, r *http.Request) (playbackRequest, *variant, bool) {
	var req playbackRequest
	v, ok := s.readRequest(w, r, &req, nil, func() error { return validID("streamName", req.StreamName) })
	return req, v, ok
}

func (s *Server) handlePlaybackSession(w http.ResponseWriter, r *http.Request) {
	req, v, ok := s.readPlayback(w, r)
	if !ok {
		return
	}
	start, err := parseTime("start", req.Start)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	end, err := parseTime("end", req.End)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	o := archive.SessionOptions{
		Mode:         archive.PlaybackMode(req.PlaybackMode),
		Container:    archive.ContainerFormat(req.ContainerFormat),
		MaxFragments: req.MaxResults,
		Expires:      time.Duration(req.ExpiresSeconds) * time.Second,
	}
	if !start.IsZero() {
		o.Selector = &archive.Selector{Type: archive.ProducerTimestamp, Start: start, End: end}
	}
	expires := o.Expires
	if expires == 0 {
		expires = 5 * time.Minute
	}
	var url string
	switch strings.ToLower(req.Protocol) {
	case "", "hls":
		url, err = v.archive.HLSStreamingSessionURL(r.Context(), req.StreamName, o)
	case "dash":
		o.Container = ""
		url, err = v.archive.DASHStreamingSessionURL(r.Context(), req.StreamName, o)
	default:
		err = fmt.Errorf("%w: protocol %q: want hls or dash", ErrInvalidRequest, req.Protocol)
	}
	if err != nil {
		s.log.Info("web: playback session refused", "stream", req.StreamName, "err", err)
		writeError(w, archiveStatus(err), err)
		return
	}
	s.log.Info("web: playback session", "stream", req.StreamName, "protocol", req.Protocol, "mode", req.PlaybackMode)
	writeJSON(w, http.StatusOK, map[string]any{"url": url, "expiresAt": time.Now().Add(expires).UTC().Format(time.RFC3339)})
}

func (s *Server) handleClip(w http.ResponseWriter, r *http.Request) {
	req, v, ok := s.readPlayback(w, r)
	if !ok {
		return
	}
	start, err1 := parseTime("start", req.Start)
	end, err2 := parseTime("end", req.End)
	if err := errors.Join(err1, err2); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	body, err := v.archive.GetClip(r.Context(), req.StreamName, archive.Selector{Type: archive.ProducerTimestamp, Start: start, End: end})
	if err != nil {
		s.log.Info("web: GetClip refused", "stream", req.StreamName, "err", err)
		writeError(w, archiveStatus(err), err)
		return
	}
	defer body.Close()
	name := fmt.Sprintf("%s-%s.mp4", req.StreamName, start.UTC().Format("20060102T150405Z"))
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	n, err := io.Copy(w, body)
	s.log.Info("web: clip", "stream", req.StreamName, "bytes", n, "err", err)
}
