package signaling_test

import (
	"strconv"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// BenchmarkMasterToViewer measures one message sent by a master and
// received by a viewer through the local service over 127.0.0.1: signing
// is out of the loop (done at Open); encoding, the service's routing and
// decoding are in.
func BenchmarkMasterToViewer(b *testing.B) {
	e := startEnv(b, localkvs.Config{})
	master := e.client(b, signaling.RoleMaster, "")
	viewer := e.client(b, signaling.RoleViewer, "viewer-1")
	got := make(chan struct{}, 1)
	viewer.OnICECandidate(func(webrtc.ICECandidateInit, string) { got <- struct{}{} })
	open(b, master)
	open(b, viewer)
	// The viewer's candidates are delivered once it has the master's answer.
	viewer.OnSDPAnswer(func(webrtc.SessionDescription, string) { got <- struct{}{} })
	must(b, master.SendSDPAnswer(answer("v=0"), signaling.WithRecipient("viewer-1")))
	recv(b, "answer", got)

	mid, idx := "0", uint16(0)
	c := webrtc.ICECandidateInit{SDPMid: &mid, SDPMLineIndex: &idx}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Candidate = "candidate:" + strconv.Itoa(i) + " 1 udp 2130706431 192.0.2.1 50000 typ host"
		if err := master.SendICECandidate(c, signaling.WithRecipient("viewer-1")); err != nil {
			b.Fatal(err)
		}
		recv(b, "candidate", got)
	}
}
