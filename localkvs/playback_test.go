package localkvs_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// The session URL calls and their tokens, on a stream with no media (the
// recordings themselves are played in package archive's tests and in the
// page's). Streams are made with CreateStream; LIVE_REPLAY sessions need
// no fragment to be handed out.

func sessionURL(t *testing.T, srv *localkvs.Server, path string, body map[string]any) (int, string, string) {
	t.Helper()
	code, typ, b := signedPost(t, srv, path, body, localkvs.DevSecretAccessKey)
	var out map[string]string
	_ = json.Unmarshal(b, &out)
	for _, v := range out {
		if strings.HasPrefix(v, "http") {
			return code, typ, v
		}
	}
	return code, typ, string(b)
}

func getStatus(t *testing.T, srv *localkvs.Server, u string) (int, string) {
	t.Helper()
	res, err := httpClient(srv).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("X-Amzn-ErrorType") + " " + string(b)
}

// TestPlaybackSessionExpires: a session URL works until Expires passes on
// the service's clock, then every URL of it is 403 ExpiredPlaylistException.
func TestPlaybackSessionExpires(t *testing.T) {
	srv, clk := startClock(t, localkvs.Config{})
	if code, _, b := signedPost(t, srv, "/createStream", map[string]any{"StreamName": "cam", "DataRetentionInHours": 1}, localkvs.DevSecretAccessKey); code != 200 {
		t.Fatalf("CreateStream: %d %s", code, b)
	}
	start := float64(time.Now().Add(-time.Minute).UnixMilli()) / 1000
	code, typ, u := sessionURL(t, srv, "/getHLSStreamingSessionURL", map[string]any{
		"StreamName": "cam", "PlaybackMode": "LIVE_REPLAY", "Expires": 300,
		"HLSFragmentSelector": map[string]any{"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": map[string]any{"StartTimestamp": start}},
	})
	if code != 200 {
		t.Fatalf("GetHLSStreamingSessionURL: %d %s %s", code, typ, u)
	}
	media := strings.Replace(u, "getHLSMasterPlaylist", "getHLSMediaPlaylist", 1)
	for _, v := range []string{u, media} {
		if code, body := getStatus(t, srv, v); code != 200 || !strings.HasPrefix(strings.TrimSpace(body), "#EXTM3U") {
			t.Fatalf("GET before expiry: %d %s", code, body)
		}
	}
	clk.Advance(299 * time.Second)
	if code, body := getStatus(t, srv, media); code != 200 {
		t.Errorf("GET at 299 s of 300: %d %s", code, body)
	}
	clk.Advance(2 * time.Second)
	for _, v := range []string{u, media} {
		if code, body := getStatus(t, srv, v); code != http.StatusForbidden || !strings.HasPrefix(body, "ExpiredPlaylistException") {
			t.Errorf("GET after expiry: %d %s, want 403 ExpiredPlaylistException", code, body)
		}
	}
}

// TestPlaybackSessionValidation: the session URL calls check their
// arguments as KVS documents them.
func TestPlaybackSessionValidation(t *testing.T) {
	srv := start(t, localkvs.Config{})
	if code, _, b := signedPost(t, srv, "/createStream", map[string]any{"StreamName": "cam", "DataRetentionInHours": 1}, localkvs.DevSecretAccessKey); code != 200 {
		t.Fatalf("CreateStream: %d %s", code, b)
	}
	now := float64(time.Now().UnixMilli()) / 1000
	rng := func(a, b float64) map[string]any {
		return map[string]any{"FragmentSelectorType": "PRODUCER_TIMESTAMP", "TimestampRange": map[string]any{"StartTimestamp": a, "EndTimestamp": b}}
	}
	for _, c := range []struct {
		name string
		path string
		body map[string]any
		code int
		typ  string
	}{
		{"NoStream", "/getHLSStreamingSessionURL", map[string]any{"StreamName": "nope"}, 404, "ResourceNotFoundException"},
		{"LiveNothingRecorded", "/getHLSStreamingSessionURL", map[string]any{"StreamName": "cam"}, 404, "ResourceNotFoundException"},
		{"BadMode", "/getHLSStreamingSessionURL", map[string]any{"StreamName": "cam", "PlaybackMode": "REWIND"}, 400, "InvalidArgumentException"},
		{"BadContainer", "/getHLSStreamingSessionURL", map[string]any{"StreamName": "cam", "ContainerFormat": "AVI"}, 400, "InvalidArgumentException"},
		{"DASHContainer", "/getDASHStreamingSessionURL", map[string]any{"StreamName": "cam", "ContainerFormat": "MPEG_TS"}, 400, "InvalidArgumentException"},
		{"ExpiresTooShort", "/getHLSStreamingSessionURL", map[string]any{"StreamName": "cam", "PlaybackMode": "LIVE_REPLAY", "Expires": 10, "HLSFragmentSelector": rng(now-60, now)}, 400, "InvalidArgumentException"},
		{"TooManyFragments", "/getHLSStreamingSessionURL", map[string]any{"StreamName": "cam", "PlaybackMode": "LIVE_REPLAY", "MaxMediaPlaylistFragmentResults": 5001, "HLSFragmentSelector": rng(now-60, now)}, 400, "InvalidArgumentException"},
		{"OnDemandNoEnd", "/getHLSStreamingSessionURL", map[string]any{"StreamName": "cam", "PlaybackMode": "ON_DEMAND", "HLSFragmentSelector": map[string]any{"TimestampRange": map[string]any{"StartTimestamp": now}}}, 400, "InvalidArgumentException"},
		{"OnDemandTooLong", "/getDASHStreamingSessionURL", map[string]any{"StreamName": "cam", "PlaybackMode": "ON_DEMAND", "DASHFragmentSelector": rng(now-90000, now)}, 400, "InvalidArgumentException"},
		{"OnDemandNothing", "/getDASHStreamingSessionURL", map[string]any{"StreamName": "cam", "PlaybackMode": "ON_DEMAND", "DASHFragmentSelector": rng(now-60, now)}, 404, "ResourceNotFoundException"},
		{"LiveWithRange", "/getHLSStreamingSessionURL", map[string]any{"StreamName": "cam", "HLSFragmentSelector": rng(now-60, now)}, 400, "InvalidArgumentException"},
		{"EndBeforeStart", "/getHLSStreamingSessionURL", map[string]any{"StreamName": "cam", "PlaybackMode": "LIVE_REPLAY", "HLSFragmentSelector": rng(now, now-60)}, 400, "InvalidArgumentException"},
		{"ReplayOK", "/getDASHStreamingSessionURL", map[string]any{"StreamName": "cam", "PlaybackMode": "LIVE_REPLAY", "DASHFragmentSelector": rng(now-60, 0)}, 200, ""},
		{"ClipNothing", "/getClip", map[string]any{"StreamName": "cam", "ClipFragmentSelector": rng(now-60, now)}, 404, "ResourceNotFoundException"},
		{"ClipNoRange", "/getClip", map[string]any{"StreamName": "cam", "ClipFragmentSelector": map[string]any{"FragmentSelectorType": "PRODUCER_TIMESTAMP"}}, 400, "InvalidArgumentException"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "ReplayOK" {
				delete(c.body["DASHFragmentSelector"].(map[string]any)["TimestampRange"].(map[string]any), "EndTimestamp")
			}
			code, typ, out := sessionURL(t, srv, c.path, c.body)
			if code != c.code || (c.typ != "" && !strings.HasPrefix(typ, c.typ)) {
				t.Errorf("%s %v: %d %s %s; want %d %s", c.path, c.body, code, typ, out, c.code, c.typ)
			}
			if code == 200 && !strings.Contains(out, "/dash/v1/getDASHManifest.mpd?SessionToken=") {
				t.Errorf("DASH session URL %s", out)
			}
		})
	}
	// A session URL is a credential of its own: without it, or unsigned,
	// nothing is served.
	if code, body := getStatus(t, srv, srv.URL()+"/dash/v1/getDASHManifest.mpd"); code != 400 || !strings.HasPrefix(body, "MissingParameterException") {
		t.Errorf("MPD without a token: %d %s", code, body)
	}
}
