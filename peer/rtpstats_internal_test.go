package peer

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// connectedPair connects two peer connections of api on 127.0.0.1, with an
// Opus track from b to a; b sends a packet every 20 ms until stop is
// closed.
func connectedPair(t *testing.T, api *webrtc.API) (a, b *webrtc.PeerConnection, stop chan struct{}) {
	t.Helper()
	var err error
	if a, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if b, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "b")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	a.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { go drainRTP(tr) })
	connected := make(chan struct{})
	var once sync.Once
	a.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	exchange := func(from, to *webrtc.PeerConnection, sd webrtc.SessionDescription) {
		t.Helper()
		done := webrtc.GatheringCompletePromise(from)
		if err := from.SetLocalDescription(sd); err != nil {
			t.Fatal(err)
		}
		<-done
		if err := to.SetRemoteDescription(*from.LocalDescription()); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := a.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange(a, b, offer)
	answer, err := b.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	exchange(b, a, answer)
	select {
	case <-connected:
	case <-time.After(20 * time.Second):
		t.Fatal("the pair did not connect in 20 s")
	}
	stop = make(chan struct{})
	go func() {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111}, Payload: []byte{0xfc, 0xff, 0xfe}}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			pkt.SequenceNumber, pkt.Timestamp = uint16(i), uint32(i*960)
			_ = track.WriteRTP(pkt)
		}
	}()
	return a, b, stop
}

// TestStatsWhileRemoteCloses: the remote closing makes pion close the peer
// connection by itself (DTLS close_notify); Stats gathered meanwhile, in a
// loop, must not race with that Close (go test -race failed here when the
// counters came from PeerConnection.GetStats), and the counters' getter is
// forgotten once the peer connection is closed.
func TestStatsWhileRemoteCloses(t *testing.T) {
	api, err := Settings{
		NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4},
		IPFilter:     func(ip net.IP) bool { return ip.IsLoopback() },
	}.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	a, b, stop := connectedPair(t, api)
	var g pcGuard
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st SessionStats
		collectPC(a, &g, &st)
		if len(st.Streams) == 1 && st.Streams[0].Kind == "audio" && st.PacketsReceived > 0 && st.BytesReceived > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no inbound audio counted in 20 s: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)

	polled := make(chan int)
	go func() {
		n := 0
		for a.ConnectionState() != webrtc.PeerConnectionStateClosed && time.Now().Before(deadline) {
			var st SessionStats
			collectPC(a, &g, &st)
			n++
		}
		polled <- n
	}()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	n := <-polled
	if a.ConnectionState() != webrtc.PeerConnectionStateClosed {
		t.Fatalf("pion did not close the peer connection after the remote closed (state %s, %d Stats calls)", a.ConnectionState(), n)
	}
	t.Logf("%d Stats calls while the remote closed", n)
	for {
		if _, ok := rtpStats.Load(a.ID()); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stats getter of a closed peer connection is still kept")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
