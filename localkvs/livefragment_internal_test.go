package localkvs

import (
	"slices"
	"testing"
)

func frameTimes(fs []mkvFrame) (out []int64) {
	for _, f := range fs {
		out = append(out, f.ts)
	}
	return out
}

// TestLiveFragmentRelease: video goes out at once, audio once a later
// video frame came, in timestamp order; at a cut, held audio from the cut
// on is not sent with the old fragment (it belongs to the next); the
// frames sent are those a stored fragment holds, in its order.
func TestLiveFragmentRelease(t *testing.T) {
	v := func(ts int64) mkvFrame { return mkvFrame{track: mkvVideoTrack, ts: ts, key: ts == 0} }
	a := func(ts int64) mkvFrame { return mkvFrame{track: mkvAudioTrack, ts: ts, key: true} }
	l := newLiveFragment("1", 0, 0, nil, true)
	wake := l.changed
	l.add(v(0))
	select {
	case <-wake:
	default:
		t.Fatal("a released frame did not wake the readers")
	}
	l.add(a(5))
	l.add(a(25))
	if got, done, _ := l.next(0); !slices.Equal(frameTimes(got), []int64{0}) || done {
		t.Fatalf("after video 0 and audio 5, 25: %v (done %v), want only the video", frameTimes(got), done)
	}
	l.add(v(33))
	if got, _, _ := l.next(1); !slices.Equal(frameTimes(got), []int64{5, 25, 33}) {
		t.Fatalf("after video 33: %v, want the audio before it, then it", frameTimes(got))
	}
	l.add(a(45))
	l.add(a(70))
	l.close(66) // the next key frame is at 66: audio 70 moves to the next fragment
	got, done, _ := l.next(0)
	if !slices.Equal(frameTimes(got), []int64{0, 5, 25, 33, 45}) || !done {
		t.Fatalf("closed at 66: %v (done %v), want 0 5 25 33 45, done", frameTimes(got), done)
	}
	l.add(v(99))
	if got, _, _ := l.next(0); len(got) != 5 {
		t.Errorf("a frame added after close was sent: %v", frameTimes(got))
	}

	audioOnly := newLiveFragment("2", 0, 0, nil, false)
	audioOnly.add(a(0))
	audioOnly.add(a(20))
	if got, _, _ := audioOnly.next(0); !slices.Equal(frameTimes(got), []int64{0, 20}) {
		t.Errorf("audio-only: %v, want each frame at once", frameTimes(got))
	}
	end := newLiveFragment("3", 0, 0, nil, true)
	end.add(v(0))
	end.add(a(10))
	end.close(0) // the session ended: everything held goes
	if got, _, _ := end.next(0); !slices.Equal(frameTimes(got), []int64{0, 10}) {
		t.Errorf("closed at the end of the session: %v, want 0 10", frameTimes(got))
	}
}
