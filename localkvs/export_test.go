package localkvs

import (
	"slices"
	"sync"
	"time"
)

// SetAlexaTimeout shortens how long send-alexa-offer-to-master waits, for tests.
func SetAlexaTimeout(s *Server, d time.Duration) { s.alexaTimeout = d }

// SetInlineWriteTimeout sets how long a frame written from the sender's
// goroutine may block before its recipient is disconnected, for tests that
// need a write to stay stuck.
func SetInlineWriteTimeout(s *Server, d time.Duration) { s.inlineWriteTimeout = d }

// TURNCredentials returns TURN credentials for arn expiring at expires, as
// GetIceServerConfig would issue them, so tests can craft expired ones.
func TURNCredentials(s *Server, arn string, expires time.Time) (username, password string) {
	return s.turn.Load().credentials(arn, expires)
}

// StartWithClock is Start with the server's clock replaced by c.
func StartWithClock(cfg Config, addr string, c *FakeClock) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	s.clock = c
	if err := s.start(addr); err != nil {
		return nil, err
	}
	return s, nil
}

// FakeClock is a clock that moves only in Advance, where its timers fire.
type FakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // armed ones
}

// NewFakeClock returns a FakeClock reading now.
func NewFakeClock(now time.Time) *FakeClock { return &FakeClock{now: now} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms a timer that runs f once the clock has been advanced by d.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, when: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock d on. The function of each timer due by then runs
// on the calling goroutine, in the order they are due, with the clock
// reading the timer's time, so what they do (a close, a GO_AWAY queued) has
// started when Advance returns; a timer armed or reset by one of them runs
// too if it is due within d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		i := -1
		for j, t := range c.timers {
			if !t.when.After(end) && (i < 0 || t.when.Before(c.timers[i].when)) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		t := c.timers[i]
		c.timers = slices.Delete(c.timers, i, i+1)
		if t.when.After(c.now) {
			c.now = t.when
		}
		c.mu.Unlock()
		t.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

type fakeTimer struct {
	c    *FakeClock
	when time.Time
	f    func()
}

// Stop disarms t and reports whether it was armed.
func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.disarmLocked()
}

// Reset arms t to fire d after the clock's time and reports whether it was armed.
func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.disarmLocked()
	t.when = t.c.now.Add(d)
	t.c.timers = append(t.c.timers, t)
	return was
}

func (t *fakeTimer) disarmLocked() bool {
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}
