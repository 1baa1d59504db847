package web_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/internal/testcam"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
)

// TestBrowserViewerRTSPCamera: an RTSP camera (H.264 + Opus) through a Go
// master to the page as viewer in Chromium. The camera goes away for 3 s
// and comes back; the page decodes frames again on the same peer
// connection (its local description is unchanged: no re-offer).
func TestBrowserViewerRTSPCamera(t *testing.T) {
	st := startStack(t, localkvs.Limits{})
	cam, err := testcam.Start(testcam.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cam.Close()
	ctx, cancel := context.WithTimeout(context.Background(), goWait)
	defer cancel()
	live, err := media.OpenURL(ctx, cam.URL(), media.URLOptions{
		Timeout: 2 * time.Second, ReconnectBaseDelay: 100 * time.Millisecond, ReconnectMaxDelay: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	const ch = "rtsp-camera"
	startGoMasterAV(t, st, ch, live.Video, live.Audio, channel.STUNAndTURN)
	browser := newBrowser(t)
	viewer := openTab(t, browser, "viewer", st.PageURL(map[string]string{
		"view": "viewer", "channelName": ch, "clientId": "page-viewer", "sendVideo": "false",
		"sendAudio": "false", "openDataChannel": "false", "candidateFilter": "loopback",
	}))
	viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 0`, goWait)
	f1 := mustEval[float64](viewer, `kvsTest.framesDecoded()`)
	viewer.waitJS(`kvsTest.framesDecoded() > `+itoa(int(f1)+30), goWait)
	local := mustEval[string](viewer, `kvsTest.descriptions().master.local`)

	cam.Stop()
	deadline := time.Now().Add(goWait)
	for live.Status().State != media.LiveReconnecting {
		if time.Now().After(deadline) {
			t.Fatal("the stream did not see the camera go")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	f2 := mustEval[float64](viewer, `kvsTest.framesDecoded()`)
	if err := cam.Start(); err != nil {
		t.Fatal(err)
	}
	viewer.waitJS(`kvsTest.framesDecoded() > `+itoa(int(f2)+30), goWait)
	if s := mustEval[string](viewer, `kvsTest.state`); s != "connected" {
		t.Errorf("page state %q after the camera came back, want connected", s)
	}
	if again := mustEval[string](viewer, `kvsTest.descriptions().master.local`); again != local {
		t.Error("the page made a new offer: the camera drop reached the peer connection")
	}
	if c := mustEval[string](viewer, `kvsTest.stats.peers.master.videoCodecIn`); !strings.EqualFold(c, "video/H264") {
		t.Errorf("page decodes %q, want video/H264", c)
	}
}

// TestBrowserViewerFFmpegRTP: ffmpeg (Debian's) sends H.264 as RTP to the
// master, which passes it to the page in Chromium.
func TestBrowserViewerFFmpegRTP(t *testing.T) {
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg is not installed (.ci/run installs it)")
		}
		t.Skip("ffmpeg not installed (apt-get install -y ffmpeg)")
	}
	st := startStack(t, localkvs.Limits{})
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	sdp := filepath.Join(t.TempDir(), "cam.sdp")
	fctx, stop := context.WithCancel(context.Background())
	cmd := exec.CommandContext(fctx, bin, "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
		"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-bf", "0", "-g", "30", "-pix_fmt", "yuv420p",
		"-an", "-f", "rtp", "-sdp_file", sdp, fmt.Sprintf("rtp://127.0.0.1:%d?pkt_size=1200", port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stop(); _ = cmd.Wait() }()
	deadline := time.Now().Add(goWait)
	for {
		if b, err := os.ReadFile(sdp); err == nil && strings.Contains(string(b), "m=video") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ffmpeg wrote no SDP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), goWait)
	defer cancel()
	live, err := media.OpenURL(ctx, fmt.Sprintf("rtp://127.0.0.1:%d", port), media.URLOptions{SDP: sdp})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	const ch = "ffmpeg-rtp"
	startGoMasterAV(t, st, ch, live.Video, nil, channel.STUNAndTURN)
	browser := newBrowser(t)
	viewer := openTab(t, browser, "viewer", st.PageURL(map[string]string{
		"view": "viewer", "channelName": ch, "clientId": "page-viewer", "sendVideo": "false",
		"sendAudio": "false", "openDataChannel": "false", "candidateFilter": "loopback",
	}))
	viewer.waitJS(`kvsTest.videoWidth() > 0 && kvsTest.framesDecoded() > 0`, goWait)
	f1 := mustEval[float64](viewer, `kvsTest.framesDecoded()`)
	viewer.waitJS(`kvsTest.framesDecoded() > `+itoa(int(f1)+30), goWait)
	if w := mustEval[float64](viewer, `kvsTest.videoWidth()`); w != 640 {
		t.Errorf("video width %v, want ffmpeg's 640", w)
	}
}
