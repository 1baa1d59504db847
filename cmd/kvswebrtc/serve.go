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
	secret := fs.String("secret-access-key", "", "secret for --access-key-id; on the command line every user sees it in the process list: prefer --secret-access-key-file or $"+secretEnv)
	secretFile := fs.String("secret-access-key-file", "", "read the secret for --access-key-id from `FILE` (its first line)")
	repair := fs.Bool("repair", false, "before serving, repair a damaged channel store in --data: keep what can still be read, move the damaged file aside")
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
	iot := fs.Bool("iot", false, "also emulate the AWS IoT credentials provider (mutual TLS, on --iot-addr): devices trade a certificate of the local device CA (DATA/iot-ca.pem) for temporary credentials; prints how to make one")
	iotAddr := fs.String("iot-addr", "", "listen `ADDR` of the IoT credentials provider (default the --addr IP and a free port)")
	iotTTL := fs.Duration("iot-credential-duration", localkvs.DefaultIoTCredentialDuration, "how long the IoT credentials are valid (1s..12h)")
	output := outputFlag(fs, "text", "json")
	var corsOrigins []string
	fs.Func("cors-origin", "a browser `ORIGIN` (https://host[:port]) that may use the service besides the loopback ones; repeat for more, \"*\" for any", func(v string) error {
		corsOrigins = append(corsOrigins, v)
		return nil
	})
	clusterCfg := clusterFlags(fs) // serve_cluster.go
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}

	if !*allowRemote && !isLoopback(*addr) {
		fmt.Fprintf(stderr, "kvswebrtc serve: --addr %q is not a loopback address; the service accepts a public development key, so add --allow-remote to listen on it anyway\n", *addr)
		return 2
	}
	if err := loadSecret(akid, secret, *secretFile, stderr); err != nil {
		fmt.Fprintf(stderr, "kvswebrtc serve: %v\n", err)
		return 2
	}
	cluster, err := clusterCfg(*allowRemote)
	if err != nil {
		fmt.Fprintf(stderr, "kvswebrtc serve: %v\n", err)
		return 2
	}
	if *repair {
		if code := repairStore(*data, stderr); code != 0 {
			return code
		}
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
		IoT:            localkvs.IoTConfig{Enabled: *iot, Addr: *iotAddr, CredentialDuration: *iotTTL},
		Cluster:        cluster,
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

	printServe(stdout, *output, srv, serveInfo{data: *data, keyID: keyID, devPair: devPair, tls: *useTLS, turnTTL: *turnTTL})
	if *output != "json" {
		printServeCluster(stdout, srv, cluster)
	}

	<-ctx.Done()
	fmt.Fprintf(stderr, "kvswebrtc serve: %v: shutting down\n", context.Cause(ctx))
	conns := srv.Connections()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "kvswebrtc serve: shutdown: %v\n", err)
		return 1
	}
	store := "the in-memory channel store dropped"
	if *data != "" {
		store = "channel store " + filepath.Join(*data, "channels.db") + " closed"
	}
	if cluster.NATSURL != "" || cluster.Name != "" {
		store = "left the cluster"
	}
	fmt.Fprintf(stderr, "kvswebrtc serve: stopped: GO_AWAY sent to %d signaling connection(s), %s\n", conns, store)
	return 0
}

// secretEnv is the environment variable serve reads the secret of
// --access-key-id from, when neither --secret-access-key nor
// --secret-access-key-file is given.
const secretEnv = "KVSWEBRTC_SECRET_ACCESS_KEY"

// loadSecret sets *secret from file, the environment or the flag (warning
// that a secret on the command line is visible to every user), and checks
// that it goes with an access key id.
func loadSecret(akid, secret *string, file string, stderr io.Writer) error {
	switch {
	case file != "" && *secret != "":
		return errors.New("--secret-access-key and --secret-access-key-file exclude each other")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--secret-access-key-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		if *secret = strings.TrimSpace(line); *secret == "" {
			return fmt.Errorf("--secret-access-key-file %s: the first line is empty", file)
		}
	case *secret != "":
		fmt.Fprintf(stderr, "kvswebrtc serve: warning: --secret-access-key on the command line is visible to every user of this machine (ps); use --secret-access-key-file or $%s\n", secretEnv)
	case *akid != "":
		*secret = os.Getenv(secretEnv)
	}
	if (*akid == "") != (*secret == "") {
		return fmt.Errorf("--access-key-id needs its secret (--secret-access-key-file, $%s or --secret-access-key), and a secret needs --access-key-id", secretEnv)
	}
	return nil
}

// repairStore runs localkvs.RepairStore on dir for --repair and reports
// what it did; it returns a non-zero exit code when serve cannot go on.
func repairStore(dir string, stderr io.Writer) int {
	if dir == "" {
		fmt.Fprintln(stderr, "kvswebrtc serve: --repair needs --data (a store in memory cannot be damaged)")
		return 2
	}
	rep, err := localkvs.RepairStore(dir)
	if err != nil {
		fmt.Fprintf(stderr, "kvswebrtc serve: --repair: %v\n", err)
		return 1
	}
	if rep.Sound {
		fmt.Fprintf(stderr, "kvswebrtc serve: --repair: the channel store %s is sound; nothing changed\n", rep.Path)
		return 0
	}
	fmt.Fprintf(stderr, "kvswebrtc serve: --repair: %s rebuilt with %d channel(s) (%d record(s) kept, %d unreadable left out); the damaged file is kept at %s\n",
		rep.Path, rep.Channels, rep.Kept, rep.Lost, rep.DamagedCopy)
	return 0
}
