package localkvs

import (
	"time"

	"github.com/coder/websocket"

	"golang.org/x/time/rate"
)

// A connection's dropped frames (docs/security.md, "Logs"): each is logged
// within the connection's gate and the process's, and the frames no client
// sends by mistake (not JSON, binary, malformed fields dropped without an
// answer) are counted: a client past badFrameBurst of them, refilled at
// badFramesPerSecond, is closed with 1008. State of the read loop only.
const (
	badFrameBurst      = 50
	badFramesPerSecond = 2
	connLogPerSecond   = 1
	connLogBurst       = 5
)

// closeInvalidData closes a connection that sent a text frame that is not
// UTF-8 (1007).
const closeInvalidData = websocket.StatusInvalidFramePayloadData

// badFrames is the dropped-frame state of one connection, used by its read
// loop alone. The zero value is ready.
type badFrames struct {
	log    *logGate
	budget *rate.Limiter
	closed bool
}

// dropped logs a dropped frame (msg and args, the connection's fields
// added) within the gates and, when garbage is true, counts it and closes
// the connection once it has sent too many.
func (c *wsConn) dropped(garbage bool, msg string, args ...any) {
	b := &c.bad
	if b.log == nil {
		b.log = newLogGate(connLogPerSecond, connLogBurst)
		b.budget = rate.NewLimiter(badFramesPerSecond, badFrameBurst)
	}
	now := time.Now()
	if ok, left := b.log.pass(now); ok {
		if ok, left2 := c.s.dropLog.pass(now); ok {
			args = append([]any{"channel", c.rm.arn, "role", c.role(), "clientId", c.id}, args...)
			if left+left2 > 0 {
				args = append(args, "suppressed", left+left2)
			}
			c.s.log.Info(msg, args...)
		}
	}
	if !garbage || b.closed || b.budget.AllowN(now, 1) {
		return
	}
	b.closed = true
	c.s.log.Info("localkvs: closing a connection that keeps sending bad frames", "channel", c.rm.arn, "role", c.role(), "clientId", c.id)
	c.close(closePolicy, "too many malformed frames")
}
