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

// HoldStalePlaces writes places for n viewers of channel arn on node s
// that no connection holds, as a leave that failed would leave them.
func HoldStalePlaces(s *Server, arn string, n int) error {
	rev, err := s.cluster.updateRoster(arn, func(r *roster) (bool, error) {
		for i := 0; i < n; i++ {
			r.set(false, "stale-"+string(rune('a'+i)), &rosterEntry{Node: s.cluster.node, Conn: 1 << 40})
		}
		return false, nil
	})
	if err == nil {
		s.cluster.rosters.waitRev(rev, 5*time.Second) // the sweep reads this node's view
	}
	return err
}

// DelayWatches makes node s apply each later change of the rosters and
// nodes buckets d after it reaches it, as a loaded node's view trails
// the buckets.
func DelayWatches(s *Server, d time.Duration) {
	s.cluster.rosters.lag.Store(int64(d))
	s.cluster.nodes.lag.Store(int64(d))
}

// SweepRosters runs the sweep of stale places on node s now.
func SweepRosters(s *Server) { s.cluster.sweepRosters() }
