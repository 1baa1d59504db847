package localkvs

import (
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// maxPending is how many undelivered messages one recipient may have waiting.
const maxPending = 100

// pending is a message kept for an offline recipient.
type pending struct {
	frame   []byte
	action  string
	sender  string // "" for the master
	expires time.Time
}

// room is the live state of one channel: its connections and the messages
// waiting for offline recipients. Each room has its own lock; nothing on the
// message path takes a server-wide lock. The lock is held to look up
// recipients and to keep or take pending messages, never while writing to a
// socket: a write may block (up to inlineWriteTimeout) on a client that does
// not read, and must not stall the rest of the channel.
type room struct {
	s   *Server
	arn string

	mu       sync.Mutex
	ttl      time.Duration
	master   *wsConn
	viewers  map[string]*wsConn
	reserved map[string]int // viewer ClientId -> upgrades in progress
	seq      uint64         // admission counter: the newest admitted connection wins
	connects *rate.Limiter  // connects per second to the channel
	iceCfg   *rate.Limiter  // GetIceServerConfig calls per second
	toMaster []pending
	toViewer map[string][]pending
	waiters  map[string]chan string // send-alexa-offer-to-master: sender id -> answer
	deleted  bool

	pendingBytes int       // bytes of the frames in toMaster and toViewer
	sweepT       timer     // drops expired kept messages (nil: none kept)
	sweepAt      time.Time // when sweepT fires
}

// roomFor returns the room of channel c, creating it.
func (s *Server) roomFor(c *channelRec) *room {
	if v, ok := s.rooms.Load(c.ARN); ok {
		return v.(*room)
	}
	rm := &room{
		s:        s,
		arn:      c.ARN,
		ttl:      time.Duration(c.TTL) * time.Second,
		viewers:  map[string]*wsConn{},
		reserved: map[string]int{},
		connects: newLimiter(s.limits.ConnectsPerSecond),
		iceCfg:   newLimiter(s.limits.ICEConfigPerSecond),
		toViewer: map[string][]pending{},
		waiters:  map[string]chan string{},
	}
	v, _ := s.rooms.LoadOrStore(c.ARN, rm)
	return v.(*room)
}

// room returns the room of an existing channel ARN (creating the room).
func (s *Server) room(arn string) *room {
	if v, ok := s.rooms.Load(arn); ok {
		return v.(*room)
	}
	c, ok := s.store.get("", arn)
	if !ok {
		c = &channelRec{ARN: arn, TTL: DefaultMessageTTLSeconds}
	}
	return s.roomFor(c)
}

func (s *Server) existingRoom(arn string) *room {
	if v, ok := s.rooms.Load(arn); ok {
		return v.(*room)
	}
	return nil
}

// deleteRoom closes every connection of a deleted channel.
func (s *Server) deleteRoom(arn string) {
	v, ok := s.rooms.LoadAndDelete(arn)
	if !ok {
		return
	}
	rm := v.(*room)
	rm.mu.Lock()
	rm.deleted = true
	conns := rm.connectionsLocked()
	rm.master = nil
	rm.viewers = map[string]*wsConn{}
	rm.toMaster, rm.toViewer = nil, map[string][]pending{}
	rm.forgetAllLocked()
	rm.mu.Unlock()
	for _, c := range conns {
		c.close(closeNormal, "signaling channel deleted")
	}
}

func (rm *room) setTTL(seconds int) {
	rm.mu.Lock()
	rm.ttl = time.Duration(seconds) * time.Second
	rm.mu.Unlock()
}

func (rm *room) allowICEConfig() bool { return rm.iceCfg.AllowN(rm.s.clock.Now(), 1) }

func (rm *room) connections() []*wsConn {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.connectionsLocked()
}

func (rm *room) connectionsLocked() []*wsConn {
	out := make([]*wsConn, 0, len(rm.viewers)+1)
	if rm.master != nil {
		out = append(out, rm.master)
	}
	for _, v := range rm.viewers {
		out = append(out, v)
	}
	return out
}

// admit applies the connect rate and, for a viewer, reserves a viewer slot
// (a viewer reconnecting with a connected ClientId needs none: it replaces
// the old connection). It returns the admission's sequence number, or the
// error to refuse the upgrade with.
func (rm *room) admit(viewerID string, isViewer bool) (seq uint64, err error) {
	if r := rm.s.remote; r != nil {
		return rm.admitRemote(r, viewerID, isViewer) // the cluster decides: cluster_route.go
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.deleted {
		return 0, notFound("the signaling channel was deleted")
	}
	if !rm.connects.AllowN(rm.s.clock.Now(), 1) {
		return 0, limitExceeded(codeClientLimit, "connections to this channel are limited to %g per second", rm.s.limits.ConnectsPerSecond)
	}
	if isViewer {
		_, again := rm.viewers[viewerID]
		if rm.reserved[viewerID] > 0 {
			again = true
		}
		if !again {
			n := len(rm.viewers)
			for id := range rm.reserved {
				if _, ok := rm.viewers[id]; !ok {
					n++
				}
			}
			if n >= rm.s.limits.MaxViewers {
				return 0, limitExceeded(codeClientLimit, "the channel already has the maximum of %d viewers connected", rm.s.limits.MaxViewers)
			}
		}
		rm.reserved[viewerID]++
	}
	rm.seq++
	return rm.seq, nil
}

func (rm *room) release(viewerID string) {
	rm.mu.Lock()
	rm.unreserveLocked(viewerID)
	rm.mu.Unlock()
	if r := rm.s.remote; r != nil {
		r.release(rm, viewerID)
	}
}

func (rm *room) unreserveLocked(viewerID string) {
	if rm.reserved[viewerID]--; rm.reserved[viewerID] <= 0 {
		delete(rm.reserved, viewerID)
	}
}

// register makes c the room's master or the viewer with its id, queues the
// messages kept for it, and returns the connection it replaces, if any. The
// connection admitted last wins: c is refused (ok false) when a connection
// admitted after it already holds its place, or when the channel was deleted.
// c's writer has not started, so the kept messages only enter its queue
// (no socket write under the lock), ahead of any routed after c is visible.
func (rm *room) register(c *wsConn) (old *wsConn, ok bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if !c.master {
		rm.unreserveLocked(c.id)
	}
	if rm.deleted {
		return nil, false
	}
	now := rm.s.clock.Now()
	if c.master {
		old = rm.master
		if old != nil && old.seq > c.seq {
			return nil, false
		}
		rm.master = c
		c.enqueueKept(rm.toMaster, now)
		rm.forgetLocked(rm.toMaster...)
		rm.toMaster = nil
	} else {
		old = rm.viewers[c.id]
		if old != nil && old.seq > c.seq {
			return nil, false
		}
		rm.viewers[c.id] = c
		c.enqueueKept(rm.toViewer[c.id], now)
		rm.forgetLocked(rm.toViewer[c.id]...)
		delete(rm.toViewer, c.id)
	}
	if r := rm.s.remote; r != nil {
		r.registered(c) // delivers what the cluster kept for c
	}
	return old, true
}

// enqueueKept queues the kept messages of list that have not expired by now.
// The queue (sendQueue) is larger than a list can be (maxPending).
func (c *wsConn) enqueueKept(list []pending, now time.Time) {
	for _, p := range list {
		if now.Before(p.expires) {
			c.enqueue(p.frame)
		}
	}
}

func (rm *room) unregister(c *wsConn) {
	rm.mu.Lock()
	if c.master {
		if rm.master == c {
			rm.master = nil
		}
	} else if rm.viewers[c.id] == c {
		delete(rm.viewers, c.id)
		defer rm.s.media.viewerLeft(rm.arn, c.id) // out of the storage session too, after the unlock
	}
	rm.mu.Unlock()
	if r := rm.s.remote; r != nil {
		r.unregistered(c)
	}
}

// keep adds a message for an offline recipient, dropping the expired
// messages of list, an offer p replaces and the oldest past maxPending.
// Called with rm.mu held.
func (rm *room) keepLocked(list []pending, p pending, now time.Time) []pending {
	out := list[:0]
	for _, q := range list {
		if !now.Before(q.expires) {
			rm.forgetLocked(q)
			continue
		}
		if p.action == wire.SDPOffer && q.action == wire.SDPOffer && q.sender == p.sender {
			rm.forgetLocked(q)
			continue // a newer offer from the same sender replaces the pending one
		}
		out = append(out, q)
	}
	if len(out) >= maxPending {
		rm.forgetLocked(out[0])
		out = append(out[:0], out[1:]...)
	}
	rm.pendingBytes += len(p.frame)
	rm.s.pendingBytes.Add(int64(len(p.frame)))
	rm.armSweepLocked(p.expires)
	return append(out, p)
}

// Undelivered messages are bounded (docs/security.md, "Undelivered
// messages"): they expire on a timer after the channel's MessageTtlSeconds,
// whether or not anything else reaches the channel, and a channel keeps at
// most Limits.PendingBytesPerChannel bytes of them, all channels together
// Limits.PendingBytes; a message past a cap is refused.

// errPendingFull is the STATUS_RESPONSE description of a message refused
// for the caps on undelivered messages.
const errPendingFull = "the recipient is not connected and too many undelivered messages are waiting; message dropped"

// roomToKeepLocked reports whether a frame of n bytes may be kept under
// the caps, sweeping expired messages first when it would not.
func (rm *room) roomToKeepLocked(n int, now time.Time) bool {
	fits := func() bool {
		return rm.pendingBytes+n <= rm.s.limits.PendingBytesPerChannel &&
			rm.s.pendingBytes.Load()+int64(n) <= rm.s.limits.PendingBytes
	}
	if fits() {
		return true
	}
	rm.sweepLocked(now)
	return fits()
}

// forgetLocked takes kept messages out of the byte counts.
func (rm *room) forgetLocked(ps ...pending) {
	n := 0
	for _, p := range ps {
		n += len(p.frame)
	}
	rm.pendingBytes -= n
	rm.s.pendingBytes.Add(-int64(n))
}

// forgetAllLocked takes every kept message of the room out of the counts
// (the lists were emptied) and stops the sweep timer.
func (rm *room) forgetAllLocked() {
	rm.s.pendingBytes.Add(-int64(rm.pendingBytes))
	rm.pendingBytes = 0
	if rm.sweepT != nil {
		rm.sweepT.Stop()
		rm.sweepT = nil
	}
}

// armSweepLocked makes sure the sweep timer fires by at.
func (rm *room) armSweepLocked(at time.Time) {
	if rm.sweepT != nil && !at.Before(rm.sweepAt) {
		return
	}
	if rm.sweepT != nil {
		rm.sweepT.Stop()
	}
	rm.sweepAt = at
	var t timer
	t = rm.s.clock.AfterFunc(at.Sub(rm.s.clock.Now()), func() {
		rm.mu.Lock()
		if rm.sweepT == t { // not stopped and replaced meanwhile
			rm.sweepT = nil
			rm.sweepLocked(rm.s.clock.Now())
		}
		rm.mu.Unlock()
	})
	rm.sweepT = t
}

// sweepLocked drops the kept messages that have expired by now and arms
// the timer for the next expiry.
func (rm *room) sweepLocked(now time.Time) {
	next := time.Time{}
	keep := func(list []pending) []pending {
		out := list[:0]
		for _, p := range list {
			if !now.Before(p.expires) {
				rm.forgetLocked(p)
				continue
			}
			if next.IsZero() || p.expires.Before(next) {
				next = p.expires
			}
			out = append(out, p)
		}
		return out
	}
	if rm.toMaster = keep(rm.toMaster); len(rm.toMaster) == 0 {
		rm.toMaster = nil
	}
	for id, l := range rm.toViewer {
		if l = keep(l); len(l) == 0 {
			delete(rm.toViewer, id)
		} else {
			rm.toViewer[id] = l
		}
	}
	if !next.IsZero() {
		rm.armSweepLocked(next)
	}
}

// routeToMaster delivers a viewer's frame to the master, or keeps it. It
// reports false when the frame could not be kept (the caps).
func (rm *room) routeToMaster(from *wsConn, action string, frame []byte) bool {
	rm.mu.Lock()
	m := rm.master
	if m == nil && rm.s.remote != nil {
		rm.mu.Unlock()
		rm.s.remote.toMaster(rm, from, action, frame) // on another node, or kept cluster-wide
		return true
	}
	if m == nil {
		now := rm.s.clock.Now()
		if !rm.roomToKeepLocked(len(frame), now) {
			rm.mu.Unlock()
			return false
		}
		rm.toMaster = rm.keepLocked(rm.toMaster, pending{frame, action, from.id, now.Add(rm.ttl)}, now)
	}
	rm.mu.Unlock()
	if m != nil {
		m.send(frame) // may write to the socket: outside the lock
		rm.s.metrics.routed(false)
	}
	return true
}

// routeToViewer delivers a master's frame to viewer id, to a waiting
// send-alexa-offer-to-master call, or keeps it. It reports false when the
// frame could not be kept (the caps).
func (rm *room) routeToViewer(id, action, payload string, frame []byte) bool {
	rm.mu.Lock()
	if action == wire.SDPAnswer {
		if w, ok := rm.waiters[id]; ok {
			delete(rm.waiters, id)
			rm.mu.Unlock()
			w <- payload // buffered, one answer per waiter
			return true
		}
	}
	if v := rm.viewers[id]; v != nil {
		rm.mu.Unlock()
		v.send(frame) // may write to the socket: outside the lock
		rm.s.metrics.routed(false)
		return true
	}
	if r := rm.s.remote; r != nil {
		m := rm.master
		rm.mu.Unlock()
		r.toViewer(rm, m, id, action, frame) // on another node, or kept cluster-wide
		return true
	}
	now := rm.s.clock.Now()
	if !rm.roomToKeepLocked(len(frame), now) {
		rm.mu.Unlock()
		return false
	}
	rm.toViewer[id] = rm.keepLocked(rm.toViewer[id], pending{frame, action, "", now.Add(rm.ttl)}, now)
	rm.mu.Unlock()
	return true
}
