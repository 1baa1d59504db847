package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/internal/tcpproxy"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

type options struct {
	bin                  string
	channels, viewers    int
	duration, period     time.Duration
	dropAt, goAwayAt     time.Duration
	rate                 time.Duration // one message per client (to each peer) this often
	warmup               time.Duration
	jsonOut, heapDir     string
	goals                bool
	settle, eligibleSpan time.Duration
}

func main() {
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	var o options
	short := flag.Bool("short", false, "the CI run: 20 channels, 75 s, a restart, a GO_AWAY and a drop every 25 s")
	flag.StringVar(&o.bin, "bin", "", "kvswebrtc binary (default: go build ./cmd/kvswebrtc)")
	flag.IntVar(&o.channels, "channels", 100, "signaling channels")
	flag.IntVar(&o.viewers, "viewers", 3, "viewers per channel")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to run")
	flag.DurationVar(&o.period, "restart-every", time.Minute, "kill -9 and restart serve this often")
	flag.DurationVar(&o.dropAt, "drop-at", 40*time.Second, "drop every TCP connection (fault proxy) this long into each period")
	flag.DurationVar(&o.goAwayAt, "go-away-after", 20*time.Second, "serve sends GO_AWAY this long after each connect (--max-duration/--go-away-lead)")
	flag.DurationVar(&o.rate, "interval", time.Second, "each client sends a message to each of its peers this often")
	flag.DurationVar(&o.warmup, "warmup", 70*time.Second, "the start's memory is measured this long in (after the first restart: every structure is in place)")
	flag.StringVar(&o.jsonOut, "json", "", "also write the figures to this file")
	flag.StringVar(&o.heapDir, "heapprofile", "", "write the clients' heap profiles at the start and the end into this directory (go tool pprof -base start.pprof end.pprof)")
	goals := flag.Bool("goals", true, "fail when a goal is missed (p99 reconnect after a restart under 2 s, memory growth under 10%); off with -short")
	flag.Parse()
	if *short {
		o.channels, o.duration, o.period, o.dropAt, o.goAwayAt, o.warmup = 20, 75*time.Second, 25*time.Second, 17*time.Second, 8*time.Second, 30*time.Second
		seen := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { seen[f.Name] = true })
		if !seen["goals"] {
			*goals = false
		}
	}
	o.goals = *goals
	o.settle, o.eligibleSpan = 8*time.Second, 3*time.Second
	r, err := run(o)
	if err != nil {
		log.Fatal(err)
	}
	r.print(os.Stdout)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if fails := r.failures(o.goals); len(fails) > 0 {
		for _, f := range fails {
			fmt.Println("FAIL:", f)
		}
		os.Exit(1)
	}
	fmt.Println("PASS")
}

// buildCLI builds ./cmd/kvswebrtc into dir.
func buildCLI(dir string) (string, error) {
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	out := filepath.Join(dir, "kvswebrtc")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/kvswebrtc")
	cmd.Dir, cmd.Stderr = root, os.Stderr
	return out, cmd.Run()
}

// service is the serve process the harness kills and restarts.
type service struct {
	bin, dir, addr string
	args           []string
	logf           *os.File
	mu             sync.Mutex
	cmd            *exec.Cmd
}

func (s *service) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, append([]string{"serve", "--addr", s.addr, "--data", s.dir, "--no-turn", "--log-level", "warn"}, s.args...)...)
	cmd.Stdout, cmd.Stderr = s.logf, s.logf
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL=")
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	go cmd.Wait()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("serve did not listen on %s within 20 s (log: %s)", s.addr, s.logf.Name())
}

// kill is kill -9.
func (s *service) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.cmd.Process.Kill()
		for i := 0; i < 200 && procAlive(s.cmd.Process.Pid); i++ {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func (s *service) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func run(o options) (*report, error) {
	tmp, err := os.MkdirTemp("", "kvswebrtc-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if o.bin == "" {
		log.Printf("building the CLI")
		if o.bin, err = buildCLI(tmp); err != nil {
			return nil, fmt.Errorf("go build: %w", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(tmp, "serve.log"))
	if err != nil {
		return nil, err
	}
	maxDur := o.goAwayAt + 30*time.Second
	svc := &service{bin: o.bin, dir: filepath.Join(tmp, "data"), addr: addr, logf: logf,
		args: []string{"--max-duration", maxDur.String(), "--go-away-lead", (maxDur - o.goAwayAt).String()}}
	if err := svc.start(); err != nil {
		return nil, err
	}
	defer svc.kill()

	ctx := context.Background()
	kv := kinesisvideo.NewFromConfig(aws.Config{
		Region:       localkvs.DefaultRegion,
		BaseEndpoint: aws.String("http://" + addr),
		Credentials:  credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
	})
	arns := make([]string, o.channels)
	for i := range arns {
		out, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{
			ChannelName: aws.String(fmt.Sprintf("soak-%03d", i)), ChannelType: types.ChannelTypeSingleMaster})
		if err != nil {
			return nil, fmt.Errorf("creating channel %d: %w", i, err)
		}
		arns[i] = *out.ChannelARN
	}
	proxy, err := tcpproxy.New(addr)
	if err != nil {
		return nil, err
	}
	defer proxy.Close()

	h := newHarness(o, "ws://"+proxy.Addr())
	log.Printf("serve on %s, clients through the fault proxy %s: %d channels x (1 master + %d viewers) = %d clients",
		addr, proxy.Addr(), o.channels, o.viewers, o.channels*(1+o.viewers))
	if err := h.connect(arns); err != nil {
		return nil, err
	}
	start := time.Now()
	h.startTime = start
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.sendLoop(stop) }()
	go func() { defer wg.Done(); h.finalizeLoop(stop) }()

	r := &report{Options: o.summary()}
	sample := func(label string) sideSample {
		// Two collections empty the sync.Pools (WebSocket buffers), and
		// FreeOSMemory returns what is free: what is left is what the
		// clients hold.
		runtime.GC()
		runtime.GC()
		debug.FreeOSMemory()
		if o.heapDir != "" {
			if f, err := os.Create(filepath.Join(o.heapDir, label+".pprof")); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		return sideSample{Label: label, At: time.Since(start).Round(time.Second).String(),
			Service: procSample(svc.pid()), Clients: selfSample()}
	}
	warm := time.NewTimer(o.warmup)
	defer warm.Stop()
	end := time.NewTimer(o.duration)
	defer end.Stop()
	period := time.NewTicker(o.period)
	defer period.Stop()
	dropT := time.NewTimer(o.dropAt)
	defer dropT.Stop()
	restarts := 0
loop:
	for {
		select {
		case <-warm.C:
			r.Memory = append(r.Memory, sample("start"))
			log.Printf("start: service %s, clients %s", r.Memory[0].Service, r.Memory[0].Clients)
		case <-dropT.C:
			log.Printf("dropping every TCP connection (fault proxy)")
			h.fault("drop")
			proxy.Cut()
		case <-period.C:
			restarts++
			r.ServiceBeforeKill = append(r.ServiceBeforeKill, procSample(svc.pid()))
			log.Printf("kill -9 serve (%d), restarting on %s", restarts, addr)
			h.fault("restart")
			svc.kill()
			if err := svc.start(); err != nil {
				return nil, err
			}
			dropT.Reset(o.dropAt)
		case <-end.C:
			break loop
		}
	}
	r.Memory = append(r.Memory, sample("end"))
	close(stop)
	wg.Wait()
	h.waitOpen(30 * time.Second)
	time.Sleep(o.settle + o.eligibleSpan) // let the last messages arrive and be finalized
	h.finalizeAll()
	notOpen := h.notOpen()
	h.close()
	r.fill(h, restarts)
	r.NotOpenAtEnd = notOpen
	return r, nil
}

// procAlive reports whether pid still runs (not a zombie we reaped).
func procAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}
