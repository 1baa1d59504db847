package localkvs

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

const (
	closeGoingAway = websocket.StatusGoingAway
	closeNormal    = websocket.StatusNormalClosure
	closePolicy    = websocket.StatusPolicyViolation

	// sendQueue is how many frames may wait for a connection's writer.
	sendQueue = 256
	// writeTimeout bounds one frame write to a client by its drain goroutine.
	writeTimeout = 10 * time.Second
	// defaultInlineWriteTimeout bounds a frame written from the sender's
	// goroutine (see wsConn.send). Such a write only blocks when the
	// client's socket buffer is full, that is when the client does not
	// read: it is then disconnected, as a full send queue would.
	defaultInlineWriteTimeout = time.Second
	// drainTimeout bounds writing the queued frames (e.g. GO_AWAY) before a close.
	drainTimeout = 2 * time.Second
)

var goAwayFrame = mustMarshal(wire.ServiceMessage{MessageType: wire.GoAway})

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// wsConn is one signaling WebSocket. Its read loop runs on the HTTP handler
// goroutine. A frame for it is written by the goroutine that sends it when
// nothing else is being written to the connection (almost always); frames
// that arrive meanwhile wait in a bounded queue that a goroutine started on
// demand drains, so a slow client never blocks the room or more than one
// sender. An idle connection holds no writer goroutine, no queue and one
// timer (bench/README.md, "Relay tail after the hub split").
type wsConn struct {
	s      *Server
	rm     *room
	id     string // viewer ClientId; "" for the master
	master bool
	seq    uint64 // admission order in the room

	mu         sync.Mutex
	ws         *websocket.Conn // set once upgraded, with live
	q          [][]byte        // frames waiting for the writer; nil when none
	writing    bool            // a writer owns the socket: an inline write, the drain goroutine or the close
	live       bool            // upgraded: frames may be written
	closing    bool            // close was called: no more frames are taken
	abort      bool            // close without writing what is queued
	goAwaySent bool            // GO_AWAY queued once already
	closeCode  websocket.StatusCode
	closeWhy   string
	timer      timer         // idle timeout, GO_AWAY and the duration cut (startTimers)
	wtimer     *time.Timer   // bounds a write; used by the socket's owner only (write)
	done       chan struct{} // closed once the socket is closed (after live)

	lastActive atomic.Int64 // unix nanos of the last message from the client
	goAwayAt   time.Time    // set by startTimers, read by its timer
	cutAt      time.Time

	sdp, ice *rate.Limiter // message rates, used by the read loop
	bad      badFrames     // dropped frames: logs and the garbage budget (garbage.go), read loop only
}

func (c *wsConn) role() string {
	if c.master {
		return "MASTER"
	}
	return "VIEWER"
}

// send delivers a frame without waiting on the client. When nothing is
// being written to the connection it writes the frame at once from the
// caller's goroutine (saving a hand-off to another goroutine, the larger
// part of the relay latency); otherwise it queues it behind the write in
// progress. A full queue means the client does not read: it is
// disconnected (it will reconnect) rather than stall others. The frame is
// not modified and may be kept.
func (c *wsConn) send(frame []byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if c.live && !c.writing { // then nothing is queued: the last writer drained it
		c.writing = true
		c.mu.Unlock()
		c.writeInline(frame)
		return
	}
	if len(c.q) < sendQueue {
		c.q = append(c.q, frame) // a writer holds the socket, or the upgrade is not done
		c.mu.Unlock()
		return
	}
	c.abort = true
	c.mu.Unlock()
	c.s.log.Warn("localkvs: client too slow, send queue full; disconnecting", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
	c.close(closePolicy, "send queue full: client too slow")
	go c.closeNow() // the writer may be stuck writing to this client
}

// enqueue queues a frame for the writer; false when the queue is full.
func (c *wsConn) enqueue(frame []byte) bool {
	c.mu.Lock()
	if len(c.q) >= sendQueue {
		c.mu.Unlock()
		return false
	}
	c.q = append(c.q, frame)
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.drain()
	}
	return true
}

// startWriterLocked reports whether the caller must start the drain
// goroutine (and takes the socket for it): the connection is upgraded and
// no writer holds the socket. Called with c.mu held.
func (c *wsConn) startWriterLocked() bool {
	if !c.live || c.writing {
		return false
	}
	c.writing = true
	return true
}

// writeInline writes frame from the caller's goroutine, which owns the
// socket (c.writing), then hands the socket on: to a drain goroutine when
// frames were queued meanwhile or the connection is closing.
func (c *wsConn) writeInline(frame []byte) {
	if err := c.write(frame, c.s.inlineWriteTimeout); err != nil {
		c.s.log.Warn("localkvs: client too slow or gone, write failed; disconnecting", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
		c.mu.Lock()
		c.abort = true
		c.mu.Unlock()
		c.close(closePolicy, "write failed: client too slow")
		go c.closeNow()
	}
	c.mu.Lock()
	if len(c.q) == 0 && !c.closing {
		c.writing = false
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	go c.drain()
}

// drain writes the queued frames, owning the socket, until the queue is
// empty; on a close it writes the rest (bounded) and closes the socket.
func (c *wsConn) drain() {
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			c.finish()
			return
		}
		if len(c.q) == 0 {
			c.q = nil // an idle connection keeps no queue
			c.writing = false
			c.mu.Unlock()
			return
		}
		f := c.q[0]
		c.q[0] = nil
		c.q = c.q[1:]
		c.mu.Unlock()
		if err := c.write(f, writeTimeout); err != nil {
			c.close(closeGoingAway, "write failed")
			c.ws.CloseNow()
			close(c.done)
			return
		}
	}
}

// finish ends a closing connection, owning the socket: it writes what is
// queued (within drainTimeout) unless the close is an abort, then runs the
// close handshake.
func (c *wsConn) finish() {
	defer close(c.done)
	c.mu.Lock()
	q, abort := c.q, c.abort
	c.q = nil
	code, why := c.closeCode, c.closeWhy
	c.mu.Unlock()
	if abort {
		c.ws.CloseNow()
		return
	}
	deadline := time.Now().Add(drainTimeout)
	for _, f := range q {
		d := time.Until(deadline)
		if d <= 0 || c.write(f, d) != nil {
			break
		}
	}
	c.ws.Close(code, why)
}

// write writes one frame; the caller owns the socket. A write that takes
// longer than d cuts the connection, as a context deadline would, but with
// one timer per connection reset for each write: a context with a deadline
// costs every write about 450 bytes in four allocations, in the context
// and websocket packages (bench/README.md, "Relay tail after the hub split").
func (c *wsConn) write(frame []byte, d time.Duration) error {
	if c.wtimer == nil {
		c.wtimer = time.AfterFunc(d, c.closeNow)
	} else {
		c.wtimer.Reset(d)
	}
	err := c.ws.Write(context.Background(), websocket.MessageText, frame)
	c.wtimer.Stop()
	return err
}

// goLive makes an upgraded connection writable: frames queued before (kept
// messages, GO_AWAY) and a close asked for before are handled from now on.
func (c *wsConn) goLive(ws *websocket.Conn) {
	c.mu.Lock()
	c.ws, c.live = ws, true
	start := (len(c.q) > 0 || c.closing) && c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.drain()
	}
}

// closeNow cuts the connection without a close handshake.
func (c *wsConn) closeNow() {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		ws.CloseNow()
	}
}

// goAway queues a GO_AWAY frame.
// A connection gets at most one: the maximum-duration timer, Shutdown and a
// connection admitted while the server shuts down may all ask.
func (c *wsConn) goAway() {
	c.mu.Lock()
	again := c.goAwaySent
	c.goAwaySent = true
	c.mu.Unlock()
	if !again {
		c.enqueue(goAwayFrame)
	}
}

// close starts closing: the writer writes what is queued (bounded), then
// runs the close handshake. Safe to call many times and from any goroutine.
func (c *wsConn) close(code websocket.StatusCode, why string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.closeCode, c.closeWhy = code, why
	if c.timer != nil {
		c.timer.Stop()
	}
	start := c.startWriterLocked()
	c.mu.Unlock()
	if start {
		go c.finish()
	}
}

// startTimers arms the connection's one timer, for the earliest of the idle
// timeout, the GO_AWAY ahead of the maximum duration and the cut; it
// re-arms itself for the next (see onTimer).
func (c *wsConn) startTimers() {
	l := c.s.limits
	now := c.s.clock.Now()
	c.goAwayAt = now.Add(l.MaxConnectionDuration - l.GoAwayLead)
	c.cutAt = now.Add(l.MaxConnectionDuration)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	// onTimer re-arms c.timer under c.mu: it cannot see c.timer before it is set.
	c.timer = c.s.clock.AfterFunc(c.nextLocked(now).Sub(now), c.onTimer)
}

// nextLocked returns when the timer must fire next. Called with c.mu held.
func (c *wsConn) nextLocked(now time.Time) time.Time {
	next := time.Unix(0, c.lastActive.Load()).Add(c.s.limits.IdleTimeout)
	if !c.goAwaySent && c.goAwayAt.Before(next) {
		next = c.goAwayAt
	}
	if c.cutAt.Before(next) {
		next = c.cutAt
	}
	return next
}

// onTimer closes the connection at the cut or after the idle timeout, sends
// GO_AWAY when its time has come, and re-arms the timer for what is next.
func (c *wsConn) onTimer() {
	l := c.s.limits
	now := c.s.clock.Now()
	if !now.Before(c.cutAt) {
		c.close(closeNormal, "maximum connection duration reached")
		return
	}
	if since := time.Duration(now.UnixNano() - c.lastActive.Load()); since >= l.IdleTimeout {
		c.s.log.Debug("localkvs: idle timeout", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
		c.close(closeNormal, "idle timeout: no message for "+l.IdleTimeout.String())
		return
	}
	if !now.Before(c.goAwayAt) {
		c.mu.Lock()
		sent := c.goAwaySent
		c.mu.Unlock()
		if !sent {
			c.s.log.Debug("localkvs: GO_AWAY (maximum connection duration ahead)", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
			c.goAway()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closing {
		c.timer.Reset(c.nextLocked(now).Sub(now))
	}
}
