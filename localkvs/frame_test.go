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
	built bool // and the frame to forward built with the payload (decodeRelay)
}{
	// The JS SDK and this module's client (encoding/json of wire.ClientMessage).
	{`{"action":"SDP_OFFER","messagePayload":"eyJ0eXBlIjoib2ZmZXIifQ==","recipientClientId":"viewer-1","correlationId":"c.1_x"}`, true, true},
	{`{"action":"ICE_CANDIDATE","messagePayload":"eyJjYW5kaWRhdGUiOiIifQ=="}`, true, true},
	{`{"action":"SDP_ANSWER","messagePayload":"e30=","recipientClientId":"v"}`, true, true},
	// The C SDK: PascalCase keys, tabs and newlines.
	{"{\n\t\"action\": \"ICE_CANDIDATE\",\n\t\"RecipientClientId\": \"ConsumerViewer\",\n\t\"MessagePayload\": \"eyJjYW5kaWRhdGUiOiIifQ==\"\n}", true, true},
	{"{\n\t\"action\": \"SDP_OFFER\",\n\t\"RecipientClientId\": \"\",\n\t\"MessagePayload\": \"e30=\",\n\t\"CorrelationId\": \"1700000000\"\n}", true, true},
	// Other spellings and spacing encoding/json accepts.
	{`{"ACTION":"SDP_OFFER","MESSAGEPAYLOAD":"e30=","RECIPIENTCLIENTID":"v","CORRELATIONID":"c"}`, true, true},
	{` { "aCtIoN" : "PROBE" , "messagepayload" : "" } `, true, false},
	{"\r\n{}\t", true, false},
	{`{"action":""}`, true, false},
	{`{"action":"SDP_OFFER","messagePayload":"a b<c>&d/e'f"}`, true, false},
	// Left to encoding/json: escapes, non-ASCII, other types, unknown or
	// repeated keys, keys that fold to a field's name only in Unicode.
	{`{"action":"SDP_OFFER","messagePayload":"e30\u003d"}`, false, false},
	{`{"action":"SDP_OFFER","messagePayload":"a\/b\"c\\d\n\t"}`, false, false},
	{`{"\u0061ction":"SDP_OFFER","messagePayload":"e30="}`, false, false},
	{`{"action":"SDP_OFFER","messagePayload":"é"}`, false, false},
	{"{\"action\":\"SDP_OFFER\",\"messagePayload\":\"\xff\xfe\"}", false, false},
	{"{\"action\":\"SDP_OFFER\",\"messagePayload\":\"a\x7fb\"}", false, false},
	{"{\"action\":\"SDP_OFFER\",\"messagePayload\":\"a\x01b\"}", false, false},
	{`{"action":"SDP_OFFER","me` + "\u017f\u017f" + `agePayload":"e30="}`, false, false}, // ſ folds to s
	{`{"action":"SDP_OFFER","action":"ICE_CANDIDATE"}`, false, false},
	{`{"action":"SDP_OFFER","Action":"ICE_CANDIDATE"}`, false, false},
	{`{"action":"SDP_OFFER","action":null}`, false, false},
	{`{"action":null,"messagePayload":"e30="}`, false, false},
	{`{"action":"SDP_OFFER","messagePayload":"e30=","extra":{"a":[1,2,{"b":null}]}}`, false, false},
	{`{"action":"SDP_OFFER","messagePayload":"e30=","extra":"x"}`, false, false},
	{`{"action":1,"messagePayload":"e30="}`, false, false},
	{`{"action":"SDP_OFFER","messagePayload":true}`, false, false},
	{`{"action":"SDP_OFFER","messagePayload":["e30="]}`, false, false},
	{`{"action":"SDP_OFFER","messagePayload":{}}`, false, false},
	{`{"":"x","action":"SDP_OFFER"}`, false, false},
	{`null`, false, false},
	{` null `, false, false},
	{`[]`, false, false},
	{`"SDP_OFFER"`, false, false},
	{`42`, false, false},
	{``, false, false},
	{`{`, false, false},
	{`}`, false, false},
	{`{"action":"SDP_OFFER"`, false, false},
	{`{"action":"SDP_OFFER",}`, false, false},
	{`{"action":"SDP_OFFER"}}`, false, false},
	{`{"action":"SDP_OFFER"} {}`, false, false},
	{`{"action":"SDP_OFFER"}x`, false, false},
	{`{"action" "SDP_OFFER"}`, false, false},
	{`{"action":"SDP_OFFER" "messagePayload":"e30="}`, false, false},
	{`{action:"SDP_OFFER"}`, false, false},
	{`{'action':'SDP_OFFER'}`, false, false},
	{`{"action":"SDP_OFFER","messagePayload":"e30=`, false, false},
	{"\xef\xbb\xbf{\"action\":\"SDP_OFFER\"}", false, false},
	{"{\"action\":\"SDP_OFFER\"}\x00", false, false},
	{"{\"action\":\"SDP_OFFER\"\v}", false, false},
}

// checkDecode fails unless decodeClientMessage and decodeRelay agree with
// json.Unmarshal on data (an error for the same inputs, the same fields
// otherwise) and a frame decodeRelay builds is json.Marshal's. It returns
// whether decodeRelay built the frame for a viewer's message.
func checkDecode(t *testing.T, data []byte) (built bool) {
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
	for _, sender := range []string{"", "viewer-1"} {
		var m wire.ClientMessage
		frame, err := decodeRelay(data, &m, sender)
		if (wantErr == nil) != (err == nil) {
			t.Fatalf("%q: decodeRelay error %v, encoding/json's %v", data, err, wantErr)
		}
		if wantErr == nil && m != want {
			t.Fatalf("%q: decodeRelay decoded %+v, encoding/json %+v", data, m, want)
		}
		if frame == nil {
			continue
		}
		wantFrame, _ := json.Marshal(wire.ServiceMessage{MessageType: want.Action, MessagePayload: want.MessagePayload, SenderClientID: sender})
		if !bytes.Equal(frame, wantFrame) {
			t.Fatalf("%q from %q: decodeRelay built %s, encoding/json %s", data, sender, frame, wantFrame)
		}
		built = sender != ""
	}
	return built
}

func TestDecodeClientMessageMatchesEncodingJSON(t *testing.T) {
	for _, c := range clientFrames {
		if built := checkDecode(t, []byte(c.frame)); built != c.built {
			t.Errorf("%q: frame built with the payload %v, want %v", c.frame, built, c.built)
		}
		if _, fast := decodeFlat([]byte(c.frame)); fast != c.fast {
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
		if frame, err := decodeRelay(b, &got, "v"); frame == nil || err != nil || got != m {
			t.Errorf("%s: decodeRelay decoded %+v (%v), built %s", b, got, err, frame)
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
	if n := serviceMessageLen(typ, len(payload), sender); jsonSafe(typ) && jsonSafe(payload) && jsonSafe(sender) && n != len(want) {
		t.Fatalf("(%q, %q, %q): serviceMessageLen %d, wrote %d", typ, payload, sender, n, len(want))
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
