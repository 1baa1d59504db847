package wire

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestEncodePayloadLikeJSONStringify: an SDP holding <, > and & is encoded
// as JSON.stringify writes it, not with encoding/json's \u003c escapes, so
// the service tests send byte for byte what the client sends.
func TestEncodePayloadLikeJSONStringify(t *testing.T) {
	p, err := EncodePayload(map[string]string{"sdp": "a=x <b> & c", "type": "offer"})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(p)
	if want := `{"sdp":"a=x <b> & c","type":"offer"}`; string(raw) != want {
		t.Fatalf("payload JSON %s, want %s", raw, want)
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "A-b_c.9": true, strings.Repeat("x", 256): true,
		"": false, strings.Repeat("x", 257): false, "a b": false, "a/b": false, "é": false,
	} {
		if got := ValidName(s); got != want {
			t.Errorf("ValidName(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCheckClientID(t *testing.T) {
	for id, bad := range map[string]string{
		"viewer-1": "", "aws_lower": "",
		"": "empty", "AWS_x": "AWS_", "a:b": "want", strings.Repeat("v", 257): "want",
	} {
		err := CheckClientID(id)
		switch {
		case bad == "" && err != nil:
			t.Errorf("CheckClientID(%q) = %v, want nil", id, err)
		case bad != "" && (err == nil || !strings.Contains(err.Error(), bad)):
			t.Errorf("CheckClientID(%q) = %v, want an error naming %q", id, err, bad)
		}
	}
}

func TestParseARN(t *testing.T) {
	good := "arn:aws:kinesisvideo:us-west-2:123456789012:channel/cam-1/1700000000000"
	a, err := ParseARN(good)
	if err != nil {
		t.Fatal(err)
	}
	if a != (ARN{"aws", "us-west-2", "123456789012", "channel", "cam-1", 1700000000000}) || a.String() != good {
		t.Fatalf("parsed %+v (%s)", a, a)
	}
	for _, s := range []string{
		"arn:aws-cn:kinesisvideo:cn-north-1:123456789012:stream/s/1",
		"arn:aws-us-gov:kinesisvideo:us-gov-west-1:123456789012:channel/c/1",
	} {
		if _, err := ParseARN(s); err != nil {
			t.Errorf("ParseARN(%q): %v", s, err)
		}
	}
	for _, s := range []string{
		"", "arn:aws:kinesisvideo:us-west-2:1:channel/x/1", // short account
		"arn:aws:kinesisvideo::123456789012:channel/x/1",         // no region
		"arn:aws:s3:us-west-2:123456789012:channel/x/1",          // other service
		"arn:aws:kinesisvideo:us-west-2:123456789012:channel/x/", // no creation time
		"arn:aws:kinesisvideo:us-west-2:123456789012:table/x/1",  // other type
		"arn:aws:kinesisvideo:us-west-2:123456789012:channel/a b/1",
		"arn:other:kinesisvideo:us-west-2:123456789012:channel/x/1",
		"arn:aws:kinesisvideo:us-west-2:123456789012:channel/x/99999999999999999999",
	} {
		if _, err := ParseARN(s); err == nil {
			t.Errorf("ParseARN(%q) accepted", s)
		}
	}
	if _, err := ParseChannelARN("arn:aws:kinesisvideo:us-west-2:123456789012:stream/s/1"); err == nil {
		t.Error("ParseChannelARN accepted a stream ARN")
	}
}
