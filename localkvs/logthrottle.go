package localkvs

import (
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// What a client can make the service log is bounded (docs/security.md,
// "Logs"): refused requests and dropped frames are logged at info level
// through a logGate, a few lines a second at most (per connection for
// frames, and for the whole process), and the line that passes after
// others were left out says how many.

// logGate lets log lines pass at a bounded rate and counts the others.
type logGate struct {
	lim        *rate.Limiter
	suppressed atomic.Int64
}

func newLogGate(perSecond float64, burst int) *logGate {
	return &logGate{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// pass reports whether a line may be logged now and, when it may, how many
// lines were left out since the last one that passed.
func (g *logGate) pass(now time.Time) (ok bool, leftOut int64) {
	if !g.lim.AllowN(now, 1) {
		g.suppressed.Add(1)
		return false, 0
	}
	return true, g.suppressed.Swap(0)
}

// Gates of the whole process: refused HTTP requests and WebSocket
// handshakes, and frames dropped on any connection.
const (
	refusalLogPerSecond, refusalLogBurst = 5, 20
	dropLogPerSecond, dropLogBurst       = 5, 20
)

// logRefusal logs a refused request at info level, within the process's
// refusal gate.
func (s *Server) logRefusal(r *http.Request, msg string, args ...any) {
	ok, left := s.refusalLog.pass(time.Now())
	if !ok {
		return
	}
	args = append(args, "remote", r.RemoteAddr)
	if left > 0 {
		args = append(args, "suppressed", left)
	}
	s.log.Info(msg, args...)
}
