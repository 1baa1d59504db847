package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
	"github.com/kvswebrtc/kvswebrtc/web"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "local service + channel + a master streaming a clip + viewers, with TTFF and bitrates",
		run:     runDemo,
	})
}

// demoStagger spaces the viewers' starts: the service accepts 3 connects a
// second per channel (masters and viewers together, on KVS as on the local
// service), so viewers started at once would be refused with
// ClientLimitExceeded. A client that starts many viewers on one channel
// must do the same.
const demoStagger = 400 * time.Millisecond // a little over 1/localkvs.DefaultConnectsPerSecond

// demoAttempts is how often a demo viewer tries to connect when the service
// answers ClientLimitExceeded anyway (a browser tab of --web connecting at
// the same moment), one second apart.
const demoAttempts = 3

// demoViewer is one viewer of the demo and what became of it.
type demoViewer struct {
	id    string
	mu    sync.Mutex
	v     *peer.Viewer
	start time.Time
	err   error
	final peer.ViewerStats
	// finalTime is when final was taken.
	finalTime time.Time
}

func (d *demoViewer) get() (*peer.Viewer, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.v, d.start
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[flags]", stderr)
	nViewers := fs.Int("viewers", 3, "number of viewers, 1..10")
	duration := fs.Duration("duration", 10*time.Second, "run this long, then print the summary and exit; 0 runs until Ctrl-C. With --web the default is 0: the demo runs until Ctrl-C unless --duration is given")
	withWeb := fs.Bool("web", false, "also serve the browser test page on --web-addr against the embedded service")
	webAddr := fs.String("web-addr", "127.0.0.1:3001", "listen address of the test page with --web (loopback only)")
	chName := fs.String("channel", "demo", "name of the signaling channel to create")
	nat := natFlag(fs)
	level := fs.String("log-level", "warn", "log level: debug, info or warn")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	fail := failer(stderr, "demo")
	if *nViewers < 1 || *nViewers > peer.DefaultMaxViewers {
		return fail("--viewers %d is not between 1 and %d (KVS allows %d viewers per channel)", *nViewers, peer.DefaultMaxViewers, peer.DefaultMaxViewers)
	}
	if *duration < 0 {
		return fail("--duration %s must not be negative (0 runs until Ctrl-C)", *duration)
	}
	mode, err := nat()
	if err != nil {
		return fail("%v", err)
	}
	if *withWeb {
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "duration" })
		if !explicit {
			*duration = 0
		}
		if !isLoopback(*webAddr) {
			return fail("--web-addr %q is not a loopback address (use `kvswebrtc web --allow-remote` to expose the page)", *webAddr)
		}
	}
	logger, err := newLogger(*level, stderr)
	if err != nil {
		return fail("%v", err)
	}
	out := &syncWriter{w: stdout}
	// The page's port first: taken, the demo says so before starting anything.
	var webL net.Listener
	if *withWeb {
		if webL, err = net.Listen("tcp", *webAddr); err != nil {
			return exitErr(stderr, "demo", fmt.Errorf("--web-addr %s: %w (another kvswebrtc web or demo? give a free --web-addr)", *webAddr, err))
		}
		defer webL.Close()
	}

	// The local service: memory store, embedded TURN, the real service's
	// limits. Every peer runs on this machine, so the TURN relays must
	// reach loopback peers.
	srv, err := localkvs.Start(localkvs.Config{Logger: logger, TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}}, "127.0.0.1:0")
	if err != nil {
		return exitErr(stderr, "demo", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	awsCfg := srv.AWSConfig()
	turn := "off"
	if urls := srv.TURNURLs(); len(urls) > 0 {
		turn = strings.Join(urls, " ")
	}
	fmt.Fprintf(out, "local KVS service %s (region %s), TURN/STUN %s\n", srv.URL(), srv.Region(), turn)

	runCtx := ctx
	if *duration > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	video := media.DefaultVideo(media.Options{Loop: true})
	audio := media.DefaultAudio(media.Options{Loop: true})
	defer video.Close()
	defer audio.Close()
	m, err := peer.NewMaster(runCtx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsCfg, Channel: *chName, CreateIfMissing: true, NAT: mode},
		Video:         video,
		Audio:         audio,
		Logger:        logger,
	})
	if err != nil {
		return peerErr(stderr, "demo", err)
	}
	defer m.Close()
	viewers := make([]*demoViewer, *nViewers)
	ours := map[string]bool{}
	for i := range viewers {
		viewers[i] = &demoViewer{id: fmt.Sprintf("viewer-%d", i+1)}
		ours[viewers[i].id] = true
	}
	closingCh := make(chan struct{})
	// Joins and leaves of our own viewers show in their lines; those of
	// others (browser tabs with --web) are printed.
	m.OnViewerJoined(func(id string) {
		if !ours[id] {
			fmt.Fprintf(out, "%s master: viewer %s joined\n", stamp(), id)
		}
	})
	m.OnViewerLeft(func(id string, reason error) {
		select {
		case <-closingCh:
			return
		default:
		}
		fmt.Fprintf(out, "%s master: viewer %s left: %v\n", stamp(), id, reason)
	})
	if err := m.Start(runCtx); err != nil {
		return exitErr(stderr, "demo", err)
	}
	fmt.Fprintf(out, "master on channel %q: streaming the embedded clip (%s video + %s audio, looped), NAT %s\n",
		*chName, describeSource(video), describeSource(audio), mode)

	var webDone chan error
	if *withWeb {
		ws, err := web.New(web.Config{
			AWS: awsCfg, AllowInsecureEndpoint: true, CreateIfMissing: true,
			AllowedHosts: []string{"localhost", "127.0.0.1", "::1"}, Logger: logger,
		})
		if err != nil {
			return exitErr(stderr, "demo", err)
		}
		_, port, _ := net.SplitHostPort(webL.Addr().String())
		webDone = make(chan error, 1)
		go func() { webDone <- serveWeb(runCtx, ws, webL) }()
		fmt.Fprintf(out, "test page: open http://localhost:%s/?view=viewer&channelName=%s\n", port, *chName)
	}
	until := "until Ctrl-C"
	if *duration > 0 {
		until = "for " + duration.String() + " (Ctrl-C ends it early)"
	}
	fmt.Fprintf(out, "starting %d viewers, %s apart (KVS accepts 3 connects a second per channel); running %s\n",
		*nViewers, demoStagger, until)

	start := time.Now()
	var wg sync.WaitGroup
	for i, d := range viewers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runDemoViewer(runCtx, d, time.Duration(i)*demoStagger, peer.ChannelConfig{AWS: awsCfg, Channel: *chName, NAT: mode}, logger, out)
		}()
	}

	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	last := map[string]uint64{}
	lastT := time.Now()
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case now := <-tick.C:
			var parts []string
			for _, d := range viewers {
				v, _ := d.get()
				if v == nil {
					parts = append(parts, d.id+" -")
					continue
				}
				st := v.Stats()
				if st.Frames == 0 {
					parts = append(parts, d.id+" -")
				} else {
					parts = append(parts, fmt.Sprintf("%s %.0f kbit/s", d.id, kbps(st.BytesReceived-last[d.id], now.Sub(lastT))))
				}
				last[d.id] = st.BytesReceived
			}
			lastT = now
			fmt.Fprintf(out, "%5.0fs  %s\n", now.Sub(start).Seconds(), strings.Join(parts, "  "))
		}
	}
	close(closingCh)
	wg.Wait()
	m.Close()
	if webDone != nil {
		if err := <-webDone; err != nil {
			fmt.Fprintf(stderr, "kvswebrtc demo: test page: %v\n", err)
		}
	}

	fmt.Fprintf(out, "\nsummary after %s:\n", time.Since(start).Round(100*time.Millisecond))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VIEWER\tTTFF\tFRAMES\tBYTES\tKBIT/S\tLOST\tCANDIDATE PAIR")
	var failed []string
	for _, d := range viewers {
		st := d.final
		if st.Frames == 0 {
			why := "no video frame"
			if d.err != nil {
				why = d.err.Error()
			}
			failed = append(failed, fmt.Sprintf("%s: %s", d.id, why))
		}
		flowing := time.Duration(0)
		if !d.start.IsZero() && st.TimeToFirstFrame > 0 {
			flowing = d.finalTime.Sub(d.start) - st.TimeToFirstFrame
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%d\t%s\n", d.id, ms(st.TimeToFirstFrame), st.Frames,
			st.BytesReceived, kbps(st.BytesReceived, flowing), st.PacketsLost, pair(st.SessionStats))
	}
	tw.Flush()
	if len(failed) > 0 {
		fmt.Fprintf(out, "FAIL: %d of %d viewers received no video\n", len(failed), len(viewers))
		for _, f := range failed {
			fmt.Fprintf(stderr, "kvswebrtc demo: %s\n", f)
		}
		return 1
	}
	fmt.Fprintf(out, "OK: every viewer (%d) received video\n", len(viewers))
	return 0
}

// runDemoViewer starts viewer d after delay, prints its first frame, and
// when ctx ends takes its final stats and closes it.
func runDemoViewer(ctx context.Context, d *demoViewer, delay time.Duration, cc peer.ChannelConfig, logger *slog.Logger, out io.Writer) {
	select {
	case <-time.After(delay):
	case <-ctx.Done():
		d.err = errors.New("not started: the demo ended first")
		return
	}
	var v *peer.Viewer
	for attempt := 1; ; attempt++ {
		var err error
		// The demo's viewers run next to the master: loopback candidates only,
		// so the pairs shown are 127.0.0.1 (the master keeps every interface,
		// for browser viewers of --web).
		v, err = peer.NewViewer(ctx, peer.ViewerConfig{ChannelConfig: cc, ClientID: d.id, Logger: logger,
			Settings: peer.Settings{IPFilter: func(ip net.IP) bool { return ip.IsLoopback() }}})
		if err != nil {
			d.err = err
			fmt.Fprintf(out, "%s %s: %v\n", stamp(), d.id, err)
			return
		}
		started := time.Now()
		err = v.Start(ctx)
		if err == nil {
			d.mu.Lock()
			d.v, d.start = v, started
			d.mu.Unlock()
			break
		}
		v.Close()
		if errors.Is(err, peer.ErrClientLimitExceeded) && attempt < demoAttempts && ctx.Err() == nil {
			fmt.Fprintf(out, "%s %s: the service refused the connection (client limit exceeded); trying again in 1s\n", stamp(), d.id)
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
			}
		}
		d.err = err
		fmt.Fprintf(out, "%s %s: %v\n", stamp(), d.id, err)
		return
	}
	defer v.Close()
	if ttff, err := v.WaitFirstFrame(ctx); err == nil {
		st := v.Stats()
		fmt.Fprintf(out, "%s %s: first frame after %s (signaling connect %s, offer to answer %s, connected %s) via %s\n",
			stamp(), d.id, ms(ttff), ms(st.Signaling.Connect), ms(st.OfferToAnswer), ms(st.Connect), pair(st.SessionStats))
	}
	<-ctx.Done()
	st := v.Stats()
	d.mu.Lock()
	d.final, d.finalTime = st, time.Now()
	d.mu.Unlock()
}
