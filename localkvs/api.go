package localkvs

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"strings"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

const maxBody = 1 << 20

// writeError writes an AWS REST-JSON error: the code in x-amzn-ErrorType
// (where aws-sdk-go-v2's deserializers read it) and {"message": e.msg}.
func writeError(w http.ResponseWriter, e *apiError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{e.msg})
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	if _, ok := v.(emptyBody); ok {
		w.WriteHeader(http.StatusOK)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, newAPIError(http.StatusInternalServerError, codeInternal, nil, "encoding the response failed"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

type apiHandler func(ctx context.Context, r *http.Request, body []byte) (any, error)

func (s *Server) apiHandlers() map[string]apiHandler {
	h := map[string]apiHandler{
		"/createsignalingchannel":        s.apiCreate,
		"/describesignalingchannel":      s.apiDescribe,
		"/listsignalingchannels":         s.apiList,
		"/updatesignalingchannel":        s.apiUpdate,
		"/deletesignalingchannel":        s.apiDelete,
		"/getsignalingchannelendpoint":   s.apiEndpoint,
		"/tagresource":                   s.apiTag,
		"/untagresource":                 s.apiUntag,
		"/listtagsforresource":           s.apiListTags,
		"/v1/get-ice-server-config":      s.apiICEConfig,
		"/v1/send-alexa-offer-to-master": s.apiAlexaOffer,
		"/_admin/reconnect-ice-server":   s.apiReconnectICE,
	}
	maps.Copy(h, s.streamHandlers())   // streams, storage, fragments: streams.go
	maps.Copy(h, s.playbackHandlers()) // HLS and DASH session URLs: playback.go
	return h
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, release, ok := s.readBody(w, r) // checks the Authorization header first: httplimits.go
	if !ok {
		return
	}
	defer release()
	id, err := s.verifier.VerifyHeaders(r, body)
	if err != nil {
		s.logRefusal(r, "localkvs: request refused", "path", r.URL.Path, "err", err)
		s.metrics.signatureFailed()
		refuse(w, accessDenied(err))
		return
	}
	if err := s.checkSession(id, r.URL.Path); err != nil {
		s.log.Info("localkvs: request refused", "path", r.URL.Path, "err", err, "key", id.AccessKeyID)
		writeError(w, err)
		return
	}
	if mh := s.mediaHandlers()[strings.ToLower(r.URL.Path)]; mh != nil { // MKV answers: archive.go
		s.serveMediaCall(w, r, body, mh, id.AccessKeyID)
		return
	}
	h := s.handlers[strings.ToLower(r.URL.Path)]
	if h == nil {
		writeError(w, newAPIError(http.StatusNotFound, "UnknownOperationException", nil, "unknown operation %s", r.URL.Path))
		return
	}
	out, err := h(r.Context(), r, body)
	if err != nil {
		ae, ok := asAPIError(err)
		if ok {
			s.log.Debug("localkvs: api error", "path", r.URL.Path, "code", ae.code, "msg", ae.msg, "key", id.AccessKeyID)
		} else {
			s.log.Warn("localkvs: api call failed", "path", r.URL.Path, "err", err, "key", id.AccessKeyID)
			ae = errInternal
		}
		writeError(w, ae)
		return
	}
	s.log.Debug("localkvs: api call", "path", r.URL.Path, "key", id.AccessKeyID)
	writeJSON(w, out)
}

func decode(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return invalidArg("the request body is not valid JSON for this operation: %v", err)
	}
	return nil
}

func validName(field, name string) error {
	if name == "" {
		return invalidArg("%s is required", field)
	}
	if !wire.ValidName(name) {
		return invalidArg("%s %q: want %s", field, name, wire.NameRule)
	}
	return nil
}

func validARN(field, arn string) error {
	if arn == "" {
		return invalidArg("%s is required", field)
	}
	if len(arn) > 1024 {
		return invalidArg("%s is %d characters, more than 1024", field, len(arn))
	}
	if _, err := wire.ParseARN(arn); err != nil {
		return invalidArg("%s %v", field, err)
	}
	return nil
}

// validClientID checks a viewer ClientId sent as field (ClientId,
// SenderClientId, X-Amz-ClientId).
func validClientID(field, id string) error {
	err := wire.CheckClientID(id)
	switch {
	case err == nil:
		return nil
	case field == "ClientId": // wire's message names the field already
		return invalidArg("%v", err)
	}
	return invalidArg("%s: %v", field, err)
}
