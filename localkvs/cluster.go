package localkvs

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net"
	"net/http"
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

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// ClusterConfig makes the server one node of a cluster of servers that
// share their channels, streams and connections through NATS (JetStream
// key-value buckets for the state, subjects for the messages between
// nodes; docs/cluster.md). Give either NATSURL (an existing NATS system
// with JetStream) or Name and Listen (each node runs an embedded NATS
// server, and the nodes' embedded servers form the NATS cluster). The zero
// value is a single server, with its store in bbolt.
type ClusterConfig struct {
	// NATSURL is the URL of an external NATS system with JetStream enabled,
	// "nats://host:4222" (comma-separated for several servers).
	NATSURL string
	// NATSOptions are options for the connection to NATSURL (credentials,
	// TLS; see package nats). They are not logged.
	NATSOptions []nats.Option

	// Name is the NATS cluster name of the embedded NATS server: every node
	// gives the same. With Name, the server runs an embedded NATS server
	// with JetStream and connects to it in-process.
	Name string
	// Listen is the "host:port" the embedded NATS server accepts the other
	// nodes' routes on.
	Listen string
	// Routes are the other nodes' route addresses ("host:port" or
	// "nats-route://host:port"). A node's own address may be listed too.
	Routes []string
	// ClientListen is the "host:port" the embedded NATS server accepts NATS
	// clients on (the nats CLI, say); "" means a free port on 127.0.0.1.
	ClientListen string
	// StoreDir is where the embedded server keeps JetStream's data; ""
	// means DataDir/jetstream, or a temporary directory removed when the
	// server stops when DataDir is empty too.
	StoreDir string

	// NodeName names this node in the cluster (and its embedded NATS
	// server, whose name must be unique among them); "" means the host
	// name and the route port, or the host name and the process id.
	NodeName string
	// Replicas is how many copies JetStream keeps of each bucket: 0 means 3
	// when the cluster has three servers or more and 1 otherwise.
	Replicas int
	// TURNSecret is the secret every node signs and checks TURN
	// credentials with (the TURN REST-API convention), so that
	// credentials one node hands out are accepted by every node's TURN
	// server. Every node must have the same. "" derives it from
	// Credentials (which every node shares anyway) and the region. It is
	// never logged.
	TURNSecret string
}

// enabled reports whether the cluster mode is on.
func (cc *ClusterConfig) enabled() bool { return cc.NATSURL != "" || cc.Name != "" }

// validate checks the cluster fields and names the one that breaks a rule.
func (cc *ClusterConfig) validate() error {
	if !cc.enabled() {
		if cc.Listen != "" || len(cc.Routes) > 0 {
			return fmt.Errorf("%w: Cluster.Listen and Cluster.Routes need Cluster.Name (the embedded NATS server's cluster name)", ErrInvalidConfig)
		}
		return nil
	}
	if cc.NATSURL != "" && cc.Name != "" {
		return fmt.Errorf("%w: Cluster.NATSURL (an external NATS system) and Cluster.Name (an embedded NATS server) exclude each other", ErrInvalidConfig)
	}
	if cc.Name != "" {
		if strings.ContainsAny(cc.Name, " \t.*>") {
			return fmt.Errorf("%w: Cluster.Name %q must not hold spaces, dots or wildcards", ErrInvalidConfig, cc.Name)
		}
		if cc.Listen == "" {
			return fmt.Errorf("%w: Cluster.Listen (host:port for the other nodes' routes) is required with Cluster.Name", ErrInvalidConfig)
		}
		if _, err := splitHostPort("Cluster.Listen", cc.Listen); err != nil {
			return err
		}
		if cc.ClientListen != "" {
			if _, err := splitHostPort("Cluster.ClientListen", cc.ClientListen); err != nil {
				return err
			}
		}
		for i, r := range cc.Routes {
			if _, err := routeURL(r); err != nil {
				return fmt.Errorf("%w: Cluster.Routes[%d] %q: %v", ErrInvalidConfig, i, r, err)
			}
		}
	}
	if cc.Replicas < 0 || cc.Replicas > 5 {
		return fmt.Errorf("%w: Cluster.Replicas %d must be between 0 and 5", ErrInvalidConfig, cc.Replicas)
	}
	if strings.ContainsAny(cc.NodeName, " \t*>") {
		return fmt.Errorf("%w: Cluster.NodeName %q must not hold spaces or wildcards", ErrInvalidConfig, cc.NodeName)
	}
	return nil
}

type hostPort struct {
	host string
	port int
}

func splitHostPort(field, s string) (hostPort, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return hostPort{}, fmt.Errorf("%w: %s %q is not host:port: %v", ErrInvalidConfig, field, s, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return hostPort{}, fmt.Errorf("%w: %s %q has an invalid port", ErrInvalidConfig, field, s)
	}
	if h == "" {
		h = "0.0.0.0"
	}
	return hostPort{h, n}, nil
}

// routeURL turns "host:port" or "nats-route://host:port" into a route URL.
func routeURL(s string) (*url.URL, error) {
	if !strings.Contains(s, "://") {
		s = "nats-route://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "nats-route" && u.Scheme != "nats" {
		return nil, fmt.Errorf("scheme %q: want nats-route://host:port", u.Scheme)
	}
	if u.Port() == "" {
		return nil, errors.New("no port")
	}
	return u, nil
}

// Timing of the cluster. Variables so that tests can shorten them.
var (
	// clusterHeartbeat is how often a node renews its entry in the nodes bucket.
	clusterHeartbeat = time.Second
	// clusterDeadAfter is how long a node whose entry was not renewed
	// counts as alive: its connections' places in the rosters are freed
	// after it, and messages for them are kept instead.
	clusterDeadAfter = 3 * time.Second
	// clusterSweep is how often a node drops from the rosters the places
	// it holds for connections it no longer has (a leave that failed).
	clusterSweep = 30 * time.Second
	// clusterOpTimeout bounds one JetStream operation.
	clusterOpTimeout = 5 * time.Second
	// clusterStoreStale: a node whose writes to JetStream have all failed
	// for this long is not ready (a stream leader's election takes seconds).
	clusterStoreStale = 15 * time.Second
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
		host = strings.NewReplacer(".", "-", " ", "-").Replace(cmpOr(host, "node"))
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

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

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

// bootstrapLoop makes or binds the buckets until it succeeds (JetStream
// needs a quorum of the cluster's servers first), then keeps the
// heartbeat.
func (c *cluster) bootstrapLoop() {
	defer c.wg.Done()
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := c.bootstrap()
		if err == nil {
			break
		}
		if c.ctx.Err() != nil {
			return
		}
		why := err.Error()
		if old := c.notReady.Load(); old == nil || *old != why {
			c.log.Info("localkvs: cluster not ready yet", "node", c.name, "why", why)
		}
		c.notReady.Store(&why)
		select {
		case <-time.After(delay):
		case <-c.ctx.Done():
			return
		}
	}
	c.heartbeat()
	c.ready.Store(true)
	c.notReady.Store(nil)
	c.log.Info("localkvs: cluster ready", "node", c.name, "nodes", len(c.aliveNodes()))
	t := time.NewTicker(clusterHeartbeat)
	defer t.Stop()
	sweep := time.NewTicker(clusterSweep)
	defer sweep.Stop()
	for {
		select {
		case <-t.C:
			c.heartbeat()
		case <-sweep.C:
			c.sweepRosters()
		case <-c.ctx.Done():
			return
		}
	}
}

// replicas is the number of copies of the buckets.
func (c *cluster) replicas() int {
	if c.cfg.Replicas > 0 {
		return c.cfg.Replicas
	}
	if c.cfg.Name != "" {
		peers := map[string]bool{}
		for _, r := range c.cfg.Routes {
			if u, err := routeURL(r); err == nil {
				peers[u.Host] = true
			}
		}
		delete(peers, c.cfg.Listen)
		return min(3, 1+len(peers))
	}
	return 3
}

// bootstrap makes or binds the buckets and the pending stream and loads
// the mirrors. It waits for JetStream to answer first: a request sent
// before the cluster has a meta leader is lost, and would hold the
// bootstrap for a whole timeout.
func (c *cluster) bootstrap() error {
	ctx, cancel := context.WithTimeout(c.ctx, 4*clusterOpTimeout)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := c.js.AccountInfo(actx)
		acancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("JetStream is not available: %w", err)
		}
	}
	r := c.replicas()
	kvs := []jetstream.KeyValueConfig{
		{Bucket: c.bucket + "resources", Description: "kvswebrtc: signaling channels, streams, media storage"},
		{Bucket: c.bucket + "rosters", Description: "kvswebrtc: the connections of each channel and the node holding each"},
		{Bucket: c.bucket + "nodes", Description: "kvswebrtc: the live nodes", TTL: time.Minute},
	}
	pcfg := jetstream.StreamConfig{
		Name:              c.bucket + "pending",
		Description:       "kvswebrtc: messages kept for recipients not connected, for their channel's MessageTtlSeconds",
		Subjects:          []string{c.prefix + "pending.>"},
		Storage:           jetstream.FileStorage,
		MaxAge:            wire.MaxMessageTTL + 5*time.Second,
		MaxMsgsPerSubject: maxPending,
		Discard:           jetstream.DiscardOld,
		AllowMsgTTL:       true,
		AllowRollup:       true,
	}
	if b := c.s.limits.PendingBytes; b > 0 {
		pcfg.MaxBytes = b
	}
	// Each bucket on its own goroutine: nodes starting together race to
	// make them, and the losers' requests time out (bindOrCreate).
	bound := make([]jetstream.KeyValue, len(kvs))
	errs := make([]error, len(kvs)+1)
	var wg sync.WaitGroup
	for i := range kvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := kvs[i]
			cfg.History, cfg.Storage, cfg.Replicas = 1, jetstream.FileStorage, r
			bound[i], errs[i] = bindOrCreate(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
				return c.js.KeyValue(ctx, cfg.Bucket)
			}, func(ctx context.Context) (jetstream.KeyValue, error) {
				kv, err := c.js.CreateKeyValue(ctx, cfg)
				if err != nil && c.cfg.Replicas == 0 && c.cfg.NATSURL != "" && cfg.Replicas > 1 && replicasUnsupported(err) {
					cfg.Replicas = 1 // a single external server
					kv, err = c.js.CreateKeyValue(ctx, cfg)
				}
				return kv, err
			})
			if errs[i] != nil {
				errs[i] = fmt.Errorf("bucket %s: %w", cfg.Bucket, errs[i])
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		pcfg.Replicas = r
		var ps jetstream.Stream
		ps, errs[len(kvs)] = bindOrCreate(ctx, func(ctx context.Context) (jetstream.Stream, error) {
			return c.js.Stream(ctx, pcfg.Name)
		}, func(ctx context.Context) (jetstream.Stream, error) {
			s, err := c.js.CreateStream(ctx, pcfg)
			if err != nil && c.cfg.Replicas == 0 && c.cfg.NATSURL != "" && pcfg.Replicas > 1 && replicasUnsupported(err) {
				pcfg.Replicas = 1
				s, err = c.js.CreateStream(ctx, pcfg)
			}
			return s, err
		})
		if errs[len(kvs)] != nil {
			errs[len(kvs)] = fmt.Errorf("stream %s: %w", pcfg.Name, errs[len(kvs)])
		}
		c.pending = ps
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if c.store.watch == nil {
		c.store.bind(bound[0])
		c.rosters = newKVWatch(bound[1], c.applyRoster, c.log)
		c.nodes = newKVWatch(bound[2], c.applyNode, c.log)
		for _, w := range []*kvWatch{c.store.watch, c.rosters, c.nodes} {
			w.start(c.ctx)
		}
	}
	for _, w := range []*kvWatch{c.store.watch, c.rosters, c.nodes} {
		if err := w.waitSynced(ctx); err != nil {
			return fmt.Errorf("loading bucket %s: %w", w.kv.Bucket(), err)
		}
	}
	return nil
}

// bindOrCreate binds to a bucket or stream, making it when it is not
// there. Each attempt has a short timeout: when nodes race to make one,
// the losers' requests may get no answer, and their next attempt binds.
func bindOrCreate[T any](ctx context.Context, bind, create func(context.Context) (T, error)) (T, error) {
	var zero T
	for {
		actx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		v, err := bind(actx)
		if err != nil && (errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound)) {
			v, err = create(actx)
		}
		cancel()
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return zero, err
		}
		var ae *jetstream.APIError
		if errors.As(err, &ae) && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) && ae.ErrorCode != 10058 {
			return zero, err // a refusal, not a race: report it
		}
		select {
		case <-ctx.Done():
			return zero, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// replicasUnsupported reports whether err says the NATS system has too
// few servers for the replicas asked.
func replicasUnsupported(err error) bool {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode == 10074 || ae.ErrorCode == 10023 // replicas > 1 not supported in non-clustered mode; insufficient resources
	}
	return false
}

// heartbeat tells the other nodes that this one is alive: on a core NATS
// subject, which is what they decide liveness on (it does not wait for
// JetStream, whose stream leaders are elected again for a few seconds
// after a node dies: liveness read from the bucket would let the
// survivors see each other dead meanwhile), and in the nodes bucket, for
// its endpoints (GetIceServerConfig lists another node's TURN server).
func (c *cluster) heartbeat() {
	if err := c.nc.Publish(c.prefix+"hb", []byte(c.node)); err != nil && c.ctx.Err() == nil {
		c.log.Warn("localkvs: cluster heartbeat failed", "node", c.name, "err", err)
	}
	if !c.beating.CompareAndSwap(false, true) {
		return // the last write to the bucket is still waiting
	}
	info := nodeInfo{Name: c.name, HTTP: c.s.URL(), Started: time.Now().UnixMilli()}
	if t := c.s.turn.Load(); t != nil {
		info.TURN = t.uris()
	}
	b, _ := json.Marshal(info)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer c.beating.Store(false)
		ctx, cancel := context.WithTimeout(c.ctx, clusterOpTimeout)
		defer cancel()
		if _, err := c.nodes.kv.Put(ctx, "n."+token(c.node), b); err != nil {
			if c.ctx.Err() == nil {
				c.log.Info("localkvs: cluster: renewing this node's entry failed", "node", c.name, "err", err)
			}
			return
		}
		c.lastBeat.Store(time.Now().UnixNano())
	}()
}

// onHeartbeat notes that a node is alive.
func (c *cluster) onHeartbeat(msg *nats.Msg) {
	id := string(msg.Data)
	if id == c.node {
		return
	}
	c.mu.Lock()
	n := c.nodeMap[id]
	n.seen = time.Now()
	c.nodeMap[id] = n
	c.mu.Unlock()
}

// applyNode keeps nodeMap: when each node was seen last.
func (c *cluster) applyNode(e jetstream.KeyValueEntry, initial bool) {
	id, err := untoken(strings.TrimPrefix(e.Key(), "n."))
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(c.nodeMap, id)
		return
	}
	var info nodeInfo
	if json.Unmarshal(e.Value(), &info) != nil {
		return
	}
	seen := time.Now()
	if initial {
		seen = e.Created() // a dead node's last entry must not look fresh
	}
	c.nodeMap[id] = nodeState{info: info, seen: seen}
}

// alive reports whether node renewed its entry within clusterDeadAfter.
func (c *cluster) alive(node string) bool {
	if node == c.node {
		return true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.aliveLocked(node, time.Now())
}

func (c *cluster) aliveLocked(node string, now time.Time) bool {
	if node == c.node {
		return true
	}
	n, ok := c.nodeMap[node]
	return ok && now.Sub(n.seen) < clusterDeadAfter
}

// aliveNodes returns the ids of the nodes alive, this one included.
func (c *cluster) aliveNodes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	out := []string{c.node}
	for id := range c.nodeMap {
		if id != c.node && c.aliveLocked(id, now) {
			out = append(out, id)
		}
	}
	slices.Sort(out[1:])
	return out
}

// readyErr returns why the node cannot serve yet, or nil.
func (c *cluster) readyErr() error {
	if c.ready.Load() && c.nc.IsConnected() {
		if lb := c.lastBeat.Load(); lb != 0 && time.Since(time.Unix(0, lb)) < clusterStoreStale {
			return nil
		}
		return errors.New("JetStream has taken no write for " + clusterStoreStale.String())
	}
	if !c.nc.IsConnected() {
		return errors.New("not connected to NATS")
	}
	if why := c.notReady.Load(); why != nil {
		return errors.New(*why)
	}
	return errors.New("starting")
}

// errClusterUnavailable answers requests while the node is not ready.
func errClusterUnavailable(why error) *apiError {
	return newAPIError(http.StatusServiceUnavailable, codeUnavailable, nil, "the cluster is not available: %v", why)
}

// close leaves the cluster. After a graceful stop it first removes this
// node's entry, so the others stop counting it at once; a crash (tests)
// cleans nothing up.
func (c *cluster) close() {
	c.closeOnce.Do(func() {
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
