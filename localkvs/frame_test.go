package localkvs

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// clientFrames are client frames of every shape the decoder must get right:
// what the SDKs send (these take the fast path) and what it leaves to
// encoding/json.
var clientFrames = []struct {
	frame string
	fast  bool // decoded by decodeFlat, without encoding/json
}{
	// The JS SDK and this module's client (encoding/json of wire.ClientMessage).
	{`{"action":"SDP_OFFER","messagePayload":"eyJ0eXBlIjoib2ZmZXIifQ==","recipientClientId":"viewer-1","correlationId":"c.1_x"}`, true},
	{`{"action":"ICE_CANDIDATE","messagePayload":"eyJjYW5kaWRhdGUiOiIifQ=="}`, true},
	{`{"action":"SDP_ANSWER","messagePayload":"e30=","recipientClientId":"v"}`, true},
	// The C SDK: PascalCase keys, tabs and newlines.
	{"{\n\t\"action\": \"ICE_CANDIDATE\",\n\t\"RecipientClientId\": \"ConsumerViewer\",\n\t\"MessagePayload\": \"eyJjYW5kaWRhdGUiOiIifQ==\"\n}", true},
	{"{\n\t\"action\": \"SDP_OFFER\",\n\t\"RecipientClientId\": \"\",\n\t\"MessagePayload\": \"e30=\",\n\t\"CorrelationId\": \"1700000000\"\n}", true},
	// Other spellings and spacing encoding/json accepts.
	{`{"ACTION":"SDP_OFFER","MESSAGEPAYLOAD":"e30=","RECIPIENTCLIENTID":"v","CORRELATIONID":"c"}`, true},
	{` { "aCtIoN" : "PROBE" , "messagepayload" : "" } `, true},
	{"\r\n{}\t", true},
	{`{"action":""}`, true},
	{`{"action":"SDP_OFFER","messagePayload":"a b<c>&d/e'f"}`, true},
	// Left to encoding/json: escapes, non-ASCII, other types, unknown or
	// repeated keys, keys that fold to a field's name only in Unicode.
	{`{"action":"SDP_OFFER","messagePayload":"e30\u003d"}`, false},
	{`{"action":"SDP_OFFER","messagePayload":"a\/b\"c\\d\n\t"}`, false},
	{`{"\u0061ction":"SDP_OFFER","messagePayload":"e30="}`, false},
	{`{"action":"SDP_OFFER","messagePayload":"é"}`, false},
	{"{\"action\":\"SDP_OFFER\",\"messagePayload\":\"\xff\xfe\"}", false},
	{"{\"action\":\"SDP_OFFER\",\"messagePayload\":\"a\x7fb\"}", false},
	{"{\"action\":\"SDP_OFFER\",\"messagePayload\":\"a\x01b\"}", false},
	{`{"action":"SDP_OFFER","me` + "\u017f\u017f" + `agePayload":"e30="}`, false}, // ſ folds to s
	{`{"action":"SDP_OFFER","action":"ICE_CANDIDATE"}`, false},
	{`{"action":"SDP_OFFER","Action":"ICE_CANDIDATE"}`, false},
	{`{"action":"SDP_OFFER","action":null}`, false},
	{`{"action":null,"messagePayload":"e30="}`, false},
	{`{"action":"SDP_OFFER","messagePayload":"e30=","extra":{"a":[1,2,{"b":null}]}}`, false},
	{`{"action":"SDP_OFFER","messagePayload":"e30=","extra":"x"}`, false},
	{`{"action":1,"messagePayload":"e30="}`, false},
	{`{"action":"SDP_OFFER","messagePayload":true}`, false},
	{`{"action":"SDP_OFFER","messagePayload":["e30="]}`, false},
	{`{"action":"SDP_OFFER","messagePayload":{}}`, false},
	{`{"":"x","action":"SDP_OFFER"}`, false},
	{`null`, false},
	{` null `, false},
	{`[]`, false},
	{`"SDP_OFFER"`, false},
	{`42`, false},
	{``, false},
	{`{`, false},
	{`}`, false},
	{`{"action":"SDP_OFFER"`, false},
	{`{"action":"SDP_OFFER",}`, false},
	{`{"action":"SDP_OFFER"}}`, false},
	{`{"action":"SDP_OFFER"} {}`, false},
	{`{"action":"SDP_OFFER"}x`, false},
	{`{"action" "SDP_OFFER"}`, false},
	{`{"action":"SDP_OFFER" "messagePayload":"e30="}`, false},
	{`{action:"SDP_OFFER"}`, false},
	{`{'action':'SDP_OFFER'}`, false},
	{`{"action":"SDP_OFFER","messagePayload":"e30=`, false},
	{"\xef\xbb\xbf{\"action\":\"SDP_OFFER\"}", false},
	{"{\"action\":\"SDP_OFFER\"}\x00", false},
	{"{\"action\":\"SDP_OFFER\"\v}", false},
}

// checkDecode fails unless decodeClientMessage agrees with json.Unmarshal on
// data: an error for the same inputs, the same fields otherwise.
func checkDecode(t *testing.T, data []byte) {
	t.Helper()
	var want, got wire.ClientMessage
	wantErr := json.Unmarshal(data, &want)
	gotErr := decodeClientMessage(data, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: error %v, encoding/json's %v", data, gotErr, wantErr)
	}
	if wantErr == nil && got != want {
		t.Fatalf("%q: decoded %+v, encoding/json %+v", data, got, want)
	}
}

func TestDecodeClientMessageMatchesEncodingJSON(t *testing.T) {
	for _, c := range clientFrames {
		checkDecode(t, []byte(c.frame))
		var m wire.ClientMessage
		if fast := decodeFlat([]byte(c.frame), &m); fast != c.fast {
			t.Errorf("%q: fast path %v, want %v", c.frame, fast, c.fast)
		}
	}
	// Every frame this service's tests and the Go client send takes the fast path.
	for _, m := range []wire.ClientMessage{
		{Action: wire.SDPOffer, MessagePayload: "eyJ0eXBlIjoib2ZmZXIiLCJzZHAiOiJ2PTAifQ==", RecipientClientID: "v-1", CorrelationID: "c1"},
		{Action: wire.ICECandidate, MessagePayload: strings.Repeat("QUJD", 2560)},
	} {
		b, _ := json.Marshal(m)
		var got wire.ClientMessage
		if !decodeFlat(b, &got) || got != m {
			t.Errorf("%s: fast path decoded %+v", b, got)
		}
	}
}

// FuzzDecodeClientMessage: any input, decoded as encoding/json decodes it
// (run with go test -fuzz FuzzDecodeClientMessage ./localkvs).
func FuzzDecodeClientMessage(f *testing.F) {
	for _, c := range clientFrames {
		f.Add([]byte(c.frame))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkDecode(t, data) })
}

// checkEncode fails unless appendServiceMessage writes what json.Marshal does.
func checkEncode(t *testing.T, typ, payload, sender string) {
	t.Helper()
	want, err := json.Marshal(wire.ServiceMessage{MessageType: typ, MessagePayload: payload, SenderClientID: sender})
	if err != nil {
		t.Fatal(err)
	}
	got := appendServiceMessage([]byte("prefix"), typ, payload, sender)
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("(%q, %q, %q): wrote %s, encoding/json %s", typ, payload, sender, got[6:], want)
	}
	if jsonSafe(typ) && jsonSafe(payload) && jsonSafe(sender) && serviceMessageLen(typ, payload, sender) != len(want) {
		t.Fatalf("(%q, %q, %q): serviceMessageLen %d, wrote %d", typ, payload, sender, serviceMessageLen(typ, payload, sender), len(want))
	}
}

var serviceStrings = []string{
	"", "SDP_OFFER", "viewer-1", "eyJ0eXBlIjoib2ZmZXIifQ==", "a b/c'd", "<script>", "a&b", `q"q`, `b\s`,
	"tab\there", "nl\n", "\x00", "\x7f", "é", "\u2028", "\xff", strings.Repeat("QUJD", 100),
}

func TestAppendServiceMessageMatchesEncodingJSON(t *testing.T) {
	for _, typ := range serviceStrings {
		for _, payload := range serviceStrings {
			for _, sender := range serviceStrings {
				checkEncode(t, typ, payload, sender)
			}
		}
	}
}

// FuzzAppendServiceMessage (go test -fuzz FuzzAppendServiceMessage ./localkvs).
func FuzzAppendServiceMessage(f *testing.F) {
	for i, s := range serviceStrings {
		f.Add(wire.ICECandidate, s, serviceStrings[(i+3)%len(serviceStrings)])
	}
	f.Fuzz(func(t *testing.T, typ, payload, sender string) { checkEncode(t, typ, payload, sender) })
}
