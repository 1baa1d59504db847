package localkvs

import (
	"slices"
	"sync"
)

// liveFragment is the fragment being recorded, as GetMedia sends it
// before it is stored: its frames in timestamp order, each as soon as no
// frame recorded later can come before it. A video frame goes out at
// once; an audio frame waits for a video frame after it, because audio
// that arrives ahead of the next key frame belongs to the next fragment
// (recorder.cutLocked). An audio-only recording sends each frame at once.
// GetMedia sends the frames that are stored of the fragment, in timestamp
// order.
type liveFragment struct {
	number    string // reserved in the media store
	producer  int64  // producer timestamp of its first frame, epoch ms
	server    int64  // arrival of its first frame, epoch ms
	head      []byte // Info and Tracks
	holdAudio bool   // the recording has video
	mu        sync.Mutex
	frames    []mkvFrame // released, in timestamp order; only appended to
	held      []mkvFrame // audio waiting for a later video frame
	done      bool       // closed: frames is the whole fragment
	changed   chan struct{}
}

func newLiveFragment(number string, producer, server int64, head []byte, holdAudio bool) *liveFragment {
	return &liveFragment{number: number, producer: producer, server: server, head: head, holdAudio: holdAudio, changed: make(chan struct{})}
}

// add records one frame of the fragment.
func (l *liveFragment) add(f mkvFrame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	if f.track == mkvAudioTrack && l.holdAudio {
		l.held = append(l.held, f)
		return
	}
	if f.track == mkvVideoTrack {
		l.releaseLocked(func(a mkvFrame) bool { return a.ts < f.ts })
	}
	l.frames = append(l.frames, f)
	l.wakeLocked()
}

// close ends the fragment at cut (epoch ms; 0 at the end of a session):
// held audio from cut on moves to the next fragment, the rest is
// released.
func (l *liveFragment) close(cut int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		return
	}
	l.releaseLocked(func(a mkvFrame) bool { return cut == 0 || a.ts < cut })
	l.held, l.done = nil, true
	l.wakeLocked()
}

// releaseLocked moves the held audio frames that pass out to frames, in
// timestamp order.
func (l *liveFragment) releaseLocked(out func(mkvFrame) bool) {
	var keep []mkvFrame
	start := len(l.frames)
	for _, a := range l.held {
		if out(a) {
			l.frames = append(l.frames, a)
		} else {
			keep = append(keep, a)
		}
	}
	slices.SortStableFunc(l.frames[start:], func(a, b mkvFrame) int { return int(a.ts - b.ts) })
	l.held = keep
}

func (l *liveFragment) wakeLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// next returns the frames released from index i on, whether the fragment
// is closed, and a channel closed when there is more.
func (l *liveFragment) next(i int) (frames []mkvFrame, done bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.frames[min(i, len(l.frames)):len(l.frames):len(l.frames)], l.done, l.changed
}
