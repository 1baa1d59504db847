package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/bench/internal/procfs"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// config is one benchmark run.
type config struct {
	Server          string // "" or "embedded": build and start a child; else a URL
	Bare            bool   // drive the bare relay instead of kvswebrtc serve
	ServerPID       int    // pid of an external server, to read its RSS (0: not read)
	Repo            string // module root for the child build ("" = from `go env GOMOD`)
	Region          string
	Channels        int
	Viewers         int
	Rate            float64 // relayed messages per second, both directions together
	Warmup          time.Duration
	Duration        time.Duration
	Drain           time.Duration
	Payload         int // base64 payload bytes per message
	SDPEvery        int // every SDPEvery-th viewer message is an SDP_OFFER (answered by SDP_ANSWER)
	NoReply         bool
	DialConcurrency int
	Senders         int
	Profile         string // directory for the profiles of a profserve child ("": none)
	Cleanup         bool   // delete the channels afterwards (external serve only)
	Log             io.Writer

	wssFor func(p *peer) string // each peer's WSS endpoint (-cluster: cluster.go); nil: the one GetSignalingChannelEndpoint answers
}

// result is what a run measured.
type result struct {
	Target         string
	Conns          int // connections asked for
	Held           int // connections open when relaying started
	HeldEnd        int // connections still open at the end
	Failed         int // connections that never opened
	ConnectRetries int // connects refused by the per-channel connect rate and retried
	ConnectTime    time.Duration
	ConnectP50     time.Duration
	ConnectP99     time.Duration

	Window      time.Duration
	Sent        uint64 // messages sent with a send time in the window
	Received    uint64 // of those, received
	Late        uint64 // of those, received after the drain (not counted)
	Errors      uint64 // write errors, unexpected frames (STATUS_RESPONSE, GO_AWAY, ...)
	ErrorSample string
	P50, P90    time.Duration
	P99, P999   time.Duration
	Max         time.Duration
	PacerLag    uint64 // sends the pacer found its queue full for (generator too slow)

	ServerPID     int
	RSSBaseKiB    int64 // before connecting
	RSSHeldKiB    int64 // all connections held, before relaying
	RSSEndKiB     int64 // end of the relay window
	HWMKiB        int64 // peak
	ServerCPU     time.Duration
	OthersCPU     time.Duration // CPU time of the other processes of the machine during the relay
	LoadAvgBefore string
	LoadAvgAfter  string
	NoFile        uint64
}

// peer is one client WebSocket.
type peer struct {
	ch    int
	id    string // viewer ClientId; "" for the master
	ws    *websocket.Conn
	alive atomic.Bool
}

// runner holds the live state of a run.
type runner struct {
	cfg      config
	log      io.Writer
	dialURL  func(ctx context.Context, p *peer) (string, error)
	channels []string // channel ARNs (or names for the bare relay)
	masters  []*peer
	viewers  []*peer // viewer-major: viewers[k*C+ch] is viewer k of channel ch

	bodies map[string]string // action -> base64 body

	winStart, winEnd atomic.Int64 // measurement window, as durations since epoch
	stopping         atomic.Bool

	lat      histogram
	sent     atomic.Uint64
	received atomic.Uint64
	errs     atomic.Uint64
	errMu    sync.Mutex
	errOne   string
	dropped  atomic.Int64
}

func (r *runner) inWindow(t time.Duration) bool {
	return int64(t) >= r.winStart.Load() && int64(t) < r.winEnd.Load()
}

func (r *runner) fail(format string, a ...any) {
	if r.errs.Add(1) == 1 {
		r.errMu.Lock()
		r.errOne = fmt.Sprintf(format, a...)
		r.errMu.Unlock()
	}
}

// run executes one benchmark: start or reach the server, create channels,
// connect everything, relay for Warmup+Duration, drain, measure.
func run(ctx context.Context, cfg config) (*result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Log
	if log == nil {
		log = io.Discard
	}
	res := &result{Target: "kvswebrtc serve", ServerPID: cfg.ServerPID, LoadAvgBefore: cmp.Or(procfs.LoadAvg(), "n/a")}
	if cfg.Bare {
		res.Target = "bare relay"
	}
	res.NoFile, _ = raiseNoFile()

	var prof *profiler
	endpoint := cfg.Server
	if endpoint == "" || endpoint == "embedded" {
		fmt.Fprintf(log, "building and starting the %s as a child process...\n", res.Target)
		c, err := startChild(ctx, cfg.Repo, cfg.Bare, cfg.Profile != "", log)
		if err != nil {
			return nil, err
		}
		defer c.stop()
		endpoint, res.ServerPID = c.url, c.pid()
		if c.prof != "" {
			if err := os.MkdirAll(cfg.Profile, 0o755); err != nil {
				return nil, err
			}
			prof = &profiler{base: c.prof, dir: cfg.Profile, log: log}
		}
	}
	r := &runner{cfg: cfg, log: log, bodies: map[string]string{}}
	for _, a := range []string{actionOffer, actionAnswer, actionICE} {
		r.bodies[a] = bodyB64(a, cfg.Payload)
	}
	r.winStart.Store(1 << 62) // nothing is in the window until it opens
	r.winEnd.Store(1 << 62)

	if cfg.Bare {
		if err := r.setupBare(endpoint); err != nil {
			return nil, err
		}
	} else {
		arns, err := r.setupKVS(ctx, endpoint)
		if err != nil {
			return nil, err
		}
		if cfg.Cleanup && cfg.Server != "" && cfg.Server != "embedded" {
			defer r.deleteChannels(endpoint, arns)
		}
	}
	pid := res.ServerPID
	sampleRSS := func() int64 {
		if pid == 0 {
			return 0
		}
		rss, _, _ := procfs.MemKiB(pid)
		return rss
	}
	res.RSSBaseKiB = sampleRSS()

	// Connect: masters first, then viewer k of every channel, round robin,
	// so that consecutive connects to one channel are a whole round apart.
	if err := r.connectAll(ctx, res); err != nil {
		return nil, err
	}
	defer r.closeAll()
	res.Held = res.Conns - res.Failed - int(r.dropped.Load())
	res.RSSHeldKiB = sampleRSS()
	fmt.Fprintf(log, "held %d/%d connections (connect %.0f/s, %d retries); server RSS %d MiB\n",
		res.Held, res.Conns, float64(res.Conns-res.Failed)/res.ConnectTime.Seconds(), res.ConnectRetries, res.RSSHeldKiB>>10)
	if res.Held == 0 {
		return res, errors.New("no connection opened")
	}
	if prof != nil {
		prof.held(ctx)
	}

	// Relay.
	var cpu0 time.Duration
	if pid != 0 {
		cpu0, _ = procfs.CPUTime(pid)
	}
	busy0, _ := procfs.BusyTime()
	self0, _ := procfs.CPUTime(os.Getpid())
	start := time.Since(epoch)
	r.winStart.Store(int64(start + cfg.Warmup))
	r.winEnd.Store(int64(start + cfg.Warmup + cfg.Duration))
	fmt.Fprintf(log, "relaying %.0f msg/s: %s warm-up, %s measured...\n", cfg.Rate, cfg.Warmup, cfg.Duration)
	if prof != nil {
		prof.startCPU(ctx, cfg.Warmup+cfg.Duration)
	}
	res.PacerLag = r.pace(ctx, start+cfg.Warmup+cfg.Duration)
	if prof != nil {
		prof.relayed(ctx)
	}
	res.RSSEndKiB = sampleRSS()
	if pid != 0 {
		cpu1, _ := procfs.CPUTime(pid)
		res.ServerCPU = cpu1 - cpu0
	}
	if busy1, err := procfs.BusyTime(); err == nil && busy0 > 0 {
		self1, _ := procfs.CPUTime(os.Getpid())
		res.OthersCPU = max(0, busy1-busy0-(self1-self0)-res.ServerCPU)
	}
	// Drain: wait for the messages of the window still in flight.
	deadline := time.Now().Add(cfg.Drain)
	for r.received.Load() < r.sent.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	res.Window = cfg.Duration
	res.Sent, res.Received = r.sent.Load(), r.received.Load()
	res.P50, res.P90 = r.lat.quantile(0.50), r.lat.quantile(0.90)
	res.P99, res.P999 = r.lat.quantile(0.99), r.lat.quantile(0.999)
	res.Max = r.lat.maxDur()
	res.HeldEnd = res.Conns - res.Failed - int(r.dropped.Load())
	r.stopping.Store(true)
	res.Late = r.received.Load() - res.Received
	res.Errors = r.errs.Load()
	r.errMu.Lock()
	res.ErrorSample = r.errOne
	r.errMu.Unlock()
	if pid != 0 {
		_, res.HWMKiB, _ = procfs.MemKiB(pid)
	}
	res.LoadAvgAfter = cmp.Or(procfs.LoadAvg(), "n/a")
	return res, nil
}

func (cfg *config) validate() error {
	switch {
	case cfg.Channels < 1:
		return fmt.Errorf("-channels %d must be >= 1", cfg.Channels)
	case cfg.Viewers < 1:
		return fmt.Errorf("-viewers %d must be >= 1", cfg.Viewers)
	case cfg.Rate <= 0:
		return fmt.Errorf("-rate %g must be > 0", cfg.Rate)
	case cfg.Duration <= 0:
		return fmt.Errorf("-duration %s must be > 0", cfg.Duration)
	case cfg.Warmup < 0:
		return fmt.Errorf("-warmup %s must be >= 0", cfg.Warmup)
	case cfg.Drain < 0:
		return fmt.Errorf("-drain %s must be >= 0", cfg.Drain)
	case cfg.Payload < 64 || cfg.Payload > 10240:
		return fmt.Errorf("-payload %d must be between 64 and 10240 (the service's limit)", cfg.Payload)
	case cfg.SDPEvery < 0:
		return fmt.Errorf("-sdp-every %d must be >= 0", cfg.SDPEvery)
	case cfg.DialConcurrency < 1:
		return fmt.Errorf("-dial-concurrency %d must be >= 1", cfg.DialConcurrency)
	case cfg.Senders < 1:
		return fmt.Errorf("-senders %d must be >= 1", cfg.Senders)
	case cfg.Profile != "" && (cfg.Bare || (cfg.Server != "" && cfg.Server != "embedded")):
		return errors.New("-profile runs its own server child: it goes without -bare and -server")
	}
	if cfg.Region == "" {
		cfg.Region = localkvs.DefaultRegion
	}
	return nil
}

// connectAll opens every connection and starts its reader.
func (r *runner) connectAll(ctx context.Context, res *result) error {
	C, V := r.cfg.Channels, r.cfg.Viewers
	order := make([]*peer, 0, C*(V+1))
	for ch := 0; ch < C; ch++ {
		p := &peer{ch: ch}
		r.masters = append(r.masters, p)
		order = append(order, p)
	}
	r.viewers = make([]*peer, C*V)
	for k := 0; k < V; k++ {
		for ch := 0; ch < C; ch++ {
			p := &peer{ch: ch, id: fmt.Sprintf("viewer-%d", k)}
			r.viewers[k*C+ch] = p
			order = append(order, p)
		}
	}
	res.Conns = len(order)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: -1, DisableCompression: true}}
	var dialLat histogram
	var retries, failed atomic.Int64
	var firstErr atomic.Value
	jobs := make(chan *peer)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < r.cfg.DialConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				for attempt := 0; ; attempt++ {
					u, err := r.dialURL(ctx, p)
					if err != nil {
						firstErr.CompareAndSwap(nil, err)
						failed.Add(1)
						break
					}
					dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					t := time.Now()
					ws, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: hc, CompressionMode: websocket.CompressionDisabled})
					cancel()
					if err == nil {
						dialLat.record(time.Since(t))
						ws.SetReadLimit(1 << 20)
						p.ws = ws
						p.alive.Store(true)
						go r.read(p)
						break
					}
					limited := resp != nil && resp.StatusCode == http.StatusBadRequest &&
						resp.Header.Get("x-amzn-ErrorType") == "ClientLimitExceededException"
					if limited && attempt < 100 && ctx.Err() == nil {
						retries.Add(1)
						time.Sleep(400 * time.Millisecond)
						continue
					}
					firstErr.CompareAndSwap(nil, fmt.Errorf("connect %s %q: %w", r.channels[p.ch], p.id, err))
					failed.Add(1)
					break
				}
			}
		}()
	}
	for _, p := range order {
		jobs <- p
	}
	close(jobs)
	wg.Wait()
	res.ConnectTime = time.Since(t0)
	res.ConnectRetries = int(retries.Load())
	res.Failed = int(failed.Load())
	res.ConnectP50, res.ConnectP99 = dialLat.quantile(0.5), dialLat.quantile(0.99)
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(r.log, "%d connections failed; first: %v\n", res.Failed, e)
	}
	return ctx.Err()
}

func (r *runner) closeAll() {
	r.stopping.Store(true)
	for _, ps := range [][]*peer{r.viewers, r.masters} {
		for _, p := range ps {
			if p != nil && p.ws != nil {
				p.ws.CloseNow()
			}
		}
	}
}

// read receives frames on p: it measures relay latency and, on a master,
// answers the viewer (SDP_OFFER -> SDP_ANSWER, ICE_CANDIDATE -> ICE_CANDIDATE).
func (r *runner) read(p *peer) {
	ctx := context.Background()
	var buf []byte
	for {
		_, data, err := p.ws.Read(ctx)
		if err != nil {
			if !r.stopping.Load() {
				p.alive.Store(false)
				r.dropped.Add(1)
				r.fail("connection %s %q dropped: %v", r.channels[p.ch], p.id, err)
			}
			return
		}
		now := time.Since(epoch)
		f, err := parseServiceFrame(data)
		if err != nil {
			r.fail("bad frame: %v", err)
			continue
		}
		typ := string(f.typ)
		switch typ {
		case actionOffer, actionAnswer, actionICE:
		default:
			r.fail("unexpected %s frame: %.200s", typ, data)
			continue
		}
		if r.inWindow(f.sent) {
			r.lat.record(now - f.sent)
			r.received.Add(1)
		}
		if p.id != "" || r.cfg.NoReply || r.stopping.Load() {
			continue
		}
		if len(f.sender) == 0 {
			r.fail("a frame to the master carries no senderClientId")
			continue
		}
		reply := actionICE
		if typ == actionOffer {
			reply = actionAnswer
		}
		sent := time.Since(epoch)
		buf = appendClientFrame(buf[:0], reply, r.bodies[reply], string(f.sender), sent)
		if err := p.ws.Write(ctx, websocket.MessageText, buf); err != nil {
			if !r.stopping.Load() {
				r.fail("master write: %v", err)
			}
			continue
		}
		if r.inWindow(sent) {
			r.sent.Add(1)
		}
	}
}

// send is one viewer message for a sender goroutine.
type send struct {
	p      *peer
	action string
}

// pace sends viewer messages at Rate/2 per second (Rate when masters do not
// reply) until end, spread over the viewers channel by channel, from
// Senders goroutines. It returns how many sends it had to skip because the
// senders fell behind.
func (r *runner) pace(ctx context.Context, end time.Duration) uint64 {
	rate := r.cfg.Rate
	if !r.cfg.NoReply {
		rate /= 2
	}
	queue := make(chan send, 4096)
	var wg sync.WaitGroup
	for w := 0; w < r.cfg.Senders; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for s := range queue {
				if !s.p.alive.Load() {
					continue
				}
				sent := time.Since(epoch)
				buf = appendClientFrame(buf[:0], s.action, r.bodies[s.action], "", sent)
				if err := s.p.ws.Write(ctx, websocket.MessageText, buf); err != nil {
					r.fail("viewer write: %v", err)
					continue
				}
				if r.inWindow(sent) {
					r.sent.Add(1)
				}
			}
		}()
	}
	var skipped uint64
	nv := uint64(len(r.viewers))
	start := time.Now()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var issued uint64
	for ctx.Err() == nil && time.Since(epoch) < end {
		<-t.C
		due := uint64(time.Since(start).Seconds() * rate)
		for ; issued < due; issued++ {
			k := issued % nv
			round := issued / nv
			action := actionICE
			if e := uint64(r.cfg.SDPEvery); e > 0 && (round+k)%e == 0 {
				action = actionOffer
			}
			select {
			case queue <- send{r.viewers[k], action}:
			default:
				skipped++
			}
		}
	}
	close(queue)
	wg.Wait()
	return skipped
}
