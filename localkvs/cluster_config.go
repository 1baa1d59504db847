package localkvs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
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
	// clusterLeaveWait bounds how long a stopping node waits for the
	// others to answer that they count it gone (leaveCluster).
	clusterLeaveWait = 2 * time.Second
	// clusterOpTimeout bounds one JetStream operation.
	clusterOpTimeout = 5 * time.Second
	// clusterStoreStale: a node whose writes to JetStream have all failed
	// for this long is not ready (a stream leader's election takes seconds).
	clusterStoreStale = 15 * time.Second
)
