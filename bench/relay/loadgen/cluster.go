package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kvswebrtc/kvswebrtc/bench/internal/procfs"
)

// The cluster benchmark (bench/README.md, "Cluster"): with -cluster N the
// generator starts N `kvswebrtc serve` nodes as child processes, each with
// an embedded NATS server, the N forming one JetStream cluster; it puts
// the masters on the first node and their viewers on the others, and runs
// the relay load through them. -compare runs the same load against one
// node first, in the same invocation. -kill then measures recovery: fresh
// channels, masters on node 1, viewers on the others exchanging numbered
// candidates with them; node 2 is killed (SIGKILL) and its viewers connect
// again to the next live node; the result is how long they took, and
// which messages were lost.

// clusterOpts are the -cluster flags.
type clusterOpts struct {
	Nodes     int
	Compare   bool
	Kill      bool
	KillAfter time.Duration
	RecChans  int
	RecViews  int
	RecRate   float64 // numbered candidates per second per viewer
	RecAfter  time.Duration
}

func registerClusterFlags(fs *flag.FlagSet, o *clusterOpts) {
	fs.IntVar(&o.Nodes, "cluster", 0, "start this many serve nodes on an embedded NATS JetStream cluster (masters on the first, viewers on the others)")
	fs.BoolVar(&o.Compare, "compare", false, "with -cluster: run the same load against one node first")
	fs.BoolVar(&o.Kill, "kill", false, "with -cluster: then measure recovery after killing node 2")
	fs.DurationVar(&o.KillAfter, "kill-after", 5*time.Second, "with -kill: exchange this long before the kill")
	fs.DurationVar(&o.RecAfter, "recover-for", 10*time.Second, "with -kill: exchange this long after the kill")
	fs.IntVar(&o.RecChans, "kill-channels", 100, "with -kill: channels of the recovery run")
	fs.IntVar(&o.RecViews, "kill-viewers", 4, "with -kill: viewers per channel of the recovery run")
	fs.Float64Var(&o.RecRate, "kill-rate", 4, "with -kill: numbered candidates per second each viewer sends, each echoed by its master (viewers x rate at most 20, the service's ICE rate per connection)")
}

// clusterResult is what the cluster benchmark measured.
type clusterResult struct {
	Single   *result          `json:",omitempty"` // -compare: one node
	Cluster  *result          // the nodes
	NodeCPU  []time.Duration  // CPU time of each node during the cluster relay
	NodeRSS  []int64          // KiB, each node at the end of the relay
	Recovery *recoveryResult  `json:",omitempty"`
	Nodes    []string         // the nodes' endpoints
	Logs     map[string]int64 `json:"-"`
}

// mainCluster runs the cluster benchmark and prints its result.
func mainCluster(cfg config, o clusterOpts, stdout, stderr io.Writer, jsonOut bool) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.Nodes < 2 {
		fmt.Fprintln(stderr, "loadgen: -cluster needs at least 2 nodes")
		return 2
	}
	if cfg.Bare || (cfg.Server != "" && cfg.Server != "embedded") {
		fmt.Fprintln(stderr, "loadgen: -cluster starts its own nodes: it goes without -bare and -server")
		return 2
	}
	res := &clusterResult{}
	if o.Compare {
		fmt.Fprintln(stderr, "=== one node")
		r, err := run(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "loadgen: one node: %v\n", err)
			return 1
		}
		res.Single = r
	}
	fmt.Fprintf(stderr, "=== %d nodes\n", o.Nodes)
	cl, err := startClusterChildren(ctx, cfg.Repo, o.Nodes, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %v\n", err)
		return 1
	}
	defer cl.stop()
	for _, n := range cl.nodes {
		res.Nodes = append(res.Nodes, n.url)
	}
	ccfg := cfg
	ccfg.Server, ccfg.ServerPID = cl.nodes[0].url, cl.nodes[0].pid()
	ccfg.Cleanup = false // the nodes go away with their data
	ccfg.wssFor = cl.spread
	cpu0 := cl.cpu()
	r, err := run(ctx, ccfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadgen: %d nodes: %v\n", o.Nodes, err)
		return 1
	}
	res.Cluster = r
	cpu1 := cl.cpu()
	for i := range cpu1 {
		res.NodeCPU = append(res.NodeCPU, cpu1[i]-cpu0[i])
		rss, _, _ := procfs.MemKiB(cl.nodes[i].pid())
		res.NodeRSS = append(res.NodeRSS, rss)
	}
	if o.Kill {
		fmt.Fprintln(stderr, "=== recovery after a node kill")
		rec, err := runRecovery(ctx, recoveryConfig{
			endpoints: res.Nodes, region: cfg.Region, channels: o.RecChans, viewers: o.RecViews,
			rate: o.RecRate, before: o.KillAfter, after: o.RecAfter, log: stderr,
			kill: func(i int) error { return cl.nodes[i].cmd.Process.Kill() },
		})
		if err != nil {
			fmt.Fprintf(stderr, "loadgen: recovery: %v\n", err)
			return 1
		}
		res.Recovery = rec
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		return 0
	}
	if res.Single != nil {
		fmt.Fprintln(stdout, "--- one node")
		report(stdout, &cfg, res.Single)
	}
	fmt.Fprintf(stdout, "--- %d nodes (masters on node 1, viewers on the others)\n", o.Nodes)
	report(stdout, &ccfg, res.Cluster)
	var cpus, rss []string
	total := time.Duration(0)
	for i := range res.NodeCPU {
		total += res.NodeCPU[i]
		cpus = append(cpus, fmt.Sprintf("%.0f%%", 100*res.NodeCPU[i].Seconds()/(cfg.Warmup+cfg.Duration).Seconds()))
		rss = append(rss, mib(res.NodeRSS[i]))
	}
	fmt.Fprintf(stdout, "nodes:             CPU %s of one core (%.0f%% together), RSS %s\n", strings.Join(cpus, " "),
		100*total.Seconds()/(cfg.Warmup+cfg.Duration).Seconds(), strings.Join(rss, " "))
	if res.Single != nil {
		fmt.Fprintf(stdout, "cluster vs one:    p50 %s vs %s, p99 %s vs %s\n", ms(res.Cluster.P50), ms(res.Single.P50), ms(res.Cluster.P99), ms(res.Single.P99))
	}
	if rec := res.Recovery; rec != nil {
		rec.report(stdout)
	}
	return 0
}

// clusterChildren are the serve nodes of a cluster benchmark.
type clusterChildren struct {
	dir   string
	nodes []*child
}

// startClusterChildren builds kvswebrtc once and starts n serve nodes on
// free ports, each with an embedded NATS server routed to the others and
// its state in memory (JetStream in a temporary directory), and waits
// until each answers /readyz.
func startClusterChildren(ctx context.Context, repo string, n int, logs io.Writer) (*clusterChildren, error) {
	dir, bin, err := buildServer(ctx, repo, "kvs-loadgen-cluster-", "./cmd/kvswebrtc", "kvswebrtc")
	if err != nil {
		return nil, err
	}
	cl := &clusterChildren{dir: dir}
	var routes []string
	for i := 0; i < n; i++ {
		a, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		routes = append(routes, a)
	}
	for i := 0; i < n; i++ {
		addr, err := freePort()
		if err != nil {
			cl.stop()
			return nil, err
		}
		args := []string{"serve", "-addr", addr, "-data=", "-log-level", "warn",
			"-node-name", "n" + strconv.Itoa(i+1), "-cluster-name", "loadgen", "-cluster-listen", routes[i],
			"-routes", strings.Join(routes, ","), "-jetstream-dir", filepath.Join(dir, "js"+strconv.Itoa(i+1))}
		c := &child{}
		if err := c.start(fmt.Sprintf("node %d", i+1), bin, args, false, logs); err != nil {
			cl.stop()
			return nil, err
		}
		cl.nodes = append(cl.nodes, c)
	}
	deadline := time.Now().Add(90 * time.Second)
	for i, c := range cl.nodes {
		for {
			resp, err := http.Get(c.url + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				cl.stop()
				return nil, fmt.Errorf("node %d is not ready after 90 s", i+1)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	fmt.Fprintf(logs, "%d nodes ready: %s\n", n, strings.Join(cl.urls(), " "))
	return cl, nil
}

func (cl *clusterChildren) urls() []string {
	var out []string
	for _, c := range cl.nodes {
		out = append(out, c.url)
	}
	return out
}

// spread is the WSS endpoint of a peer: node 1 for the masters, the
// others in turn for the viewers.
func (cl *clusterChildren) spread(p *peer) string {
	return wssOf(spreadNode(cl.urls(), p))
}

func spreadNode(urls []string, p *peer) string {
	if p.id == "" || len(urls) == 1 {
		return urls[0]
	}
	k, _ := strconv.Atoi(strings.TrimPrefix(p.id, "viewer-"))
	return urls[1+(k+p.ch)%(len(urls)-1)]
}

// wssOf turns http://host:port into ws://host:port.
func wssOf(u string) string {
	return strings.Replace(strings.Replace(u, "https://", "wss://", 1), "http://", "ws://", 1)
}

// cpu returns the CPU time of each node so far.
func (cl *clusterChildren) cpu() []time.Duration {
	out := make([]time.Duration, len(cl.nodes))
	for i, c := range cl.nodes {
		out[i], _ = procfs.CPUTime(c.pid())
	}
	return out
}

func (cl *clusterChildren) stop() {
	var wg sync.WaitGroup
	for _, c := range cl.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop() // a node has no dir of its own: only cl.dir
		}()
	}
	wg.Wait()
	os.RemoveAll(cl.dir)
}
