package localkvs

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, served on GET /metrics
// (health.go; docs/cluster.md, "Metrics"). Each Server has its own
// registry, so that several servers in one process (tests) do not mix.
// A nil *metrics counts nothing.
type metrics struct {
	reg *prometheus.Registry

	routedLocal, routedRemote prometheus.Counter
	refusals                  *prometheus.CounterVec
	signatures                prometheus.Counter
	kept, keptDropped         prometheus.Counter
	storeOps                  *prometheus.HistogramVec
}

// newMetrics registers the server's metrics. The gauges read the server's
// state when scraped.
func newMetrics(s *Server) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{reg: reg}
	f := prometheus.WrapRegistererWithPrefix("kvswebrtc_", reg)
	routed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messages_routed_total",
		Help: "Signaling messages delivered to a recipient: path=local when sender and recipient are on this node, remote when one of them is on another node (counted on the sender's node) or the message had been kept.",
	}, []string{"path"})
	m.routedLocal = routed.WithLabelValues("local")
	m.routedRemote = routed.WithLabelValues("remote")
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "refusals_total",
		Help: "Connects and messages refused, by reason: signature, connect_rate, viewers, not_found, invalid, replaced, unavailable (connects); message_invalid, message_rate (messages); other.",
	}, []string{"reason"})
	m.signatures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "signature_failures_total",
		Help: "Requests and WebSocket connects whose SigV4 signature did not verify (wrong key or signature, expired, clock skew).",
	})
	m.kept = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "messages_kept_total",
		Help: "Messages kept for a recipient connected nowhere in the cluster (cluster mode).",
	})
	m.keptDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "messages_kept_failed_total",
		Help: "Messages for a recipient connected nowhere that could not be kept (cluster mode).",
	})
	m.storeOps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "store_operation_seconds",
		Help:    "Latency of the channel and stream store's operations, by operation and backend (bbolt or jetstream).",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"op", "backend"})
	f.MustRegister(routed, m.refusals, m.signatures, m.kept, m.keptDropped, m.storeOps)
	for _, role := range []string{"MASTER", "VIEWER"} {
		master := role == "MASTER"
		f.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "connections",
			Help:        "Signaling WebSocket connections open on this node, by role.",
			ConstLabels: prometheus.Labels{"role": role},
		}, func() float64 {
			n := 0
			s.forEachConn(func(c *wsConn) {
				if c.master == master {
					n++
				}
			})
			return float64(n)
		}))
	}
	f.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "turn_allocations",
		Help: "TURN allocations open on this node's TURN server.",
	}, func() float64 {
		t := s.turn.Load()
		if t == nil {
			return 0
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		n := 0
		for _, v := range t.allocs {
			n += v
		}
		return float64(n)
	}))
	f.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ready",
		Help: "1 when the node serves (GET /readyz answers 200), else 0.",
	}, func() float64 {
		if s.readyErr() != nil {
			return 0
		}
		return 1
	}))
	if s.cfg.Cluster.enabled() {
		f.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cluster_nodes",
			Help: "Nodes of the cluster this node sees alive, itself included.",
		}, func() float64 {
			if s.cluster == nil {
				return 0
			}
			return float64(len(s.cluster.aliveNodes()))
		}))
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// routed counts a message delivered.
func (m *metrics) routed(remote bool) {
	if m == nil {
		return
	}
	if remote {
		m.routedRemote.Inc()
	} else {
		m.routedLocal.Inc()
	}
}

// refusedConnect counts a refused WebSocket connect, by the error it got.
func (m *metrics) refusedConnect(ae *apiError) {
	if m == nil {
		return
	}
	reason := "other"
	switch ae.code {
	case codeAccessDenied:
		reason = "signature"
	case codeClientLimit:
		reason = "connect_rate"
		if strings.Contains(ae.msg, "viewers") {
			reason = "viewers"
		}
	case codeNotFound:
		reason = "not_found"
	case codeInvalidArgument:
		reason = "invalid"
	case codeInUse:
		reason = "replaced"
	case codeUnavailable:
		reason = "unavailable"
	}
	m.refusals.WithLabelValues(reason).Inc()
}

// refusedMessage counts a client message dropped (STATUS_RESPONSE or not).
func (m *metrics) refusedMessage(code string) {
	if m == nil {
		return
	}
	reason := "message_invalid"
	if code == codeClientLimit {
		reason = "message_rate"
	}
	m.refusals.WithLabelValues(reason).Inc()
}

// signatureFailed counts a request whose signature did not verify.
func (m *metrics) signatureFailed() {
	if m != nil {
		m.signatures.Inc()
	}
}

func (m *metrics) pendingKept() {
	if m != nil {
		m.kept.Inc()
	}
}

func (m *metrics) pendingDropped() {
	if m != nil {
		m.keptDropped.Inc()
	}
}

// storeOp records the latency of a store operation started at t0.
func (m *metrics) storeOp(op, backend string, t0 time.Time) {
	if m != nil {
		m.storeOps.WithLabelValues(op, backend).Observe(time.Since(t0).Seconds())
	}
}
