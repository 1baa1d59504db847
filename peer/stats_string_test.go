package peer_test

import (
	"strings"
	"testing"

	"github.com/kvswebrtc/kvswebrtc/peer"
)

// TestSessionStatsStringSendOnly: a send-only session (a master's) does not
// print the receive counters it never fills, nor a first frame; a
// receiving one does (issue 14, item 7).
func TestSessionStatsStringSendOnly(t *testing.T) {
	rtp := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "rtp: ") {
				return strings.TrimSpace(l)
			}
		}
		return ""
	}
	send := peer.SessionStats{ClientID: "v1", FramesSent: 30, BytesSent: 4000}.String()
	if rtp(send) != "rtp: sent 30 frames 4000 bytes" || strings.Contains(send, "first-frame") {
		t.Errorf("send-only:\n%s", send)
	}
	recv := peer.SessionStats{ClientID: "v1", Frames: 3, PacketsReceived: 9, BytesReceived: 900}.String()
	if rtp(recv) != "rtp: received 9 packets 900 bytes lost 0" || !strings.Contains(recv, "first-frame") {
		t.Errorf("receive-only:\n%s", recv)
	}
	both := peer.SessionStats{ClientID: "v1", PacketsReceived: 9, FramesSent: 30}.String()
	if rtp(both) != "rtp: received 9 packets 0 bytes lost 0; sent 30 frames 0 bytes" {
		t.Errorf("both ways:\n%s", both)
	}
}
