package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	os.Exit(mainArgs(os.Args[1:], os.Stdout, os.Stderr))
}

func mainArgs(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.Server, "server", "", `"" or "embedded": build and start the server as a child process; else its URL (http://HOST:PORT of kvswebrtc serve, ws://HOST:PORT of the bare relay)`)
	fs.BoolVar(&cfg.Bare, "bare", false, "drive the bare WebSocket relay (bench/relay/echo) instead of kvswebrtc serve")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "pid of an external -server, to read its RSS and CPU time")
	fs.StringVar(&cfg.Repo, "repo", "", "module root to build the child from (default: from `go env GOMOD`)")
	fs.StringVar(&cfg.Region, "region", "", "region of the service (default us-west-2)")
	fs.IntVar(&cfg.Channels, "channels", 1000, "channels")
	fs.IntVar(&cfg.Viewers, "viewers", 9, "viewers per channel (plus one master)")
	fs.Float64Var(&cfg.Rate, "rate", 10000, "relayed messages per second, both directions together")
	fs.DurationVar(&cfg.Warmup, "warmup", 3*time.Second, "relay this long before measuring")
	fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "measured relay time")
	fs.DurationVar(&cfg.Drain, "drain", 5*time.Second, "wait at most this long for messages still in flight")
	fs.IntVar(&cfg.Payload, "payload", 512, "base64 message payload bytes")
	fs.IntVar(&cfg.SDPEvery, "sdp-every", 10, "every Nth viewer message is an SDP_OFFER (0: none)")
	fs.BoolVar(&cfg.NoReply, "no-reply", false, "masters do not answer; viewers send the whole -rate")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", 32, "connects in flight")
	fs.IntVar(&cfg.Senders, "senders", 16, "goroutines writing the viewers' messages")
	fs.StringVar(&cfg.Profile, "profile", "", "run bench/relay/profserve (the service plus pprof) instead of kvswebrtc serve and save its profiles in this directory")
	fs.BoolVar(&cfg.Cleanup, "cleanup", true, "delete the created channels from an external -server afterwards")
	jsonOut := fs.Bool("json", false, "print the result as JSON instead of text")
	var copts clusterOpts
	registerClusterFlags(fs, &copts) // -cluster, -compare, -kill: cluster.go
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadgen: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Log = stderr
	if err := cfg.validate(); err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 2
	}
	if copts.Nodes > 0 {
		return mainCluster(cfg, copts, stdout, stderr, *jsonOut)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 1
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		report(stdout, &cfg, res)
	}
	return 0
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

func mib(k int64) string {
	if k == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f MiB", float64(k)/1024)
}

// report prints res as text.
func report(w io.Writer, cfg *config, r *result) {
	fmt.Fprintf(w, "target:            %s (server pid %d)\n", r.Target, r.ServerPID)
	fmt.Fprintf(w, "load:              %d channels x (1 master + %d viewers), %.0f msg/s asked, %d B payload, %s measured\n",
		cfg.Channels, cfg.Viewers, cfg.Rate, cfg.Payload, cfg.Duration)
	fmt.Fprintf(w, "connections held:  %d of %d at start, %d at end (%d never opened)\n", r.Held, r.Conns, r.HeldEnd, r.Failed)
	fmt.Fprintf(w, "connect rate:      %.0f conn/s (%d in %s; connect p50 %s, p99 %s; %d retries after ClientLimitExceeded)\n",
		float64(r.Conns-r.Failed)/r.ConnectTime.Seconds(), r.Conns-r.Failed, r.ConnectTime.Round(time.Millisecond),
		ms(r.ConnectP50), ms(r.ConnectP99), r.ConnectRetries)
	fmt.Fprintf(w, "messages:          %d sent, %d received in the window: %.0f msg/s relayed; %d lost, %d errors, %d pacer skips\n",
		r.Sent, r.Received, float64(r.Received)/r.Window.Seconds(), r.Sent-min(r.Sent, r.Received), r.Errors, r.PacerLag)
	if r.ErrorSample != "" {
		fmt.Fprintf(w, "first error:       %s\n", r.ErrorSample)
	}
	fmt.Fprintf(w, "relay latency:     p50 %s, p90 %s, p99 %s, p99.9 %s, max %s\n", ms(r.P50), ms(r.P90), ms(r.P99), ms(r.P999), ms(r.Max))
	fmt.Fprintf(w, "server RSS:        %s idle, %s holding, %s at end of relay, %s peak\n", mib(r.RSSBaseKiB), mib(r.RSSHeldKiB), mib(r.RSSEndKiB), mib(r.HWMKiB))
	if r.ServerCPU > 0 {
		fmt.Fprintf(w, "server CPU:        %.1f%% of one core during relay\n", 100*r.ServerCPU.Seconds()/(cfg.Warmup+cfg.Duration).Seconds())
	}
	fmt.Fprintf(w, "machine:           load average %s before, %s after; other processes %.0f%% of one core during relay; RLIMIT_NOFILE %d\n",
		r.LoadAvgBefore, r.LoadAvgAfter, 100*r.OthersCPU.Seconds()/(cfg.Warmup+cfg.Duration).Seconds(), r.NoFile)
}
