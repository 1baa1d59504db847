package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
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
		rss, _, _ := memKiB(cl.nodes[i].pid())
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
	root, err := moduleRoot(repo)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kvs-loadgen-cluster-")
	if err != nil {
		return nil, err
	}
	cl := &clusterChildren{dir: dir}
	bin := filepath.Join(dir, "kvswebrtc")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/kvswebrtc")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go build ./cmd/kvswebrtc: %w\n%s", err, out)
	}
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
		c := &child{done: make(chan error, 1)}
		c.cmd = exec.Command(bin, args...)
		c.cmd.Stderr = logs
		stdout, err := c.cmd.StdoutPipe()
		if err != nil {
			cl.stop()
			return nil, err
		}
		if err := c.cmd.Start(); err != nil {
			cl.stop()
			return nil, err
		}
		ready := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "endpoint:"); ok {
					ready <- strings.TrimSpace(u)
				}
			}
			_, _ = io.Copy(io.Discard, stdout)
		}()
		go func() { c.done <- c.cmd.Wait() }()
		cl.nodes = append(cl.nodes, c)
		select {
		case c.url = <-ready:
		case err := <-c.done:
			cl.stop()
			return nil, fmt.Errorf("node %d exited before it was ready: %v", i+1, err)
		case <-time.After(30 * time.Second):
			cl.stop()
			return nil, fmt.Errorf("node %d printed no endpoint within 30 s", i+1)
		}
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
		out[i], _ = cpuTime(c.pid())
	}
	return out
}

func (cl *clusterChildren) stop() {
	var wg sync.WaitGroup
	for _, c := range cl.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-c.done: // killed already
				return
			default:
			}
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-c.done:
			case <-time.After(15 * time.Second):
				_ = c.cmd.Process.Kill()
				<-c.done
			}
		}()
	}
	wg.Wait()
	os.RemoveAll(cl.dir)
}

// recoveryConfig is one recovery run.
type recoveryConfig struct {
	endpoints []string // control-plane URLs of the nodes
	region    string
	channels  int
	viewers   int
	rate      float64 // per viewer
	before    time.Duration
	after     time.Duration
	kill      func(node int) error
	log       io.Writer
}

// recoveryResult is what a recovery run measured. A message counts for
// "online" when its recipient was connected when it was sent and neither
// its sender's connection nor its recipient's dropped in the second after;
// the others are counted apart: in flight on a connection that dropped
// (the killed node's, or one cut on a starved machine), or sent while the
// recipient was connecting again (kept by the cluster for it, or not).
type recoveryResult struct {
	Clients         int           // connections of the killed node
	Reconnected     int           // of those, connected again within the run
	ReconnectP50    time.Duration // from the kill to connected again
	ReconnectMax    time.Duration
	Sent            int // numbered messages sent, both ways
	OnlineSent      int
	OnlineLost      int
	InFlightLost    int // sent less than a second before a drop of its sender's or recipient's connection, not received
	OfflineSent     int // sent while the recipient was connecting again
	OfflineReceived int // of those, received after it connected again (kept for it)
	Duplicates      int
	Reordered       int // online messages received after a later one of the same sender
}

func (r *recoveryResult) report(w io.Writer) {
	fmt.Fprintf(w, "--- recovery after a node kill\n")
	fmt.Fprintf(w, "clients of the killed node: %d, connected again %d: p50 %s, max %s after the kill\n",
		r.Clients, r.Reconnected, ms(r.ReconnectP50), ms(r.ReconnectMax))
	fmt.Fprintf(w, "messages:          %d sent; to online recipients %d, lost %d (reordered %d); in flight on a connection that dropped lost %d; sent while the recipient reconnected %d, delivered later %d; duplicates %d\n",
		r.Sent, r.OnlineSent, r.OnlineLost, r.Reordered, r.InFlightLost, r.OfflineSent, r.OfflineReceived, r.Duplicates)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func unb64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// recPeer is a client of the recovery run.
type recPeer struct {
	ch     int
	id     string // "" for the master
	node   int    // the node it is connected to
	mu     sync.Mutex
	ws     *websocket.Conn
	online atomic.Bool
	drops  []drop // its connection's drops, each with when it was connected again
	gen    int    // connections so far
	killed bool   // connected to the killed node when it was killed
}

// drop is a connection lost at down and made again at up (zero: never).
type drop struct{ down, up time.Time }

// downAt reports whether p was not connected at t.
func (p *recPeer) downAt(t time.Time) bool {
	for _, d := range p.drops {
		if !t.Before(d.down) && (d.up.IsZero() || t.Before(d.up)) {
			return true
		}
	}
	return false
}

// dropsSoonAfter reports whether p's connection dropped within a second after t.
func (p *recPeer) dropsSoonAfter(t time.Time) bool {
	for _, d := range p.drops {
		if d.down.After(t) && d.down.Sub(t) < time.Second {
			return true
		}
	}
	return false
}

// recMsg is one numbered message: from a viewer to its master (echo
// false) or the master's echo back.
type recMsg struct {
	sentAt   time.Time
	viewer   *recPeer
	echo     bool
	gen      int // the recipient's connection when sent (-1: not connected)
	received int
	recvAt   time.Time
}

// runRecovery runs the recovery measurement on the nodes of rc.
func runRecovery(ctx context.Context, rc recoveryConfig) (*recoveryResult, error) {
	const killed = 1 // node 2
	if float64(rc.viewers)*rc.rate > 20 {
		return nil, fmt.Errorf("%d viewers x %g candidates/s: a master would echo more than the 20 ICE candidates per second a connection may send", rc.viewers, rc.rate)
	}
	if len(rc.endpoints) < 3 {
		return nil, errors.New("the recovery run needs 3 nodes or more (the masters', the killed one's, another)")
	}
	kv := kvsClient(rc.endpoints[0], rc.region)
	run := time.Now().UnixMilli()
	arns := make([]string, rc.channels)
	for i := range arns {
		out, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String(fmt.Sprintf("recovery-%d-%d", run, i))})
		if err != nil {
			return nil, fmt.Errorf("CreateSignalingChannel: %w", err)
		}
		arns[i] = aws.ToString(out.ChannelARN)
	}
	signer, err := sigv4.New(rc.region, sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""), sigv4.AllowInsecureEndpoint())
	if err != nil {
		return nil, err
	}
	dial := func(p *recPeer, node int) (*websocket.Conn, error) {
		q := map[string]string{sigv4.ParamChannelARN: arns[p.ch]}
		if p.id != "" {
			q[sigv4.ParamClientID] = p.id
		}
		u, err := signer.PresignURL(ctx, wssOf(rc.endpoints[node]), q, time.Now())
		if err != nil {
			return nil, err
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
		if err == nil {
			ws.SetReadLimit(1 << 20)
		}
		return ws, err
	}

	var mu sync.Mutex // guards msgs
	var msgs []*recMsg
	byKey := map[string]*recMsg{} // "<viewer>|<ch>|<n>|<echo>"
	key := func(v *recPeer, n int, echo bool) string {
		return v.id + "|" + strconv.Itoa(v.ch) + "|" + strconv.Itoa(n) + "|" + strconv.FormatBool(echo)
	}
	record := func(v *recPeer, n int, echo bool, gen int) {
		m := &recMsg{sentAt: time.Now(), viewer: v, echo: echo, gen: gen}
		mu.Lock()
		msgs = append(msgs, m)
		byKey[key(v, n, echo)] = m
		mu.Unlock()
	}
	received := func(v *recPeer, n int, echo bool) {
		mu.Lock()
		if m := byKey[key(v, n, echo)]; m != nil {
			m.received++
			if m.received == 1 {
				m.recvAt = time.Now()
			}
		}
		mu.Unlock()
	}
	stopping := atomic.Bool{}
	var wg sync.WaitGroup
	masters := make([]*recPeer, rc.channels)
	viewers := map[string]*recPeer{} // "<ch>|<id>"
	var all []*recPeer
	write := func(p *recPeer, b []byte) error {
		p.mu.Lock()
		ws := p.ws
		p.mu.Unlock()
		if ws == nil {
			return errors.New("not connected")
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return ws.Write(wctx, websocket.MessageText, b)
	}
	frame := func(n int, recipient string) []byte {
		payload := fmt.Sprintf(`{"candidate":"n %d","sdpMid":"0","sdpMLineIndex":0}`, n)
		m := map[string]string{"action": actionICE, "messagePayload": b64(payload)}
		if recipient != "" {
			m["recipientClientId"] = recipient
		}
		b, _ := json.Marshal(m)
		return b
	}
	// readLoop reads p's frames; a viewer whose connection drops connects
	// again to the next node (the killed one refuses), as a client with a
	// list of endpoints does.
	var readLoop func(p *recPeer)
	readLoop = func(p *recPeer) {
		defer wg.Done()
		for {
			p.mu.Lock()
			ws := p.ws
			p.mu.Unlock()
			_, data, err := ws.Read(ctx)
			if err != nil {
				if stopping.Load() {
					return
				}
				p.online.Store(false)
				p.mu.Lock()
				p.drops = append(p.drops, drop{down: time.Now()})
				p.mu.Unlock()
				// A viewer tries the next node; a master (cut, say, as too
				// slow on a starved machine) connects again to node 1.
				node := p.node
				for !stopping.Load() {
					if p.id != "" {
						if node = (node + 1) % len(rc.endpoints); node == 0 && len(rc.endpoints) > 2 {
							continue // keep node 1 for the masters, as the load does
						}
					}
					ws2, err := dial(p, node)
					if err != nil {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					p.mu.Lock()
					p.ws, p.node = ws2, node
					p.drops[len(p.drops)-1].up = time.Now()
					p.gen++
					p.mu.Unlock()
					p.online.Store(true)
					break
				}
				continue
			}
			var f struct {
				MessageType, MessagePayload, SenderClientID string
			}
			if json.Unmarshal(data, &f) != nil || f.MessageType != actionICE {
				continue
			}
			var c struct{ Candidate string }
			raw, _ := unb64(f.MessagePayload)
			json.Unmarshal(raw, &c)
			var n int
			if _, err := fmt.Sscanf(c.Candidate, "n %d", &n); err != nil {
				continue
			}
			if p.id == "" { // the master: note it, echo it
				v := viewers[strconv.Itoa(p.ch)+"|"+f.SenderClientID]
				if v == nil {
					continue
				}
				received(v, n, false)
				gen := -1
				if v.online.Load() {
					v.mu.Lock()
					gen = v.gen
					v.mu.Unlock()
				}
				record(v, n, true, gen)
				if err := write(p, frame(n, v.id)); err != nil && !stopping.Load() {
					fmt.Fprintf(rc.log, "recovery: master write: %v\n", err)
				}
			} else {
				received(p, n, true)
			}
		}
	}
	for ch := 0; ch < rc.channels; ch++ {
		m := &recPeer{ch: ch, node: 0}
		ws, err := dial(m, 0)
		if err != nil {
			return nil, fmt.Errorf("master %d: %w", ch, err)
		}
		m.ws = ws
		m.online.Store(true)
		masters[ch] = m
		all = append(all, m)
		for k := 0; k < rc.viewers; k++ {
			node := 1 + (k+ch)%(len(rc.endpoints)-1)
			v := &recPeer{ch: ch, id: fmt.Sprintf("viewer-%d", k), node: node}
			viewers[strconv.Itoa(ch)+"|"+v.id] = v
			all = append(all, v)
		}
	}
	// Viewers connect a round apart per channel (3 connects per second per channel).
	for k := 0; k < rc.viewers; k++ {
		if k > 0 {
			time.Sleep(400 * time.Millisecond)
		}
		for ch := 0; ch < rc.channels; ch++ {
			v := viewers[strconv.Itoa(ch)+"|"+fmt.Sprintf("viewer-%d", k)]
			ws, err := dial(v, v.node)
			if err != nil {
				return nil, fmt.Errorf("viewer %s of %d: %w", v.id, ch, err)
			}
			v.ws = ws
			v.online.Store(true)
		}
	}
	for _, p := range all {
		wg.Add(1)
		go readLoop(p)
	}
	defer func() {
		stopping.Store(true)
		for _, p := range all {
			p.mu.Lock()
			if p.ws != nil {
				p.ws.CloseNow()
			}
			p.mu.Unlock()
		}
		wg.Wait()
	}()
	// Each viewer sends numbered candidates at rc.rate, spread in time.
	var vs []*recPeer
	for _, p := range all {
		if p.id != "" {
			vs = append(vs, p)
		}
	}
	start := time.Now()
	end := start.Add(rc.before + rc.after)
	var killAt time.Time
	var sendWG sync.WaitGroup
	for i, v := range vs {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			period := time.Duration(float64(time.Second) / rc.rate)
			time.Sleep(period * time.Duration(i) / time.Duration(len(vs)))
			t := time.NewTicker(period)
			defer t.Stop()
			for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
				<-t.C
				if !v.online.Load() {
					continue // connecting again: a client would not send meanwhile
				}
				record(v, n, false, 0)
				_ = write(v, frame(n, ""))
			}
		}()
	}
	time.Sleep(rc.before)
	for _, v := range vs {
		v.mu.Lock()
		v.killed = v.node == killed
		v.mu.Unlock()
	}
	killAt = time.Now()
	if err := rc.kill(killed); err != nil {
		return nil, fmt.Errorf("killing node %d: %w", killed+1, err)
	}
	fmt.Fprintf(rc.log, "killed node %d\n", killed+1)
	sendWG.Wait()
	time.Sleep(3 * time.Second) // drain
	stopping.Store(true)

	res := &recoveryResult{}
	var recon []time.Duration
	for _, v := range vs {
		v.mu.Lock()
		if v.killed {
			res.Clients++
			for _, d := range v.drops {
				if !d.down.Before(killAt) && !d.up.IsZero() {
					res.Reconnected++
					recon = append(recon, d.up.Sub(killAt))
					break
				}
			}
		}
		v.mu.Unlock()
	}
	slices.Sort(recon)
	if len(recon) > 0 {
		res.ReconnectP50, res.ReconnectMax = recon[len(recon)/2], recon[len(recon)-1]
	}
	for _, p := range all {
		p.mu.Lock() // the read loops are done: no more drops
	}
	defer func() {
		for _, p := range all {
			p.mu.Unlock()
		}
	}()
	mu.Lock()
	defer mu.Unlock()
	last := map[string]time.Time{} // per sender and direction: the latest receipt among online messages, for order
	for _, m := range msgs {
		res.Sent++
		if m.received > 1 {
			res.Duplicates += m.received - 1
		}
		v, mst := m.viewer, masters[m.viewer.ch]
		sender, recipient := v, mst
		if m.echo {
			sender, recipient = mst, v
		}
		switch {
		case recipient.downAt(m.sentAt) || (m.echo && m.gen < 0): // sent to a recipient connecting again
			res.OfflineSent++
			if m.received > 0 {
				res.OfflineReceived++
			}
			continue
		case sender.dropsSoonAfter(m.sentAt) || recipient.dropsSoonAfter(m.sentAt): // on a socket that died
			if m.received == 0 {
				res.InFlightLost++
			}
			continue
		}
		res.OnlineSent++
		if m.received == 0 {
			res.OnlineLost++
			if os.Getenv("LOADGEN_DEBUG") != "" { // which ones, to find out why
				fmt.Fprintf(rc.log, "lost: %s ch %d echo %v gen %d sent %s after the kill\n", v.id, v.ch, m.echo, m.gen, m.sentAt.Sub(killAt))
			}
			continue
		}
		k := v.id + "|" + strconv.Itoa(v.ch) + "|" + strconv.FormatBool(m.echo)
		if m.recvAt.Before(last[k]) {
			res.Reordered++
		}
		if m.recvAt.After(last[k]) {
			last[k] = m.recvAt
		}
	}
	return res, nil
}
