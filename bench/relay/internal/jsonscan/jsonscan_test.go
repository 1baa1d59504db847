package jsonscan

import "testing"

func TestField(t *testing.T) {
	data := []byte(`{"action":"SDP_OFFER","recipientClientId":"viewer-1","messagePayload":"eyJ0cyI6`)
	for _, c := range []struct{ key, want string }{
		{`"action":"`, "SDP_OFFER"},
		{`"recipientClientId":"`, "viewer-1"},
		{`"messagePayload":"`, ""}, // no closing quote
		{`"senderClientId":"`, ""}, // absent
	} {
		got := Field(data, []byte(c.key))
		if string(got) != c.want || (c.want == "" && got != nil) {
			t.Errorf("Field(%s) = %q, want %q", c.key, got, c.want)
		}
	}
}
