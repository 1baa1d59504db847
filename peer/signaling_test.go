package peer_test

import (
	"reflect"
	"testing"

	"github.com/kvswebrtc/kvswebrtc/peer"
)

// TestSignalingViewIsNarrow: what Master.Signaling and Viewer.Signaling
// return cannot replace the handlers the master and the viewer set on
// their signaling client, nor send on it.
func TestSignalingViewIsNarrow(t *testing.T) {
	view := reflect.TypeOf(peer.SignalingView{})
	for _, name := range []string{
		"OnSDPOffer", "OnSDPAnswer", "OnICECandidate", "OnOpen", "OnReconnecting", "OnReconnectICEServer", "OnError",
		"SendSDPOffer", "SendSDPAnswer", "SendICECandidate", "ResetICECandidateState", "DrainPendingICECandidates",
		"Open", "Close",
	} {
		if _, ok := view.MethodByName(name); ok {
			t.Errorf("SignalingView has %s", name)
		}
	}
	for _, f := range []any{(*peer.Master).Signaling, (*peer.Viewer).Signaling} {
		if got := reflect.TypeOf(f).Out(0); got != view {
			t.Errorf("Signaling returns %v, want peer.SignalingView", got)
		}
	}
}
