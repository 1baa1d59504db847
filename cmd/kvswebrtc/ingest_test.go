package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// startServeCmd runs `kvswebrtc serve` in-process on a free port and points
// the AWS_* environment at it, as its printed lines say; it returns the
// endpoint.
func startServeCmd(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runServe(ctx, []string{"--addr", "127.0.0.1:0", "--data", t.TempDir(), "--log-level", "warn", "--turn-allow-loopback"}, pw, &errOut)
		pw.Close()
	}()
	endpoint := ""
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "export" && strings.HasPrefix(f[1], "AWS_ENDPOINT_URL=") {
			endpoint = strings.TrimPrefix(f[1], "AWS_ENDPOINT_URL=")
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if endpoint == "" {
		cancel()
		t.Fatalf("serve printed no endpoint: %s", errOut.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("serve did not stop")
		}
	})
	isolateAWS(t)
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_REGION", "us-west-2")
	t.Setenv("AWS_ACCESS_KEY_ID", localkvs.DevAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", localkvs.DevSecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	return endpoint
}

// mustRun runs a kvswebrtc command line and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := runCmd(args...)
	if code != 0 {
		t.Fatalf("kvswebrtc %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// TestIngestThroughServe is the README's recording walk-through: serve,
// stream create, channel storage, master --ingest for a few seconds (with
// a viewer --join-storage-session meanwhile), fragments, fragments --save. The fragments' durations add up to the time
// streamed (within one key frame interval of the clip, 1 s), and ffprobe
// sees in the saved MKV one H.264 track of the clip's size and one Opus
// track, both of that duration.
func TestIngestThroughServe(t *testing.T) {
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffprobe is not installed; CI installs Debian's ffmpeg")
		}
		t.Skip("ffprobe is not installed (apt-get install ffmpeg)")
	}
	startServeCmd(t)
	mustRun(t, "stream", "create", "doorbell", "--retention", "24h")
	mustRun(t, "channel", "create", "doorbell")
	if out := mustRun(t, "channel", "storage", "doorbell", "--stream", "doorbell"); !strings.Contains(out, "records to") {
		t.Errorf("channel storage printed %q", out)
	}

	// master --ingest until it has recorded for about 5 s.
	ctx, cancel := context.WithCancel(context.Background())
	var mout, merr syncBuffer
	done := make(chan int, 1)
	started := time.Now()
	go func() { done <- runMaster(ctx, []string{"--channel", "doorbell", "--ingest"}, &mout, &merr) }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(mout.String(), "recording") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the master did not start recording:\n%s%s", mout.String(), merr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	recording := time.Now()
	// Meanwhile a viewer of the storage session plays the master's media
	// through the media server.
	if out := mustRun(t, "viewer", "--channel", "doorbell", "--join-storage-session", "--duration", "3s"); !strings.Contains(out, "time to first frame  ") || strings.Contains(out, "first frame  none") {
		t.Errorf("viewer --join-storage-session got no frame:\n%s", out)
	}
	time.Sleep(time.Until(recording.Add(5 * time.Second)))
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("master exited %d:\n%s%s", code, mout.String(), merr.String())
	}
	streamed := time.Since(recording)
	t.Logf("master: %s to recording, streamed %s", recording.Sub(started), streamed)

	var list []struct {
		Number string
		Size   int64
		Length time.Duration
	}
	if err := json.Unmarshal([]byte(mustRun(t, "fragments", "--stream", "doorbell", "--output", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for _, f := range list {
		total += f.Length
	}
	if d := streamed - total; d < -time.Second || d > time.Second {
		t.Errorf("%d fragments of %s in all, streamed %s: more than one key frame interval (1 s) apart", len(list), total, streamed)
	}

	out := filepath.Join(t.TempDir(), "out.mkv")
	if s := mustRun(t, "fragments", "--stream", "doorbell", "--save", out); !strings.Contains(s, "saved "+strconv.Itoa(len(list))+" fragments") {
		t.Errorf("fragments --save printed %q", s)
	}
	probe, err := exec.Command(ffprobe, "-v", "error", "-show_streams", "-show_packets", "-of", "json", out).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var p struct {
		Streams []struct {
			Index     int
			CodecName string `json:"codec_name"`
			Width     int
			Height    int
			Channels  int
		}
		Packets []struct {
			StreamIndex int    `json:"stream_index"`
			PTSTime     string `json:"pts_time"`
		}
	}
	if err := json.Unmarshal(probe, &p); err != nil {
		t.Fatal(err)
	}
	codecs := map[string]int{}
	for _, s := range p.Streams {
		codecs[s.CodecName]++
		switch s.CodecName {
		case "h264":
			if s.Width != 320 || s.Height != 240 {
				t.Errorf("H.264 track %dx%d, want the clip's 320x240", s.Width, s.Height)
			}
		case "opus":
			if s.Channels != 2 {
				t.Errorf("Opus track with %d channels, want 2", s.Channels)
			}
		}
	}
	if len(p.Streams) != 2 || codecs["h264"] != 1 || codecs["opus"] != 1 {
		t.Fatalf("ffprobe streams %+v, want one h264 and one opus", p.Streams)
	}
	// Each track's duration, from its packets, is the recording's.
	first, last := map[int]float64{}, map[int]float64{}
	count := map[int]int{}
	for _, pk := range p.Packets {
		ts, err := strconv.ParseFloat(pk.PTSTime, 64)
		if err != nil {
			continue
		}
		if _, ok := first[pk.StreamIndex]; !ok || ts < first[pk.StreamIndex] {
			first[pk.StreamIndex] = ts
		}
		last[pk.StreamIndex] = max(last[pk.StreamIndex], ts)
		count[pk.StreamIndex]++
	}
	for _, s := range p.Streams {
		d := time.Duration((last[s.Index] - first[s.Index]) * float64(time.Second))
		if diff := total - d; diff < 0 || diff > time.Second {
			t.Errorf("%s track: %d packets over %s, want about the %s recorded", s.CodecName, count[s.Index], d, total)
		}
	}
}
