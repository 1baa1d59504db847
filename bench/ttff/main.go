// Command ttff measures time to first frame and master memory for the Go
// master and viewer of package peer, on loopback, through an embedded
// local KVS-compatible service (package localkvs).
//
// It starts localkvs in this process and a Go master in a child process
// (this program run with -master), streaming the embedded VP8 + Opus clip.
// Then, for each NAT traversal mode (STUN/TURN, and TURN-only when the
// service lists a TURN server), it runs -runs viewers one after the other:
// each is created (channel resolved), started, and closed as soon as its
// first complete video key frame has arrived. Time to first frame counts
// from Viewer.Start; "with resolve" counts from NewViewer, control-plane
// calls included. Finally it measures the master's resident memory
// (VmRSS of /proc/<pid>/status, and its peak VmHWM) with 1 and then 10
// viewers streaming.
//
// Usage (from the module root):
//
//	go run ./bench/ttff [-runs 20] [-settle 5s]
package main

import (
	"bufio"
	"cmp"
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/bench/internal/procfs"
	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

const channelName = "ttff-bench"

func main() {
	var (
		runs     = flag.Int("runs", 20, "viewers per NAT mode for time to first frame")
		settle   = flag.Duration("settle", 5*time.Second, "streaming time before reading the master's memory")
		asMaster = flag.String("master", "", "internal: run as the master child process against this service URL")
		gap      = flag.Duration("gap", 400*time.Millisecond, "pause between runs (plus a random 0-1 s)")
		verbose  = flag.Bool("v", false, "print each run's timings")
		fast     = flag.Bool("fast-start", true, "internal: the master's fast start (GOP cache)")
		nat      = flag.String("nat", "stun-turn", "internal: the master's NAT traversal mode")
		region   = flag.String("region", "us-west-2", "internal: the service's region")
	)
	flag.Parse()
	log.SetFlags(0)
	if *asMaster != "" {
		mode, err := channel.ParseNATTraversal(*nat)
		if err != nil {
			log.Fatal(err)
		}
		runMaster(*asMaster, *region, mode, *fast)
		return
	}

	srv, err := localkvs.Start(localkvs.Config{
		Limits: localkvs.Limits{ConnectsPerSecond: -1, ICEConfigPerSecond: -1},
		// Every peer is on 127.0.0.1: the TURN relays must reach loopback peers.
		TURN: localkvs.TURNConfig{AllowLoopbackPeers: true},
	}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	fmt.Printf("machine: %d CPUs (GOMAXPROCS %d), %s %s/%s, load average %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, cmp.Or(procfs.LoadAvg(), "?"))

	awsCfg := srv.AWSConfig()
	ctx := context.Background()
	resolver, err := channel.NewResolver(awsCfg, channel.ResolverOptions{})
	if err != nil {
		log.Fatal(err)
	}

	for _, series := range []struct {
		mode channel.NATTraversal
		fast bool
	}{{channel.STUNAndTURN, true}, {channel.TURNOnly, true}, {channel.STUNAndTURN, false}} {
		mode := series.mode
		name := mode.String()
		if !series.fast {
			name += ", fast start off"
		}
		if mode == channel.TURNOnly {
			res, err := resolver.Resolve(ctx, channelName, channel.RoleViewer, channel.Options{ClientID: "probe"})
			if err != nil {
				log.Fatal(err)
			}
			if len(res.WebRTCConfiguration(channel.TURNOnly).ICEServers) == 0 {
				fmt.Printf("\n%s: TURN not available (the service's ICE config lists no TURN server)\n", name)
				continue
			}
		}
		stop, _ := startMaster(srv, mode, series.fast)
		var ttff, withResolve []time.Duration
		var failures int
		for i := range *runs {
			v, err := newViewer(ctx, awsCfg, resolver, fmt.Sprintf("ttff-%s-%v-%02d", mode, series.fast, i), mode)
			if err != nil {
				log.Fatal(err)
			}
			d, err := firstFrame(v)
			if err != nil {
				failures++
				fmt.Printf("  run %d: %v\n", i, err)
			} else {
				ttff = append(ttff, d)
				withResolve = append(withResolve, d+resolveTime(v))
			}
			st := v.Stats()
			_ = v.Close()
			// Viewers arriving back to back would meet the master's pacing
			// of its answers under the service's 5 SDP/s limit; each run
			// measures a viewer joining an idle, streaming master, at a
			// random point of the clip's 1 s key-frame interval.
			time.Sleep(*gap + rand.N(time.Second))
			if i == 0 {
				fmt.Printf("\n%s, first run:\n%s\n", name, st)
			}
			if *verbose {
				fmt.Printf("  run %2d: offer-to-answer %s, ice %s, connected %s, first frame %s\n",
					i, ms(st.OfferToAnswer), ms(st.ICEConnect), ms(st.Connect), ms(st.TimeToFirstFrame))
			}
		}
		fmt.Printf("\n%s: time to first frame over %d runs (%d failed)\n", name, len(ttff), failures)
		fmt.Printf("  from Viewer.Start:        p50 %s  p95 %s  min %s  max %s\n",
			ms(pct(ttff, 50)), ms(pct(ttff, 95)), ms(pct(ttff, 0)), ms(pct(ttff, 100)))
		fmt.Printf("  with resolve (NewViewer): p50 %s  p95 %s\n", ms(pct(withResolve, 50)), ms(pct(withResolve, 95)))
		stop()
	}

	stop, pid := startMaster(srv, channel.STUNAndTURN, true)
	defer stop()
	idle, _ := memStatus(pid)
	fmt.Printf("\nmaster: pid %d, idle: VmRSS %s\n", pid, idle)

	// Master memory with 1 and with 10 viewers streaming.
	var viewers []*peer.Viewer
	for _, n := range []int{1, 10} {
		for len(viewers) < n {
			v, err := newViewer(ctx, awsCfg, resolver, fmt.Sprintf("mem-%02d", len(viewers)), channel.STUNAndTURN)
			if err != nil {
				log.Fatal(err)
			}
			if _, err := firstFrame(v); err != nil {
				log.Fatalf("memory viewer %d: %v", len(viewers), err)
			}
			viewers = append(viewers, v)
		}
		time.Sleep(*settle)
		var frames uint64
		for _, v := range viewers {
			frames += v.Stats().Frames
		}
		rss, hwm := memStatus(pid)
		fmt.Printf("\nmaster with %d viewer(s) streaming for %s: VmRSS %s, VmHWM %s (viewers got %d video frames)\n",
			n, *settle, rss, hwm, frames)
	}
	for _, v := range viewers {
		_ = v.Close()
	}
}

// resolveTime is the time of the control-plane calls the viewer made
// before Start (zero for the steps served from the resolver's cache).
func resolveTime(v *peer.Viewer) time.Duration {
	s := v.Stats().Signaling
	return s.Describe + s.Create + s.Endpoint + s.ICEConfig
}

func awsConfig(url, region string) aws.Config {
	return aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
	}
}

// loopback keeps the peers' host candidates on 127.0.0.1.
func loopback() peer.Settings {
	return peer.Settings{
		NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4},
		IPFilter:     func(ip net.IP) bool { return ip.IsLoopback() },
	}
}

func newViewer(ctx context.Context, awsCfg aws.Config, r *channel.Resolver, id string, mode channel.NATTraversal) (*peer.Viewer, error) {
	v, err := peer.NewViewer(ctx, peer.ViewerConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsCfg, Channel: channelName, Resolver: r, NAT: mode},
		ClientID:      id,
		Settings:      loopback(),
	})
	if err != nil {
		return nil, err
	}
	if err := v.Start(ctx); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

func firstFrame(v *peer.Viewer) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return v.WaitFirstFrame(ctx)
}

// startMaster runs the master in a child process, so that its memory is
// its own, and returns a function that stops it, and its pid.
func startMaster(srv *localkvs.Server, mode channel.NATTraversal, fastStart bool) (func(), int) {
	self, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	child := exec.Command(self, "-master", srv.URL(), "-region", srv.Region(), "-nat", mode.String(), fmt.Sprintf("-fast-start=%v", fastStart))
	child.Stderr = os.Stderr
	out, err := child.StdoutPipe()
	if err != nil {
		log.Fatal(err)
	}
	if err := child.Start(); err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		log.Fatalf("master did not start: %q %v", sc.Text(), sc.Err())
	}
	go func() { // keep draining the child's output
		for sc.Scan() {
		}
	}()
	return func() {
		_ = child.Process.Signal(os.Interrupt)
		_ = child.Wait()
	}, child.Process.Pid
}

// runMaster is the child process: a Go master streaming the embedded clip
// until interrupted.
func runMaster(url, region string, mode channel.NATTraversal, fastStart bool) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsConfig(url, region), Channel: channelName, CreateIfMissing: true, NAT: mode},
		Video:         media.DefaultVideo(media.Options{Loop: true}),
		Audio:         media.DefaultAudio(media.Options{Loop: true}),
		Settings:      loopback(),

		DisableFastStart: !fastStart,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("ready")
	<-ctx.Done()
	_ = m.Close()
}

// memStatus returns VmRSS and VmHWM of process pid as /proc/PID/status
// prints them ("51200 kB"), or "?" when they cannot be read.
func memStatus(pid int) (rss, hwm string) {
	r, h, err := procfs.MemKiB(pid)
	if err != nil {
		return "?", "?"
	}
	return fmt.Sprintf("%d kB", r), fmt.Sprintf("%d kB", h)
}

// pct is the p-th percentile (nearest rank) of ds; 0 and 100 give min and max.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
