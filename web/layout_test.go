package web_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// TestBrowserPageLayout checks the page items of issue 14 (item 8) with a
// master and two viewers in Chromium, and saves screenshots a person looks
// at (artifacts/web-layout-master.png, web-layout-viewer.png): the
// master's viewer videos share the panel's width; the role is shown; the
// client id field is hidden for a master and shown for a viewer; the
// chart's time axis fills from the left; the captions do not cover the
// pictures; "Send audio" is on by default.
func TestBrowserPageLayout(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)

	t.Run("SendAudioDefaultsOn", func(t *testing.T) {
		// A fresh browser profile: nothing in localStorage, no query.
		fresh := openTab(t, browser, "fresh", st.URL+"/")
		if !mustEval[bool](fresh, `document.getElementById('sendAudio').checked && document.getElementById('sendVideo').checked`) {
			t.Error(`"Send audio" (or "Send video") is not checked on a fresh page; the official page sends both by default`)
		}
		if mustEval[bool](fresh, `!document.getElementById('role').hidden`) {
			t.Error("the role chip is shown before anything started")
		}
		if !mustEval[bool](fresh, `kvsTest.clientIdVisible()`) {
			t.Error("the client id field is hidden before anything started")
		}
	})

	const ch = "layout"
	common := map[string]string{"channelName": ch, "resolution": "640x480", "sendAudio": "false", "candidateFilter": "loopback", "openDataChannel": "true"}
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
	master := openTab(t, browser, "master", st.PageURL(with(map[string]string{"view": "master"})))
	master.waitJS(`kvsTest.state === 'signaling'`, 20*time.Second)
	a := openTab(t, browser, "viewer-a", st.PageURL(with(map[string]string{"view": "viewer", "clientId": "viewer-a"})))
	b := openTab(t, browser, "viewer-b", st.PageURL(with(map[string]string{"view": "viewer", "clientId": "viewer-b"})))
	for _, v := range []*tab{a, b} {
		v.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 5`, 30*time.Second)
	}
	master.waitJS(`kvsTest.remoteViewers().length === 2 && document.getElementById('remote-video-viewer-a').videoWidth > 0 && document.getElementById('remote-video-viewer-b').videoWidth > 0`, 30*time.Second)
	master.waitJS(`kvsTest.chart.data.length >= 4`, 15*time.Second)

	t.Run("RoleShown", func(t *testing.T) {
		for _, c := range []struct {
			tb            *tab
			role, heading string
		}{{master, "MASTER", "Master on channel layout"}, {a, "VIEWER", "Viewer viewer-a on channel layout"}} {
			got := mustEval[[]any](c.tb, `[document.getElementById('role').hidden, document.getElementById('role').textContent, document.getElementById('media-heading').textContent]`)
			if got[0] != false || got[1] != c.role || got[2] != c.heading {
				t.Errorf("%s: role chip hidden=%v %q, heading %q; want shown %q, heading %q", c.tb.name, got[0], got[1], got[2], c.role, c.heading)
			}
		}
	})

	t.Run("ClientIDHiddenForMaster", func(t *testing.T) {
		if mustEval[bool](master, `kvsTest.clientIdVisible()`) {
			t.Error("the master shows the client id field (KVS gives the master none)")
		}
		if !mustEval[bool](a, `kvsTest.clientIdVisible()`) {
			t.Error("the viewer hides its client id field")
		}
		// Stopped, the field comes back for the next start.
		mustEval[bool](master, `(kvsTest.stop(), true)`)
		if !mustEval[bool](master, `kvsTest.clientIdVisible()`) {
			t.Error("the client id field stays hidden after the master stopped")
		}
		mustEval[bool](master, `(kvsTest.start('master'), true)`)
		master.waitJS(`kvsTest.state === 'signaling' || kvsTest.state === 'connected'`, 20*time.Second)
		// The viewers reconnect to the new master by themselves after their
		// peer connections drop; restart them so that the screenshot shows both.
		for _, v := range []*tab{a, b} {
			mustEval[bool](v, `(kvsTest.start('viewer'), true)`)
		}
		master.waitJS(`kvsTest.remoteViewers().length === 2 && document.getElementById('remote-video-viewer-a') && document.getElementById('remote-video-viewer-a').videoWidth > 0 && document.getElementById('remote-video-viewer-b') && document.getElementById('remote-video-viewer-b').videoWidth > 0`, 40*time.Second)
		if mustEval[bool](master, `kvsTest.clientIdVisible()`) {
			t.Error("the restarted master shows the client id field")
		}
	})

	t.Run("VideosUseTheWidth", func(t *testing.T) {
		// Every video of the master (its own and the two viewers') is at
		// least a quarter of the panel wide, and the row of them reaches
		// the panel's right edge: no blank half.
		got := mustEval[map[string]float64](master, `(() => {
			const panel = document.getElementById('views').getBoundingClientRect();
			const figs = [...document.querySelectorAll('#views figure:not([hidden])')].map(f => f.getBoundingClientRect());
			return {panel: panel.width, n: figs.length, minWidth: Math.min(...figs.map(r => r.width)),
				right: Math.max(...figs.map(r => r.right)) - panel.left};
		})()`)
		t.Logf("master's views: %v", got)
		if got["n"] != 3 {
			t.Fatalf("master shows %v views, want 3 (local and two viewers)", got["n"])
		}
		if got["minWidth"] < got["panel"]/4 {
			t.Errorf("narrowest video %.0f px of a %.0f px panel: the videos do not use the width they have", got["minWidth"], got["panel"])
		}
		if got["right"] < got["panel"]-20 {
			t.Errorf("the videos end at %.0f px of a %.0f px panel: the right side is blank", got["right"], got["panel"])
		}
	})

	t.Run("CaptionsBelowPictures", func(t *testing.T) {
		for _, tb := range []*tab{master, a} {
			overlap := mustEval[[]string](tb, `[...document.querySelectorAll('#views figure:not([hidden])')].filter(f => {
				const v = f.querySelector('video').getBoundingClientRect(), c = f.querySelector('figcaption').getBoundingClientRect();
				return c.top < v.bottom - 0.5 && c.bottom > v.top + 0.5;
			}).map(f => f.querySelector('figcaption').textContent)`)
			if len(overlap) > 0 {
				t.Errorf("%s: captions %q lie over their pictures", tb.name, overlap)
			}
		}
	})

	t.Run("ChartFillsFromTheLeft", func(t *testing.T) {
		// With a few samples, the newest is at the right edge and the
		// oldest at the left edge of the plot, not 90% of the way across.
		master.waitJS(`kvsTest.chart.data.length >= 4`, 15*time.Second)
		got := mustEval[map[string]float64](master, `({n: kvsTest.chart.data.length, first: kvsTest.chart.xOf(0), last: kvsTest.chart.xOf(kvsTest.chart.data.length - 1), width: document.getElementById('stats-chart').clientWidth})`)
		t.Logf("chart: %v", got)
		if got["n"] >= 60 {
			t.Skip("the chart is already full")
		}
		if got["first"] > 160 || got["last"] < got["width"]-10 {
			t.Errorf("the %v samples span x %.0f..%.0f of a %.0f px chart; want the plot filled from its left edge (150) to the right", got["n"], got["first"], got["last"], got["width"])
		}
	})

	t.Run("Screenshot", func(t *testing.T) {
		master.waitJS(`kvsTest.chart.data.length >= 3`, 15*time.Second)
		dir := artifactsDir(t)
		master.screenshot(filepath.Join(dir, "web-layout-master.png"))
		a.screenshot(filepath.Join(dir, "web-layout-viewer.png"))
	})
}
