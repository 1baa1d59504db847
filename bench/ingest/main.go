// Command ingest measures WebRTC ingestion into the local service: a Go
// master (package peer, MasterConfig.Ingestion) sends an H.264 + Opus clip
// to the media server of a localkvs service running in a child process
// (this program with -serve), which records it as MKV fragments in a data
// directory. It reports the child's CPU time and peak RSS (the media
// server's cost: the child does nothing else), the frames and bytes the
// master sent against what the media server received and stored, the MKV
// bytes written, and the time from JoinStorageSession to the first stored
// fragment.
//
// Without -video it makes the benchmark clip with ffmpeg (libx264): 10 s of
// testsrc2 with noise (so that the encoder spends its bit rate) at
// 1920x1080, 30 fps, 4 Mbit/s, a key frame every second, no B-frames,
// looped; and 10 s of Opus at 48 kbit/s.
//
// Usage (from the module root):
//
//	go run ./bench/ingest [-duration 60s] [-video clip.h264 -audio clip.ogg]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/archive"
	"github.com/kvswebrtc/kvswebrtc/bench/internal/procfs"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

func main() {
	var (
		duration = flag.Duration("duration", 60*time.Second, "how long to ingest")
		video    = flag.String("video", "", "H.264 Annex-B clip (default: made with ffmpeg, 1080p30 4 Mbit/s)")
		audio    = flag.String("audio", "", "Ogg Opus clip (default: made with ffmpeg)")
		serve    = flag.String("serve", "", "internal: run the service with this data directory")
	)
	flag.Parse()
	if *serve != "" {
		runService(*serve)
		return
	}
	dir, err := os.MkdirTemp("", "ingest-bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if *video == "" || *audio == "" {
		*video, *audio = makeClips(dir)
	}

	child := exec.Command(os.Args[0], "-serve", filepath.Join(dir, "data"))
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		log.Fatal(err)
	}
	defer child.Process.Kill()
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	lines.Scan()
	endpoint := strings.TrimSpace(lines.Text())

	ctx := context.Background()
	cfg := aws.Config{Region: localkvs.DefaultRegion, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, "")}
	kv := kinesisvideo.NewFromConfig(cfg)
	ch, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("bench")})
	must(err)
	st, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("bench"), DataRetentionInHours: aws.Int32(24)})
	must(err)
	_, err = kv.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
		ChannelARN:                ch.ChannelARN,
		MediaStorageConfiguration: &types.MediaStorageConfiguration{Status: types.MediaStorageConfigurationStatusEnabled, StreamARN: st.StreamARN},
	})
	must(err)

	v, err := media.Open(*video, media.Options{Loop: true})
	must(err)
	a, err := media.Open(*audio, media.Options{Loop: true})
	must(err)
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: cfg, Channel: "bench"},
		Video:         v, Audio: a, Ingestion: peer.IngestOn,
	})
	must(err)
	connected := make(chan struct{}, 1)
	m.OnIngestion(func(ev peer.IngestionEvent) {
		if ev.State == peer.IngestConnected {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	})
	cpu0, _ := procfs.CPUTime(child.Process.Pid)
	t0 := time.Now()
	must(m.Start(ctx))
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		log.Fatal("the master did not connect to the media server")
	}
	time.Sleep(*duration)
	sent, _ := m.IngestionStats()
	stats := ask(stdin, lines, aws.ToString(ch.ChannelARN))
	cpu1, _ := procfs.CPUTime(child.Process.Pid)
	wall := time.Since(t0)
	m.Close()
	_, hwm, _ := procfs.MemKiB(child.Process.Pid)

	ac, err := archive.New(cfg, archive.Options{})
	must(err)
	list, err := ac.ListFragments(ctx, "bench", nil)
	must(err)
	var stored int64
	var length time.Duration
	for _, f := range list {
		stored += f.Size
		length += f.Length
	}
	cpu := cpu1 - cpu0
	fmt.Printf("ingested %s of %s + %s for %s (wall %s)\n", length.Round(time.Millisecond), filepath.Base(*video), filepath.Base(*audio), *duration, wall.Round(time.Millisecond))
	fmt.Printf("service (media server) CPU: %s = %.1f%% of one core; peak RSS %.1f MiB\n", cpu, 100*cpu.Seconds()/wall.Seconds(), float64(hwm)/1024)
	fmt.Printf("master sent:        %d frames, %d bytes\n", sent.FramesSent, sent.BytesSent)
	fmt.Printf("media server got:   %d frames, %d bytes (dropped %d)\n", stats.FramesReceived, stats.BytesReceived, stats.FramesDropped)
	fmt.Printf("stored (at the read): %d frames, %d frame bytes in %d fragments, %d MKV bytes written\n",
		stats.FramesStored, stats.FrameBytesStored, stats.Fragments, stats.BytesWritten)
	if stats.FrameBytesStored > 0 {
		fmt.Printf("container overhead: %.3f%% (MKV bytes written / frame bytes stored - 1)\n", 100*(float64(stats.BytesWritten)/float64(stats.FrameBytesStored)-1))
	}
	fmt.Printf("after close: %d fragments, %d bytes, %s\n", len(list), stored, length.Round(time.Millisecond))
	fmt.Printf("JoinStorageSession to first stored fragment: %s\n", stats.JoinToFirstFragment.Round(time.Millisecond))
}

// ask asks the child for the storage session's counters.
func ask(stdin interface{ Write([]byte) (int, error) }, lines *bufio.Scanner, arn string) localkvs.StorageStats {
	fmt.Fprintln(stdin, arn)
	if !lines.Scan() {
		log.Fatal("the service child stopped")
	}
	var st localkvs.StorageStats
	must(json.Unmarshal(lines.Bytes(), &st))
	return st
}

// runService is the child: the service on a free loopback port, its URL
// on stdout, then the StorageStats of each channel ARN read on stdin.
func runService(dataDir string) {
	srv, err := localkvs.Start(localkvs.Config{DataDir: dataDir, TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}}, "127.0.0.1:0")
	must(err)
	defer srv.Close()
	fmt.Println(srv.URL())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		st, _ := srv.StorageStats(strings.TrimSpace(in.Text()))
		b, _ := json.Marshal(st)
		fmt.Println(string(b))
	}
}

func makeClips(dir string) (video, audio string) {
	video, audio = filepath.Join(dir, "1080p30-4M.h264"), filepath.Join(dir, "audio.ogg")
	run := func(args ...string) {
		var e bytes.Buffer
		cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...)
		cmd.Stderr = &e
		if err := cmd.Run(); err != nil {
			log.Fatalf("ffmpeg: %v: %s", err, e.String())
		}
	}
	run("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30:duration=10", "-vf", "noise=alls=8:allf=t",
		"-c:v", "libx264", "-profile:v", "high", "-bf", "0", "-g", "30", "-keyint_min", "30",
		"-b:v", "4M", "-minrate", "4M", "-maxrate", "4M", "-bufsize", "2M", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-bsf:v", "h264_mp4toannexb", "-f", "h264", video)
	run("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=10",
		"-ac", "2", "-c:a", "libopus", "-b:a", "48k", "-frame_duration", "20", "-page_duration", "20000", audio)
	return video, audio
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
