package localkvs

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The operations endpoints, on the service's port beside the API (GET
// without a WebSocket upgrade; no signature, and nothing secret in them):
//
//	GET /healthz   200 "ok" while the process serves
//	GET /readyz    200 "ready" when the node can take requests; 503 and why not
//	GET /metrics   the Prometheus metrics (metrics.go)
//
// A cluster node that is not ready (JetStream has no quorum yet, NATS is
// unreachable) also answers every API call and connect with 503
// ServiceUnavailableException, so that a load balancer's retry lands on a
// node that is.

// serveOps serves the operations endpoints and refuses requests while a
// cluster node is not ready. It reports whether it answered.
func (s *Server) serveOps(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet && !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		switch r.URL.Path {
		case "/healthz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ok\n"))
			return true
		case "/readyz":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			if err := s.readyErr(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write([]byte("not ready: " + err.Error() + "\n"))
				return true
			}
			w.Write([]byte("ready\n"))
			return true
		case "/metrics":
			promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
			return true
		}
	}
	if s.cluster != nil {
		if err := s.cluster.readyErr(); err != nil {
			writeError(w, errClusterUnavailable(err))
			return true
		}
	}
	return false
}

// readyErr returns why the server cannot take requests, or nil.
func (s *Server) readyErr() error {
	if s.closed.Load() {
		return errors.New("shutting down")
	}
	if s.Addr() == nil {
		return errors.New("not serving yet")
	}
	if s.cluster != nil {
		return s.cluster.readyErr()
	}
	return nil
}

// WaitReady waits until the server can take requests (what GET /readyz
// answers 200 for) or ctx is done. A single server is ready once it
// serves; a cluster node once its NATS connection is up and JetStream has
// the buckets (which needs a quorum of the cluster's servers: the first
// node of a new cluster waits for the second).
func (s *Server) WaitReady(ctx context.Context) error {
	for {
		err := s.readyErr()
		if err == nil {
			return nil
		}
		if s.closed.Load() {
			return ErrServerClosed
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
