package localkvs

import "time"

// SetClusterTiming shortens the heartbeat of cluster nodes and the time
// after which a silent node counts as dead, for tests. It changes package
// variables: call it before starting nodes.
func SetClusterTiming(heartbeat, deadAfter time.Duration) {
	clusterHeartbeat, clusterDeadAfter = heartbeat, deadAfter
}

// Crash stops a cluster node as a killed process would stop: its NATS
// server and connection go at once, its connections are cut without
// GO_AWAY and nothing is cleaned up in the buckets (its entries stay until
// the other nodes see it dead).
func Crash(s *Server) {
	if s.cluster != nil {
		s.cluster.crash()
	}
	s.Close()
}

// ClusterNode returns the id of s in its cluster, "" on a single server.
func ClusterNode(s *Server) string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.node
}
