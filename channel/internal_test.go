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

func TestNATTraversalModes(t *testing.T) {
	stun := webrtc.ICEServer{URLs: []string{"stun:stun.kinesisvideo.us-west-2.amazonaws.com:443"}}
	turn1 := webrtc.ICEServer{
		URLs:     []string{"turn:1.2.3.4:443?transport=udp", "turns:host-1:443?transport=tcp"},
		Username: "u1", Credential: "p1", CredentialType: webrtc.ICECredentialTypePassword,
	}
	turn2 := webrtc.ICEServer{
		URLs:     []string{"turn:5.6.7.8:443?transport=udp"},
		Username: "u2", Credential: "p2", CredentialType: webrtc.ICECredentialTypePassword,
	}
	res := &Resolved{iceServers: []webrtc.ICEServer{stun, turn1, turn2}}
	for _, c := range []struct {
		mode   NATTraversal
		want   []webrtc.ICEServer
		policy webrtc.ICETransportPolicy
	}{
		{STUNAndTURN, []webrtc.ICEServer{stun, turn1, turn2}, webrtc.ICETransportPolicyAll},
		{TURNOnly, []webrtc.ICEServer{turn1, turn2}, webrtc.ICETransportPolicyRelay},
		{STUNOnly, []webrtc.ICEServer{stun}, webrtc.ICETransportPolicyAll},
		{NATTraversalDisabled, nil, webrtc.ICETransportPolicyAll},
	} {
		got := res.WebRTCConfiguration(c.mode)
		if !reflect.DeepEqual(got.ICEServers, c.want) || got.ICETransportPolicy != c.policy {
			t.Errorf("%v: servers %+v policy %v; want %+v policy %v", c.mode, got.ICEServers, got.ICETransportPolicy, c.want, c.policy)
		}
	}
	// The returned configuration is a copy.
	got := res.WebRTCConfiguration(STUNAndTURN)
	got.ICEServers[0].URLs[0] = "changed"
	if res.iceServers[0].URLs[0] == "changed" {
		t.Error("WebRTCConfiguration shares the URL slices of the servers Resolved holds")
	}
	// A server listing STUN and TURN URLs together is split by mode.
	mixed := &Resolved{iceServers: []webrtc.ICEServer{{URLs: []string{"stun:a:1", "turn:a:1"}, Username: "u", Credential: "p"}}}
	if s := mixed.WebRTCConfiguration(TURNOnly).ICEServers; len(s) != 1 || !reflect.DeepEqual(s[0].URLs, []string{"turn:a:1"}) || s[0].Username != "u" {
		t.Errorf("TURNOnly of a mixed server: %+v", s)
	}
	if s := mixed.WebRTCConfiguration(STUNOnly).ICEServers; len(s) != 1 || !reflect.DeepEqual(s[0].URLs, []string{"stun:a:1"}) {
		t.Errorf("STUNOnly of a mixed server: %+v", s)
	}
}
