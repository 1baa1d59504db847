package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/web"
)

// TestEndpointChoices: the page's "KVS endpoint" fields reach the backend,
// which takes dual-stack and FIPS always, another region only with
// Config.AllowRegionChange and an endpoint override only with
// Config.AllowEndpointOverride; /api/info says which, and the versions.
func TestEndpointChoices(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	connect := func(base string, extra map[string]any) (int, map[string]any) {
		body := map[string]any{"channelName": "endpoints", "role": "master", "natTraversal": "stunTurn"}
		for k, v := range extra {
			body[k] = v
		}
		return postJSON(t, base+"/api/connect", body)
	}

	res, err := testClient.Get(st.URL + "/api/info")
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	_ = json.NewDecoder(res.Body).Decode(&info)
	res.Body.Close()
	if info["sdkVersion"] != web.SDKVersion || info["version"] == "" || info["regionChangeable"] != false || info["endpointOverride"] != false {
		t.Errorf("/api/info = %v", info)
	}
	if web.SDKVersion != "2.9.0" {
		t.Errorf("SDKVersion = %q, want the pinned official SDK 2.9.0", web.SDKVersion)
	}

	for _, c := range []struct {
		name  string
		extra map[string]any
		code  int
		msg   string
	}{
		{"DualStack", map[string]any{"endpointType": "dualStack"}, 200, ""},
		{"FIPS", map[string]any{"fips": true}, 200, ""},
		{"Legacy", map[string]any{"endpointType": "legacy", "region": "us-west-2"}, 200, ""},
		{"BadType", map[string]any{"endpointType": "ipv6"}, 400, "endpointType"},
		{"OtherRegionRefused", map[string]any{"region": "eu-west-1"}, 400, "AllowRegionChange"},
		{"OverrideRefused", map[string]any{"endpoint": st.Local.KVS.URL()}, 400, "AllowEndpointOverride"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out := connect(st.URL, c.extra)
			if code != c.code || (c.msg != "" && !strings.Contains(out["error"].(string), c.msg)) {
				t.Errorf("connect %v: %d %v; want %d mentioning %q", c.extra, code, out, c.code, c.msg)
			}
		})
	}

	// A backend that allows both.
	cfg := st.Local.Config(nil)
	cfg.AllowRegionChange, cfg.AllowEndpointOverride = true, true
	srv, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	t.Run("OverrideAllowed", func(t *testing.T) {
		code, out := connect(hs.URL, map[string]any{"endpoint": st.Local.KVS.URL() + "/"})
		if code != http.StatusOK || !strings.HasPrefix(out["signedURL"].(string), "ws://") {
			t.Errorf("connect with the local service as override: %d %v", code, out)
		}
		if code, out := connect(hs.URL, map[string]any{"endpoint": "ftp://example.com"}); code != 400 {
			t.Errorf("connect with an ftp endpoint: %d %v, want 400", code, out)
		}
	})
	t.Run("RegionAllowed", func(t *testing.T) {
		// The local service has one region: the request is signed for
		// eu-west-1 and the service refuses the signature. What matters is
		// that the backend passed the region on.
		code, out := connect(hs.URL, map[string]any{"region": "eu-west-1"})
		if code == 200 || strings.Contains(out["error"].(string), "AllowRegionChange") {
			t.Errorf("connect with region eu-west-1 on a backend that allows it: %d %v", code, out)
		}
		if code, _ := connect(hs.URL, map[string]any{"region": "Mars"}); code != 400 {
			t.Errorf("region Mars: %d, want 400", code)
		}
	})
}

// TestBrowserEndpointFields: the heading shows the versions, the region
// field holds the backend's region and is read-only, the override field is
// disabled with the backend's endpoint as placeholder.
func TestBrowserEndpointFields(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	browser := newBrowser(t)
	p := openTab(t, browser, "page", st.URL+"/")
	p.waitJS(`kvsTest.backend && document.getElementById('sdk-version').textContent !== ''`, 10*time.Second)
	got := mustEval[[]any](p, `[document.getElementById('sdk-version').textContent, document.getElementById('region').value, document.getElementById('region').disabled, document.getElementById('endpoint').disabled, document.getElementById('endpoint').placeholder]`)
	if h, _ := got[0].(string); !strings.Contains(h, "JS SDK 2.9.0") || !strings.HasPrefix(h, "kvswebrtc ") {
		t.Errorf("heading version %q", got[0])
	}
	if got[1] != "us-west-2" || got[2] != true || got[3] != true || got[4] != st.Local.KVS.URL() {
		t.Errorf("endpoint fields %v", got)
	}
}
