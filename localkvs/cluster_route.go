package localkvs

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// remoteRouter is the seam between a room and the rest of a cluster: the
// room (room.go) calls it where a single server would decide alone, and
// *cluster implements it. It is nil on a single server, where nothing
// changes.
type remoteRouter interface {
	// admit applies the channel's limits across the cluster and returns
	// the admission's sequence number.
	admit(rm *room, viewerID string, isViewer bool) (seq uint64, err error)
	// release frees the place of a viewer admitted but never registered.
	release(rm *room, viewerID string)
	// registered is told that c holds its place on this node: what was
	// kept for it anywhere in the cluster is delivered. It must not block.
	registered(c *wsConn)
	// unregistered is told that c left: its place is freed.
	unregistered(c *wsConn)
	// toMaster delivers a frame from viewer from for a master not
	// connected here.
	toMaster(rm *room, from *wsConn, action string, frame []byte)
	// toViewer delivers a frame from the master (from, nil if it just
	// left) for a viewer not connected here.
	toViewer(rm *room, from *wsConn, id, action string, frame []byte)
	// alexaOffer hands send-alexa-offer-to-master to a master connected
	// to another node and returns its answer.
	alexaOffer(ctx context.Context, rm *room, sender, payload string) (string, error)
	// channelChanged tells the other nodes a channel was updated or deleted.
	channelChanged(arn string, deleted bool)
	// reconnectICE sends RECONNECT_ICE_SERVER to the channel's clients on
	// the other nodes and returns how many there are.
	reconnectICE(arn string) int
}

var _ remoteRouter = (*cluster)(nil)

// local returns this node's connection holding a place, or nil.
func (rm *room) local(master bool, id string) *wsConn {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if master {
		return rm.master
	}
	return rm.viewers[id]
}

// admitRemote is room.admit on a cluster: the cluster decides, the room
// counts the reservation for register as on one node.
func (rm *room) admitRemote(r remoteRouter, viewerID string, isViewer bool) (uint64, error) {
	rm.mu.Lock()
	deleted := rm.deleted
	rm.mu.Unlock()
	if deleted {
		return 0, notFound("the signaling channel was deleted")
	}
	seq, err := r.admit(rm, viewerID, isViewer)
	if err != nil {
		return 0, err
	}
	if isViewer {
		rm.mu.Lock()
		rm.reserved[viewerID]++
		rm.mu.Unlock()
	}
	return seq, nil
}

var nodeMsgBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// publish sends m to node (on the shard of its channel), or to every node
// when node is "".
func (c *cluster) publish(node string, m *nodeMsg) {
	m.from = c.node
	bp := nodeMsgBufs.Get().(*[]byte)
	b := m.encode((*bp)[:0])
	subj := c.allSubject()
	if node != "" {
		subj = c.nodeSubject(node, shardOf(m.arn))
	}
	if err := c.nc.Publish(subj, b); err != nil && c.ctx.Err() == nil {
		c.log.Warn("localkvs: cluster: publishing to a node failed", "node", node, "err", err)
	}
	if cap(b) <= 64<<10 {
		*bp = b
		nodeMsgBufs.Put(bp)
	}
}

func (c *cluster) toMaster(rm *room, from *wsConn, action string, frame []byte) {
	c.route(rm, true, "", from.id, from.seq, action, frame)
}

func (c *cluster) toViewer(rm *room, from *wsConn, id, action string, frame []byte) {
	var seq uint64
	if from != nil {
		seq = from.seq
	}
	c.route(rm, false, id, "", seq, action, frame)
}

// route sends a frame to the node of its recipient, or keeps it when the
// recipient is connected nowhere. seq is the sender's admission.
func (c *cluster) route(rm *room, toMaster bool, id, sender string, seq uint64, action string, frame []byte) {
	c.leaveMu.RLock() // node must not leave between the lookup and the publish (nodeLeft)
	if node, ok := c.locate(rm.arn, toMaster, id); ok && node != c.node {
		c.publish(node, &nodeMsg{kind: msgDeliver, toMaster: toMaster, arn: rm.arn, peer: id, sender: sender, seq: seq, action: action, data: frame})
		c.leaveMu.RUnlock()
		c.s.metrics.routed(true)
		return
	}
	c.leaveMu.RUnlock()
	c.keep(rm.arn, rm.ttlNow(), toMaster, id, sender, action, frame)
}

// ttlNow is the channel's MessageTtlSeconds as a duration.
func (rm *room) ttlNow() time.Duration {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.ttl
}

// onNodeMsg handles a message from another node (or a broadcast).
func (c *cluster) onNodeMsg(msg *nats.Msg) {
	var m nodeMsg
	if err := decodeNodeMsg(msg.Data, &m); err != nil {
		c.log.Warn("localkvs: cluster: malformed node message dropped", "subject", msg.Subject)
		return
	}
	switch m.kind {
	case msgDeliver:
		c.deliver(&m)
	case msgPoke:
		if rm := c.s.existingRoom(m.arn); rm != nil {
			if w := rm.local(m.toMaster, m.peer); w != nil {
				c.drain(w)
			}
		}
	case msgChanged:
		go c.applyChanged(m.arn)
	case msgReconnect:
		if rm := c.s.existingRoom(m.arn); rm != nil {
			for _, w := range rm.connections() {
				w.send(reconnectFrame)
			}
		}
	case msgAlexa:
		go c.answerAlexa(msg, &m)
	case msgLeave:
		if m.from != c.node {
			c.nodeLeft(m.from)
			_ = msg.Respond([]byte(c.node)) // after what this node routed there
		}
	}
}

// deliver hands a frame from another node to its recipient here; a
// recipient that just left is looked up once more (it may have moved to
// a third node), or its frame kept.
func (c *cluster) deliver(m *nodeMsg) {
	if m.from != c.node && m.seq != 0 {
		c.learn(m.arn, !m.toMaster, m.sender, m.from, m.seq) // the sender is there, since admission seq
	}
	if rm := c.s.existingRoom(m.arn); rm != nil {
		if !m.toMaster && m.action == wire.SDPAnswer && c.answerWaiter(rm, m) {
			return
		}
		if w := rm.local(m.toMaster, m.peer); w != nil {
			w.send(m.data)
			return
		}
	}
	c.leaveMu.RLock()
	if node, ok := c.locate(m.arn, m.toMaster, m.peer); ok && node != c.node && m.hops == 0 {
		m.hops++
		c.publish(node, m)
		c.leaveMu.RUnlock()
		return
	}
	c.leaveMu.RUnlock()
	ttl := time.Duration(DefaultMessageTTLSeconds) * time.Second
	if ch, ok := c.s.store.get("", m.arn); ok {
		ttl = time.Duration(ch.TTL) * time.Second
	}
	c.keep(m.arn, ttl, m.toMaster, m.peer, m.sender, m.action, m.data)
}

// answerWaiter hands a master's SDP_ANSWER to a send-alexa-offer-to-master
// call waiting on this node.
func (c *cluster) answerWaiter(rm *room, m *nodeMsg) bool {
	rm.mu.Lock()
	w, ok := rm.waiters[m.peer]
	if ok {
		delete(rm.waiters, m.peer)
	}
	rm.mu.Unlock()
	if !ok {
		return false
	}
	var sm wire.ServiceMessage
	if err := json.Unmarshal(m.data, &sm); err != nil {
		return false
	}
	w <- sm.MessagePayload
	return true
}

// pendingMsg is a frame to keep in the pending stream.
type pendingMsg struct {
	arn, subject string
	toMaster     bool
	recipient    string
	ttl          time.Duration
	offer        bool
	frame        []byte
}

// keep stores a frame for a recipient connected nowhere, for the
// channel's MessageTtlSeconds (per-message TTL of the pending stream). An
// SDP_OFFER replaces the one its sender still has waiting for the same
// recipient (a subject rollup). Writes go through one goroutine per node
// (pendingWriter), in order.
func (c *cluster) keep(arn string, ttl time.Duration, toMaster bool, recipient, sender, action string, frame []byte) {
	kind := "x"
	if action == wire.SDPOffer {
		kind = "o"
	}
	p := pendingMsg{
		arn:       arn,
		subject:   c.prefix + "pending." + token(arn) + "." + peerToken(toMaster, recipient) + "." + peerToken(sender == "" && !toMaster, sender) + "." + kind,
		toMaster:  toMaster,
		recipient: recipient,
		ttl:       max(ttl, time.Second),
		offer:     action == wire.SDPOffer,
		frame:     frame,
	}
	defer func() { recover() }() // pendq closed: the node is stopping
	select {
	case c.pendq <- p:
	default:
		c.s.metrics.pendingDropped()
		c.log.Warn("localkvs: cluster: too many messages waiting to be kept; one dropped", "channel", arn)
	}
}

// pendingRetryWait is the pause between two tries of a kept message's write.
const pendingRetryWait = 100 * time.Millisecond

// pendingWriter stores the kept frames, then tells every node (msgPoke),
// so that a recipient that connected meanwhile gets them.
func (c *cluster) pendingWriter() {
	defer c.wg.Done()
	for p := range c.pendq {
		if c.crashed.Load() {
			continue
		}
		msg := nats.NewMsg(p.subject)
		msg.Data = p.frame
		if p.offer {
			msg.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
		}
		// The stream may have no leader for a while (its leader's node
		// stopped; the others elect another): no responders until then.
		// Such a write reached nobody, so it is tried again, for as long
		// as the operation may take.
		ctx, cancel := context.WithTimeout(context.Background(), clusterOpTimeout)
		_, err := c.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(p.ttl),
			jetstream.WithRetryWait(pendingRetryWait), jetstream.WithRetryAttempts(int(clusterOpTimeout/pendingRetryWait)))
		cancel()
		if err != nil {
			c.s.metrics.pendingDropped()
			if c.ctx.Err() == nil {
				c.log.Warn("localkvs: cluster: keeping a message failed", "channel", p.arn, "err", err)
			}
			continue
		}
		c.s.metrics.pendingKept()
		c.publish("", &nodeMsg{kind: msgPoke, toMaster: p.toMaster, arn: p.arn, peer: p.recipient})
	}
}

// drainState marks a connection whose kept messages are being delivered.
type drainState struct{ again bool }

// drain delivers, in the order they were kept, the messages kept for w
// anywhere in the cluster, and deletes them. One drain runs per
// connection at a time; a request meanwhile runs it once more after.
func (c *cluster) drain(w *wsConn) {
	c.mu.Lock()
	if d := c.draining[w]; d != nil {
		d.again = true
		c.mu.Unlock()
		return
	}
	d := &drainState{}
	c.draining[w] = d
	c.mu.Unlock()
	go func() {
		for {
			c.drainOnce(w)
			c.mu.Lock()
			if d.again {
				d.again = false
				c.mu.Unlock()
				continue
			}
			delete(c.draining, w)
			c.mu.Unlock()
			return
		}
	}()
}

func (c *cluster) drainOnce(w *wsConn) {
	if c.pending == nil {
		return
	}
	filter := c.prefix + "pending." + token(w.rm.arn) + "." + peerToken(w.master, w.id) + ".>"
	ctx, cancel := context.WithTimeout(c.ctx, clusterOpTimeout)
	defer cancel()
	for seq := uint64(1); ; {
		if !w.stillHere() {
			return // leave the rest for the next connection
		}
		m, err := c.pending.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return
		}
		if err != nil {
			if c.ctx.Err() == nil {
				c.log.Warn("localkvs: cluster: reading kept messages failed", "channel", w.rm.arn, "err", err)
			}
			return
		}
		w.send(m.Data)
		c.s.metrics.routed(true)
		if err := c.pending.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			c.log.Warn("localkvs: cluster: deleting a delivered message failed", "channel", w.rm.arn, "err", err)
		}
		seq = m.Sequence + 1
	}
}

// stillHere reports whether w still holds its place on this node.
func (w *wsConn) stillHere() bool { return w.rm.local(w.master, w.id) == w }

func (c *cluster) release(rm *room, viewerID string) { go c.leave(rm.arn, false, viewerID, 0) }

func (c *cluster) registered(w *wsConn) {
	go func() {
		c.mu.Lock()
		st := c.rosterMap[w.rm.arn]
		c.mu.Unlock()
		c.enforceRoster(w.rm.arn, st) // a later admission may have been seen already
		c.drain(w)
	}()
}

func (c *cluster) unregistered(w *wsConn) { c.leave(w.rm.arn, w.master, w.id, w.seq) }

// channelChanged tells every node to read the channel again; after a
// delete it also drops the channel's roster and kept messages.
func (c *cluster) channelChanged(arn string, deleted bool) {
	c.publish("", &nodeMsg{kind: msgChanged, arn: arn})
	if !deleted {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, clusterOpTimeout)
	defer cancel()
	if c.rosters != nil {
		_ = c.rosters.kv.Delete(ctx, rosterKey(arn))
	}
	if c.pending != nil {
		_ = c.pending.Purge(ctx, jetstream.WithPurgeSubject(c.prefix+"pending."+token(arn)+".>"))
	}
}

// applyChanged reads a channel another node changed from the bucket's
// leader, and closes its connections here if it was deleted.
func (c *cluster) applyChanged(arn string) {
	rm := c.s.existingRoom(arn)
	if rm == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, clusterOpTimeout)
	defer cancel()
	ch, _, err := c.store.readChannel(ctx, arn)
	if err == nil {
		rm.setTTL(ch.TTL)
		return
	}
	if errors.Is(err, ErrNotFound) {
		c.s.deleteRoom(arn)
		c.s.media.stop(arn, "the signaling channel was deleted")
	}
}

func (c *cluster) reconnectICE(arn string) int {
	c.publish("", &nodeMsg{kind: msgReconnect, arn: arn})
	return c.places(arn)
}

// The answers of a node to msgAlexa: a status byte, then the payload.
const (
	alexaOK byte = iota
	alexaNoMaster
	alexaTimeout
)

// alexaOffer hands the offer to the node of the master and waits for its answer.
func (c *cluster) alexaOffer(ctx context.Context, rm *room, sender, payload string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.s.alexaTimeout+clusterOpTimeout)
	defer cancel()
	node, ok := c.locateFresh(ctx, rm.arn, true, "")
	if !ok || node == c.node {
		return "", notFound("no master is connected to channel %q", rm.arn)
	}
	m := nodeMsg{kind: msgAlexa, arn: rm.arn, sender: sender, data: []byte(payload)}
	reply, err := c.nc.RequestWithContext(ctx, c.nodeSubject(node, shardOf(rm.arn)), m.encode(nil))
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", errClusterUnavailable(err)
	}
	if len(reply.Data) == 0 {
		return "", errClusterUnavailable(errors.New("empty answer"))
	}
	switch reply.Data[0] {
	case alexaOK:
		return string(reply.Data[1:]), nil
	case alexaNoMaster:
		return "", notFound("no master is connected to channel %q", rm.arn)
	}
	return "", newAPIError(http.StatusGatewayTimeout, "TimeoutException", nil, "the master sent no SDP_ANSWER within %s", c.s.alexaTimeout)
}

// answerAlexa runs send-alexa-offer-to-master for another node: it hands
// the offer to the master here and replies with its answer.
func (c *cluster) answerAlexa(msg *nats.Msg, m *nodeMsg) {
	rm := c.s.existingRoom(m.arn)
	var master *wsConn
	if rm != nil {
		master = rm.local(true, "")
	}
	if master == nil {
		_ = msg.Respond([]byte{alexaNoMaster})
		return
	}
	answer := make(chan string, 1)
	rm.mu.Lock()
	rm.waiters[m.sender] = answer
	rm.mu.Unlock()
	defer func() {
		rm.mu.Lock()
		if rm.waiters[m.sender] == answer {
			delete(rm.waiters, m.sender)
		}
		rm.mu.Unlock()
	}()
	master.send(mustMarshal(wire.ServiceMessage{MessageType: wire.SDPOffer, MessagePayload: string(m.data), SenderClientID: m.sender}))
	t := time.NewTimer(c.s.alexaTimeout)
	defer t.Stop()
	select {
	case a := <-answer:
		_ = msg.Respond(append([]byte{alexaOK}, a...))
	case <-t.C:
		_ = msg.Respond([]byte{alexaTimeout})
	case <-c.ctx.Done():
	}
}

// iceServers answers GetIceServerConfig on a cluster: this node's TURN
// server first, then one other live node's, with the same credentials
// (every node's TURN server checks them with the shared secret), so a
// client can fall back to another node.
func (c *cluster) iceServers(ctx context.Context, req iceRequest) ([]iceServer, error) {
	list, err := c.s.turnICEServers(ctx, req)
	if err != nil || len(list) == 0 {
		return list, err
	}
	c.mu.Lock()
	now := time.Now()
	var others [][]string
	for _, id := range slices.Sorted(maps.Keys(c.nodeMap)) {
		n := c.nodeMap[id]
		if id != c.node && c.aliveLocked(id, now) && len(n.info.TURN) > 0 {
			others = append(others, n.info.TURN)
		}
	}
	c.mu.Unlock()
	var other []string
	if len(others) > 0 {
		other = others[shardOf(req.ChannelARN+req.ClientID)%len(others)] // spread the channels over the nodes
	}
	if other != nil {
		second := list[0]
		second.Uris = other
		list = append(list, second)
	}
	return list, nil
}
