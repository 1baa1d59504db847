package web_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// TestBrowserSignalingModule checks the page's signaling module in the
// browser, feeding frames straight to its frame handler: early ICE
// candidates are held per sender until that sender's SDP is delivered,
// malformed frames are dropped without breaking the client, payloads
// round-trip through base64 (UTF-8 included), and the role rules for
// recipientClientId hold.
func TestBrowserSignalingModule(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	page := openTab(t, browser, "page", st.URL+"/")
	const script = `(async () => {
  const m = await import('./js/signaling.js');
  const events = [];
  const c = new m.SignalingClient({ role: 'MASTER', getSignedURL: async () => 'ws://127.0.0.1:1/' });
  for (const name of ['sdpOffer', 'sdpAnswer', 'iceCandidate', 'statusResponse']) {
    c.on(name, (payload, from) => events.push([name, from || '', payload.candidate || payload.type || payload.errorType || '']));
  }
  const frame = (messageType, payload, senderClientId) => JSON.stringify({ messageType, messagePayload: payload && m.encodePayload(payload), senderClientId });
  c.onFrame(frame('ICE_CANDIDATE', { candidate: 'c1' }, 'v1'));
  c.onFrame(frame('ICE_CANDIDATE', { candidate: 'c2' }, 'v1'));
  c.onFrame(frame('ICE_CANDIDATE', { candidate: 'x1' }, 'v2'));
  const beforeOffer = events.length;
  c.onFrame(frame('SDP_OFFER', { type: 'offer', sdp: 'v=0' }, 'v1'));
  c.onFrame(frame('ICE_CANDIDATE', { candidate: 'c3' }, 'v1'));
  c.onFrame('not json');
  c.onFrame(JSON.stringify({ messageType: 'SDP_OFFER', messagePayload: '%%%' , senderClientId: 'v3'}));
  c.onFrame(JSON.stringify({ messageType: 'STATUS_RESPONSE', statusResponse: { errorType: 'InvalidArgumentException', statusCode: '400' } }));
  c.onFrame(frame('SDP_OFFER', { type: 'offer', sdp: 'v=0' }, 'v2'));
  const text = 'h\u00e9llo \u{1F600}';
  const roundTrip = m.decodePayload(m.encodePayload({ text })).text === text;
  const errors = [];
  try { c.send('SDP_ANSWER', {}, undefined); } catch (e) { errors.push(e.message); }
  const v = new m.SignalingClient({ role: 'VIEWER', clientId: 'v1', getSignedURL: async () => '' });
  try { v.send('SDP_OFFER', {}, 'someone'); } catch (e) { errors.push(e.message); }
  try { new m.SignalingClient({ role: 'VIEWER', getSignedURL: async () => '' }); } catch (e) { errors.push(e.message); }
  return JSON.stringify({ beforeOffer, events, roundTrip, errors });
})()`
	raw := mustEval[string](page, script)
	var got struct {
		BeforeOffer int        `json:"beforeOffer"`
		Events      [][]string `json:"events"`
		RoundTrip   bool       `json:"roundTrip"`
		Errors      []string   `json:"errors"`
	}
	if err := json.Unmarshal([]byte(raw), &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if got.BeforeOffer != 0 {
		t.Errorf("%d events before any offer, want 0 (early candidates must wait)", got.BeforeOffer)
	}
	want := [][]string{
		{"sdpOffer", "v1", "offer"},
		{"iceCandidate", "v1", "c1"},
		{"iceCandidate", "v1", "c2"},
		{"iceCandidate", "v1", "c3"},
		{"statusResponse", "", "InvalidArgumentException"},
		{"sdpOffer", "v2", "offer"},
		{"iceCandidate", "v2", "x1"},
	}
	if w, _ := json.Marshal(want); string(w) != mustJSON(t, got.Events) {
		t.Errorf("events\n got %s\nwant %s", mustJSON(t, got.Events), w)
	}
	if !got.RoundTrip {
		t.Error("a UTF-8 payload did not survive encodePayload/decodePayload")
	}
	if len(got.Errors) != 3 {
		t.Errorf("errors %q: want 3 (master without recipient, viewer with recipient, viewer without clientId)", got.Errors)
	}
	// The page is still alive after the malformed frames, and its Create
	// Channel button creates the channel named in the form.
	page.waitJS(`kvsTest.state === 'idle'`, 5*time.Second)
	mustEval[bool](page, `(document.getElementById('channelName').value = 'made-in-page', document.getElementById('create-channel').click(), true)`)
	page.waitJS(`document.getElementById('log').textContent.includes('channel made-in-page: created')`, 10*time.Second)
	mustEval[bool](page, `(document.getElementById('create-channel').click(), true)`)
	page.waitJS(`document.getElementById('log').textContent.includes('channel made-in-page: already exists')`, 10*time.Second)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBrowserFieldsPersist: fields given in the URL are kept in
// localStorage for the next visit, while each tab keeps its own client id.
func TestBrowserFieldsPersist(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	first := openTab(t, browser, "first", st.PageURL(map[string]string{
		"channelName": "kept-channel", "resolution": "640x480", "trickleIce": "false", "natTraversal": "turnOnly", "clientId": "tab-one",
	}))
	if got := mustEval[string](first, `document.getElementById('clientId').value`); got != "tab-one" {
		t.Errorf("clientId from the URL = %q, want tab-one", got)
	}
	second := openTab(t, browser, "second", st.URL+"/")
	got := mustEval[[]any](second, `['channelName', 'resolution', 'natTraversal'].map(id => document.getElementById(id).value).concat([document.getElementById('trickleIce').checked, document.getElementById('clientId').value])`)
	want := []any{"kept-channel", "640x480", "turnOnly", false}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("second tab field %d = %v, want %v (from localStorage)", i, got[i], w)
		}
	}
	if id, _ := got[4].(string); id == "tab-one" || !strings.HasPrefix(id, "viewer-") {
		t.Errorf("second tab's client id = %q, want its own random viewer-... id", id)
	}
}
