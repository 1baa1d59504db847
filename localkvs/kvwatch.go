package localkvs

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// kvWatch keeps a node's view of a JetStream key-value bucket: it watches
// every key and hands each change to apply, in revision order, from one
// goroutine. The view trails the bucket by the time a change takes to
// reach this node (a millisecond on a LAN); waitRev lets a node that wrote
// a change wait until its view holds it, so that a node reads its own
// writes.
type kvWatch struct {
	kv    jetstream.KeyValue
	apply func(e jetstream.KeyValueEntry, initial bool)
	log   *slog.Logger

	mu     sync.Mutex
	rev    uint64        // highest revision applied
	wake   chan struct{} // closed and replaced when rev moves
	synced chan struct{} // closed once the bucket's content was loaded
	once   sync.Once

	lag atomic.Int64 // tests: nanoseconds to wait before applying each change (DelayWatches)
}

func newKVWatch(kv jetstream.KeyValue, apply func(jetstream.KeyValueEntry, bool), log *slog.Logger) *kvWatch {
	return &kvWatch{kv: kv, apply: apply, log: log, wake: make(chan struct{}), synced: make(chan struct{})}
}

// start watches the bucket until ctx is done, watching again after a failure.
func (w *kvWatch) start(ctx context.Context) {
	go func() {
		for ctx.Err() == nil {
			w.run(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
}

func (w *kvWatch) run(ctx context.Context) {
	w.mu.Lock()
	from := w.rev
	w.mu.Unlock()
	var opts []jetstream.WatchOpt
	if from > 0 {
		opts = append(opts, jetstream.ResumeFromRevision(from+1))
	}
	wt, err := w.kv.WatchAll(ctx, opts...)
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("localkvs: cluster: watching a bucket failed", "bucket", w.kv.Bucket(), "err", err)
		}
		return
	}
	defer wt.Stop()
	initial := from == 0
	if !initial {
		w.once.Do(func() { close(w.synced) })
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-wt.Updates():
			if !ok {
				return
			}
			if e == nil { // the initial values are all in
				initial = false
				w.once.Do(func() { close(w.synced) })
				continue
			}
			if d := w.lag.Load(); d > 0 && !initial {
				time.Sleep(time.Duration(d)) // a loaded node's view trailing the bucket (tests)
			}
			w.apply(e, initial)
			w.mu.Lock()
			if e.Revision() > w.rev {
				w.rev = e.Revision()
				close(w.wake)
				w.wake = make(chan struct{})
			}
			w.mu.Unlock()
		}
	}
}

// waitSynced waits for the bucket's content to be loaded.
func (w *kvWatch) waitSynced(ctx context.Context) error {
	select {
	case <-w.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitRev waits until the view holds revision rev, for at most d.
func (w *kvWatch) waitRev(rev uint64, d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		done, wake := w.rev >= rev, w.wake
		w.mu.Unlock()
		if done {
			return
		}
		select {
		case <-wake:
		case <-deadline.C:
			w.log.Warn("localkvs: cluster: a bucket's view lags behind a write", "bucket", w.kv.Bucket(), "revision", rev)
			return
		}
	}
}
