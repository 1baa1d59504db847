package interop_test

// The official SDK's browser bundle (kvs-webrtc.min.js, unmodified, from
// node_modules) in headless Chromium, against the local service with TLS
// and our Go peers, following the flows of the SDK's README.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/internal/browsertest"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// browserWait bounds each wait on the browser or a Go peer: generous for
// -race on a loaded 2-core machine with Chromium running.
const browserWait = 30 * time.Second

const sdkBundle = "node_modules/amazon-kinesis-video-streams-webrtc/dist/kvs-webrtc.min.js"

// requireBundle makes sure the SDK's browser bundle is in node_modules,
// running npm ci when it is not (Node is needed only for that).
func requireBundle(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(sdkBundle); err == nil {
		return
	}
	requireNode(t)
	if _, err := os.Stat(sdkBundle); err != nil {
		t.Fatalf("the official SDK's browser bundle is missing (%v): run `npm ci` in interop/", err)
	}
}

// browserEnv is the TLS service with a channel, and an aws.Config that
// trusts its CA.
type browserEnv struct {
	env
	aws aws.Config
}

func setupBrowser(t *testing.T) browserEnv {
	t.Helper()
	browsertest.ChromiumPath(t)
	requireBundle(t)
	// Not setup(t): the browser needs no Node once node_modules is there.
	srv, err := localkvs.Start(localkvs.Config{TLS: true, TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	arn, err := srv.CreateChannel(context.Background(), "browser-interop")
	if err != nil {
		t.Fatal(err)
	}
	e := env{srv: srv, arn: arn}
	return browserEnv{env: e, aws: e.srv.AWSConfig()}
}

// loopbackPeer keeps a Go peer's candidates on 127.0.0.1 (UDP over IPv4).
func loopbackPeer() peer.Settings {
	return peer.Settings{
		NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4},
		IPFilter:     func(ip net.IP) bool { return ip.IsLoopback() },
	}
}

// iceServerJS is an RTCIceServer.
type iceServerJS struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// pageConfig is window.interopConfig (see testdata/page.js).
type pageConfig struct {
	Role               string            `json:"role"`
	ChannelARN         string            `json:"channelARN"`
	ChannelEndpoint    string            `json:"channelEndpoint"`
	Region             string            `json:"region"`
	ClientID           string            `json:"clientId,omitempty"`
	Credentials        map[string]string `json:"credentials"`
	ICEServers         []iceServerJS     `json:"iceServers"`
	ICETransportPolicy string            `json:"iceTransportPolicy"`
	CandidateFilter    string            `json:"candidateFilter"`
}

// pageConfigFor fetches the ICE servers for the page's role and client id
// from the service's GetIceServerConfig (as the README's app does with the
// AWS SDK) and fills in the rest.
func (e browserEnv) pageConfigFor(t *testing.T, role channel.Role, clientID string, nat channel.NATTraversal) pageConfig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	res, err := channel.Resolve(ctx, e.aws, e.arn, role, channel.Options{ClientID: clientID})
	if err != nil {
		t.Fatalf("resolve %s for the page: %v", role, err)
	}
	if res.WSSEndpoint() != e.srv.WSSEndpoint() {
		t.Errorf("GetSignalingChannelEndpoint WSS %q, want %q", res.WSSEndpoint(), e.srv.WSSEndpoint())
	}
	var servers []iceServerJS
	for _, s := range res.WebRTCConfiguration(nat).ICEServers {
		js := iceServerJS{URLs: s.URLs, Username: s.Username}
		if c, ok := s.Credential.(string); ok {
			js.Credential = c
		}
		servers = append(servers, js)
	}
	policy := "all"
	if nat == channel.TURNOnly {
		policy = "relay"
	}
	r := "VIEWER"
	if role == channel.RoleMaster {
		r = "MASTER"
	}
	return pageConfig{
		Role:            r,
		ChannelARN:      e.arn,
		ChannelEndpoint: e.srv.WSSEndpoint(),
		Region:          e.srv.Region(),
		ClientID:        clientID,
		Credentials: map[string]string{
			"accessKeyId":     localkvs.DevAccessKeyID,
			"secretAccessKey": localkvs.DevSecretAccessKey,
			"sessionToken":    "browser-session-token",
		},
		ICEServers:         servers,
		ICETransportPolicy: policy,
		CandidateFilter:    "loopback",
	}
}

// servePage serves the test page, its script, the SDK bundle and cfg on
// 127.0.0.1 over plain http (a secure context: SigV4 signing uses
// crypto.subtle) and returns the page's URL.
func servePage(t *testing.T, cfg pageConfig) string {
	t.Helper()
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := func(path, ctype string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ctype)
			w.Header().Set("Cache-Control", "no-store")
			http.ServeFile(w, r, path)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", file("testdata/page.html", "text/html; charset=utf-8"))
	mux.Handle("GET /page.js", file("testdata/page.js", "text/javascript"))
	mux.Handle("GET /sdk/kvs-webrtc.min.js", file(sdkBundle, "text/javascript"))
	mux.HandleFunc("GET /config.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintf(w, "window.interopConfig = %s;\n", cfgJSON)
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return hs.URL + "/"
}

// page is the test page open in a headless Chromium.
type page struct {
	t   *testing.T
	ctx context.Context
}

// openPage starts a headless Chromium with a fake camera and microphone,
// trusting any certificate (the local CA), and opens url in it. The browser
// is closed when the test ends.
func openPage(t *testing.T, url string) *page {
	t.Helper()
	// The wss:// endpoint's certificate comes from the service's own CA.
	allocCtx := browsertest.Allocator(t, chromedp.Flag("ignore-certificate-errors", true))
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			t.Logf("page exception: %s %s", d.Text, desc)
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError || ev.Type == cdpruntime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`))
				}
				t.Logf("console.%s: %s", ev.Type, strings.Join(parts, " "))
			}
		}
	}))
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s in chromium: %v", url, err)
	}
	p := &page{t: t, ctx: ctx}
	p.wait(`window.interop !== undefined`)
	return p
}

// eval evaluates a JS expression in the page (awaiting a promise).
func eval[T any](p *page, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

func mustEvalPage[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := eval[T](p, expr)
	if err != nil {
		p.t.Fatalf("eval %s: %v\n%s", expr, err, p.dump())
	}
	return v
}

// wait polls a JS expression until it is true; it fails the test with the
// page's diagnostics after browserWait, or at once when the page recorded
// an error.
func (p *page) wait(expr string) {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := eval[bool](p, "!!("+expr+")")
		if err == nil && ok {
			return
		}
		lastErr = err
		if n, err := eval[int](p, `window.interop ? window.interop.errors.length : 0`); err == nil && n > 0 {
			p.t.Fatalf("page reported errors while waiting for %s:\n%s", expr, p.dump())
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("%s still false after %v (last error: %v)\n%s", expr, browserWait, lastErr, p.dump())
}

// dump returns the page's state and log.
func (p *page) dump() string {
	s, err := eval[string](p, `window.interop && window.interop.diagnostics ? window.interop.diagnostics() : document.documentElement.outerHTML.slice(0, 2000)`)
	if err != nil {
		return fmt.Sprintf("(no page diagnostics: %v)", err)
	}
	return s
}

// checkClean fails the test when the page recorded an error or a
// candidate it could not add.
func (p *page) checkClean() {
	p.t.Helper()
	errs := mustEvalPage[[]string](p, `window.interop.errors`)
	cands := mustEvalPage[[]string](p, `window.interop.addCandidateErrors`)
	if len(errs) > 0 || len(cands) > 0 {
		p.t.Errorf("page errors %q, addIceCandidate errors %q\n%s", errs, cands, p.dump())
	}
}

// TestBrowserSDKViewerGoMaster: the official SDK as viewer in Chromium,
// receiving the embedded clip from a Go peer.Master.
func TestBrowserSDKViewerGoMaster(t *testing.T) {
	t.Run("STUNAndTURN", func(t *testing.T) { browserViewerGoMaster(t, channel.STUNAndTURN) })
	// TURN only: the page's peer connection uses relay candidates alone,
	// with the credentials of the service's GetIceServerConfig, so media
	// goes through the embedded TURN server.
	t.Run("TURNOnly", func(t *testing.T) { browserViewerGoMaster(t, channel.TURNOnly) })
}

func browserViewerGoMaster(t *testing.T, nat channel.NATTraversal) {
	e := setupBrowser(t)
	const pageID = "browser-sdk-viewer"

	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: e.aws, Channel: e.arn, NAT: nat},
		Video:         media.DefaultVideo(media.Options{Loop: true}),
		Audio:         media.DefaultAudio(media.Options{Loop: true}),
		Settings:      loopbackPeer(),
	})
	if err != nil {
		t.Fatalf("NewMaster: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	joined := make(chan string, 4)
	m.OnViewerJoined(func(id string) { joined <- id })
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Master.Start: %v", err)
	}

	cfg := e.pageConfigFor(t, channel.RoleViewer, pageID, nat)
	if nat == channel.TURNOnly && len(cfg.ICEServers) == 0 {
		t.Fatal("GetIceServerConfig gave no TURN server")
	}
	p := openPage(t, servePage(t, cfg))
	p.wait(`interop.signalingOpen && interop.offersSent === 1`)

	select {
	case id := <-joined:
		if id != pageID {
			t.Errorf("Go master: viewer %q joined, want %q", id, pageID)
		}
	case <-time.After(browserWait):
		t.Fatalf("Go master: no viewer joined (viewers %v)\n%s", m.Viewers(), p.dump())
	}

	p.wait(`interop.connectionStates.master === 'connected'`)
	p.wait(`interop.videoWidth() > 0 && interop.framesDecoded() > 0`)
	f1 := mustEvalPage[int](p, `interop.framesDecoded()`)
	p.wait(fmt.Sprintf(`interop.framesDecoded() > %d`, f1+30))
	w := mustEvalPage[int](p, `interop.videoWidth()`)
	h := mustEvalPage[int](p, `interop.videoHeight()`)
	if w != 640 || h != 480 {
		t.Errorf("the page's video is %dx%d, want the clip's 640x480", w, h)
	}
	in := mustEvalPage[rtpStats](p, `interop.inboundVideo()`)
	if in.FramesDecoded <= f1 || !strings.EqualFold(in.MimeType, "video/VP8") {
		t.Errorf("inbound-rtp video: %d frames decoded (want > %d), codec %q (want video/VP8)", in.FramesDecoded, f1, in.MimeType)
	}
	pair := mustEvalPage[candidatePair](p, `interop.selectedPair('master')`)
	if nat == channel.TURNOnly && pair.Local != "relay" {
		t.Errorf("the page's selected pair is %s -> %s, want a relay local candidate", pair.Local, pair.Remote)
	}
	if nat != channel.TURNOnly && pair.Local == "" {
		t.Errorf("the page has no selected candidate pair")
	}
	if got := mustEvalPage[int](p, `interop.answersReceived`); got != 1 {
		t.Errorf("the page got %d answers, want 1", got)
	}
	if got := mustEvalPage[int](p, `interop.candidatesReceived`); got == 0 {
		t.Errorf("the page got no ICE candidate from the Go master")
	}
	if got := mustEvalPage[int](p, `interop.candidatesSent`); got == 0 {
		t.Errorf("the page sent no ICE candidate")
	}
	if v := m.Viewers(); len(v) != 1 || v[0] != pageID {
		t.Errorf("Go master viewers %v, want [%s]", v, pageID)
	}
	p.checkClean()
	t.Logf("page: %s, selected pair %s -> %s", nat, pair.Local, pair.Remote)
}

// TestBrowserSDKMasterGoViewer: the official SDK as master in Chromium,
// sending its fake camera to two Go peer.Viewers at once, one peer
// connection per remoteClientId as in the README: the answers and
// candidates the page addresses to each viewer must reach that viewer.
func TestBrowserSDKMasterGoViewer(t *testing.T) {
	e := setupBrowser(t)
	ids := []string{"go-viewer-1", "go-viewer-2"}

	p := openPage(t, servePage(t, e.pageConfigFor(t, channel.RoleMaster, "", channel.STUNAndTURN)))
	p.wait(`interop.signalingOpen && interop.localStreamReady`)

	ctx, cancel := context.WithTimeout(context.Background(), browserWait)
	defer cancel()
	var (
		mu     sync.Mutex
		codecs = map[string]map[string]bool{}
	)
	viewers := make([]*peer.Viewer, len(ids))
	for i, id := range ids {
		v, err := peer.NewViewer(ctx, peer.ViewerConfig{
			ChannelConfig: peer.ChannelConfig{AWS: e.aws, Channel: e.arn},
			ClientID:      id,
			Settings:      loopbackPeer(),
		})
		if err != nil {
			t.Fatalf("NewViewer(%s): %v", id, err)
		}
		t.Cleanup(func() { _ = v.Close() })
		codecs[id] = map[string]bool{}
		v.OnFrame(func(f media.Frame) {
			mu.Lock()
			codecs[id][f.Codec.MimeType] = true
			mu.Unlock()
		})
		viewers[i] = v
	}
	// Both offers reach the page at about the same time.
	errs := make(chan error, len(viewers))
	for _, v := range viewers {
		go func() { errs <- v.Start(ctx) }()
	}
	for range viewers {
		if err := <-errs; err != nil {
			t.Fatalf("Viewer.Start: %v\n%s", err, p.dump())
		}
	}
	for _, v := range viewers {
		if _, err := v.WaitFirstFrame(ctx); err != nil {
			t.Fatalf("Go viewer %s: no first frame from the browser master: %v\n%s\n%s", v.ClientID(), err, v.Stats(), p.dump())
		}
	}
	for _, v := range viewers {
		n1 := v.Stats().Frames
		deadline := time.Now().Add(browserWait)
		for v.Stats().Frames < n1+30 || v.Stats().AudioFrames == 0 {
			if time.Now().After(deadline) {
				st := v.Stats()
				t.Fatalf("Go viewer %s: video frames stopped at %d (from %d), %d audio frames\n%s\n%s", v.ClientID(), st.Frames, n1, st.AudioFrames, st, p.dump())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	got := mustEvalPage[[]string](p, `interop.offersReceived.slice().sort()`)
	if strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Errorf("the browser master got offers from %q, want %q", got, ids)
	}
	for _, id := range ids {
		p.wait(fmt.Sprintf(`interop.connectionStates[%q] === 'connected'`, id))
		out := mustEvalPage[rtpStats](p, fmt.Sprintf(`interop.outboundVideo(%q)`, id))
		mu.Lock()
		gotCodec := codecs[id][out.MimeType]
		seen := fmt.Sprint(codecs[id])
		mu.Unlock()
		if out.FramesEncoded == 0 || !gotCodec {
			t.Errorf("browser outbound video to %s: %d frames encoded, codec %q; the Go viewer saw codecs %s", id, out.FramesEncoded, out.MimeType, seen)
		}
		t.Logf("Go viewer %s: %d video frames, %d audio frames, codecs %s", id, viewersByID(viewers, id).Stats().Frames, viewersByID(viewers, id).Stats().AudioFrames, seen)
	}
	if got := mustEvalPage[int](p, `interop.candidatesReceived`); got < len(ids) {
		t.Errorf("the browser master got %d ICE candidates from the Go viewers, want at least %d", got, len(ids))
	}
	p.checkClean()
}

func viewersByID(vs []*peer.Viewer, id string) *peer.Viewer {
	for _, v := range vs {
		if v.ClientID() == id {
			return v
		}
	}
	return nil
}

// rtpStats is the page's summary of an inbound-rtp or outbound-rtp report.
type rtpStats struct {
	FramesDecoded int    `json:"framesDecoded"`
	FramesEncoded int    `json:"framesEncoded"`
	MimeType      string `json:"mimeType"`
}

// candidatePair is the candidate types of the page's selected pair.
type candidatePair struct {
	Local  string `json:"local"`
	Remote string `json:"remote"`
}
