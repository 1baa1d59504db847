package peer

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// Fuzz targets of the SDP and candidate handling (issue 13): a payload from
// the signaling channel, decoded as the signaling client decodes it, then
// applied to a peer connection as the master applies an offer and a viewer
// an answer and candidates. Nothing may panic. Seed corpora:
// testdata/fuzz/FuzzRemoteDescription, testdata/fuzz/FuzzRemoteCandidate.

var fuzzAPI struct {
	once sync.Once
	api  *webrtc.API
	sdp  string // a genuine offer, for seeds and for FuzzRemoteCandidate
}

func fuzzSetup(f *testing.F) (*webrtc.API, string) {
	fuzzAPI.once.Do(func() {
		api, err := Settings{NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4}, IPFilter: func(ip net.IP) bool { return ip.IsLoopback() }}.NewAPI()
		if err != nil {
			f.Fatal(err)
		}
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			f.Fatal(err)
		}
		defer pc.Close()
		pc.CreateDataChannel("d", nil)
		pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		offer, err := pc.CreateOffer(nil)
		if err != nil {
			f.Fatal(err)
		}
		fuzzAPI.api, fuzzAPI.sdp = api, offer.SDP
	})
	return fuzzAPI.api, fuzzAPI.sdp
}

// fuzzLink opens an answering link, as the master's session for a viewer.
func fuzzLink(t *testing.T, api *webrtc.API) *link {
	l := &link{}
	var sent, recv atomic.Uint64
	err := l.open(linkConfig{
		api: api, log: slog.New(slog.DiscardHandler), peerID: "viewer-1",
		recvVideo: true, recvAudio: true,
		sendCandidate: func(webrtc.ICECandidateInit) {},
		dataSent:      &sent, dataRecv: &recv,
		t: &tracker{}, onState: func(webrtc.PeerConnectionState) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// FuzzRemoteDescription applies an arbitrary offer payload the way the
// master does: decode, SetRemoteDescription, answer.
func FuzzRemoteDescription(f *testing.F) {
	api, sdp := fuzzSetup(f)
	for _, sd := range []webrtc.SessionDescription{
		{Type: webrtc.SDPTypeOffer, SDP: sdp},
		{Type: webrtc.SDPTypeOffer, SDP: "v=0\r\n"},
		{Type: webrtc.SDPTypeAnswer, SDP: sdp},
	} {
		p, _ := wire.EncodePayload(sd)
		f.Add(p)
	}
	f.Add("eyJ0eXBlIjoib2ZmZXIiLCJzZHAiOiIifQ==")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, payload string) {
		var sd webrtc.SessionDescription
		if err := wire.DecodePayload(payload, &sd); err != nil {
			return
		}
		l := fuzzLink(t, api)
		defer l.pc.Close()
		if err := l.setRemoteDescription(sd); err != nil {
			return
		}
		if sd.Type != webrtc.SDPTypeOffer {
			return
		}
		answer, err := l.pc.CreateAnswer(nil)
		if err != nil {
			return
		}
		_ = l.pc.SetLocalDescription(answer)
	})
}

// FuzzRemoteCandidate applies an arbitrary candidate payload to a peer
// connection, before its remote description (held) and after.
func FuzzRemoteCandidate(f *testing.F) {
	api, sdp := fuzzSetup(f)
	mid, idx := "0", uint16(0)
	for _, c := range []webrtc.ICECandidateInit{
		{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", SDPMid: &mid, SDPMLineIndex: &idx},
		{Candidate: "candidate:2 1 tcp 1 10.0.0.1 9 typ host tcptype active"},
		{Candidate: "candidate:3 1 udp 1 192.0.2.1 3478 typ relay raddr 0.0.0.0 rport 0"},
		{Candidate: ""},
		{Candidate: "candidate:x"},
	} {
		p, _ := wire.EncodePayload(c)
		f.Add(p, true)
		f.Add(p, false)
	}
	f.Fuzz(func(t *testing.T, payload string, early bool) {
		var c webrtc.ICECandidateInit
		if err := wire.DecodePayload(payload, &c); err != nil {
			return
		}
		l := fuzzLink(t, api)
		defer l.pc.Close()
		if early {
			l.remoteCandidate(c) // held until the description
		}
		if err := l.setRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
			t.Fatalf("the genuine offer: %v", err)
		}
		l.remoteCandidate(c)
	})
}
