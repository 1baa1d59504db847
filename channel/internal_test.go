package channel

import (
	"reflect"
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestOrderServers(t *testing.T) {
	turn := webrtc.ICEServer{
		URLs:     []string{"turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp", "turns:localhost:5349?transport=tcp"},
		Username: "u", Credential: "p", CredentialType: webrtc.ICECredentialTypePassword,
	}
	// Regional STUN first, then TURN.
	got := orderServers("stun:stun.kinesisvideo.us-west-2.amazonaws.com:443", []webrtc.ICEServer{turn}, false)
	want := []webrtc.ICEServer{{URLs: []string{"stun:stun.kinesisvideo.us-west-2.amazonaws.com:443"}}, turn}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("regional: %+v", got)
	}
	// Local: STUN derived from the UDP TURN URL.
	got = orderServers("", []webrtc.ICEServer{turn}, true)
	want = []webrtc.ICEServer{{URLs: []string{"stun:127.0.0.1:3478"}}, turn}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("derived: %+v", got)
	}
	// Local, the service lists a STUN URL: it is used, nothing derived.
	withSTUN := webrtc.ICEServer{URLs: []string{"stun:127.0.0.1:9999", "turn:127.0.0.1:3478"}, Username: "u", Credential: "p"}
	got = orderServers("", []webrtc.ICEServer{withSTUN}, true)
	want = []webrtc.ICEServer{{URLs: []string{"stun:127.0.0.1:9999"}}, {URLs: []string{"turn:127.0.0.1:3478"}, Username: "u", Credential: "p"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("listed STUN: %+v", got)
	}
	// Nothing at all.
	if got := orderServers("", nil, true); got != nil {
		t.Errorf("empty: %+v", got)
	}
}

func TestAWSHosted(t *testing.T) {
	for ep, want := range map[string]bool{
		"https://r-1234abcd.kinesisvideo.us-west-2.amazonaws.com":     true,
		"https://r-1234abcd.kinesisvideo.cn-north-1.amazonaws.com.cn": true,
		"https://kinesisvideo.us-west-2.api.aws":                      true,
		"http://127.0.0.1:4566":                                       false,
		"https://localhost:8443":                                      false,
		"https://amazonaws.com.evil.example":                          false,
	} {
		if got := awsHosted(ep); got != want {
			t.Errorf("awsHosted(%q) = %v, want %v", ep, got, want)
		}
	}
}
