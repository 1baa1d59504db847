package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// serve's cluster flags (docs/cluster.md): --nats for an external NATS
// system, or --cluster-name, --cluster-listen and --routes for a NATS
// server embedded in each node.

// turnSecretEnv is the environment variable serve reads a cluster's
// shared TURN secret from when --turn-secret-file is not given.
const turnSecretEnv = "KVSWEBRTC_TURN_SECRET"

// clusterHeading is the help heading of the cluster flags.
const clusterHeading = "Cluster (several serve processes as one service, on NATS JetStream; docs/cluster.md)"

// clusterFlags registers the cluster flags on fs and returns the function
// that, once fs is parsed, makes the ClusterConfig (the zero value when
// no cluster flag was given) or says which flag is wrong.
func clusterFlags(fs *flag.FlagSet) func(allowRemote bool) (localkvs.ClusterConfig, error) {
	natsURL := fs.String("nats", "", "join a cluster through an external NATS `URL` with JetStream (nats://host:4222, comma-separated for several)")
	natsCreds := fs.String("nats-creds", "", "NATS credentials `FILE` (user JWT and seed) for --nats")
	name := fs.String("cluster-name", "", "run an embedded NATS server in this cluster `NAME` (the same on every node)")
	listen := fs.String("cluster-listen", "", "`ADDR` (host:port) the embedded NATS server takes the other nodes' routes on")
	var routes []string
	fs.Func("routes", "the other nodes' route `ADDRS` (host:port, comma-separated; listing this node's own is fine); repeat for more", func(v string) error {
		for _, r := range strings.Split(v, ",") {
			if r = strings.TrimSpace(r); r != "" {
				routes = append(routes, r)
			}
		}
		return nil
	})
	natsListen := fs.String("nats-listen", "", "`ADDR` the embedded NATS server takes NATS clients on (default a free port on 127.0.0.1)")
	node := fs.String("node-name", "", "this node's `NAME` in the cluster (default the host name and the --cluster-listen port)")
	jsDir := fs.String("jetstream-dir", "", "`DIR` for the embedded server's JetStream data (default DATA/jetstream)")
	replicas := fs.Int("replicas", 0, "copies JetStream keeps of the state (default 3 with three nodes or more, else 1)")
	secretFile := fs.String("turn-secret-file", "", "read the TURN secret every node shares from `FILE` (its first line; else $"+turnSecretEnv+", else one derived from the access keys)")
	setGroup(fs, clusterHeading, "nats", "nats-creds", "cluster-name", "cluster-listen", "routes", "nats-listen", "node-name", "jetstream-dir", "replicas", "turn-secret-file")
	return func(allowRemote bool) (localkvs.ClusterConfig, error) {
		cc := localkvs.ClusterConfig{
			NATSURL:      *natsURL,
			Name:         *name,
			Listen:       *listen,
			Routes:       routes,
			ClientListen: *natsListen,
			NodeName:     *node,
			StoreDir:     *jsDir,
			Replicas:     *replicas,
		}
		set := cc.NATSURL != "" || cc.Name != ""
		if !set {
			for _, f := range []string{"nats-creds", "cluster-listen", "routes", "nats-listen", "node-name", "jetstream-dir", "replicas", "turn-secret-file"} {
				if flagSet(fs, f) {
					return cc, fmt.Errorf("--%s is a cluster flag: give --nats URL or --cluster-name NAME with it", f)
				}
			}
			return cc, nil
		}
		for _, f := range []struct{ name, addr string }{{"cluster-listen", cc.Listen}, {"nats-listen", cc.ClientListen}} {
			if f.addr != "" && !allowRemote && !isLoopback(f.addr) {
				return cc, fmt.Errorf("--%s %q is not a loopback address; NATS routes and clients are not authenticated, so put them on a private network and add --allow-remote", f.name, f.addr)
			}
		}
		if *natsCreds != "" {
			if *natsURL == "" {
				return cc, fmt.Errorf("--nats-creds goes with --nats")
			}
			if _, err := os.Stat(*natsCreds); err != nil {
				return cc, fmt.Errorf("--nats-creds: %w", err)
			}
			cc.NATSOptions = append(cc.NATSOptions, nats.UserCredentials(*natsCreds))
		}
		secret := os.Getenv(turnSecretEnv)
		if *secretFile != "" {
			b, err := os.ReadFile(*secretFile)
			if err != nil {
				return cc, fmt.Errorf("--turn-secret-file: %w", err)
			}
			secret, _, _ = strings.Cut(string(b), "\n")
			secret = strings.TrimSpace(secret)
			if secret == "" {
				return cc, fmt.Errorf("--turn-secret-file %s: the first line is empty", *secretFile)
			}
		}
		cc.TURNSecret = secret
		return cc, nil
	}
}

// flagSet reports whether flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

// printServeCluster says which cluster the node is part of (text output).
func printServeCluster(w io.Writer, srv *localkvs.Server, cc localkvs.ClusterConfig) {
	if cc.NATSURL == "" && cc.Name == "" {
		return
	}
	where := "NATS " + redactNATS(cc.NATSURL)
	if cc.Name != "" {
		where = fmt.Sprintf("embedded NATS server, cluster %s, routes on %s", cc.Name, cc.Listen)
	}
	fmt.Fprintf(w, "Cluster node (%s): state in JetStream; ready once a quorum of the servers is up (GET %s/readyz).\n", where, srv.URL())
	fmt.Fprintf(w, "  health: %s/healthz  ready: %s/readyz  metrics: %s/metrics\n", srv.URL(), srv.URL(), srv.URL())
}

// redactNATS drops user information from NATS URLs, for output.
func redactNATS(s string) string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if i := strings.Index(u, "://"); i >= 0 && i < at {
				u = u[:i+3] + u[at+1:]
			}
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}
