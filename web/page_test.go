package web_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// TestBrowserMasterViewer runs the page as master in one tab and as viewer
// in another, both in headless chromium with a fake camera, over the real
// local service and the real backend on 127.0.0.1.
func TestBrowserMasterViewer(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	channel := "browser-test"

	master := openTab(t, browser, "master", st.PageURL(map[string]string{
		"view": "master", "channelName": channel, "sendVideo": "true", "sendAudio": "true",
		"openDataChannel": "true", "resolution": "640x480", "natTraversal": "stunTurn", "trickleIce": "true",
		"logLevel": "debug", "candidateFilter": "loopback",
	}))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	master.waitJS(`kvsTest.hasStep('signedURL') && kvsTest.hasStep('signalingOpen')`, time.Second)

	viewer := openTab(t, browser, "viewer", st.PageURL(map[string]string{
		"view": "viewer", "channelName": channel, "clientId": "viewer-1", "sendVideo": "true",
		"sendAudio": "false", "openDataChannel": "true", "resolution": "640x480", "logLevel": "debug",
		"candidateFilter": "loopback",
	}))

	t.Run("VideoPlays", func(t *testing.T) {
		viewer.waitJS(`kvsTest.state === 'connected'`, 30*time.Second)
		viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 0`, 30*time.Second)
		f1 := mustEval[float64](viewer, `kvsTest.framesDecoded()`)
		viewer.waitJS(`kvsTest.framesDecoded() > `+itoa(int(f1)+10), 30*time.Second)
		// The viewer's timeline went through every step, in order.
		steps := mustEval[[]string](viewer, `kvsTest.timeline.map(s => s.step)`)
		assertOrder(t, steps, "start", "localMedia", "signedURL", "signalingOpen", "offerSent", "answerReceived", "iceConnected", "firstFrame")
		// The master shows one labelled video for this viewer, and it plays too.
		master.waitJS(`kvsTest.remoteViewers().includes('viewer-1')`, 10*time.Second)
		master.waitJS(`document.getElementById('remote-video-viewer-1') && document.getElementById('remote-video-viewer-1').videoWidth > 0`, 30*time.Second)
		label := mustEval[string](master, `document.querySelector('#remote-view-viewer-1 figcaption').textContent`)
		if label != "viewer viewer-1" {
			t.Errorf("master's label for the viewer's video = %q, want %q", label, "viewer viewer-1")
		}
		// With candidateFilter=loopback only loopback candidates are
		// signaled, so the viewer sends its media to a loopback address.
		// (Chrome's socket may be bound to another of this machine's own
		// addresses; the kernel delivers those packets locally too.)
		viewer.waitJS(`kvsTest.stats && kvsTest.stats.peers.master && kvsTest.stats.peers.master.remoteCandidate`, 10*time.Second)
		pair := mustEval[[]string](viewer, `[kvsTest.stats.peers.master.localCandidate, kvsTest.stats.peers.master.remoteCandidate]`)
		t.Logf("viewer's selected candidate pair: %v", pair)
		// A peer-reflexive candidate (learned from a check that came before
		// the signaled candidate, its address hidden by Chrome) comes from
		// one of the master's sockets on this machine.
		if c := pair[1]; !strings.Contains(c, " 127.") && !strings.Contains(c, " ::1:") && !strings.HasPrefix(c, "prflx ") {
			t.Errorf("the viewer's remote candidate %q is neither on the loopback interface nor peer-reflexive", c)
		}
		// No message was refused by the service (rates, sizes).
		if mustEval[bool](viewer, `kvsTest.hasStep('statusResponse')`) || mustEval[bool](master, `kvsTest.hasStep('statusResponse')`) {
			t.Errorf("the service refused a message:\nviewer: %s\nmaster: %s", viewer.dump(), master.dump())
		}
	})

	t.Run("DataChannelBothWays", func(t *testing.T) {
		viewer.waitJS(`kvsTest.dataChannelsOpen > 0`, 20*time.Second)
		master.waitJS(`kvsTest.dataChannelsOpen > 0`, 20*time.Second)
		n := mustEval[int](master, `kvsTest.sendData('hello from the master')`)
		if n != 1 {
			t.Fatalf("master sent on %d data channels, want 1", n)
		}
		viewer.waitJS(`kvsTest.lastDataMessage === 'hello from the master'`, 10*time.Second)
		// Through the UI this time: type into the box and press Send.
		mustEval[int](viewer, `(() => { const i = document.getElementById('data-message'); i.value = 'hello from the viewer'; document.getElementById('send-data').click(); return 1; })()`)
		master.waitJS(`kvsTest.lastDataMessage === 'hello from the viewer'`, 10*time.Second)
		from := mustEval[string](master, `kvsTest.dataMessages[kvsTest.dataMessages.length - 1].from`)
		if from != "viewer-1" {
			t.Errorf("master got the message from %q, want viewer-1", from)
		}
	})

	t.Run("Diagnostics", func(t *testing.T) {
		raw := mustEval[string](viewer, `kvsTest.diagnostics()`)
		var d struct {
			Role     string
			State    string
			Timeline []struct{ Step string }
			Backend  struct{ SignedURL string }
		}
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatalf("diagnostics are not JSON: %v", err)
		}
		if d.Role != "viewer" || d.State != "connected" || len(d.Timeline) < 5 {
			t.Errorf("diagnostics: role %q, state %q, %d steps", d.Role, d.State, len(d.Timeline))
		}
		if !strings.Contains(d.Backend.SignedURL, "X-Amz-Signature=REDACTED") || strings.Contains(raw, localkvs.DevAccessKeyID) {
			t.Errorf("diagnostics do not redact the signed URL: %s", d.Backend.SignedURL)
		}
		// The button copies them (or says it could not).
		mustEval[bool](viewer, `(document.getElementById('copy-diagnostics').click(), true)`)
		viewer.waitJS(`document.getElementById('copy-status').textContent.includes('diagnostics')`, 10*time.Second)
	})

	t.Run("Screenshot", func(t *testing.T) {
		// Let the chart collect a few samples so the screenshot shows it.
		viewer.waitJS(`kvsTest.stats && kvsTest.stats.inKbps > 0 && kvsTest.stats.fps > 0`, 15*time.Second)
		dir := artifactsDir(t)
		viewer.screenshot(filepath.Join(dir, "web-viewer.png"))
		master.screenshot(filepath.Join(dir, "web-master.png"))
		for _, name := range []string{"web-viewer.png", "web-master.png"} {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil || fi.Size() < 10000 {
				t.Errorf("screenshot %s: %v, size %d", name, err, sizeOf(fi))
			}
		}
		// The README's picture comes from TestBrowserRecordingViewer
		// (KVS_DOCS_SCREENSHOT=path).
	})

	t.Run("ViewerLeaves", func(t *testing.T) {
		mustEval[bool](viewer, `(kvsTest.stop(), true)`)
		master.waitJS(`!document.getElementById('remote-view-viewer-1') && kvsTest.remoteViewers().length === 0`, 30*time.Second)
	})
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return 0
	}
	return fi.Size()
}

func itoa(n int) string {
	b := []byte{}
	if n == 0 {
		return "0"
	}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

// assertOrder checks that want appears in got in this order (other steps
// may come between).
func assertOrder(t *testing.T, got []string, want ...string) {
	t.Helper()
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("timeline %v: missing %q in order %v", got, want[i], want)
	}
}

// TestBrowserTwoViewersNoTrickle runs one master and two viewers with
// trickle ICE off (candidates inside the SDP) and STUN only: the master
// shows one labelled video per viewer and its data channel text reaches
// both.
func TestBrowserTwoViewersNoTrickle(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	channel := "two-viewers"
	common := map[string]string{
		"channelName": channel, "trickleIce": "false", "natTraversal": "stunOnly",
		"resolution": "640x480", "sendAudio": "false", "openDataChannel": "true", "candidateFilter": "loopback",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	master := openTab(t, browser, "master", st.PageURL(with(map[string]string{"view": "master", "sendVideo": "true"})))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	// Viewer A sends video, viewer B only receives.
	a := openTab(t, browser, "viewer-a", st.PageURL(with(map[string]string{"view": "viewer", "clientId": "viewer-a", "sendVideo": "true"})))
	b := openTab(t, browser, "viewer-b", st.PageURL(with(map[string]string{"view": "viewer", "clientId": "viewer-b", "sendVideo": "false"})))
	for _, v := range []*tab{a, b} {
		v.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 5`, 30*time.Second)
		v.waitJS(`kvsTest.dataChannelsOpen > 0`, 20*time.Second)
		// Without trickle ICE no candidate travels on its own: the offer
		// carries them.
		if n := mustEval[int](v, `kvsTest.timeline.filter(s => s.step === 'offerSent').length`); n != 1 {
			t.Errorf("%s sent %d offers, want 1", v.name, n)
		}
	}
	master.waitJS(`kvsTest.remoteViewers().length === 2`, 10*time.Second)
	master.waitJS(`document.querySelectorAll('#remote-views figure').length === 2`, 10*time.Second)
	master.waitJS(`document.getElementById('remote-video-viewer-a').videoWidth > 0`, 30*time.Second)
	master.waitJS(`kvsTest.dataChannelsOpen === 2`, 20*time.Second)
	if n := mustEval[int](master, `kvsTest.sendData('to everyone')`); n != 2 {
		t.Fatalf("master sent on %d data channels, want 2", n)
	}
	a.waitJS(`kvsTest.lastDataMessage === 'to everyone'`, 10*time.Second)
	b.waitJS(`kvsTest.lastDataMessage === 'to everyone'`, 10*time.Second)

	// Viewer B leaves: its view goes, viewer A's stays.
	mustEval[bool](b, `(kvsTest.stop(), true)`)
	master.waitJS(`!document.getElementById('remote-view-viewer-b') && kvsTest.remoteViewers().length === 1`, 30*time.Second)
	if !mustEval[bool](master, `!!document.getElementById('remote-view-viewer-a')`) {
		t.Error("viewer A's view disappeared when viewer B left")
	}
}

// TestBrowserGoAwayReconnect makes the local service send GO_AWAY three
// seconds into every signaling connection: the page reconnects with a
// freshly signed URL each time, and a viewer that joins later still
// reaches the master.
func TestBrowserGoAwayReconnect(t *testing.T) {
	st := startStack(t, localkvs.Limits{MaxConnectionDuration: 8 * time.Second, GoAwayLead: 5 * time.Second})
	browser := newBrowser(t)
	q := map[string]string{"view": "master", "channelName": "go-away", "sendVideo": "true", "sendAudio": "false",
		"resolution": "640x480", "candidateFilter": "loopback"}
	master := openTab(t, browser, "master", st.PageURL(q))
	master.waitJS(`kvsTest.hasStep('goAway')`, 20*time.Second)
	master.waitJS(`kvsTest.timeline.filter(s => s.step === 'signalingOpen').length >= 2 && kvsTest.state === 'signaling'`, 20*time.Second)
	// Each reconnect fetched a new signed URL.
	if n := mustEval[int](master, `kvsTest.timeline.filter(s => s.step === 'signedURL').length`); n < 2 {
		t.Errorf("master fetched %d signed URLs, want at least 2", n)
	}
	q["view"], q["clientId"] = "viewer", "late-viewer"
	viewer := openTab(t, browser, "viewer", st.PageURL(q))
	viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 5`, 30*time.Second)
}

// TestBrowserTURNOnly runs master and viewer with NAT traversal "TURN
// only": the browsers may use relay candidates only, so media must flow
// through the local service's TURN server.
func TestBrowserTURNOnly(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	code, out := postJSON(t, st.URL+"/api/connect", map[string]any{"channelName": "turn-only", "role": "master", "natTraversal": "turnOnly"})
	if code != 200 {
		t.Fatalf("connect: %d %v", code, out)
	}
	servers, _ := out["iceServers"].([]any)
	if len(servers) == 0 {
		t.Fatalf("the backend gives no TURN server for natTraversal=turnOnly: %v", out)
	}
	if policy, _ := out["iceTransportPolicy"].(string); policy != "relay" {
		t.Errorf("iceTransportPolicy = %q, want relay", policy)
	}
	for _, s := range servers {
		urls, _ := s.(map[string]any)["urls"].([]any)
		for _, u := range urls {
			if u, _ := u.(string); !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
				t.Errorf("TURN-only ICE server URL %q is not a TURN URL", u)
			}
		}
	}
	browser := newBrowser(t)
	q := map[string]string{"channelName": "turn-only", "natTraversal": "turnOnly", "sendVideo": "true", "sendAudio": "false",
		"resolution": "640x480", "openDataChannel": "true"}
	q["view"] = "master"
	master := openTab(t, browser, "master", st.PageURL(q))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	q["view"], q["clientId"] = "viewer", "relayed"
	viewer := openTab(t, browser, "viewer", st.PageURL(q))
	viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 5`, 30*time.Second)
	viewer.waitJS(`kvsTest.stats && kvsTest.stats.peers.master && kvsTest.stats.peers.master.localCandidate`, 10*time.Second)
	pair := mustEval[[]string](viewer, `[kvsTest.stats.peers.master.localCandidate, kvsTest.stats.peers.master.remoteCandidate]`)
	t.Logf("viewer's selected candidate pair: %v", pair)
	if !strings.HasPrefix(pair[0], "relay ") {
		t.Errorf("viewer's local candidate %q, want a relay candidate", pair[0])
	}
	// The master is relayed too: its side of the pair is a relay candidate.
	master.waitJS(`kvsTest.stats && kvsTest.stats.peers.relayed && kvsTest.stats.peers.relayed.localCandidate`, 10*time.Second)
	if c := mustEval[string](master, `kvsTest.stats.peers.relayed.localCandidate`); !strings.HasPrefix(c, "relay ") {
		t.Errorf("master's local candidate %q, want a relay candidate", c)
	}
	// Each side gathered relay candidates, and no host or server-reflexive
	// one.
	for _, tb := range []*tab{master, viewer} {
		if n := mustEval[int](tb, `Object.values(kvsTest.descriptions()).map(d => d.local).join('').split('\n').filter(l => l.startsWith('a=candidate:') && / typ relay/.test(l)).length`); n == 0 {
			t.Errorf("%s: no relay candidate in its local SDPs", tb.name)
		}
		if n := mustEval[int](tb, `Object.values(kvsTest.descriptions()).map(d => d.local + d.remote).join('').split('\n').filter(l => l.startsWith('a=candidate:') && !/ typ relay/.test(l)).length`); n != 0 {
			t.Errorf("%s: %d non-relay candidates in the SDPs", tb.name, n)
		}
		if mustEval[bool](tb, `kvsTest.hasStep('statusResponse')`) {
			t.Errorf("%s: the service refused a message:\n%s", tb.name, tb.dump())
		}
	}
}
