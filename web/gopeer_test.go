package web_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// goWait bounds each wait on a Go peer: generous for -race on a loaded
// 2-core machine with a browser running.
const goWait = 30 * time.Second

// loopbackSettings keep a Go peer's candidates on 127.0.0.1 (UDP over
// IPv4), like the page's candidateFilter=loopback.
func loopbackSettings() peer.Settings {
	return peer.Settings{
		NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4},
		IPFilter:     func(ip net.IP) bool { return ip.IsLoopback() },
	}
}

// startGoMaster starts a pion master on the channel through the same local
// service the web backend uses, streaming video (and the embedded Opus
// clip), and closes it when the test ends.
func startGoMaster(t *testing.T, st *stack, ch string, video media.Source, nat channel.NATTraversal) *peer.Master {
	t.Helper()
	return startGoMasterAV(t, st, ch, video, media.DefaultAudio(media.Options{Loop: true}), nat)
}

// startGoMasterAV is startGoMaster with the audio source given (nil: none).
func startGoMasterAV(t *testing.T, st *stack, ch string, video, audio media.Source, nat channel.NATTraversal) *peer.Master {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), goWait)
	defer cancel()
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: st.Local.AWS, Channel: ch, CreateIfMissing: true, NAT: nat},
		Video:         video,
		Audio:         audio,
		Settings:      loopbackSettings(),
	})
	if err != nil {
		t.Fatalf("NewMaster: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Master.Start: %v", err)
	}
	return m
}

// sdpHasCodec reports whether an SDP lists codec (e.g. "VP8/90000") in an
// a=rtpmap line.
func sdpHasCodec(sdp, codec string) bool {
	for _, l := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(l, "a=rtpmap:") && strings.Contains(strings.ToLower(l), " "+strings.ToLower(codec)) {
			return true
		}
	}
	return false
}

// TestBrowserViewerGoMaster runs a pion master (peer.Master streaming the
// embedded VP8 clip and Opus tone) and the page as viewer in headless
// chromium: the page's video plays, VP8 is negotiated, and data channel
// text goes both ways. A screenshot of the viewer mid-stream is saved.
func TestBrowserViewerGoMaster(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	const ch = "go-master"
	m := startGoMaster(t, st, ch, media.DefaultVideo(media.Options{Loop: true}), channel.STUNAndTURN)
	joined := make(chan string, 4)
	m.OnViewerJoined(func(id string) { trySend(joined, id) })
	var (
		mu       sync.Mutex
		fromPage []string
	)
	gotData := make(chan struct{}, 16)
	m.OnDataMessage(func(id string, msg webrtc.DataChannelMessage) {
		mu.Lock()
		fromPage = append(fromPage, id+": "+string(msg.Data))
		mu.Unlock()
		trySend(gotData, struct{}{})
	})

	browser := newBrowser(t)
	viewer := openTab(t, browser, "viewer", st.PageURL(map[string]string{
		"view": "viewer", "channelName": ch, "clientId": "page-viewer", "sendVideo": "false",
		"sendAudio": "false", "openDataChannel": "true", "natTraversal": "stunTurn", "trickleIce": "true",
		"logLevel": "debug", "candidateFilter": "loopback",
	}))

	t.Run("VideoPlays", func(t *testing.T) {
		viewer.waitJS(`kvsTest.state === 'connected'`, goWait)
		select {
		case id := <-joined:
			if id != "page-viewer" {
				t.Errorf("Go master: viewer %q joined, want page-viewer", id)
			}
		case <-time.After(goWait):
			t.Fatalf("Go master: no viewer joined; page:\n%s", viewer.dump())
		}
		viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 0`, goWait)
		f1 := mustEval[float64](viewer, `kvsTest.framesDecoded()`)
		viewer.waitJS(`kvsTest.framesDecoded() > `+itoa(int(f1)+30), goWait)
		// The element shows the embedded clip, 640x480.
		w := mustEval[float64](viewer, `document.getElementById('remote-video').videoWidth`)
		h := mustEval[float64](viewer, `document.getElementById('remote-video').videoHeight`)
		if w != 640 || h != 480 {
			t.Errorf("remote video is %vx%v, want the clip's 640x480", w, h)
		}
		if n := len(m.Viewers()); n != 1 {
			t.Errorf("Go master has %d viewers, want 1", n)
		}
	})

	t.Run("CodecNegotiation", func(t *testing.T) {
		desc := mustEval[map[string]struct{ Local, Remote string }](viewer, `kvsTest.descriptions()`)
		d, ok := desc["master"]
		if !ok {
			t.Fatalf("no peer connection to the master on the page: %v", desc)
		}
		// Chrome's offer (trimmed to VP8, H.264 and Opus) lists VP8 ...
		for _, c := range []string{"VP8/90000", "H264/90000", "opus/48000"} {
			if !sdpHasCodec(d.Local, c) {
				t.Errorf("the page's offer lacks %s:\n%s", c, d.Local)
			}
		}
		// ... pion's answer keeps VP8 and Opus (it may list H.264 too: the
		// answer names every codec both sides support) ...
		if !sdpHasCodec(d.Remote, "VP8/90000") || !sdpHasCodec(d.Remote, "opus/48000") {
			t.Errorf("the Go master's answer lacks VP8 or Opus:\n%s", d.Remote)
		}
		// ... and the track's codec, VP8, is what the page decodes.
		viewer.waitJS(`kvsTest.stats && kvsTest.stats.peers.master && kvsTest.stats.peers.master.videoCodecIn`, goWait)
		if c := mustEval[string](viewer, `kvsTest.stats.peers.master.videoCodecIn`); !strings.EqualFold(c, "video/VP8") {
			t.Errorf("page decodes %q, want video/VP8", c)
		}
	})

	t.Run("DataChannelBothWays", func(t *testing.T) {
		viewer.waitJS(`kvsTest.dataChannelsOpen > 0`, goWait)
		// Page -> Go master.
		if n := mustEval[int](viewer, `kvsTest.sendData('hello from the page')`); n != 1 {
			t.Fatalf("page sent on %d data channels, want 1", n)
		}
		select {
		case <-gotData:
		case <-time.After(goWait):
			t.Fatalf("Go master got no data channel message; page:\n%s", viewer.dump())
		}
		mu.Lock()
		got := append([]string(nil), fromPage...)
		mu.Unlock()
		if len(got) != 1 || got[0] != "page-viewer: hello from the page" {
			t.Errorf("Go master got %q, want [page-viewer: hello from the page]", got)
		}
		// Go master -> page, to that viewer and then to every viewer.
		if err := m.SendText("page-viewer", "hello from Go"); err != nil {
			t.Fatalf("Master.SendText: %v", err)
		}
		viewer.waitJS(`kvsTest.lastDataMessage === 'hello from Go'`, goWait)
		if n, err := m.BroadcastText("to every viewer"); err != nil || n != 1 {
			t.Fatalf("Master.BroadcastText: %d, %v; want 1, nil", n, err)
		}
		viewer.waitJS(`kvsTest.lastDataMessage === 'to every viewer'`, goWait)
		if from := mustEval[string](viewer, `kvsTest.dataMessages[0].from`); from != "master" {
			t.Errorf("page got the message from %q, want master", from)
		}
	})

	t.Run("Screenshot", func(t *testing.T) {
		// A few seconds of stats, so that the chart shows lines.
		viewer.waitJS(`kvsTest.statsSamples >= 4 && kvsTest.stats.inKbps > 0 && kvsTest.stats.fps > 0`, goWait)
		path := filepath.Join(artifactsDir(t), "web-viewer-go-master.png")
		viewer.screenshot(path)
		fi, err := os.Stat(path)
		if err != nil || fi.Size() < 10000 {
			t.Errorf("screenshot %s: %v, size %d", path, err, sizeOf(fi))
		}
	})

	t.Run("ViewerLeaves", func(t *testing.T) {
		left := make(chan string, 1)
		m.OnViewerLeft(func(id string, _ error) { trySend(left, id) })
		mustEval[bool](viewer, `(kvsTest.stop(), true)`)
		select {
		case id := <-left:
			if id != "page-viewer" {
				t.Errorf("viewer %q left, want page-viewer", id)
			}
		case <-time.After(goWait):
			t.Fatalf("Go master still has viewers %v after the page stopped", m.Viewers())
		}
	})
}

// TestBrowserViewerGoMasterH264 streams the embedded H.264 clip from a pion
// master: the page's offer includes H.264 and Chrome decodes it.
func TestBrowserViewerGoMasterH264(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	const ch = "go-master-h264"
	startGoMaster(t, st, ch, media.DefaultH264(media.Options{Loop: true}), channel.STUNAndTURN)
	browser := newBrowser(t)
	viewer := openTab(t, browser, "viewer", st.PageURL(map[string]string{
		"view": "viewer", "channelName": ch, "clientId": "page-viewer", "sendVideo": "false",
		"sendAudio": "false", "openDataChannel": "false", "candidateFilter": "loopback",
	}))
	viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 0`, goWait)
	f1 := mustEval[float64](viewer, `kvsTest.framesDecoded()`)
	viewer.waitJS(`kvsTest.framesDecoded() > `+itoa(int(f1)+30), goWait)
	viewer.waitJS(`kvsTest.stats && kvsTest.stats.peers.master && kvsTest.stats.peers.master.videoCodecIn`, goWait)
	if c := mustEval[string](viewer, `kvsTest.stats.peers.master.videoCodecIn`); !strings.EqualFold(c, "video/H264") {
		t.Errorf("page decodes %q, want video/H264", c)
	}
	remote := mustEval[string](viewer, `kvsTest.descriptions().master.remote`)
	if !sdpHasCodec(remote, "H264/90000") {
		t.Errorf("the Go master's answer lacks H.264:\n%s", remote)
	}
}

// TestBrowserTURNOnlyGoMaster runs a pion master and the page as viewer,
// both with NAT traversal "TURN only": each side may use relay candidates
// only, so the media flows through the local service's embedded TURN server
// on 127.0.0.1, from pion's allocation to Chrome's.
func TestBrowserTURNOnlyGoMaster(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	const ch = "go-master-turn"
	m := startGoMaster(t, st, ch, media.DefaultVideo(media.Options{Loop: true}), channel.TURNOnly)
	browser := newBrowser(t)
	viewer := openTab(t, browser, "viewer", st.PageURL(map[string]string{
		"view": "viewer", "channelName": ch, "clientId": "relayed", "sendVideo": "false",
		"sendAudio": "false", "openDataChannel": "false", "natTraversal": "turnOnly",
	}))
	viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 30`, goWait)
	viewer.waitJS(`kvsTest.stats && kvsTest.stats.peers.master && kvsTest.stats.peers.master.remoteCandidate`, goWait)
	pair := mustEval[[]string](viewer, `[kvsTest.stats.peers.master.localCandidate, kvsTest.stats.peers.master.remoteCandidate]`)
	t.Logf("page's selected candidate pair: %v", pair)
	if !strings.HasPrefix(pair[0], "relay ") {
		t.Errorf("page's local candidate %q, want a relay candidate", pair[0])
	}
	// The Go master's side of the pair is a relay candidate too.
	deadline := time.Now().Add(goWait)
	for m.Stats()["relayed"].Local.Type == "" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	stats := m.Stats()["relayed"]
	t.Logf("Go master's selected pair: %s <-> %s", stats.Local, stats.Remote)
	if stats.Local.Type != "relay" {
		t.Errorf("the Go master's local candidate is %s, want a relay candidate\n%s", stats.Local, stats)
	}
}

// codecAPI returns a pion API for a Go viewer that offers only the given
// video codec (and Opus), with loopbackSettings' network settings.
func codecAPI(t *testing.T, video webrtc.RTPCodecParameters) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(video, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	opus := webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}
	if err := me.RegisterCodec(opus, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// TestBrowserMasterGoViewer runs the page as master (Chrome's fake camera)
// and pion viewers (peer.Viewer): each gets its first key frame and frames
// keep coming, with the codec Chrome negotiates by default (VP8, the first
// of pion's offer) and with H.264 forced; data channel text goes both ways.
func TestBrowserMasterGoViewer(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	const ch = "page-master"
	browser := newBrowser(t)
	master := openTab(t, browser, "master", st.PageURL(map[string]string{
		"view": "master", "channelName": ch, "sendVideo": "true", "sendAudio": "true",
		"openDataChannel": "true", "resolution": "640x480", "natTraversal": "stunTurn", "trickleIce": "true",
		"logLevel": "debug", "candidateFilter": "loopback",
	}))
	master.waitJS(`kvsTest.state === 'signaling'`, goWait)

	rtcpFB := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	for _, tc := range []struct {
		name, id string
		api      *webrtc.API // nil: pion's default codecs
		mime     string
	}{
		{"DefaultCodecs", "go-viewer", nil, webrtc.MimeTypeVP8},
		{"H264", "go-viewer-h264", codecAPI(t, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: rtcpFB},
			PayloadType: 102,
		}), webrtc.MimeTypeH264},
		{"VP8Only", "go-viewer-vp8", codecAPI(t, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: rtcpFB},
			PayloadType:        96,
		}), webrtc.MimeTypeVP8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := loopbackSettings()
			settings.API = tc.api
			counter := &media.Counter{}
			codec := make(chan string, 4)
			gotData := make(chan string, 4)
			ctx, cancel := context.WithTimeout(context.Background(), goWait)
			defer cancel()
			v, err := peer.NewViewer(ctx, peer.ViewerConfig{
				ChannelConfig: peer.ChannelConfig{AWS: st.Local.AWS, Channel: ch},
				ClientID:      tc.id,
				VideoSinks:    []media.Sink{counter},
				Settings:      settings,
			})
			if err != nil {
				t.Fatalf("NewViewer: %v", err)
			}
			defer v.Close()
			v.OnTrack(func(tr *webrtc.TrackRemote) {
				if tr.Kind() == webrtc.RTPCodecTypeVideo {
					trySend(codec, tr.Codec().MimeType)
				}
			})
			v.OnDataMessage(func(msg webrtc.DataChannelMessage) { trySend(gotData, string(msg.Data)) })
			if err := v.Start(ctx); err != nil {
				t.Fatalf("Viewer.Start: %v", err)
			}
			ttff, err := v.WaitFirstFrame(ctx)
			if err != nil {
				t.Fatalf("no first frame from the page: %v\nGo viewer: %s\npage:\n%s", err, v.Stats(), master.dump())
			}
			select {
			case c := <-codec:
				t.Logf("Go viewer receives %s from Chrome; first frame after %v", c, ttff)
				if !strings.EqualFold(c, tc.mime) {
					t.Errorf("negotiated %s, want %s", c, tc.mime)
				}
			case <-time.After(goWait):
				t.Error("first frame but no video track reported")
			}
			// Frames keep coming (Chrome's fake camera runs at about 30 fps).
			n1 := counter.Frames()
			deadline := time.Now().Add(goWait)
			for counter.Frames() < n1+30 {
				if time.Now().After(deadline) {
					t.Fatalf("frames stopped at %d (had %d at the first frame)\n%s", counter.Frames(), n1, v.Stats())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if counter.Keyframes() == 0 {
				t.Error("no key frame counted")
			}
			master.waitJS(`kvsTest.remoteViewers().includes('`+tc.id+`')`, goWait)
			if c := mustEval[string](master, `(() => { const p = kvsTest.stats && kvsTest.stats.peers['`+tc.id+`']; return p && p.videoCodecOut || ''; })()`); c != "" && !strings.EqualFold(c, tc.mime) {
				t.Errorf("page sends %s, want %s", c, tc.mime)
			}

			// Data channel: Go viewer -> page master -> Go viewer.
			master.waitJS(`kvsTest.dataChannelsOpen > 0`, goWait)
			if err := sendWhenOpen(v, "hello from "+tc.id); err != nil {
				t.Fatal(err)
			}
			master.waitJS(`kvsTest.dataMessages.some(m => m.from === '`+tc.id+`' && m.text === 'hello from `+tc.id+`')`, goWait)
			if n := mustEval[int](master, `kvsTest.sendData('hello from the page')`); n < 1 {
				t.Fatalf("page sent on %d data channels", n)
			}
			select {
			case got := <-gotData:
				if got != "hello from the page" {
					t.Errorf("Go viewer got %q", got)
				}
			case <-time.After(goWait):
				t.Fatalf("Go viewer got no data channel message")
			}

			// The viewer leaves; the page drops its view.
			_ = v.Close()
			master.waitJS(`!kvsTest.remoteViewers().includes('`+tc.id+`')`, goWait)
		})
	}
}

// trySend sends v on ch unless ch is full: for the handlers of pion
// callbacks, which must not block however many events come.
func trySend[T any](ch chan<- T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// sendWhenOpen sends text on the viewer's data channel, waiting for it to
// open.
func sendWhenOpen(v *peer.Viewer, text string) error {
	deadline := time.Now().Add(goWait)
	for {
		err := v.SendText(text)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
