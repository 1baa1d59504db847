package localkvs

import "time"

// clock is the server's time. The idle timeout, the maximum connection
// duration and its GO_AWAY, the message TTL, the rate limits and the
// expiry of TURN credentials are measured with it, and their timers fire
// from it, so that tests can move time on instead of sleeping. Request
// signatures are checked against the wall clock (clients sign with it), and
// the TURN relay bandwidth is measured with the wall clock too.
type clock interface {
	Now() time.Time
	// AfterFunc runs f in its own goroutine once d has passed, as time.AfterFunc.
	AfterFunc(d time.Duration, f func()) timer
}

// timer is the part of *time.Timer the server uses.
type timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// wallClock is the clock of a server: the time package's.
type wallClock struct{}

func (wallClock) Now() time.Time                            { return time.Now() }
func (wallClock) AfterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }
