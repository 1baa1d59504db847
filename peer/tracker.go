package peer

import "sync"

// tracker runs goroutines that a Close waits for (Master and Viewer embed it).
type tracker struct {
	mu       sync.Mutex
	wg       sync.WaitGroup
	draining bool
}

// goRun runs f on a goroutine that wait waits for.
func (t *tracker) goRun(f func()) {
	t.mu.Lock()
	if t.draining { // Close is waiting: a late pion callback runs untracked
		t.mu.Unlock()
		go f()
		return
	}
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// wait waits for the goroutines of goRun; later ones are not waited for.
func (t *tracker) wait() {
	t.mu.Lock()
	t.draining = true
	t.mu.Unlock()
	t.wg.Wait()
}

// runState is whether a Master or a Viewer was started and closed; its
// owner's mutex guards it.
type runState struct {
	started, closed bool
}

// begin marks a Start. It returns ErrClosed after Close and ErrStarted on
// a second call.
func (r *runState) begin() error {
	switch {
	case r.closed:
		return ErrClosed
	case r.started:
		return ErrStarted
	}
	r.started = true
	return nil
}

// finish marks a Close, and reports false if there was one already.
func (r *runState) finish() bool {
	if r.closed {
		return false
	}
	r.closed = true
	return true
}
