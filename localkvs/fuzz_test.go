package localkvs

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// Fuzz targets of the service's input decoding (issue 13). Seed corpora:
// testdata/fuzz/FuzzFrame, testdata/fuzz/FuzzControlPlane.

const fuzzARN = "arn:aws:kinesisvideo:us-west-2:000000000000:channel/fuzz/1700000000000"

// fuzzServer is an in-memory server (no listener) with one channel.
func fuzzServer(f *testing.F) *Server {
	s, err := New(Config{Limits: Limits{ConnectsPerSecond: -1, SDPPerSecond: -1, ICEPerSecond: -1, ICEConfigPerSecond: -1}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	if _, err := s.store.create(s.cfg.Region, &channelRec{Name: "fuzz", Type: "SINGLE_MASTER", TTL: 60, Tags: map[string]string{}}, 10); err != nil {
		f.Fatal(err)
	}
	return s
}

// FuzzFrame hands arbitrary client frames to a connection's frame handling
// (decode, validate, rate-limit, route), from a master or a viewer: it must
// not panic, and every frame it routes or answers with must be JSON the
// clients can read.
func FuzzFrame(f *testing.F) {
	s := fuzzServer(f)
	c, _ := s.store.get("fuzz", "")
	rm := s.roomFor(c)
	for _, seed := range []string{
		`{"action":"SDP_OFFER","messagePayload":"eyJ0eXBlIjoib2ZmZXIiLCJzZHAiOiJ2PTBcclxuIn0="}`,
		`{"action":"ICE_CANDIDATE","messagePayload":"eyJjYW5kaWRhdGUiOiIifQ==","recipientClientId":"viewer-1","correlationId":"c-1"}`,
		`{"action":"SDP_ANSWER","messagePayload":"x","RecipientClientId":"v","CorrelationId":"c"}`,
		`{"action":"NOPE","messagePayload":"x","correlationId":"c"}`,
		`{"action":"ICE_CANDIDATE","correlationId":"bad id!"}`,
		`{"action":"ICE_CANDIDATE","messagePayload":"\u003c\u0000\"\\"}`,
		`{not json`, `[]`, `null`, `{"action":1}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, master bool) {
		id := "viewer-1"
		if master {
			id = ""
		}
		conn := &wsConn{
			s: s, rm: rm, id: id, master: master,
			done: make(chan struct{}),
			sdp:  newLimiter(-1),
			ice:  newLimiter(-1),
		}
		conn.handle(data) // not upgraded: what it sends is queued
		conn.mu.Lock()
		queued := conn.q
		conn.mu.Unlock()
		for _, frame := range queued {
			var m wire.ServiceMessage
			if err := json.Unmarshal(frame, &m); err != nil {
				t.Fatalf("the service answered %q with a frame that is not JSON: %q", data, frame)
			}
		}
		rm.mu.Lock()
		defer rm.mu.Unlock()
		kept := rm.toMaster
		for _, l := range rm.toViewer {
			kept = append(kept, l...)
		}
		for _, p := range kept {
			var m wire.ServiceMessage
			if err := json.Unmarshal(p.frame, &m); err != nil {
				t.Fatalf("the service routed %q as a frame that is not JSON: %q", data, p.frame)
			}
			if m.MessageType != p.action {
				t.Fatalf("routed %q as %q", p.action, p.frame)
			}
		}
		rm.toMaster, rm.toViewer = nil, map[string][]pending{}
		rm.forgetAllLocked()
	})
}

// FuzzControlPlane hands arbitrary bodies to every control-plane and
// data-plane operation: each must answer a result or an API error of the
// client's making (4xx), never panic, never fail internally (5xx), and its
// result must encode.
func FuzzControlPlane(f *testing.F) {
	s := fuzzServer(f)
	ops := make([]string, 0, len(s.handlers))
	for op, h := range s.handlers {
		if h != nil { // nil: served as media (GetMedia), not as JSON
			ops = append(ops, op)
		}
	}
	sort.Strings(ops)
	for _, seed := range []string{
		`{"ChannelName":"fuzz"}`,
		`{"ChannelARN":"` + fuzzARN + `"}`,
		`{"ChannelName":"new","ChannelType":"SINGLE_MASTER","SingleMasterConfiguration":{"MessageTtlSeconds":5},"Tags":[{"Key":"k","Value":"v"}]}`,
		`{"ChannelARN":"` + fuzzARN + `","CurrentVersion":"x"}`,
		`{"ResourceARN":"` + fuzzARN + `","Tags":[{"Key":"aws:x","Value":""}]}`,
		`{"MaxResults":0,"NextToken":"!!"}`,
		`{"ChannelARN":"` + fuzzARN + `","SingleMasterChannelEndpointConfiguration":{"Protocols":["WSS","HTTPS","WEBRTC"],"Role":"VIEWER"}}`,
		`{"ChannelARN":"` + fuzzARN + `","ClientId":"AWS_x","Service":"TURN"}`,
		``, `null`, `[]`, `{`, `{"ChannelName":1}`,
	} {
		f.Add(uint8(len(seed)), []byte(seed))
	}
	for i := range ops {
		f.Add(uint8(i), []byte(`{"ChannelARN":"`+fuzzARN+`","StreamName":"s","StreamARN":"x"}`))
		f.Add(uint8(i), []byte(`{}`))
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		path := ops[int(op)%len(ops)]
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out, err := s.handlers[path](ctx, r, body)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("%s %q: an error that is not the API's: %v", path, body, err)
			}
			if ae.status >= 500 {
				t.Fatalf("%s %q: %d %s %s", path, body, ae.status, ae.code, ae.msg)
			}
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("%s %q: the result does not encode: %v", path, body, err)
		}
	})
}
