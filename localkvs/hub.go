package localkvs

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

const (
	closeGoingAway = websocket.StatusGoingAway
	closeNormal    = websocket.StatusNormalClosure
	closePolicy    = websocket.StatusPolicyViolation

	// sendQueue is the per-connection queue of frames waiting to be written.
	sendQueue = 256
	// maxPending is how many undelivered messages one recipient may have waiting.
	maxPending = 100
	// writeTimeout bounds one frame write to a client by its writer goroutine.
	writeTimeout = 10 * time.Second
	// inlineWriteTimeout bounds a frame written from the sender's goroutine
	// (see wsConn.writeInline). Such a write only blocks when the client's
	// socket buffer is full, that is when the client does not read: it is
	// then disconnected, as a full send queue would.
	inlineWriteTimeout = time.Second
	// drainTimeout bounds writing the queued frames (e.g. GO_AWAY) before a close.
	drainTimeout = 2 * time.Second
	// defaultAlexaTimeout is how long send-alexa-offer-to-master waits for the answer.
	defaultAlexaTimeout = 5 * time.Second
)

var goAwayFrame = mustMarshal(wire.ServiceMessage{MessageType: wire.GoAway})

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// bucket is a token bucket; rate < 0 means unlimited. Not safe for
// concurrent use: each bucket is guarded by its owner.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func newBucket(rate float64) bucket {
	burst := rate
	if burst < 1 {
		burst = 1
	}
	return bucket{rate: rate, burst: burst, tokens: burst}
}

func (b *bucket) allow(now time.Time) bool { return b.allowN(now, 1) }

// allowN takes n tokens if the bucket holds them.
func (b *bucket) allowN(now time.Time, n float64) bool {
	if b.rate < 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens += now.Sub(b.last).Seconds() * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
	}
	b.last = now
	if b.tokens >= n {
		b.tokens -= n
		return true
	}
	return false
}

// pending is a message kept for an offline recipient.
type pending struct {
	frame   []byte
	action  string
	sender  string // "" for the master
	expires time.Time
}

// room is the live state of one channel: its connections and the messages
// waiting for offline recipients. Each room has its own lock; nothing on the
// message path takes a server-wide lock.
type room struct {
	s   *Server
	arn string

	mu       sync.Mutex
	ttl      time.Duration
	master   *wsConn
	viewers  map[string]*wsConn
	reserved map[string]int // viewer ClientId -> upgrades in progress
	seq      uint64         // admission counter: the newest admitted connection wins
	connects bucket
	iceCfg   bucket
	toMaster []pending
	toViewer map[string][]pending
	waiters  map[string]chan string // send-alexa-offer-to-master: sender id -> answer
	deleted  bool
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
		connects: newBucket(s.limits.ConnectsPerSecond),
		iceCfg:   newBucket(s.limits.ICEConfigPerSecond),
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

func (rm *room) allowICEConfig() bool {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return rm.iceCfg.allow(time.Now())
}

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
// the old connection). It returns a client-facing reason when refused.
func (rm *room) admit(viewerID string, isViewer bool) (seq uint64, reason string) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if rm.deleted {
		return 0, "the signaling channel was deleted"
	}
	if !rm.connects.allow(time.Now()) {
		return 0, fmt.Sprintf("connections to this channel are limited to %g per second", rm.s.limits.ConnectsPerSecond)
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
				return 0, fmt.Sprintf("the channel already has the maximum of %d viewers connected", rm.s.limits.MaxViewers)
			}
		}
		rm.reserved[viewerID]++
	}
	rm.seq++
	return rm.seq, ""
}

func (rm *room) release(viewerID string) {
	rm.mu.Lock()
	rm.unreserveLocked(viewerID)
	rm.mu.Unlock()
}

func (rm *room) unreserveLocked(viewerID string) {
	if rm.reserved[viewerID]--; rm.reserved[viewerID] <= 0 {
		delete(rm.reserved, viewerID)
	}
}

// register makes c the room's master or the viewer with its id, delivers the
// messages kept for it, and returns the connection it replaces, if any. The
// connection admitted last wins: c is refused (ok false) when a connection
// admitted after it already holds its place, or when the channel was deleted.
func (rm *room) register(c *wsConn) (old *wsConn, ok bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	if !c.master {
		rm.unreserveLocked(c.id)
	}
	if rm.deleted {
		return nil, false
	}
	now := time.Now()
	if c.master {
		old = rm.master
		if old != nil && old.seq > c.seq {
			return nil, false
		}
		rm.master = c
		for _, p := range rm.toMaster {
			if now.Before(p.expires) {
				c.send(p.frame)
			}
		}
		rm.toMaster = nil
	} else {
		old = rm.viewers[c.id]
		if old != nil && old.seq > c.seq {
			return nil, false
		}
		rm.viewers[c.id] = c
		for _, p := range rm.toViewer[c.id] {
			if now.Before(p.expires) {
				c.send(p.frame)
			}
		}
		delete(rm.toViewer, c.id)
	}
	return old, true
}

func (rm *room) unregister(c *wsConn) {
	rm.mu.Lock()
	if c.master {
		if rm.master == c {
			rm.master = nil
		}
	} else if rm.viewers[c.id] == c {
		delete(rm.viewers, c.id)
	}
	rm.mu.Unlock()
}

// keep adds a message for an offline recipient. Called with rm.mu held.
func (rm *room) keepLocked(list []pending, p pending, now time.Time) []pending {
	out := list[:0]
	for _, q := range list {
		if !now.Before(q.expires) {
			continue
		}
		if p.action == wire.SDPOffer && q.action == wire.SDPOffer && q.sender == p.sender {
			continue // a newer offer from the same sender replaces the pending one
		}
		out = append(out, q)
	}
	if len(out) >= maxPending {
		out = append(out[:0], out[1:]...)
	}
	return append(out, p)
}

// routeToMaster delivers a viewer's frame to the master, or keeps it.
func (rm *room) routeToMaster(from *wsConn, action string, frame []byte) {
	rm.mu.Lock()
	if m := rm.master; m != nil {
		m.send(frame)
		rm.mu.Unlock()
		return
	}
	now := time.Now()
	rm.toMaster = rm.keepLocked(rm.toMaster, pending{frame, action, from.id, now.Add(rm.ttl)}, now)
	rm.mu.Unlock()
}

// routeToViewer delivers a master's frame to viewer id, to a waiting
// send-alexa-offer-to-master call, or keeps it.
func (rm *room) routeToViewer(id, action, payload string, frame []byte) {
	rm.mu.Lock()
	if action == wire.SDPAnswer {
		if w, ok := rm.waiters[id]; ok {
			delete(rm.waiters, id)
			rm.mu.Unlock()
			w <- payload // buffered, one answer per waiter
			return
		}
	}
	if v := rm.viewers[id]; v != nil {
		v.send(frame)
		rm.mu.Unlock()
		return
	}
	now := time.Now()
	if len(rm.toViewer) > 10*maxPending {
		for k, l := range rm.toViewer { // drop recipients whose messages all expired
			if len(l) == 0 || !now.Before(l[len(l)-1].expires) {
				delete(rm.toViewer, k)
			}
		}
	}
	rm.toViewer[id] = rm.keepLocked(rm.toViewer[id], pending{frame, action, "", now.Add(rm.ttl)}, now)
	rm.mu.Unlock()
}

// wsConn is one signaling WebSocket. Its read loop runs on the HTTP handler
// goroutine; one writer goroutine drains a bounded queue, so a slow client
// never blocks the room or the sender.
type wsConn struct {
	s      *Server
	rm     *room
	ws     *websocket.Conn                // set once upgraded, before the writer starts
	wsp    atomic.Pointer[websocket.Conn] // ws, for other goroutines (nil before the upgrade)
	abort  atomic.Bool                    // close without writing what is queued
	id     string                         // viewer ClientId; "" for the master
	master bool
	seq    uint64 // admission order in the room

	out        chan []byte
	pending    atomic.Int32 // frames queued in out or being written by the writer
	wmu        sync.Mutex   // held while a frame is written
	live       atomic.Bool  // the writer runs: inline writes are allowed
	goAwaySent atomic.Bool  // GO_AWAY queued once already
	closing    chan struct{}
	closeOnce  sync.Once
	closeCode  websocket.StatusCode
	closeWhy   string
	lastActive atomic.Int64 // unix nanos of the last message from the client

	sdp, ice bucket // used by the read loop only

	timerMu sync.Mutex
	timers  []*time.Timer
}

func (c *wsConn) role() string {
	if c.master {
		return "MASTER"
	}
	return "VIEWER"
}

// send delivers a frame without waiting on the client. When nothing is
// queued for the connection it writes the frame at once from the caller's
// goroutine (saving the hand-off to the writer goroutine, the larger part
// of the relay latency); otherwise it queues it. A full queue means the
// client does not read: it is disconnected (it will reconnect) rather than
// stall others.
func (c *wsConn) send(frame []byte) {
	if c.writeInline(frame) {
		return
	}
	if c.enqueue(frame) {
		return
	}
	select {
	case <-c.closing:
		return
	default:
	}
	c.s.log.Warn("localkvs: client too slow, send queue full; disconnecting", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
	c.abort.Store(true)
	c.close(closePolicy, "send queue full: client too slow")
	go c.closeNow() // the writer may be stuck writing to this client
}

// enqueue hands a frame to the writer goroutine; false when the queue is full.
func (c *wsConn) enqueue(frame []byte) bool {
	c.pending.Add(1)
	select {
	case c.out <- frame:
		return true
	default:
		c.pending.Add(-1)
		return false
	}
}

// writeInline writes frame from the caller's goroutine if no frame is queued
// or being written for this connection, so frames keep their order. It
// reports whether it took the frame.
func (c *wsConn) writeInline(frame []byte) bool {
	if !c.live.Load() || c.pending.Load() != 0 || !c.wmu.TryLock() {
		return false
	}
	defer c.wmu.Unlock()
	if c.pending.Load() != 0 || !c.live.Load() {
		return false
	}
	select {
	case <-c.closing:
		return false
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), inlineWriteTimeout)
	err := c.ws.Write(ctx, websocket.MessageText, frame)
	cancel()
	if err != nil {
		c.s.log.Warn("localkvs: client too slow or gone, write failed; disconnecting", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
		c.abort.Store(true)
		c.close(closePolicy, "write failed: client too slow")
		go c.closeNow()
	}
	return true
}

// closeNow cuts the connection without a close handshake.
func (c *wsConn) closeNow() {
	if ws := c.wsp.Load(); ws != nil {
		ws.CloseNow()
	}
}

// goAway queues a GO_AWAY frame.
// A connection gets at most one: the maximum-duration timer, Shutdown and a
// connection admitted while the server shuts down may all ask.
func (c *wsConn) goAway() {
	if c.goAwaySent.Swap(true) {
		return
	}
	c.enqueue(goAwayFrame)
}

// close starts closing: the writer writes what is queued (bounded), then
// runs the close handshake. Safe to call many times and from any goroutine.
func (c *wsConn) close(code websocket.StatusCode, why string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeWhy = code, why
		close(c.closing)
		c.timerMu.Lock()
		for _, t := range c.timers {
			t.Stop()
		}
		c.timerMu.Unlock()
	})
}

func (c *wsConn) writeLoop(done chan<- struct{}) {
	defer close(done)
	write := func(ctx context.Context, f []byte) error {
		c.wmu.Lock()
		err := c.ws.Write(ctx, websocket.MessageText, f)
		c.wmu.Unlock()
		c.pending.Add(-1)
		return err
	}
	for {
		select {
		case f := <-c.out:
			ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
			err := write(ctx, f)
			cancel()
			if err != nil {
				c.live.Store(false)
				c.close(closeGoingAway, "write failed")
				c.ws.CloseNow()
				return
			}
		case <-c.closing:
			c.live.Store(false)
			if c.abort.Load() {
				c.ws.CloseNow()
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		drain:
			for {
				select {
				case f := <-c.out:
					if write(ctx, f) != nil {
						break drain
					}
				default:
					break drain
				}
			}
			cancel()
			c.wmu.Lock() // let an inline write in progress finish first
			c.wmu.Unlock()
			c.ws.Close(c.closeCode, c.closeWhy)
			return
		}
	}
}

// startTimers arms the idle timeout and the connection-duration cut.
func (c *wsConn) startTimers() {
	l := c.s.limits
	idle := l.IdleTimeout
	var idleT *time.Timer
	idleT = time.AfterFunc(idle, func() {
		since := time.Duration(time.Now().UnixNano() - c.lastActive.Load())
		if since >= idle {
			c.s.log.Debug("localkvs: idle timeout", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
			c.close(closeNormal, "idle timeout: no message for "+idle.String())
			return
		}
		idleT.Reset(idle - since)
	})
	goAwayT := time.AfterFunc(l.MaxConnectionDuration-l.GoAwayLead, func() {
		c.s.log.Debug("localkvs: GO_AWAY (maximum connection duration ahead)", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
		c.goAway()
	})
	cutT := time.AfterFunc(l.MaxConnectionDuration, func() {
		c.close(closeNormal, "maximum connection duration reached")
	})
	c.timerMu.Lock()
	c.timers = []*time.Timer{idleT, goAwayT, cutT}
	closed := false
	select {
	case <-c.closing:
		closed = true
	default:
	}
	c.timerMu.Unlock()
	if closed {
		idleT.Stop()
		goAwayT.Stop()
		cutT.Stop()
	}
}

// httpRefuse writes an error before the WebSocket upgrade.
func (s *Server) httpRefuse(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	s.log.Info("localkvs: WebSocket refused", "status", status, "code", code, "msg", msg, "remote", r.RemoteAddr)
	writeError(w, status, code, msg)
}

// serveWebSocket authenticates and upgrades a signaling connection, then
// runs its read loop until it closes.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.httpRefuse(w, r, http.StatusBadRequest, codeInvalidArgument,
			"GET is for the signaling WebSocket: send a WebSocket upgrade with a presigned query; API calls are POSTs")
		return
	}
	q := r.URL.Query()
	arn := q.Get(sigv4.ParamChannelARN)
	if arn == "" {
		s.httpRefuse(w, r, http.StatusBadRequest, codeInvalidArgument, "X-Amz-ChannelARN is required")
		return
	}
	if _, err := s.verifier.VerifyPresignedRequest(r); err != nil {
		s.httpRefuse(w, r, http.StatusForbidden, codeAccessDenied, authError(err))
		return
	}
	if err := validARN("X-Amz-ChannelARN", arn); err != nil {
		s.httpRefuse(w, r, http.StatusBadRequest, codeInvalidArgument, toAPIError(err).msg)
		return
	}
	ch, ok := s.store.get("", arn)
	if !ok {
		s.httpRefuse(w, r, http.StatusNotFound, codeNotFound, "no signaling channel with ARN "+arn)
		return
	}
	ids, isViewer := q[sigv4.ParamClientID]
	id := ""
	if isViewer {
		id = ids[0]
		if err := validClientID(id); err != nil {
			s.httpRefuse(w, r, http.StatusBadRequest, codeInvalidArgument, strings.Replace(toAPIError(err).msg, "ClientId", "X-Amz-ClientId", 1))
			return
		}
	}
	rm := s.roomFor(ch)
	seq, why := rm.admit(id, isViewer)
	if seq == 0 {
		s.httpRefuse(w, r, http.StatusBadRequest, codeClientLimit, why)
		return
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		if isViewer {
			rm.release(id)
		}
		s.httpRefuse(w, r, http.StatusServiceUnavailable, "ServiceUnavailableException", "the server is shutting down")
		return
	}
	s.conns.Add(1)
	s.mu.Unlock()
	defer s.conns.Done()

	// Register before the upgrade completes, so that once the client sees
	// the 101 it is reachable: frames for it queue until the writer starts.
	c := &wsConn{
		s: s, rm: rm, id: id, master: !isViewer, seq: seq,
		out:     make(chan []byte, sendQueue),
		closing: make(chan struct{}),
		sdp:     newBucket(s.limits.SDPPerSecond),
		ice:     newBucket(s.limits.ICEPerSecond),
	}
	c.lastActive.Store(time.Now().UnixNano())
	old, ok := rm.register(c)
	if !ok {
		s.httpRefuse(w, r, http.StatusConflict, codeInUse, "a newer connection with the same role and ClientId took this place, or the channel was deleted")
		return
	}
	if old != nil {
		s.log.Debug("localkvs: connection replaced", "channel", arn, "role", c.role(), "clientId", id)
		old.close(wire.CloseReplaced, "replaced by a newer connection with the same role and ClientId")
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // any Origin: browsers on other origins connect too
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		c.close(closeNormal, "upgrade failed")
		rm.unregister(c)
		s.log.Info("localkvs: WebSocket upgrade failed", "err", err)
		return
	}
	ws.SetReadLimit(int64(s.limits.MaxPayload)*2 + 64<<10)
	c.ws = ws
	c.wsp.Store(ws)
	if _, still := s.store.get("", arn); !still {
		c.close(closeNormal, "signaling channel deleted")
	}
	if s.closed.Load() {
		c.goAway()
		c.close(closeGoingAway, "server shutting down")
	}
	s.log.Debug("localkvs: connected", "channel", arn, "role", c.role(), "clientId", id, "remote", r.RemoteAddr)

	wdone := make(chan struct{})
	c.live.Store(true)
	go c.writeLoop(wdone)
	c.startTimers()
	c.readLoop()
	c.close(closeNormal, "")
	<-wdone
	rm.unregister(c)
	s.log.Debug("localkvs: disconnected", "channel", arn, "role", c.role(), "clientId", id, "reason", c.closeWhy)
}

func (c *wsConn) readLoop() {
	ctx := context.Background()
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		c.lastActive.Store(time.Now().UnixNano())
		if typ != websocket.MessageText {
			c.s.log.Info("localkvs: binary frame dropped", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
			continue
		}
		c.handle(data)
	}
}

// handle validates, rate-limits and routes one client frame, decoding it once.
func (c *wsConn) handle(data []byte) {
	var m wire.ClientMessage
	if err := json.Unmarshal(data, &m); err != nil {
		c.s.log.Info("localkvs: malformed frame dropped", "channel", c.rm.arn, "role", c.role(), "clientId", c.id, "err", err)
		return
	}
	if m.CorrelationID != "" && !wire.ValidName(m.CorrelationID) {
		c.s.log.Info("localkvs: frame with invalid correlationId dropped", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
		return
	}
	now := time.Now()
	var b *bucket
	switch m.Action {
	case wire.SDPOffer, wire.SDPAnswer:
		b = &c.sdp
	case wire.ICECandidate:
		b = &c.ice
	default:
		c.fail(&m, codeInvalidArgument, fmt.Sprintf("action %q is not one of SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE", m.Action))
		return
	}
	if m.MessagePayload == "" {
		c.fail(&m, codeInvalidArgument, "messagePayload is required")
		return
	}
	if len(m.MessagePayload) > c.s.limits.MaxPayload {
		c.fail(&m, codeInvalidArgument, fmt.Sprintf("messagePayload is %d bytes, more than the maximum of %d", len(m.MessagePayload), c.s.limits.MaxPayload))
		return
	}
	if c.master {
		if m.RecipientClientID == "" {
			c.fail(&m, codeInvalidArgument, "recipientClientId is required in a message from the master")
			return
		}
		if !wire.ValidName(m.RecipientClientID) {
			c.fail(&m, codeInvalidArgument, "recipientClientId: want "+wire.NameRule)
			return
		}
	}
	if !b.allow(now) {
		c.fail(&m, codeClientLimit, "message rate limit exceeded for "+m.Action)
		return
	}
	out := wire.ServiceMessage{MessageType: m.Action, MessagePayload: m.MessagePayload}
	if !c.master {
		out.SenderClientID = c.id // the service adds the viewer's id; the master has none
	}
	frame, err := json.Marshal(out)
	if err != nil {
		return
	}
	if c.master {
		if c.s.log.Enabled(context.Background(), -4) {
			c.s.log.Debug("localkvs: route master->viewer", "channel", c.rm.arn, "action", m.Action, "to", m.RecipientClientID)
		}
		c.rm.routeToViewer(m.RecipientClientID, m.Action, m.MessagePayload, frame)
	} else {
		if c.s.log.Enabled(context.Background(), -4) {
			c.s.log.Debug("localkvs: route viewer->master", "channel", c.rm.arn, "action", m.Action, "from", c.id)
		}
		c.rm.routeToMaster(c, m.Action, frame)
	}
}

// fail answers a failed message with STATUS_RESPONSE when it carried a
// correlationId, and otherwise only logs it.
func (c *wsConn) fail(m *wire.ClientMessage, code, desc string) {
	if m.CorrelationID == "" {
		c.s.log.Info("localkvs: message dropped", "channel", c.rm.arn, "role", c.role(), "clientId", c.id, "code", code, "why", desc)
		return
	}
	c.send(mustMarshal(wire.ServiceMessage{
		MessageType: wire.StatusResponse,
		StatusResponse: &wire.Status{
			CorrelationID: m.CorrelationID,
			Success:       false,
			ErrorType:     code,
			StatusCode:    "400",
			Description:   desc,
		},
	}))
}

// apiAlexaOffer is POST /v1/send-alexa-offer-to-master: it hands the offer to
// the master as an SDP_OFFER from SenderClientId and waits for the answer.
func (s *Server) apiAlexaOffer(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct{ ChannelARN, SenderClientId, MessagePayload string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ChannelARN", in.ChannelARN); err != nil {
		return nil, err
	}
	if err := wire.CheckClientID(in.SenderClientId); err != nil {
		return nil, invalidArg("SenderClientId: %v", err)
	}
	if in.MessagePayload == "" {
		return nil, invalidArg("MessagePayload is required")
	}
	if len(in.MessagePayload) > s.limits.MaxPayload {
		return nil, invalidArg("MessagePayload is %d bytes, more than the maximum of %d", len(in.MessagePayload), s.limits.MaxPayload)
	}
	ch, ok := s.store.get("", in.ChannelARN)
	if !ok {
		return nil, fmt.Errorf("%w: no signaling channel with ARN %q", ErrNotFound, in.ChannelARN)
	}
	rm := s.roomFor(ch)
	frame := mustMarshal(wire.ServiceMessage{MessageType: wire.SDPOffer, MessagePayload: in.MessagePayload, SenderClientID: in.SenderClientId})
	answer := make(chan string, 1)
	rm.mu.Lock()
	m := rm.master
	if m == nil {
		rm.mu.Unlock()
		return nil, fmt.Errorf("%w: no master is connected to channel %q", ErrNotFound, in.ChannelARN)
	}
	rm.waiters[in.SenderClientId] = answer
	m.send(frame)
	rm.mu.Unlock()
	defer func() {
		rm.mu.Lock()
		if rm.waiters[in.SenderClientId] == answer {
			delete(rm.waiters, in.SenderClientId)
		}
		rm.mu.Unlock()
	}()
	t := time.NewTimer(s.alexaTimeout)
	defer t.Stop()
	select {
	case a := <-answer:
		return map[string]string{"Answer": a}, nil
	case <-t.C:
		return nil, &apiError{http.StatusGatewayTimeout, "TimeoutException",
			fmt.Sprintf("the master sent no SDP_ANSWER within %s", s.alexaTimeout), context.DeadlineExceeded}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
