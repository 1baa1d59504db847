package localkvs

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// clusterShards is how many subjects (and delivery goroutines) a node
// receives its clients' messages on; a channel always uses the same one,
// so its messages stay in order.
const clusterShards = 8

// cluster is a Server's part in a cluster: its NATS connection (and its
// embedded NATS server), the buckets, the mirrors of the rosters and of
// the nodes, and the subscriptions other nodes send it messages on. It is
// the server's remoteRouter (cluster_route.go) and holds its store
// (natsstore.go).
type cluster struct {
	s      *Server
	cfg    ClusterConfig
	log    *slog.Logger
	name   string // this node's name (NodeName)
	node   string // this node's id in the cluster: name and a per-process suffix
	prefix string // subject prefix, "kvswebrtc.<region>."
	bucket string // bucket name prefix, "kvswebrtc_<region>_"

	ns      *server.Server // the embedded NATS server; nil with NATSURL
	tempDir string         // a StoreDir made for this run, removed at close
	nc      *nats.Conn
	js      jetstream.JetStream

	store   *natsStore
	rosters *kvWatch // the rosters bucket: who is connected where (cluster_roster.go)
	nodes   *kvWatch // the nodes bucket: who is alive
	pending jetstream.Stream

	// leaveMu orders a node's leave (nodeLeft) after the messages routed
	// to that node before it: route and deliver hold it for reading from
	// the lookup of the recipient's node to the publish.
	leaveMu   sync.RWMutex
	mu        sync.RWMutex
	rosterMap map[string]rosterState // channel ARN -> its roster, as the watch last saw it
	nodeMap   map[string]nodeState   // node id -> when last seen
	admitted  map[uint64]uint64      // admission seq (roster revision) -> connection number
	inflight  map[uint64]bool        // connection numbers being admitted
	hints     map[string]hint        // where clients were last heard from: cluster_roster.go
	draining  map[*wsConn]*drainState

	connNo    atomic.Uint64
	ready     atomic.Bool
	notReady  atomic.Pointer[string] // why not ready, for /readyz
	lastBeat  atomic.Int64           // unix nanos of the last write of this node's entry to the nodes bucket
	beating   atomic.Bool            // a write of this node's entry is in flight
	turnSec   []byte
	pendq     chan pendingMsg
	subs      []*nats.Subscription
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	crashed   atomic.Bool // closed as by a crash: nothing cleaned up (tests)
	leaving   atomic.Bool // stopping: no more heartbeats (leaveCluster)
}

// nodeInfo is a node's entry in the nodes bucket.
type nodeInfo struct {
	Name    string   `json:"name"`
	HTTP    string   `json:"http,omitempty"`
	TURN    []string `json:"turn,omitempty"`
	Started int64    `json:"started"` // unix ms
}

type nodeState struct {
	info nodeInfo
	seen time.Time
	left bool // it said it stops (msgLeave): dead, whatever its heartbeat said
}

// newCluster starts the embedded NATS server (or dials NATSURL) and the
// subscriptions; the buckets are made or bound in the background (see
// bootstrap), and the server is ready (readyz) once they are.
func newCluster(s *Server) (*cluster, error) {
	cc := s.cfg.Cluster
	c := &cluster{
		s:         s,
		cfg:       cc,
		log:       s.log,
		prefix:    "kvswebrtc." + token(s.cfg.Region) + ".",
		bucket:    "kvswebrtc_" + strings.ReplaceAll(s.cfg.Region, ".", "_") + "_",
		rosterMap: map[string]rosterState{},
		nodeMap:   map[string]nodeState{},
		admitted:  map[uint64]uint64{},
		inflight:  map[uint64]bool{},
		hints:     map[string]hint{},
		draining:  map[*wsConn]*drainState{},
		pendq:     make(chan pendingMsg, 4096),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.name = cc.NodeName
	if c.name == "" {
		host, _ := os.Hostname()
		host = strings.NewReplacer(".", "-", " ", "-").Replace(cmp.Or(host, "node"))
		if cc.Listen != "" {
			hp, _ := splitHostPort("", cc.Listen)
			c.name = host + "-" + strconv.Itoa(hp.port)
		} else {
			c.name = host + "-" + strconv.Itoa(os.Getpid())
		}
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	c.node = c.name + "-" + hex.EncodeToString(suffix[:])
	c.turnSec = c.deriveTURNSecret()
	c.notReady.Store(ptr("connecting to NATS"))

	var err error
	if cc.Name != "" {
		err = c.startEmbedded()
	} else {
		err = c.dial()
	}
	if err != nil {
		c.closeNATS()
		return nil, err
	}
	c.js, err = jetstream.New(c.nc)
	if err != nil {
		c.closeNATS()
		return nil, fmt.Errorf("localkvs: cluster: %w", err)
	}
	c.store = newNATSStore(c)
	if err := c.subscribe(); err != nil {
		c.closeNATS()
		return nil, err
	}
	c.wg.Add(2)
	go c.bootstrapLoop()
	go c.pendingWriter()
	return c, nil
}

func ptr[T any](v T) *T { return &v }

// deriveTURNSecret returns Cluster.TURNSecret, or else an HMAC of the
// credentials every node shares and the region: the same on every node
// configured alike, and no easier to guess than the secret keys.
func (c *cluster) deriveTURNSecret() []byte {
	if c.cfg.TURNSecret != "" {
		h := sha256.Sum256([]byte(c.cfg.TURNSecret))
		return h[:]
	}
	m := hmac.New(sha256.New, []byte("kvswebrtc cluster TURN secret"))
	m.Write([]byte(c.s.cfg.Region))
	for _, k := range slices.Sorted(maps.Keys(c.s.cfg.Credentials)) {
		m.Write([]byte{0})
		m.Write([]byte(k))
		m.Write([]byte{0})
		m.Write([]byte(c.s.cfg.Credentials[k]))
	}
	return m.Sum(nil)
}

// startEmbedded starts this node's NATS server with JetStream and
// connects to it in-process.
func (c *cluster) startEmbedded() error {
	cc := c.cfg
	listen, _ := splitHostPort("Cluster.Listen", cc.Listen) // validated
	client := hostPort{"127.0.0.1", -1}
	if cc.ClientListen != "" {
		client, _ = splitHostPort("Cluster.ClientListen", cc.ClientListen)
	}
	var routes []*url.URL
	for _, r := range cc.Routes {
		u, _ := routeURL(r) // validated
		routes = append(routes, u)
	}
	dir := cc.StoreDir
	if dir == "" && c.s.cfg.DataDir != "" {
		dir = filepath.Join(c.s.cfg.DataDir, "jetstream")
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "kvswebrtc-jetstream-")
		if err != nil {
			return fmt.Errorf("localkvs: cluster: %w", err)
		}
		dir, c.tempDir = d, d
	}
	opts := &server.Options{
		ServerName: c.name,
		Host:       client.host,
		Port:       client.port,
		JetStream:  true,
		StoreDir:   dir,
		Cluster: server.ClusterOpts{
			Name: cc.Name,
			Host: listen.host,
			Port: listen.port,
		},
		Routes: routes,
		NoSigs: true,
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("localkvs: cluster: embedded NATS server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{c.log.With("nats", c.name)}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return fmt.Errorf("localkvs: cluster: the embedded NATS server did not start listening (is %s or the client port taken?)", cc.Listen)
	}
	c.ns = ns
	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("kvswebrtc "+c.node),
		nats.MaxReconnects(-1), nats.ErrorHandler(c.natsError))
	if err != nil {
		return fmt.Errorf("localkvs: cluster: connecting to the embedded NATS server: %w", err)
	}
	c.nc = nc
	c.log.Info("localkvs: cluster node", "node", c.name, "cluster", cc.Name, "routes_listen", cc.Listen,
		"routes", len(routes), "nats_clients", ns.ClientURL(), "jetstream", dir)
	return nil
}

// dial connects to the external NATS system, retrying in the background
// while it is not reachable (the server is not ready meanwhile).
func (c *cluster) dial() error {
	opts := append([]nats.Option{
		nats.Name("kvswebrtc " + c.node),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ErrorHandler(c.natsError),
	}, c.cfg.NATSOptions...)
	nc, err := nats.Connect(c.cfg.NATSURL, opts...)
	if err != nil {
		return fmt.Errorf("localkvs: cluster: connecting to NATS: %w", err)
	}
	c.nc = nc
	c.log.Info("localkvs: cluster node", "node", c.name, "nats", redactURL(c.cfg.NATSURL))
	return nil
}

// redactURL drops the user information of NATS URLs, for logs.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = nil
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

func (c *cluster) natsError(_ *nats.Conn, sub *nats.Subscription, err error) {
	subj := ""
	if sub != nil {
		subj = sub.Subject
	}
	c.log.Warn("localkvs: cluster: NATS error", "subject", subj, "err", err)
}

// natsLogger routes the embedded NATS server's logs to the server's
// logger: notices at debug level, warnings and errors at warn level.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(format string, v ...any) { n.logf(slog.LevelDebug, format, v...) }
func (n natsLogger) Warnf(format string, v ...any)   { n.logf(slog.LevelWarn, format, v...) }
func (n natsLogger) Fatalf(format string, v ...any)  { n.logf(slog.LevelError, format, v...) }
func (n natsLogger) Errorf(format string, v ...any)  { n.logf(slog.LevelWarn, format, v...) }
func (n natsLogger) Debugf(format string, v ...any)  { n.logf(slog.LevelDebug-1, format, v...) }
func (n natsLogger) Tracef(string, ...any)           {}

func (n natsLogger) logf(level slog.Level, format string, v ...any) {
	if n.l.Enabled(context.Background(), level) {
		n.l.Log(context.Background(), level, "localkvs: nats: "+fmt.Sprintf(format, v...))
	}
}

// Subjects. A node receives its clients' messages on
// <prefix>node.<node>.<shard>, everyone's broadcasts on <prefix>all, and
// kept messages live in the stream on <prefix>pending.<arn>.<recipient>.<sender>.<o|x>.
func (c *cluster) nodeSubject(node string, shard int) string {
	return c.prefix + "node." + token(node) + "." + strconv.Itoa(shard)
}

func (c *cluster) allSubject() string { return c.prefix + "all" }

func shardOf(arn string) int {
	h := fnv.New32a()
	h.Write([]byte(arn))
	return int(h.Sum32() % clusterShards)
}

// subscribe listens on this node's subjects and on the broadcasts.
func (c *cluster) subscribe() error {
	for i := 0; i < clusterShards; i++ {
		sub, err := c.nc.Subscribe(c.nodeSubject(c.node, i), c.onNodeMsg)
		if err != nil {
			return fmt.Errorf("localkvs: cluster: subscribe: %w", err)
		}
		_ = sub.SetPendingLimits(1<<20, 256<<20)
		c.subs = append(c.subs, sub)
	}
	sub, err := c.nc.Subscribe(c.allSubject(), c.onNodeMsg)
	if err != nil {
		return fmt.Errorf("localkvs: cluster: subscribe: %w", err)
	}
	_ = sub.SetPendingLimits(1<<20, 256<<20)
	c.subs = append(c.subs, sub)
	hb, err := c.nc.Subscribe(c.prefix+"hb", c.onHeartbeat)
	if err != nil {
		return fmt.Errorf("localkvs: cluster: subscribe: %w", err)
	}
	c.subs = append(c.subs, hb)
	return nil
}

// close leaves the cluster. Unless it crashed, the node first tells the
// others it stops and waits for them to count it gone (leaveCluster),
// then removes its entry from the nodes bucket; a crash (tests) cleans
// nothing up.
func (c *cluster) close() {
	c.closeOnce.Do(func() {
		if !c.crashed.Load() && c.ready.Load() && c.nc.IsConnected() {
			c.leaveCluster()
		}
		c.cancel() // the heartbeat, the watches and the bootstrap stop
		close(c.pendq)
		c.wg.Wait() // and what is left to keep is written
		if !c.crashed.Load() && c.ready.Load() && c.nc.IsConnected() {
			ctx, cancel := context.WithTimeout(context.Background(), clusterOpTimeout)
			_ = c.nodes.kv.Delete(ctx, "n."+token(c.node))
			cancel()
		}
		c.closeNATS()
	})
}

func (c *cluster) closeNATS() {
	if c.nc != nil {
		if c.crashed.Load() {
			c.nc.Close()
		} else {
			_ = c.nc.Drain()
			for i := 0; i < 100 && !c.nc.IsClosed(); i++ {
				time.Sleep(10 * time.Millisecond)
			}
			c.nc.Close()
		}
	}
	if c.ns != nil {
		c.ns.Shutdown()
		c.ns.WaitForShutdown()
	}
	if c.tempDir != "" {
		os.RemoveAll(c.tempDir)
	}
}

// crash stops the node's NATS as a killed process would: no entry removed,
// nothing drained. The server's own Close follows.
func (c *cluster) crash() {
	c.crashed.Store(true)
	if c.ns != nil {
		c.ns.Shutdown()
	}
	c.nc.Close()
}

// sharedTURNSecret fills secret with the cluster's TURN secret, which
// every node shares, and reports whether the server is a cluster node.
func (s *Server) sharedTURNSecret(secret []byte) bool {
	if s.cluster == nil {
		return false
	}
	copy(secret, s.cluster.turnSec)
	return true
}
