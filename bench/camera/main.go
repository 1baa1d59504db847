// Command camera measures what a master that streams a camera costs and
// adds, on loopback, through an embedded local KVS-compatible service.
//
// The camera is an RTSP server in this process (internal/testcam) serving
// an H.264 clip made by ffmpeg (Debian's; default 1920x1080, 30 fps,
// 4 Mbit/s, no B-frames) plus the embedded Opus clip, in real time.
//
//   - latency: a master in a child process (this program with -master)
//     pulls the camera with media.OpenURL and sends to one Go viewer in
//     this process. The child notes when each video frame is complete at
//     the master (the moment the live Source hands it over, right after
//     its last RTP packet arrived) and writes "hash time" lines; the viewer
//     notes when the same frame is complete at its side (media.Frame
//     Received). Both clocks are this machine's CLOCK_REALTIME. The
//     difference, matched by the hash of the frame's largest NAL unit,
//     is the latency the master and the WebRTC path add.
//   - cost: the same master child serves -viewers Go viewers for
//     -duration; the harness samples the child's CPU time (utime+stime of
//     /proc/<pid>/stat) and resident memory (VmRSS, VmHWM), and counts the
//     frames each viewer got against the frames the camera sent.
//
// Usage (from the module root; needs ffmpeg):
//
//	go run ./bench/camera [-viewers 10] [-duration 60s] [-size 1920x1080] [-bitrate 4M]
package main

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // -pprof
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/kvswebrtc/kvswebrtc/bench/internal/procfs"
	"github.com/kvswebrtc/kvswebrtc/internal/testcam"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

const channelName = "camera-bench"

func main() {
	var (
		viewers  = flag.Int("viewers", 10, "Go viewers for the cost run")
		duration = flag.Duration("duration", 60*time.Second, "length of the cost run")
		latRun   = flag.Duration("latency-duration", 20*time.Second, "length of the latency run (one viewer)")
		size     = flag.String("size", "1920x1080", "clip frame size")
		bitrate  = flag.String("bitrate", "4M", "clip bit rate (ffmpeg -b:v)")
		asMaster = flag.String("master", "", "internal: run as the master child against this service URL, pulling -camera")
		camURL   = flag.String("camera", "", "internal: the RTSP camera URL for -master")
		frames   = flag.String("frames", "", "internal: the child writes \"hash unixnano\" lines here")
		nackHist = flag.Int("nack-history", 0, "the master's peer.Settings.NACKHistory (0: pion's 1024)")
		pprofAt  = flag.String("pprof", "", "serve the master child's net/http/pprof on this loopback `ADDR` (e.g. 127.0.0.1:6060)")
	)
	flag.Parse()
	log.SetFlags(0)
	if *asMaster != "" {
		if *pprofAt != "" {
			go func() { log.Println(http.ListenAndServe(*pprofAt, nil)) }()
		}
		runMaster(*asMaster, *camURL, *frames, *nackHist)
		return
	}
	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s %s/%s, load average %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, cmp.Or(procfs.LoadAvg(), "?"))

	dir, err := os.MkdirTemp("", "camera-bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	clip := filepath.Join(dir, "clip.h264")
	w, h, _ := strings.Cut(*size, "x")
	ff := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size="+w+"x"+h+":rate=30",
		"-t", "10", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-bf", "0", "-g", "30",
		"-b:v", *bitrate, "-maxrate", *bitrate, "-bufsize", *bitrate, "-pix_fmt", "yuv420p", "-f", "h264", clip)
	ff.Stderr = os.Stderr
	if err := ff.Run(); err != nil {
		log.Fatalf("making the clip with ffmpeg: %v", err)
	}
	fi, _ := os.Stat(clip)
	fmt.Printf("clip: %sx%s 30 fps H.264 high, no B-frames, %.2f Mbit/s (%d bytes for 10 s), looped + the embedded Opus\n",
		w, h, float64(fi.Size())*8/10/1e6, fi.Size())

	var sent atomic.Int64 // video frames the camera sent
	cam, err := testcam.Start(testcam.Config{Video: func() media.Source {
		s, err := media.Open(clip, media.Options{Loop: true, FrameRate: 30})
		if err != nil {
			log.Fatal(err)
		}
		return countSource{s, &sent}
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer cam.Close()
	srv, err := localkvs.Start(localkvs.Config{Limits: localkvs.Limits{ConnectsPerSecond: -1, ICEConfigPerSecond: -1}}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	framesFile := filepath.Join(dir, "master-frames.txt")
	child := exec.Command(os.Args[0], "-master", srv.URL(), "-camera", cam.URL(), "-frames", framesFile, "-pprof", *pprofAt, "-nack-history", strconv.Itoa(*nackHist))
	child.Stderr = os.Stderr
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	ready := bufio.NewScanner(stdout)
	if !ready.Scan() || ready.Text() != "ready" {
		log.Fatalf("master child did not start: %q", ready.Text())
	}
	go func() {
		for ready.Scan() {
		}
	}()

	// Latency: one viewer.
	recv := map[string][]time.Time{} // the clip loops: a frame comes back every 10 s
	var mu sync.Mutex
	v := newViewer(srv, "latency", func(f media.Frame) {
		k := frameKey(f.Sample.Data)
		mu.Lock()
		recv[k] = append(recv[k], f.Received)
		mu.Unlock()
	}, nil)
	time.Sleep(*latRun)
	v.Close()
	time.Sleep(200 * time.Millisecond)
	lat := latencies(framesFile, recv)
	fmt.Printf("\nlatency, camera frame complete at the master -> complete at a Go viewer (1 viewer, %v, %d frames matched):\n", *latRun, len(lat))
	printDist(lat)

	// Cost: N viewers for the duration.
	var vs []*peer.Viewer
	counts := make([]atomic.Int64, *viewers)
	for i := range *viewers {
		vs = append(vs, newViewer(srv, fmt.Sprintf("cost-%d", i), nil, &counts[i]))
	}
	time.Sleep(3 * time.Second) // every viewer connected and past its first frame
	cpu0, _ := procfs.CPUTime(child.Process.Pid)
	sent0 := sent.Load()
	var got0 []int64
	for i := range counts {
		got0 = append(got0, counts[i].Load())
	}
	start := time.Now()
	var rssMax int64
	for time.Since(start) < *duration {
		time.Sleep(time.Second)
		if rss, _, _ := procfs.MemKiB(child.Process.Pid); rss > rssMax {
			rssMax = rss
		}
	}
	elapsed := time.Since(start)
	cpu1, _ := procfs.CPUTime(child.Process.Pid)
	sentN := sent.Load() - sent0
	rss, hwm, _ := procfs.MemKiB(child.Process.Pid)
	fmt.Printf("\ncost, %d Go viewers for %v:\n", *viewers, elapsed.Round(time.Second))
	cpu := cpu1 - cpu0
	fmt.Printf("  master CPU: %.1f%% of one core (%.2f s CPU in %.1f s)\n", 100*cpu.Seconds()/elapsed.Seconds(), cpu.Seconds(), elapsed.Seconds())
	fmt.Printf("  master RSS: %.1f MB at the end, %.1f MB at most while sampled, peak (VmHWM) %.1f MB\n", float64(rss)/1024, float64(rssMax)/1024, float64(hwm)/1024)
	fmt.Printf("  camera sent %d video frames in the window\n", sentN)
	for i := range counts {
		got := counts[i].Load() - got0[i]
		fmt.Printf("  viewer cost-%d: %d frames (%+d against the camera)\n", i, got, got-sentN)
	}
	for _, v := range vs {
		v.Close()
	}
}

// countSource counts the samples read from a Source.
type countSource struct {
	media.Source
	n *atomic.Int64
}

func (c countSource) Next(ctx context.Context) (pmedia.Sample, error) {
	s, err := c.Source.Next(ctx)
	if err == nil {
		c.n.Add(1)
	}
	return s, err
}

// frameKey is the hash of the largest NAL unit of an Annex-B access unit:
// the picture itself, which every hop passes unchanged.
func frameKey(au []byte) string {
	var best []byte
	for _, n := range splitAnnexB(au) {
		if len(n) > len(best) {
			best = n
		}
	}
	sum := sha256.Sum256(best)
	return hex.EncodeToString(sum[:8])
}

func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				for end > start && b[end-1] == 0 {
					end--
				}
				out = append(out, b[start:end])
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

func newViewer(srv *localkvs.Server, id string, onFrame func(media.Frame), count *atomic.Int64) *peer.Viewer {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sink := media.SinkFunc(func(f media.Frame) error {
		if onFrame != nil {
			onFrame(f)
		}
		if count != nil {
			count.Add(1)
		}
		return nil
	})
	v, err := peer.NewViewer(ctx, peer.ViewerConfig{
		ChannelConfig: peer.ChannelConfig{AWS: srv.AWSConfig(), Channel: channelName},
		ClientID:      id,
		VideoSinks:    []media.Sink{sink},
		Settings:      loopback(),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := v.WaitFirstFrame(ctx); err != nil {
		log.Fatalf("viewer %s: %v", id, err)
	}
	return v
}

func loopback() peer.Settings {
	return peer.Settings{
		NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4},
		IPFilter:     func(ip net.IP) bool { return ip.IsLoopback() },
	}
}

// latencies matches the master's frame times with the viewer's: each
// master time with the viewer's first receipt of the same frame after it
// and within 5 s (the clip repeats every 10 s).
func latencies(path string, recv map[string][]time.Time) []time.Duration {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	var out []time.Duration
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, ns, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(ns, 10, 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, n)
		for _, r := range recv[key] {
			if d := r.Sub(at); d >= 0 && d < 5*time.Second {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

func printDist(d []time.Duration) {
	if len(d) == 0 {
		fmt.Println("  no frame matched")
		return
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	fmt.Printf("  p50 %v  p90 %v  p99 %v  max %v\n", q(0.50).Round(10*time.Microsecond), q(0.90).Round(10*time.Microsecond),
		q(0.99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond))
}

// runMaster is the child: a master pulling the camera, noting when each
// video frame is complete at it.
func runMaster(serviceURL, camURL, framesPath string, nackHistory int) {
	ctx := context.Background()
	st, err := media.OpenURL(ctx, camURL, media.URLOptions{})
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Create(framesPath)
	if err != nil {
		log.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	var mu sync.Mutex
	go func() {
		for range time.Tick(200 * time.Millisecond) {
			mu.Lock()
			_ = bw.Flush()
			mu.Unlock()
		}
	}()
	video := noteSource{Source: st.Video, note: func(key string, t time.Time) {
		mu.Lock()
		fmt.Fprintf(bw, "%s %d\n", key, t.UnixNano())
		mu.Unlock()
	}}
	settings := loopback()
	settings.NACKHistory = nackHistory
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsFor(serviceURL), Channel: channelName, CreateIfMissing: true},
		Video:         video,
		Audio:         st.Audio,
		Settings:      settings,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready")
	select {}
}

// awsFor is an aws.Config for the local service at url with the
// development key pair (the child has no *localkvs.Server to ask).
func awsFor(url string) aws.Config {
	return aws.Config{
		Region:       localkvs.DefaultRegion,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
	}
}

// noteSource notes the time each sample is handed over.
type noteSource struct {
	media.Source
	note func(key string, t time.Time)
}

func (n noteSource) Next(ctx context.Context) (pmedia.Sample, error) {
	s, err := n.Source.Next(ctx)
	if err == nil {
		n.note(frameKey(s.Data), time.Now())
	}
	return s, err
}

// Live keeps the wrapped camera Source live for the Broadcaster.
func (n noteSource) Live() bool { return media.IsLive(n.Source) }
