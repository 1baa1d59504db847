// Command profserve is `kvswebrtc serve -data= -log-level warn` (package
// localkvs with its default configuration, channels in memory) plus the
// net/http/pprof handlers on a second listener, for profiling the service
// under bench/relay/loadgen (its -profile flag builds and runs this instead
// of kvswebrtc serve). The benchmark's figures come from kvswebrtc serve;
// this binary only serves profiles.
//
//	go run ./bench/relay/profserve -addr 127.0.0.1:4566 -pprof 127.0.0.1:6060
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address of the service")
	pprofAddr := flag.String("pprof", "127.0.0.1:0", "listen address of the pprof handlers")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "profserve: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := localkvs.Start(localkvs.Config{Logger: log}, *addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profserve: %v\n", err)
		os.Exit(1)
	}
	l, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "profserve: -pprof: %v\n", err)
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() { _ = http.Serve(l, mux) }()
	fmt.Printf("pprof: http://%s/debug/pprof/\n", l.Addr())
	fmt.Printf("endpoint: %s\n", srv.URL())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(os.Stderr, "profserve: shutdown: %v\n", err)
		os.Exit(1)
	}
}
