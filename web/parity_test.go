package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// The controls the official 2.9.0 test page has and ours gained, each
// checked in Chromium against the local service: the ICE candidate and
// TURN filters, the codec filter, the viewer's renegotiation buttons,
// receive multi-track, a data channel message to one viewer, the quality
// metrics and the profiling timeline.

// pageQuery merges query maps, later ones winning.
func pageQuery(maps ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// candidateLines returns the a=candidate lines of an SDP.
func candidateLines(sdp string) []string {
	var out []string
	for _, l := range strings.Split(sdp, "\r\n") {
		if strings.HasPrefix(l, "a=candidate:") {
			out = append(out, l)
		}
	}
	return out
}

// TestBrowserCandidateAndTURNFilters: a viewer that must not send host
// candidates signals none (trickled or in its offer) and still plays
// through the relay; a master that refuses TCP candidates applies none of
// the TCP candidates a viewer sends; the TURN switches remove the URLs they
// name from the ICE servers the peer connection gets.
func TestBrowserCandidateAndTURNFilters(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	base := map[string]string{"channelName": "filters", "resolution": "640x480", "sendAudio": "false", "candidateFilter": "loopback", "natTraversal": "stunTurn"}
	master := openTab(t, browser, "master", st.PageURL(pageQuery(base, map[string]string{"view": "master", "acceptTcp": "false"})))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	noHost := openTab(t, browser, "no-host", st.PageURL(pageQuery(base, map[string]string{
		"view": "viewer", "clientId": "no-host", "sendHost": "false", "turnTcp": "false",
	})))
	// Tabs share localStorage: this one says every switch it needs.
	all := openTab(t, browser, "all", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "all", "candidateFilter": "all", "sendHost": "true", "turnTcp": "true"})))
	for _, v := range []*tab{noHost, all} {
		v.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 5`, 30*time.Second)
	}

	t.Run("SendHostOff", func(t *testing.T) {
		// The peers may connect before the viewer's TURN allocation is done
		// (the master's host candidates and the viewer's checks suffice on
		// loopback), so wait for the relay candidate it trickles.
		noHost.waitJS(`kvsTest.sent().some(m => (m.candidate || '').includes(' typ relay') || (m.sdp || '').includes(' typ relay'))`, 30*time.Second)
		sent := mustEval[[]map[string]any](noHost, `kvsTest.sent()`)
		var cands []string
		for _, m := range sent {
			switch m["kind"] {
			case "candidate":
				cands = append(cands, m["candidate"].(string))
			case "offer":
				cands = append(cands, candidateLines(m["sdp"].(string))...)
			}
		}
		if len(cands) == 0 {
			t.Fatal("the viewer sent no candidate at all; want its relay candidates")
		}
		for _, c := range cands {
			if strings.Contains(c, " typ host") {
				t.Errorf("a host candidate was sent with Send host off: %s", c)
			}
		}
		t.Logf("%d candidates sent, none host (first %s)", len(cands), cands[0])
		// The master received none either.
		for _, c := range candidateLines(mustEval[string](master, `kvsTest.descriptions()['no-host'].remote`)) {
			if strings.Contains(c, " typ host") {
				t.Errorf("the master got a host candidate from no-host: %s", c)
			}
		}
	})

	t.Run("AcceptTCPOff", func(t *testing.T) {
		// The unfiltered viewer sends TCP host candidates (Chrome gathers
		// passive TCP ones); the master applies none of them.
		var sentTCP int
		for _, m := range mustEval[[]map[string]any](all, `kvsTest.sent()`) {
			if c, _ := m["candidate"].(string); strings.Contains(strings.ToLower(c), " tcp ") {
				sentTCP++
			}
		}
		if sentTCP == 0 {
			t.Skip("Chromium gathered no TCP candidate here; nothing to refuse")
		}
		for _, c := range candidateLines(mustEval[string](master, `kvsTest.descriptions()['all'].remote`)) {
			if strings.Contains(strings.ToLower(c), " tcp ") {
				t.Errorf("the master applied a TCP candidate with Accept tcp off: %s", c)
			}
		}
		t.Logf("viewer sent %d TCP candidates, master applied none", sentTCP)
	})

	t.Run("TURNSwitches", func(t *testing.T) {
		// The local service hands out turn:...?transport=udp and
		// turn:...?transport=tcp; with TURN with TCP off only UDP is left.
		urls := mustEval[[]string](noHost, `kvsTest.iceServers().flatMap(s => [].concat(s.urls))`)
		var turn int
		for _, u := range urls {
			if strings.HasPrefix(u, "turn") {
				turn++
				if strings.Contains(u, "transport=tcp") {
					t.Errorf("TURN with TCP off, yet the peer connection got %s", u)
				}
			}
		}
		if turn == 0 {
			t.Errorf("no TURN URL left (want the UDP one): %v", urls)
		}
		full := mustEval[[]string](all, `kvsTest.iceServers().flatMap(s => [].concat(s.urls))`)
		if !strings.Contains(strings.Join(full, " "), "transport=tcp") {
			t.Errorf("with every switch on the TCP TURN URL is missing: %v", full)
		}
		// The filters themselves, on KVS's two sets of turn: and turns: URLs.
		got := mustEval[string](noHost, `import('./js/filters.js').then(f => JSON.stringify(f.filterIceServers([
			{urls: 'stun:stun.kinesisvideo.us-west-2.amazonaws.com:443'},
			{urls: ['turn:1.2.3.4:443?transport=udp', 'turns:a.kinesisvideo.aws:443?transport=udp', 'turns:a.kinesisvideo.aws:443?transport=tcp'], username: 'u', credential: 'p'},
			{urls: ['turn:5.6.7.8:443?transport=udp', 'turns:b.kinesisvideo.aws:443?transport=udp', 'turns:b.kinesisvideo.aws:443?transport=tcp'], username: 'u2', credential: 'p2'},
		], {turnUdp: false, turnsUdp: true, turnsTcp: false, turnOneSet: true})))`)
		want := `[{"urls":"stun:stun.kinesisvideo.us-west-2.amazonaws.com:443"},{"urls":["turns:a.kinesisvideo.aws:443?transport=udp"],"username":"u","credential":"p"}]`
		if got != want {
			t.Errorf("filterIceServers:\n got %s\nwant %s", got, want)
		}
	})
}

// TestBrowserCodecFilter: the offer carries the codecs the filter allows
// (by default VP8, H.264, RTX and Opus; VP9 and AV1 not), a narrower list
// leaves out the others, Reset brings the defaults back, and with the
// filter off the browser's whole list is offered.
func TestBrowserCodecFilter(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	base := map[string]string{"channelName": "codecs", "resolution": "640x480", "candidateFilter": "loopback", "sendVideo": "false", "sendAudio": "false"}
	master := openTab(t, browser, "master", st.PageURL(pageQuery(base, map[string]string{"view": "master", "sendVideo": "true"})))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	offer := func(tb *tab) string {
		tb.waitJS(`kvsTest.sent().some(m => m.kind === 'offer')`, 20*time.Second)
		return mustEval[string](tb, `kvsTest.sent().find(m => m.kind === 'offer').sdp`)
	}

	def := openTab(t, browser, "default", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "default"})))
	sdp := offer(def)
	for _, c := range []string{"VP8/90000", "H264/90000", "rtx/90000", "opus/48000"} {
		if !sdpHasCodec(sdp, c) {
			t.Errorf("default codec filter: the offer has no %s", c)
		}
	}
	for _, c := range []string{"VP9/90000", "AV1/90000"} {
		if sdpHasCodec(sdp, c) {
			t.Errorf("default codec filter: the offer has %s", c)
		}
	}
	def.waitJS(`kvsTest.videoWidth() > 0`, 30*time.Second)
	// The checkboxes show the defaults, one per mimeType the browser has.
	checked := mustEval[[]string](def, `[...document.querySelectorAll('.codec-list input:checked')].map(c => c.value)`)
	if strings.Join(checked, ",") != "video/VP8,video/rtx,video/H264,audio/opus" {
		t.Errorf("default codec checkboxes %v", checked)
	}
	if n := mustEval[int](def, `document.querySelectorAll('#video-codecs input[value="video/H265"]').length`); n != mustEval[int](def, `RTCRtpReceiver.getCapabilities('video').codecs.some(c => c.mimeType === 'video/H265') ? 1 : 0`) {
		t.Errorf("an H.265 checkbox (%d) where the browser has no H.265, or none where it has", n)
	}

	vp8 := openTab(t, browser, "vp8", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "vp8", "codecs": "video/VP8,audio/opus"})))
	sdp = offer(vp8)
	if !sdpHasCodec(sdp, "VP8/90000") || sdpHasCodec(sdp, "H264/90000") || sdpHasCodec(sdp, "rtx/90000") {
		t.Errorf("codecs=VP8,opus: the offer lists other video codecs:\n%s", sdp)
	}
	vp8.waitJS(`kvsTest.videoWidth() > 0`, 30*time.Second)
	// Reset: the defaults again, and the checkboxes say so.
	mustEval[bool](vp8, `(document.getElementById('reset-codecs').click(), true)`)
	if got := mustEval[[]any](vp8, `[document.getElementById('codecs').value, [...document.querySelectorAll('.codec-list input:checked')].map(c => c.value).join(',')]`); got[0] != "" || got[1] != "video/VP8,video/rtx,video/H264,audio/opus" {
		t.Errorf("after Reset: codecs field %q, checked %q", got[0], got[1])
	}

	off := openTab(t, browser, "off", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "off", "codecFilter": "false"})))
	sdp = offer(off)
	if !sdpHasCodec(sdp, "VP9/90000") || !sdpHasCodec(sdp, "AV1/90000") {
		t.Errorf("codec filter off: the offer should list the browser's whole list, VP9 and AV1 too")
	}
}

// TestBrowserRenegotiation exercises the 2.9.0 viewer's buttons on a live
// session with the page as master: pausing incoming video renegotiates
// (the master's answer turns its video to inactive/recvonly) and the
// picture stops; resuming brings it back; sending audio is added and
// removed again, each time over the same peer connection.
func TestBrowserRenegotiation(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	base := map[string]string{"channelName": "reneg", "resolution": "640x480", "candidateFilter": "loopback", "openDataChannel": "true"}
	master := openTab(t, browser, "master", st.PageURL(pageQuery(base, map[string]string{"view": "master", "sendAudio": "true"})))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	viewer := openTab(t, browser, "viewer", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "reneg-v", "sendVideo": "true", "sendAudio": "false"})))
	viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 5`, 30*time.Second)
	// The buttons appear once the first answer is applied.
	viewer.waitJS(`!document.getElementById('toggle-pause-video').hidden && !document.getElementById('session-controls').hidden`, 10*time.Second)
	pcID := func() string {
		return mustEval[string](viewer, `kvsTest.descriptions().master.local.match(/a=ice-ufrag:(\S+)/)[1]`)
	}
	ufrag := pcID()
	masterVideoDir := func() string {
		return mustEval[string](master, `(() => { const sdp = kvsTest.descriptions()['reneg-v'].local; const m = sdp.split('m=').find(s => s.startsWith('video')); return (m.match(/a=(sendrecv|sendonly|recvonly|inactive)/) || [])[1]; })()`)
	}
	if d := masterVideoDir(); d != "sendrecv" {
		t.Fatalf("master's video direction before the pause = %q, want sendrecv", d)
	}

	t.Run("PauseIncomingVideo", func(t *testing.T) {
		mustEval[bool](viewer, `(document.getElementById('toggle-pause-video').click(), true)`)
		viewer.waitJS(`kvsTest.paused('video') && kvsTest.hasStep('reofferSent') && kvsTest.hasStep('reanswerReceived')`, 15*time.Second)
		master.waitJS(`kvsTest.hasStep('reofferReceived')`, 10*time.Second)
		if d := masterVideoDir(); d != "recvonly" {
			t.Errorf("master's video direction after the pause = %q, want recvonly (it stops sending)", d)
		}
		// The picture stops: no new frames over two seconds.
		time.Sleep(time.Second)
		f1 := mustEval[int](viewer, `kvsTest.stats.peers.master.framesDecoded`)
		time.Sleep(2 * time.Second)
		if f2 := mustEval[int](viewer, `kvsTest.stats.peers.master.framesDecoded`); f2 > f1+2 {
			t.Errorf("video still decoded while paused: %d -> %d frames", f1, f2)
		}
		if got := mustEval[string](viewer, `document.getElementById('toggle-pause-video').textContent`); got != "Resume incoming video" {
			t.Errorf("the pause button says %q after pausing", got)
		}
	})

	t.Run("ResumeIncomingVideo", func(t *testing.T) {
		f1 := mustEval[int](viewer, `kvsTest.stats.peers.master.framesDecoded`)
		mustEval[bool](viewer, `(document.getElementById('toggle-pause-video').click(), true)`)
		viewer.waitJS(`!kvsTest.paused('video')`, 5*time.Second)
		viewer.waitJS(`kvsTest.stats.peers.master.framesDecoded > `+itoa(f1+10), 20*time.Second)
		if d := masterVideoDir(); d != "sendrecv" {
			t.Errorf("master's video direction after resuming = %q, want sendrecv", d)
		}
	})

	t.Run("ToggleSendingAudio", func(t *testing.T) {
		mustEval[bool](viewer, `(document.getElementById('toggle-send-audio').click(), true)`)
		viewer.waitJS(`kvsTest.sending('audio')`, 10*time.Second)
		// The master receives the viewer's new audio track.
		master.waitJS(`(() => { const v = document.getElementById('remote-video-reneg-v'); return v && v.srcObject && v.srcObject.getAudioTracks().length > 0; })()`, 15*time.Second)
		mustEval[bool](viewer, `(document.getElementById('toggle-send-audio').click(), true)`)
		viewer.waitJS(`!kvsTest.sending('audio')`, 10*time.Second)
		viewer.waitJS(`kvsTest.timeline.filter(s => s.step === 'reanswerReceived').length >= 4`, 15*time.Second)
	})

	t.Run("SamePeerConnection", func(t *testing.T) {
		if got := pcID(); got != ufrag {
			t.Errorf("the viewer's ICE ufrag changed %q -> %q: the session was replaced, not renegotiated", ufrag, got)
		}
		if n := mustEval[int](viewer, `kvsTest.timeline.filter(s => s.step === 'offerSent').length`); n != 1 {
			t.Errorf("%d initial offers, want 1 (the others are re-offers)", n)
		}
		viewer.waitJS(`kvsTest.state === 'connected' && kvsTest.framesDecoded() > 0`, 5*time.Second)
		for _, tb := range []*tab{master, viewer} {
			if mustEval[bool](tb, `kvsTest.hasStep('statusResponse')`) {
				t.Errorf("%s: the service refused a message", tb.name)
			}
		}
	})
}

// TestBrowserMultiTrack: with "Receive multi-track" the viewer offers four
// video transceivers and one audio, as 2.9.0, and still plays the master's
// video.
func TestBrowserMultiTrack(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	base := map[string]string{"channelName": "multi", "resolution": "640x480", "candidateFilter": "loopback", "sendAudio": "false"}
	master := openTab(t, browser, "master", st.PageURL(pageQuery(base, map[string]string{"view": "master", "sendAudio": "true"})))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	viewer := openTab(t, browser, "viewer", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "multi-v", "sendVideo": "false", "receiveMultiTrack": "true"})))
	viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 5`, 30*time.Second)
	sdp := mustEval[string](viewer, `kvsTest.sent().find(m => m.kind === 'offer').sdp`)
	if v, a := strings.Count(sdp, "\r\nm=video "), strings.Count(sdp, "\r\nm=audio "); v != 4 || a != 1 {
		t.Errorf("multi-track offer has %d video and %d audio m-lines, want 4 and 1", v, a)
	}
	// A master with two cameras (here the fake camera twice): the
	// multi-track viewer shows the second video in a labelled view of its
	// own, and it plays.
	two := openTab(t, browser, "two-cameras", st.URL+"/")
	mustEval[bool](two, `(() => { const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
		navigator.mediaDevices.getUserMedia = async (c) => { const s = await gum(c); if (c.video) s.addTrack(s.getVideoTracks()[0].clone()); return s; };
		return true; })()`)
	setFields(two, map[string]any{"channelName": "multi-two", "resolution": "640x480", "candidateFilter": "loopback", "sendAudio": true, "sendVideo": true})
	mustEval[bool](two, `(kvsTest.start('master'), true)`)
	two.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	tv := openTab(t, browser, "two-viewer", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "channelName": "multi-two", "clientId": "multi-2", "sendVideo": "false", "receiveMultiTrack": "true"})))
	tv.waitJS(`kvsTest.videoWidth() > 0 && document.getElementById('remote-video-track-1') && document.getElementById('remote-video-track-1').videoWidth > 0`, 30*time.Second)
	if label := mustEval[string](tv, `document.querySelector('#remote-track-1 figcaption').textContent`); !strings.HasPrefix(label, "master track 2") {
		t.Errorf("second track's label %q", label)
	}

	plain := openTab(t, browser, "plain", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "plain-v", "sendVideo": "false", "receiveMultiTrack": "false"})))
	plain.waitJS(`kvsTest.sent().some(m => m.kind === 'offer')`, 20*time.Second)
	if v := strings.Count(mustEval[string](plain, `kvsTest.sent().find(m => m.kind === 'offer').sdp`), "\r\nm=video "); v != 1 {
		t.Errorf("without multi-track the offer has %d video m-lines, want 1", v)
	}
}

// TestBrowserDataChannelToOneViewer: the master's recipient list holds
// every viewer; a message to one reaches it and not the other, and "All
// viewers" reaches both.
func TestBrowserDataChannelToOneViewer(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	base := map[string]string{"channelName": "dc-one", "resolution": "640x480", "candidateFilter": "loopback", "sendAudio": "false", "openDataChannel": "true"}
	master := openTab(t, browser, "master", st.PageURL(pageQuery(base, map[string]string{"view": "master"})))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	a := openTab(t, browser, "a", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "dc-a", "sendVideo": "false"})))
	b := openTab(t, browser, "b", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "dc-b", "sendVideo": "false"})))
	a.waitJS(`kvsTest.dataChannelsOpen > 0`, 30*time.Second)
	b.waitJS(`kvsTest.dataChannelsOpen > 0`, 30*time.Second)
	master.waitJS(`kvsTest.dataChannelsOpen === 2 && document.querySelectorAll('#data-recipient option').length === 3`, 20*time.Second)
	if got := mustEval[[]string](master, `[...document.querySelectorAll('#data-recipient option')].map(o => o.value)`); strings.Join(got, ",") != ",dc-a,dc-b" && strings.Join(got, ",") != ",dc-b,dc-a" {
		t.Errorf("recipient choices %q, want all, dc-a, dc-b", got)
	}
	// Through the UI: choose dc-b, type, Send.
	mustEval[bool](master, `(() => { document.getElementById('data-recipient').value = 'dc-b'; document.getElementById('data-message').value = 'just for b'; document.getElementById('send-data').click(); return true; })()`)
	b.waitJS(`kvsTest.lastDataMessage === 'just for b'`, 10*time.Second)
	mustEval[bool](master, `(() => { document.getElementById('data-recipient').value = ''; document.getElementById('data-message').value = 'for everyone'; document.getElementById('send-data').click(); return true; })()`)
	a.waitJS(`kvsTest.lastDataMessage === 'for everyone'`, 10*time.Second)
	b.waitJS(`kvsTest.lastDataMessage === 'for everyone'`, 10*time.Second)
	if got := mustEval[[]string](a, `kvsTest.dataMessages.map(m => m.text)`); len(got) != 1 {
		t.Errorf("viewer a got %q; the message for b alone reached it", got)
	}
	if n := mustEval[int](master, `kvsTest.sendData('x', 'nobody')`); n != 0 {
		t.Errorf("a message to an unknown viewer went to %d viewers", n)
	}
}

// TestBrowserQualityAndProfile: the viewer shows the official page's
// quality rows (fps, drop %, bitrates, RTT, jitter) with averages, and
// with the profiling timeline on, the master's steps arrive over the data
// channel and are drawn beside the viewer's.
func TestBrowserQualityAndProfile(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	base := map[string]string{"channelName": "quality", "resolution": "640x480", "candidateFilter": "loopback", "openDataChannel": "true", "profilingTimeline": "true"}
	master := openTab(t, browser, "master", st.PageURL(pageQuery(base, map[string]string{"view": "master", "sendAudio": "true"})))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	viewer := openTab(t, browser, "viewer", st.PageURL(pageQuery(base, map[string]string{"view": "viewer", "clientId": "q-v", "sendVideo": "false", "sendAudio": "false"})))
	viewer.waitJS(`kvsTest.videoWidth() > 0`, 30*time.Second)
	viewer.waitJS(`kvsTest.qualityAverages && kvsTest.qualityAverages.fps > 5 && kvsTest.quality.videoKbps > 10 && kvsTest.quality.audioKbps > 1`, 20*time.Second)
	rows := mustEval[[]string](viewer, `[...document.querySelectorAll('#quality tbody tr')].map(r => r.dataset.metric + '=' + r.cells[1].textContent + '/' + r.cells[2].textContent)`)
	t.Logf("quality: %v", rows)
	if len(rows) != 7 || mustEval[bool](viewer, `document.getElementById('quality-section').hidden`) {
		t.Errorf("quality table: %v (hidden %v); want 7 rows shown", rows, mustEval[bool](viewer, `document.getElementById('quality-section').hidden`))
	}
	if !mustEval[bool](master, `document.getElementById('quality-section').hidden`) {
		t.Error("the master shows the viewer's quality table")
	}
	viewer.waitJS(`kvsTest.profile && kvsTest.profile.some(r => r.side === 'master')`, 20*time.Second)
	sides := mustEval[map[string][]string](viewer, `Object.fromEntries(kvsTest.profile.map(r => [r.side, r.spans.map(s => s.name)]))`)
	t.Logf("profile: %v", sides)
	for side, want := range map[string][]string{"viewer": {"signalingOpen", "offerSent", "answerReceived"}, "master": {"signalingOpen", "offerReceived", "answerSent", "iceConnected"}} {
		got := strings.Join(sides[side], " ")
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("profile %s side has no %s: %v", side, w, sides[side])
			}
		}
	}
	if n := mustEval[int](viewer, `document.querySelectorAll('#profile .profile-master').length`); n == 0 {
		t.Error("no master row drawn in the profiling timeline")
	}
	// The profile is not shown as a chat message.
	if got := mustEval[[]string](viewer, `kvsTest.dataMessages.map(m => m.text)`); len(got) != 0 {
		t.Errorf("the profile message was shown as data: %q", got)
	}
}
