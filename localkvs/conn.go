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

	// sendQueue is the per-connection queue of frames waiting to be written.
	sendQueue = 256
	// writeTimeout bounds one frame write to a client by its writer goroutine.
	writeTimeout = 10 * time.Second
	// defaultInlineWriteTimeout bounds a frame written from the sender's
	// goroutine (see wsConn.writeInline). Such a write only blocks when the
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

	sdp, ice *rate.Limiter // message rates, used by the read loop
	bad      badFrames     // dropped frames: logs and the garbage budget (garbage.go), read loop only

	timerMu sync.Mutex
	timers  []timer
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
	ctx, cancel := context.WithTimeout(context.Background(), c.s.inlineWriteTimeout)
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
