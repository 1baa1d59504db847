package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

func init() {
	register(&command{
		name:    "serve",
		summary: "run the local KVS-compatible signaling service",
		run:     runServe,
	})
}

// defaultDataDir is where serve keeps channels when --data is not given.
func defaultDataDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "kvswebrtc", "local")
}

// isLoopback reports whether the host of addr is a loopback address or localhost.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "[flags]", stderr)
	addr := fs.String("addr", "127.0.0.1:4566", "listen address (loopback only unless --allow-remote)")
	allowRemote := fs.Bool("allow-remote", false, "allow a non-loopback --addr")
	region := fs.String("region", localkvs.DefaultRegion, "region the service signs for and names in ARNs")
	data := fs.String("data", defaultDataDir(), `directory for channels (and the TLS CA); "" keeps channels in memory only`)
	useTLS := fs.Bool("tls", false, "serve https/wss with a local CA (written to DATA/ca.pem)")
	akid := fs.String("access-key-id", "", "accepted access key id (default the development pair)")
	secret := fs.String("secret-access-key", "", "secret for --access-key-id")
	level := fs.String("log-level", "info", "log level: debug, info or warn")
	idle := fs.Duration("idle-timeout", 0, "close connections idle this long (default 10m)")
	maxDur := fs.Duration("max-duration", 0, "maximum connection duration (default 1h)")
	lead := fs.Duration("go-away-lead", 0, "send GO_AWAY this long before the maximum duration (default 1m)")
	noTURN := fs.Bool("no-turn", false, "run no TURN/STUN server (GetIceServerConfig answers an empty list)")
	turnTTL := fs.Duration("turn-ttl", localkvs.DefaultTURNTTL, "lifetime of the TURN credentials GetIceServerConfig hands out (its Ttl)")
	turnAddr := fs.String("turn-addr", "", "TURN/STUN ip:port, UDP and TCP (default the --addr IP and a free port)")
	turnLoopback := fs.Bool("turn-allow-loopback", false, "let TURN relay to loopback peers (every peer on this machine); off, relays reach public peers and other relays only")
	var turnPeers []netip.Prefix
	fs.Func("turn-allow-peer", "a network `CIDR` (e.g. 192.168.1.0/24) TURN may relay to although it is private; repeat for more", func(v string) error {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return err
		}
		turnPeers = append(turnPeers, p)
		return nil
	})
	var corsOrigins []string
	fs.Func("cors-origin", "a browser `ORIGIN` (https://host[:port]) that may use the service besides the loopback ones; repeat for more, \"*\" for any", func(v string) error {
		corsOrigins = append(corsOrigins, v)
		return nil
	})
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}

	if !*allowRemote && !isLoopback(*addr) {
		fmt.Fprintf(stderr, "kvswebrtc serve: --addr %q is not a loopback address; the service accepts a public development key, so add --allow-remote to listen on it anyway\n", *addr)
		return 2
	}
	if (*akid == "") != (*secret == "") {
		fmt.Fprintln(stderr, "kvswebrtc serve: --access-key-id and --secret-access-key go together")
		return 2
	}
	logger, err := newLogger(*level, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "kvswebrtc serve: %v\n", err)
		return 2
	}
	cfg := localkvs.Config{
		Region:  *region,
		DataDir: *data,
		TLS:     *useTLS,
		Logger:  logger,
		Limits: localkvs.Limits{
			IdleTimeout:           *idle,
			MaxConnectionDuration: *maxDur,
			GoAwayLead:            *lead,
		},
		TURN: localkvs.TURNConfig{Disabled: *noTURN, TTL: *turnTTL, Addr: *turnAddr,
			AllowLoopbackPeers: *turnLoopback, AllowedPeers: turnPeers},
		AllowedOrigins: corsOrigins,
	}
	keyID, devPair := localkvs.DevAccessKeyID, true
	if *akid != "" {
		cfg.Credentials = map[string]string{*akid: *secret}
		keyID, devPair = *akid, false
	}
	srv, err := localkvs.Start(cfg, *addr)
	if err != nil {
		fmt.Fprintf(stderr, "kvswebrtc serve: %v\n", err)
		if errors.Is(err, localkvs.ErrInvalidConfig) {
			return 2
		}
		return 1
	}

	fmt.Fprintln(stdout, "kvswebrtc local KVS signaling service")
	fmt.Fprintf(stdout, "  endpoint:      %s\n", srv.URL())
	fmt.Fprintf(stdout, "  signaling:     %s\n", srv.WSSEndpoint())
	if urls := srv.TURNURLs(); urls != nil {
		fmt.Fprintf(stdout, "  turn/stun:     %s (credentials valid %s)\n", strings.Join(urls, " "), *turnTTL)
	} else {
		fmt.Fprintln(stdout, "  turn/stun:     off")
	}
	fmt.Fprintf(stdout, "  region:        %s\n", srv.Region())
	if *data != "" {
		fmt.Fprintf(stdout, "  data:          %s\n", *data)
	} else {
		fmt.Fprintln(stdout, "  data:          (memory only)")
	}
	fmt.Fprintf(stdout, "  access key id: %s\n", keyID)
	if devPair {
		fmt.Fprintf(stdout, "  secret key:    %s (the public development key)\n", localkvs.DevSecretAccessKey)
	} else {
		fmt.Fprintln(stdout, "  secret key:    (the one you gave)")
	}
	fmt.Fprintln(stdout, "Paste into a shell:")
	env := fmt.Sprintf("export AWS_ENDPOINT_URL=%s AWS_REGION=%s AWS_ACCESS_KEY_ID=%s", srv.URL(), srv.Region(), keyID)
	if devPair {
		env += " AWS_SECRET_ACCESS_KEY=" + localkvs.DevSecretAccessKey
	}
	fmt.Fprintf(stdout, "  %s\n", env)
	if *useTLS {
		if *data != "" {
			fmt.Fprintf(stdout, "  export AWS_CA_BUNDLE=%s\n", filepath.Join(*data, "ca.pem"))
		} else {
			fmt.Fprintln(stdout, "  (the CA is not written anywhere without --data; clients must trust it another way)")
		}
	}

	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "kvswebrtc serve: shutdown: %v\n", err)
		return 1
	}
	return 0
}
