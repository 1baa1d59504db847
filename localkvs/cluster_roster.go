package localkvs

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// The limits of a channel across the cluster (docs/cluster.md, "Limits"):
// each channel has a roster in the rosters bucket, key r.<ARN>, naming the
// node and connection holding its master's place and each viewer's, and
// the channel's connect-rate bucket. A connect anywhere is admitted by one
// compare-and-set of the roster: read it, check the limits against it,
// write it back with the new connection only if nobody wrote it meanwhile,
// else start again. So the 11th viewer is refused wherever it connects,
// the connects per second are counted for the channel and not per node,
// and of two masters connecting at once on two nodes the one written last
// holds the place. A roster revision is the admission's sequence number:
// a connection whose place a later revision gives to another is closed
// (4001) by its node when that revision reaches it (enforceRoster). The
// entries of a node that stopped renewing its entry in the nodes bucket
// (clusterDeadAfter) count for nothing and are dropped by the next write.

// roster is the value of a channel's key in the rosters bucket.
type roster struct {
	Master  *rosterEntry           `json:"m,omitempty"`
	Viewers map[string]rosterEntry `json:"v,omitempty"`
	Tokens  float64                `json:"t"`            // the connect-rate bucket's tokens at At
	At      int64                  `json:"at,omitempty"` // unix nanos; 0: never used (full)
}

// rosterEntry names the node and the connection (its number on that node)
// holding a place.
type rosterEntry struct {
	Node string `json:"n"`
	Conn uint64 `json:"c"`
}

// rosterState is a roster as the watch last saw it, with its revision.
type rosterState struct {
	r   roster
	rev uint64
}

func rosterKey(arn string) string { return "r." + token(arn) }

func (r *roster) entry(master bool, id string) *rosterEntry {
	if master {
		return r.Master
	}
	if e, ok := r.Viewers[id]; ok {
		return &e
	}
	return nil
}

func (r *roster) set(master bool, id string, e *rosterEntry) {
	if master {
		r.Master = e
		return
	}
	if e == nil {
		delete(r.Viewers, id)
		return
	}
	if r.Viewers == nil {
		r.Viewers = map[string]rosterEntry{}
	}
	r.Viewers[id] = *e
}

// prune drops the entries of dead nodes.
func (c *cluster) prune(r *roster) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if r.Master != nil && !c.aliveLocked(r.Master.Node, now) {
		r.Master = nil
	}
	for id, e := range r.Viewers {
		if !c.aliveLocked(e.Node, now) {
			delete(r.Viewers, id)
		}
	}
}

// applyRoster keeps rosterMap and enforces each new roster on this
// node's connections.
func (c *cluster) applyRoster(e jetstream.KeyValueEntry, _ bool) {
	arn, err := untoken(strings.TrimPrefix(e.Key(), "r."))
	if err != nil {
		return
	}
	var st rosterState
	if e.Operation() == jetstream.KeyValuePut {
		if json.Unmarshal(e.Value(), &st.r) != nil {
			return
		}
	}
	st.rev = e.Revision()
	c.mu.Lock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(c.rosterMap, arn) // the channel was deleted; its connections are closed for that
		c.mu.Unlock()
		return
	}
	c.rosterMap[arn] = st
	c.mu.Unlock()
	c.enforceRoster(arn, st)
}

// enforceRoster closes the connections of this node whose place a later
// admission gave to another connection (on this node or another).
func (c *cluster) enforceRoster(arn string, st rosterState) {
	rm := c.s.existingRoom(arn)
	if rm == nil {
		return
	}
	var out []*wsConn
	rm.mu.Lock()
	for _, w := range rm.connectionsLocked() {
		if w.seq < st.rev && !c.owns(&st.r, w) {
			out = append(out, w)
		}
	}
	rm.mu.Unlock()
	for _, w := range out {
		c.log.Debug("localkvs: connection replaced on another node", "channel", arn, "role", w.role(), "clientId", w.id)
		w.close(wire.CloseReplaced, "replaced by a newer connection with the same role and ClientId")
	}
}

// owns reports whether w holds its place in r.
func (c *cluster) owns(r *roster, w *wsConn) bool {
	e := r.entry(w.master, w.id)
	if e == nil || e.Node != c.node {
		return false
	}
	c.mu.Lock()
	n, ok := c.admitted[w.seq]
	c.mu.Unlock()
	return ok && n == e.Conn
}

// readRoster returns the roster of arn and its revision: from the watch
// on a first attempt, from the stream's leader after a conflict.
func (c *cluster) readRoster(ctx context.Context, arn string, fresh bool) (roster, uint64, error) {
	if !fresh {
		c.mu.Lock()
		st, ok := c.rosterMap[arn]
		c.mu.Unlock()
		if ok {
			return cloneRoster(st.r), st.rev, nil
		}
	}
	val, rev, found, err := c.leaderGet(ctx, c.rosters.kv, rosterKey(arn))
	if err != nil {
		return roster{}, 0, err
	}
	var r roster
	if found {
		if err := json.Unmarshal(val, &r); err != nil {
			return roster{}, 0, err
		}
	}
	return r, rev, nil
}

func cloneRoster(r roster) roster {
	if r.Master != nil {
		m := *r.Master
		r.Master = &m
	}
	if r.Viewers != nil {
		v := make(map[string]rosterEntry, len(r.Viewers))
		for k, e := range r.Viewers {
			v[k] = e
		}
		r.Viewers = v
	}
	return r
}

// updateRoster applies fn to the roster of arn with compare-and-set until
// it sticks, and returns the revision written. fn returns skip true to
// leave the roster as it is (revision 0 then), or an error to refuse.
func (c *cluster) updateRoster(arn string, fn func(r *roster) (skip bool, err error)) (uint64, error) {
	ctx, cancel := context.WithTimeout(c.ctx, clusterOpTimeout)
	defer cancel()
	for attempt := 0; attempt < casRetries; attempt++ {
		r, rev, err := c.readRoster(ctx, arn, attempt > 0)
		if err != nil {
			return 0, err
		}
		c.prune(&r)
		skip, err := fn(&r)
		if (err != nil || skip) && attempt == 0 {
			continue // decided on this node's view, which may lag: decide again on the leader's roster
		}
		if err != nil || skip {
			return 0, err
		}
		b, _ := json.Marshal(&r)
		nrev, err := casPut(ctx, c.rosters.kv, rosterKey(arn), b, rev)
		if isConflict(err) {
			if attempt > 2 { // many writers on one channel: spread them out
				time.Sleep(time.Duration(rand.IntN(2000*min(attempt, 10))) * time.Microsecond)
			}
			continue
		}
		return nrev, err
	}
	return 0, errors.New("too many concurrent connects to the channel")
}

// admit admits a connection to rm's channel across the cluster (the
// limits of docs/protocol.md, "Limits", for the whole channel) and returns
// its sequence number, the roster revision that gave it its place.
func (c *cluster) admit(rm *room, viewerID string, isViewer bool) (uint64, error) {
	if err := c.readyErr(); err != nil {
		return 0, errClusterUnavailable(err)
	}
	l := c.s.limits
	no := c.connNo.Add(1)
	c.mu.Lock()
	c.inflight[no] = true // not stale for sweepRosters while it is being admitted
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.inflight, no)
		c.mu.Unlock()
	}()
	rate := l.ConnectsPerSecond
	burst := max(1, float64(int(rate)))
	seq, err := c.updateRoster(rm.arn, func(r *roster) (bool, error) {
		now := c.s.clock.Now().UnixNano()
		if rate >= 0 {
			tokens := burst
			if r.At != 0 {
				elapsed := max(0, float64(now-r.At)/1e9)
				tokens = min(burst, r.Tokens+elapsed*rate)
			}
			if tokens < 1 {
				return false, limitExceeded(codeClientLimit, "connections to this channel are limited to %g per second", rate)
			}
			r.Tokens, r.At = tokens-1, now
		}
		if isViewer {
			if _, again := r.Viewers[viewerID]; !again && len(r.Viewers) >= l.MaxViewers {
				return false, limitExceeded(codeClientLimit, "the channel already has the maximum of %d viewers connected", l.MaxViewers)
			}
		}
		r.set(!isViewer, viewerID, &rosterEntry{Node: c.node, Conn: no})
		return false, nil
	})
	if err != nil {
		if _, ok := asAPIError(err); ok {
			return 0, err
		}
		c.log.Warn("localkvs: cluster: admitting a connection failed", "channel", rm.arn, "err", err)
		return 0, errClusterUnavailable(err)
	}
	c.mu.Lock()
	c.admitted[seq] = no
	c.mu.Unlock()
	return seq, nil
}

// leave frees the place of the connection admitted as seq, if it still
// holds it (seq 0: whatever connection of this node holds it).
func (c *cluster) leave(arn string, master bool, id string, seq uint64) {
	c.mu.Lock()
	no, known := c.admitted[seq]
	delete(c.admitted, seq)
	c.mu.Unlock()
	if seq != 0 && !known {
		return
	}
	if c.crashed.Load() || c.s.closed.Load() {
		return // a node that stops drops its entry from the nodes bucket instead: its places free at once
	}
	_, err := c.updateRoster(arn, func(r *roster) (bool, error) {
		e := r.entry(master, id)
		if e == nil || e.Node != c.node || (seq != 0 && e.Conn != no) {
			return true, nil // not ours any more
		}
		r.set(master, id, nil)
		return false, nil
	})
	if err != nil && c.ctx.Err() == nil {
		c.log.Info("localkvs: cluster: freeing a connection's place failed; it frees when this node is seen dead", "channel", arn, "err", err)
	}
}

// sweepRosters frees the places this node holds in the rosters for
// connections it has neither admitting nor connected: those whose leave
// failed (JetStream unavailable at the time), which would otherwise hold a
// viewer's place for as long as this node lives.
func (c *cluster) sweepRosters() {
	type place struct {
		arn    string
		master bool
		id     string
		conn   uint64
	}
	var stale []place
	c.mu.RLock()
	live := make(map[uint64]bool, len(c.admitted)+len(c.inflight))
	for _, no := range c.admitted {
		live[no] = true
	}
	for no := range c.inflight {
		live[no] = true
	}
	for arn, st := range c.rosterMap {
		if e := st.r.Master; e != nil && e.Node == c.node && !live[e.Conn] {
			stale = append(stale, place{arn, true, "", e.Conn})
		}
		for id, e := range st.r.Viewers {
			if e.Node == c.node && !live[e.Conn] {
				stale = append(stale, place{arn, false, id, e.Conn})
			}
		}
	}
	c.mu.RUnlock()
	for _, p := range stale {
		if c.ctx.Err() != nil {
			return
		}
		_, err := c.updateRoster(p.arn, func(r *roster) (bool, error) {
			e := r.entry(p.master, p.id)
			if e == nil || e.Node != c.node || e.Conn != p.conn {
				return true, nil
			}
			r.set(p.master, p.id, nil)
			return false, nil
		})
		if err == nil {
			c.log.Debug("localkvs: cluster: a stale place freed", "channel", p.arn, "clientId", p.id)
		}
	}
}

// places returns the number of connections the channel has in the
// cluster, as the watch last saw its roster.
func (c *cluster) places(arn string) (onOthers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.rosterMap[arn]
	now := time.Now()
	if e := st.r.Master; e != nil && e.Node != c.node && c.aliveLocked(e.Node, now) {
		onOthers++
	}
	for _, e := range st.r.Viewers {
		if e.Node != c.node && c.aliveLocked(e.Node, now) {
			onOthers++
		}
	}
	return onOthers
}

// locateFresh is locate after reading the roster from the leader, for a
// request that must not miss a client that connected a moment ago.
func (c *cluster) locateFresh(ctx context.Context, arn string, master bool, id string) (string, bool) {
	if node, ok := c.locate(arn, master, id); ok {
		return node, true
	}
	r, _, err := c.readRoster(ctx, arn, true)
	if err != nil {
		return "", false
	}
	e := r.entry(master, id)
	if e == nil || !c.alive(e.Node) {
		return "", false
	}
	return e.Node, true
}

// locate returns the node holding a place (the master's, or viewer id's),
// if it is alive: the roster's entry, or a newer hint (learn).
func (c *cluster) locate(arn string, master bool, id string) (string, bool) {
	c.mu.RLock() // on every message to another node: readers only
	defer c.mu.RUnlock()
	st, ok := c.rosterMap[arn]
	node := ""
	if ok {
		if e := st.r.entry(master, id); e != nil {
			node = e.Node
		}
	}
	if len(c.hints) > 0 {
		if h, ok := c.hints[hintKey(arn, master, id)]; ok && h.seq > st.rev {
			node = h.node // the roster has not caught up yet (learn drops the hint once it has)
		}
	}
	if node == "" || !c.aliveLocked(node, time.Now()) {
		return "", false
	}
	return node, true
}

// hint is where a client was last heard from, and its admission there.
type hint struct {
	node string
	seq  uint64
}

func hintKey(arn string, master bool, id string) string { return arn + "\x00" + peerToken(master, id) }

// learn notes that a client admitted as seq sends from node. A message
// may overtake the roster change that moved its sender (the roster
// reaches each node through JetStream, the message through the sender's
// node): until this node's roster holds seq, the hint says where to
// answer, so that an answer to a client that moved to another node goes
// there and not to its old node.
func (c *cluster) learn(arn string, master bool, id, node string, seq uint64) {
	c.mu.RLock() // on every message from another node: almost always known already
	caught, hints := c.rosterMap[arn].rev >= seq, len(c.hints)
	c.mu.RUnlock()
	if caught && hints == 0 {
		return
	}
	k := hintKey(arn, master, id)
	if caught {
		c.mu.RLock()
		_, has := c.hints[k]
		c.mu.RUnlock()
		if !has {
			return
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rosterMap[arn].rev >= seq {
		delete(c.hints, k) // the roster caught up
		return
	}
	if h, ok := c.hints[k]; ok && h.seq >= seq {
		return
	}
	if len(c.hints) > 100000 {
		clear(c.hints)
	}
	c.hints[k] = hint{node, seq}
}
