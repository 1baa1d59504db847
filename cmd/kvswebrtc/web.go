package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/kvswebrtc/kvswebrtc/web"
)

func init() {
	register(&command{
		name:    "web",
		summary: "serve the browser test page on localhost:3001 (embedded local service, or KVS)",
		run:     runWeb,
	})
}

func runWeb(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("web", "[--addr 127.0.0.1:3001] [--local | --endpoint-url URL] [--region R]", stderr)
	addr := fs.String("addr", "127.0.0.1:3001", "listen address of the page (loopback only unless --allow-remote)")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback --addr (anyone reaching it gets URLs signed with your credentials)")
	local := fs.Bool("local", false, "use an embedded local KVS-compatible service (the default when no AWS credentials are configured)")
	level := fs.String("log-level", "info", "log level: debug, info or warn")
	allowRegion := fs.Bool("allow-region-change", false, "let the page choose the region it works in (its Region field); KVS only: the embedded service has one region")
	allowEndpoint := fs.Bool("allow-endpoint-override", false, "let the page name the control-plane endpoint (its Endpoint override field), which the backend then calls with your credentials")
	var af awsFlags
	af.register(fs)
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *local && af.endpointURL != "" {
		fmt.Fprintln(stderr, "kvswebrtc web: --local and --endpoint-url exclude each other")
		return 2
	}
	if *local && *allowRegion {
		fmt.Fprintln(stderr, "kvswebrtc web: --allow-region-change needs KVS: the embedded local service (--local) has one region")
		return 2
	}
	if !*allowRemote && !isLoopback(*addr) {
		fmt.Fprintf(stderr, "kvswebrtc web: --addr %s is not a loopback address; the page's backend signs URLs with your credentials, add --allow-remote to expose it\n", *addr)
		return 2
	}
	logger, err := newLogger(*level, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kvswebrtc web: %v\n", err)
		return 2
	}

	// The port first: taken, say so before starting anything.
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return exitErr(stderr, "web", fmt.Errorf("--addr %s: %w (another kvswebrtc web or demo? give a free --addr)", *addr, err))
	}
	defer l.Close()

	var cfg web.Config
	mode := ""
	if !*local && af.endpointURL == "" && os.Getenv("AWS_ENDPOINT_URL") == "" {
		c, err := af.load(ctx, io.Discard)
		if err != nil || !haveCredentials(ctx, c) {
			*local = true
			fmt.Fprintln(stderr, "note: no AWS credentials configured; using an embedded local KVS-compatible service (--local)")
		}
	}
	if *local {
		l, err := web.StartLocal(web.LocalConfig{Region: af.region, Logger: logger})
		if err != nil {
			return exitErr(stderr, "web", err)
		}
		defer l.Close()
		cfg = l.Config(logger)
		mode = "embedded local service at " + l.KVS.URL()
	} else {
		awsCfg, err := af.load(ctx, stderr)
		if err != nil {
			return exitErr(stderr, "web", err)
		}
		cfg = web.Config{AWS: awsCfg, Logger: logger, AllowInsecureEndpoint: isLoopbackURL(af.endpointURL)}
		mode = "Amazon KVS in " + awsCfg.Region
		if awsCfg.BaseEndpoint != nil {
			mode = "KVS-compatible endpoint " + *awsCfg.BaseEndpoint
		}
	}
	if !*allowRemote {
		cfg.AllowedHosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if *allowRegion && *local { // no credentials: --local was chosen for the user
		fmt.Fprintln(stderr, "note: --allow-region-change is ignored: the embedded local service has one region")
	}
	cfg.AllowRegionChange = *allowRegion && !*local
	cfg.AllowEndpointOverride = *allowEndpoint
	srv, err := web.New(cfg)
	if err != nil {
		return exitErr(stderr, "web", err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	fmt.Fprintf(stdout, "kvswebrtc test page: http://localhost:%s/\n  backend: %s\n  open a master tab:  http://localhost:%s/?view=master&channelName=demo\n  and a viewer tab:   http://localhost:%s/?view=viewer&channelName=demo\n", port, mode, port, port)
	if err := serveWeb(ctx, srv, l); err != nil {
		return exitErr(stderr, "web", err)
	}
	return 0
}

// serveWeb serves the test page on l until ctx is done, then shuts it down,
// waiting up to 5 s for the requests in flight. It returns nil after that
// shutdown, and Serve's error when serving fails before.
func serveWeb(ctx context.Context, srv *web.Server, l net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
