package localkvs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// A node's life in the cluster: making or binding the buckets (which
// waits for JetStream's quorum), its heartbeat, its view of which nodes
// are alive, and its readiness.

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
	if c.leaving.Load() {
		return
	}
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
	// A renewal written before the node said it stops may reach the watch
	// after its msgLeave: it stays gone.
	c.nodeMap[id] = nodeState{info: info, seen: seen, left: c.nodeMap[id].left}
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
	return ok && !n.left && now.Sub(n.seen) < clusterDeadAfter
}

// leaveCluster tells the other nodes that this one stops, before it stops
// taking the messages they route to it. Each node's view of the rosters
// and of the nodes bucket trails the buckets (they reach it through its
// watches): without this, a node that has not seen yet the roster naming
// a client's new node, nor this node's entry deleted, would for up to
// clusterDeadAfter publish that client's messages here, to nobody, and
// lose them (seen in TestClusterNodeFailure: a viewer's SDP_OFFER to a
// master that had moved from a stopped node to a third was lost). On
// msgLeave every node counts this one dead at once (nodeLeft), so it keeps
// such messages for their recipient, to be delivered wherever it connects
// (or sends them to its new node), and answers after the messages it had
// already routed here. This node then handles what it was sent before the
// answers (a message for a client of its that left is forwarded or kept,
// as always) and only then stops listening. A node that does not answer
// within clusterLeaveWait (stopping as well, or dead) is not waited for.
func (c *cluster) leaveCluster() {
	c.leaving.Store(true) // no more heartbeats
	others := map[string]bool{}
	for _, id := range c.aliveNodes()[1:] {
		others[id] = true
	}
	if len(others) > 0 {
		inbox := c.nc.NewInbox()
		sub, err := c.nc.SubscribeSync(inbox)
		if err == nil {
			m := nodeMsg{kind: msgLeave, from: c.node}
			err = c.nc.PublishRequest(c.allSubject(), inbox, m.encode(nil))
			for deadline := time.Now().Add(clusterLeaveWait); err == nil && len(others) > 0; {
				wait := time.Until(deadline)
				if wait <= 0 {
					break
				}
				var r *nats.Msg
				if r, err = sub.NextMsg(wait); err == nil {
					delete(others, string(r.Data))
				}
			}
			_ = sub.Unsubscribe()
		}
		if len(others) > 0 {
			c.log.Info("localkvs: cluster: stopping without an answer from every node; messages they route here meanwhile are lost", "node", c.name, "unanswered", len(others))
		}
	}
	// What was routed here before the answers: handled, then no more.
	subs := c.subs[:clusterShards]
	for _, sub := range subs {
		_ = sub.Drain()
	}
	deadline := time.Now().Add(clusterLeaveWait)
	for _, sub := range subs {
		for sub.IsValid() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// nodeLeft counts node gone: it said it stops. It waits for the routes
// that chose node before (leaveMu), so that their messages go out before
// this node's answer.
func (c *cluster) nodeLeft(node string) {
	c.leaveMu.Lock()
	defer c.leaveMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeMap[node]
	n.left = true
	c.nodeMap[node] = n
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
