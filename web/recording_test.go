package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/chromedp/chromedp"

	"github.com/kvswebrtc/kvswebrtc/archive"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// click clicks a button by id.
func click(tb *tab, id string) {
	tb.t.Helper()
	mustEval[bool](tb, `(document.getElementById('`+id+`').click(), true)`)
}

// setFields sets page fields by id (value or checked) and fires change.
func setFields(tb *tab, fields map[string]any) {
	tb.t.Helper()
	b, _ := json.Marshal(fields)
	mustEval[bool](tb, `(() => { for (const [id, v] of Object.entries(`+string(b)+`)) { const el = document.getElementById(id);
		if (el.type === 'checkbox') el.checked = !!v; else el.value = v; el.dispatchEvent(new Event('change')); } return true; })()`)
}

// storageResult waits for the result of a storage button and returns it.
func storageResult(tb *tab, what string) any {
	tb.t.Helper()
	tb.waitJS(`kvsTest.storage && kvsTest.storage.what === '`+what+`'`, 20*time.Second)
	v := mustEval[map[string]any](tb, `kvsTest.storage`)["value"]
	if s, ok := v.(string); ok && strings.HasPrefix(s, "failed") {
		tb.t.Fatalf("%s: %s", what, s)
	}
	mustEval[bool](tb, `(kvsTest.storage = null, true)`)
	return v
}

// waitFragments waits for n fragments of a stream of the stack's service.
func waitFragments(t *testing.T, st *stack, stream string, n int) []archive.Fragment {
	t.Helper()
	ac, err := archive.New(st.Local.AWS, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(goWait)
	for {
		list, err := ac.ListFragments(context.Background(), stream, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) >= n {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fragments of %s after %v, want %d", len(list), stream, goWait, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// playAndWait plays the recording with the page's current choices and
// waits until the recording's video element has decoded frames and its
// time moves on.
func playAndWait(t *testing.T, tb *tab, minFrames int) {
	t.Helper()
	mustEval[bool](tb, `(kvsTest.player.stop(), true)`)
	click(tb, "play-recording")
	tb.waitJS(`kvsTest.player.state === 'playing' || kvsTest.player.state === 'ended' || kvsTest.player.state === 'error'`, 20*time.Second)
	if st := mustEval[string](tb, `kvsTest.player.state`); st == "error" {
		t.Fatalf("the player failed: %s (%s)", mustEval[string](tb, `kvsTest.player.error`), mustEval[string](tb, `document.getElementById('playback-status').textContent`))
	}
	tb.waitJS(`kvsTest.playbackFrames() > `+itoa(minFrames), 30*time.Second)
	t0 := mustEval[float64](tb, `document.getElementById('playback-video').currentTime`)
	tb.waitJS(fmt.Sprintf(`document.getElementById('playback-video').currentTime > %f`, t0+0.5), 15*time.Second)
}

// TestBrowserRecordingViewer: the page's storage controls set up WebRTC
// ingestion on the local service (Create Channel, Create Stream, Update
// and Describe media storage configuration, List storage channels); a Go
// master records H.264 + Opus into the stream; the page plays the
// recording live over HLS, then a time range on demand over HLS and over
// DASH, with its Media Source Extensions loader and natively, and
// downloads a clip (GetClip). A screenshot of the recording viewer is
// saved (artifacts/web-recording.png; KVS_DOCS_SCREENSHOT=path saves the
// README's picture).
func TestBrowserRecordingViewer(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	const ch, stream = "doorbell", "doorbell-video"
	p := openTab(t, browser, "page", st.PageURL(map[string]string{"channelName": ch, "streamName": stream, "retentionHours": "24", "logLevel": "info"}))
	p.waitJS(`kvsTest.backend`, 10*time.Second)

	t.Run("StorageControls", func(t *testing.T) {
		click(p, "create-channel")
		p.waitJS(`[...document.querySelectorAll('#log .log-line')].some(l => l.textContent.includes('channel doorbell: created'))`, 10*time.Second)
		created := storageResultAfter(p, "create-stream", "CreateStream").(map[string]any)
		if arn, _ := created["streamARN"].(string); !strings.Contains(arn, ":stream/"+stream+"/") || created["created"] != true {
			t.Errorf("CreateStream: %v", created)
		}
		if got := storageResultAfter(p, "describe-storage", "DescribeMediaStorageConfiguration").(map[string]any); got["status"] != "DISABLED" {
			t.Errorf("describe before update: %v", got)
		}
		if got := storageResultAfter(p, "update-storage", "UpdateMediaStorageConfiguration").(map[string]any); got["status"] != "ENABLED" {
			t.Errorf("update: %v", got)
		}
		got := storageResultAfter(p, "describe-storage", "DescribeMediaStorageConfiguration").(map[string]any)
		if got["status"] != "ENABLED" || !strings.Contains(got["streamARN"].(string), stream) {
			t.Errorf("describe after update: %v", got)
		}
		list := storageResultAfter(p, "list-storage-channels", "ListStorageChannels").(map[string]any)["channels"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["channelName"] != ch {
			t.Errorf("storage channels: %v", list)
		}
		// The stream is in the recording viewer's list.
		click(p, "refresh-streams")
		p.waitJS(`[...document.getElementById('playback-stream').options].some(o => o.value === '`+stream+`')`, 10*time.Second)
	})

	// A Go master records, as `kvswebrtc master --ingest auto` would.
	ctx, cancel := context.WithTimeout(context.Background(), goWait)
	defer cancel()
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: st.Local.AWS, Channel: ch},
		Video:         media.DefaultH264(media.Options{Loop: true}),
		Audio:         media.DefaultAudio(media.Options{Loop: true}),
		Ingestion:     peer.IngestAuto,
		Settings:      loopbackSettings(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFragments(t, st, stream, 3)
	mustEval[bool](p, `(document.getElementById('playback-stream').value = '`+stream+`', true)`)

	t.Run("LiveHLS", func(t *testing.T) {
		setFields(p, map[string]any{"playbackProtocol": "hls", "playbackMode": "LIVE", "containerFormat": "FRAGMENTED_MP4", "playbackPlayer": "mse"})
		playAndWait(t, p, 30)
		if how := mustEval[string](p, `kvsTest.player.how`); how != "mse" {
			t.Errorf("player %q, want mse", how)
		}
		// The picture moves at the clip's rate (30 fps), not one key frame
		// per segment.
		f0 := mustEval[int](p, `kvsTest.playbackFrames()`)
		time.Sleep(3 * time.Second)
		if f1 := mustEval[int](p, `kvsTest.playbackFrames()`); f1-f0 < 60 {
			t.Errorf("%d frames decoded in 3 s of live playback, want about 90:\n%s", f1-f0, p.dump())
		}
		// Live: the loader keeps fetching the playlist and appending the
		// fragments recorded since.
		n := mustEval[int](p, `kvsTest.player.segments`)
		p.waitJS(`kvsTest.player.segments > `+itoa(n+1)+` && kvsTest.player.playlists > 2`, 20*time.Second)
		if u := mustEval[string](p, `document.getElementById('playback-url').textContent`); strings.Contains(u, "SessionToken=") && !strings.Contains(u, "SessionToken=\u2026") {
			t.Errorf("the page shows the session token: %s", u)
		}
	})

	t.Run("Screenshot", func(t *testing.T) {
		p.waitJS(`kvsTest.playbackFrames() > 60`, 20*time.Second)
		mustEval[bool](p, `(document.getElementById('storage-fields').open = true, document.getElementById('playback-section').scrollIntoView({block: 'center'}), true)`)
		time.Sleep(300 * time.Millisecond)
		p.screenshot(filepath.Join(artifactsDir(t), "web-recording.png"))
	})

	t.Run("OnDemandHLSAndDASH", func(t *testing.T) {
		click(p, "last-minute")
		for _, proto := range []string{"hls", "dash"} {
			setFields(p, map[string]any{"playbackProtocol": proto, "playbackMode": "ON_DEMAND", "playbackPlayer": "mse"})
			playAndWait(t, p, 30)
			p.waitJS(`kvsTest.player.state === 'ended' && kvsTest.player.segments >= 3`, 20*time.Second)
			t.Logf("%s on demand: %d segments, %d frames decoded", proto, mustEval[int](p, `kvsTest.player.segments`), mustEval[int](p, `kvsTest.playbackFrames()`))
		}
	})

	t.Run("NativeHLS", func(t *testing.T) {
		if !mustEval[bool](p, `document.getElementById('playback-video').canPlayType('application/vnd.apple.mpegurl') !== ''`) {
			t.Skip("this Chromium has no native HLS")
		}
		setFields(p, map[string]any{"playbackProtocol": "hls", "playbackMode": "ON_DEMAND", "playbackPlayer": "native"})
		playAndWait(t, p, 30)
		if how := mustEval[string](p, `kvsTest.player.how`); how != "native" {
			t.Errorf("player %q, want native", how)
		}
	})

	t.Run("DownloadClip", func(t *testing.T) {
		click(p, "last-minute")
		click(p, "download-clip")
		p.waitJS(`kvsTest.clip`, 20*time.Second)
		clip := mustEval[map[string]any](p, `kvsTest.clip`)
		if clip["type"] != "video/mp4" || clip["size"].(float64) < 20000 || !strings.HasPrefix(clip["fileName"].(string), stream+"-") {
			t.Errorf("clip: %v", clip)
		}
	})

	if path := os.Getenv("KVS_DOCS_SCREENSHOT"); path != "" {
		// The README's picture: the page as a viewer of the recording
		// master (live over WebRTC, with its quality and stats) and, below,
		// the recording viewer playing the stream live over HLS, the
		// storage controls open on the left.
		ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
		err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 1860))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		setFields(p, map[string]any{"clientId": "viewer-1", "sendVideo": false, "sendAudio": false, "candidateFilter": "loopback",
			"playbackProtocol": "hls", "playbackMode": "LIVE", "playbackPlayer": "mse"})
		mustEval[bool](p, `(kvsTest.player.stop(), kvsTest.start('viewer'), true)`)
		p.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.stats && kvsTest.stats.framesDecoded > 30`, goWait)
		playAndWait(t, p, 30)
		mustEval[bool](p, `(document.getElementById('storage-fields').open = true, document.getElementById('logLevel').value = 'info', window.scrollTo(0, 0), true)`)
		n := mustEval[int](p, `kvsTest.statsSamples`)
		p.waitJS(`kvsTest.statsSamples >= `+itoa(n+15)+` && kvsTest.playbackFrames() > 300`, 60*time.Second)
		p.screenshot(path)
	}
}

// storageResultAfter clicks a storage button and returns its result.
func storageResultAfter(tb *tab, button, what string) any {
	tb.t.Helper()
	mustEval[bool](tb, `(kvsTest.storage = null, true)`)
	click(tb, button)
	return storageResult(tb, what)
}

// TestBrowserMasterIngests: the page itself as the master in ingestion
// mode "on": it must send video and audio, joins the storage session
// after signaling opens, answers the media server's offer (no sender id;
// its answer names no recipient) and its camera is recorded; the
// recording then plays on the page.
func TestBrowserMasterIngests(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	ctx := context.Background()
	const ch, stream = "page-cam", "page-cam-video"
	kv := kinesisvideo.NewFromConfig(st.Local.AWS)
	chARN, err := st.Local.KVS.CreateChannel(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	browser := newBrowser(t)
	base := map[string]string{"channelName": ch, "streamName": stream, "resolution": "640x480", "candidateFilter": "loopback"}

	// Without audio the page refuses to ingest, as the official one.
	p := openTab(t, browser, "page", st.PageURL(pageQuery(base, map[string]string{"ingestMode": "on", "sendAudio": "false"})))
	p.waitJS(`kvsTest.backend`, 10*time.Second)
	if _, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(stream), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	storageResultAfter(p, "update-storage", "UpdateMediaStorageConfiguration")
	mustEval[bool](p, `(kvsTest.start('master'), true)`)
	p.waitJS(`kvsTest.state === 'error'`, 15*time.Second)
	if errs := mustEval[[]string](p, `kvsTest.errors`); len(errs) == 0 || !strings.Contains(errs[0], "both video and audio") {
		t.Errorf("start without audio in ingestion mode: errors %q", errs)
	}

	setFields(p, map[string]any{"sendAudio": true, "sendVideo": true, "ingestMode": "auto"})
	mustEval[bool](p, `(kvsTest.start('master'), true)`)
	p.waitJS(`kvsTest.ingestion.some(e => e.state === 'connected')`, goWait)
	steps := mustEval[[]string](p, `kvsTest.timeline.map(s => s.step)`)
	assertOrder(t, steps, "ingestion", "localMedia", "signalingOpen", "joinStorageSession", "offerReceived", "answerSent", "iceConnected")
	// The media server's view on the page, and what it sent: no recipient.
	if !mustEval[bool](p, `!!document.getElementById('remote-view-media-server')`) || len(mustEval[[]string](p, `kvsTest.remoteViewers()`)) != 0 {
		t.Error("the page does not show the media server apart from viewers")
	}
	deadline := time.Now().Add(goWait)
	for {
		ss, ok := st.Local.KVS.StorageStats(chARN)
		if ok && ss.Connected && ss.FramesReceived > 400 {
			t.Logf("media server: %+v", ss)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the media server got too little from the page: %+v %v\n%s", ss, ok, p.dump())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Chrome sends a key frame only when asked: the media server asks for
	// one (RTCP PLI) when a fragment has run 4 s, so fragments are stored
	// while the session runs, not one when it ends.
	for {
		ss, _ := st.Local.KVS.StorageStats(chARN)
		if ss.Fragments >= 2 && ss.KeyFramesAsked > 0 {
			t.Logf("media server, live: %+v", ss)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no fragment cut at a key frame asked for while the page streams: %+v", ss)
		}
		time.Sleep(200 * time.Millisecond)
	}
	mustEval[bool](p, `(kvsTest.stop(), true)`)
	list := waitFragments(t, st, stream, 2)
	t.Logf("recorded %d fragment(s), %v", len(list), list[0].Length)

	click(p, "refresh-streams")
	p.waitJS(`[...document.getElementById('playback-stream').options].some(o => o.value === '`+stream+`')`, 10*time.Second)
	mustEval[bool](p, `(document.getElementById('playback-stream').value = '`+stream+`', true)`)
	click(p, "last-minute")
	setFields(p, map[string]any{"playbackProtocol": "hls", "playbackMode": "ON_DEMAND", "containerFormat": "FRAGMENTED_MP4", "playbackPlayer": "mse"})
	playAndWait(t, p, 10)

	// The master ingests again, and a viewer in ingestion mode joins the
	// storage session (JoinStorageSessionAsViewer, then its offer) and plays
	// the master's video forwarded by the media server: the master has no
	// peer connection with it.
	setFields(p, map[string]any{"ingestMode": "auto", "showJoinStorageSessionAsViewer": false, "clientId": "page-master"})
	mustEval[bool](p, `(kvsTest.start('master'), true)`) // a start begins kvsTest.ingestion anew
	p.waitJS(`kvsTest.ingestion.some(e => e.state === 'connected')`, goWait)
	v := openTab(t, browser, "storage-viewer", st.PageURL(pageQuery(base, map[string]string{"ingestMode": "on", "clientId": "storage-viewer-1"})))
	v.waitJS(`kvsTest.backend`, 10*time.Second)
	mustEval[bool](v, `(kvsTest.start('viewer'), true)`)
	v.waitJS(`kvsTest.framesDecoded() > 30 && kvsTest.videoWidth() > 0`, goWait)
	assertOrder(t, mustEval[[]string](v, `kvsTest.timeline.map(s => s.step)`), "joinStorageSession", "offerSent")
	if got := mustEval[[]string](p, `kvsTest.remoteViewers()`); len(got) != 0 {
		t.Errorf("the storage session's viewer connected to the master directly: the master's viewers are %q", got)
	}
	t.Logf("viewer of the storage session: %v frames decoded, %v px wide", mustEval[float64](v, `kvsTest.framesDecoded()`), mustEval[float64](v, `kvsTest.videoWidth()`))
	mustEval[bool](v, `(kvsTest.stop(), true)`)

	// A viewer in ingestion mode joining by hand: the button is there, the
	// viewer sends no video, and the call reaches the service, which
	// accepts it.
	setFields(v, map[string]any{"showJoinStorageSessionAsViewer": true, "sendVideo": true, "clientId": "storage-viewer-2"})
	mustEval[bool](v, `(kvsTest.start('viewer'), true)`)
	v.waitJS(`!document.getElementById('join-storage-session-as-viewer').hidden`, 20*time.Second)
	if mustEval[bool](v, `kvsTest.sending('video')`) {
		t.Error("a viewer in ingestion mode sends video")
	}
	click(v, "join-storage-session-as-viewer")
	v.waitJS(`[...document.querySelectorAll('#log .log-line')].some(l => l.textContent.includes('JoinStorageSessionAsViewer accepted'))`, 20*time.Second)
	if failed := mustEval[bool](v, `kvsTest.ingestion.some(e => e.state === 'failed')`); failed {
		t.Errorf("the joining by hand failed: %v", mustEval[any](v, `kvsTest.ingestion`))
	}
}
