package wire

import (
	"encoding/json"
	"testing"
)

func TestClientMessageAcceptsBothSpellings(t *testing.T) {
	for _, raw := range []string{
		`{"action":"SDP_OFFER","messagePayload":"e30=","recipientClientId":"v1","correlationId":"c1"}`,
		`{"action":"SDP_OFFER","MessagePayload":"e30=","RecipientClientId":"v1","CorrelationId":"c1"}`,
	} {
		var m ClientMessage
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			t.Fatal(err)
		}
		if m.Action != SDPOffer || m.MessagePayload != "e30=" || m.RecipientClientID != "v1" || m.CorrelationID != "c1" {
			t.Errorf("%s decoded as %+v", raw, m)
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	p, err := EncodePayload(map[string]string{"type": "offer", "sdp": "v=0"})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := DecodePayload(p, &got); err != nil || got["sdp"] != "v=0" {
		t.Fatalf("%v %v", got, err)
	}
	if err := DecodePayload("not base64!", &got); err == nil {
		t.Fatal("bad base64 accepted")
	}
	if err := DecodePayload("bm90IGpzb24=", &got); err == nil {
		t.Fatal("non-JSON accepted")
	}
}
