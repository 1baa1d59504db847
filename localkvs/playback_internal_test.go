package localkvs

import "testing"

// TestTrackFrameDurations: a fragment's last frame lasts as its Opus packet
// says (audio) or as the step before it (video), not up to the fragment's
// end. With the fragment's end, a last audio packet 1 ms before the cut
// lasted 1 ms, the next segment's first packet came 20 ms later, and
// Chromium's Media Source Extensions took that as a discontinuity and
// dropped every video frame of the segment but its key frame.
func TestTrackFrameDurations(t *testing.T) {
	opus20 := []byte{0xF8, 0xFF, 0xFE} // CELT fullband 20 ms, one frame
	f := &playFragment{
		meta: fragmentMeta{Producer: 1000, LengthMS: 1000}, // ends at 2000
		frames: mergeAccessUnits([]mkvFrame{
			{track: mkvVideoTrack, ts: 1000, key: true, data: []byte{0, 0, 0, 1, 0x67}}, // SPS alone ...
			{track: mkvVideoTrack, ts: 1000, data: []byte{0, 0, 0, 1, 0x65}},            // ... then the IDR
			{track: mkvAudioTrack, ts: 1005, data: opus20},
			{track: mkvVideoTrack, ts: 1033, data: []byte{0, 0, 0, 1, 0x41}},
			{track: mkvAudioTrack, ts: 1025, data: opus20},
			{track: mkvVideoTrack, ts: 1066, data: []byte{0, 0, 0, 1, 0x41}},
			{track: mkvAudioTrack, ts: 1999, data: opus20},
		}),
	}
	video, vd := f.trackFrames(mkvVideoTrack)
	if len(video) != 3 || !video[0].key || len(video[0].data) != 10 {
		t.Fatalf("video frames %+v: the SPS and the IDR of one time are one access unit", video)
	}
	if want := []int64{33, 33, 33}; vd[0] != want[0] || vd[1] != want[1] || vd[2] != want[2] {
		t.Errorf("video durations %v, want %v (the last as the step before it, not 934 ms to the end)", vd, want)
	}
	_, ad := f.trackFrames(mkvAudioTrack)
	if ad[len(ad)-1] != 20 {
		t.Errorf("last audio duration %d ms, want 20 (its Opus packet), not 1 (to the fragment's end)", ad[len(ad)-1])
	}
	for _, c := range []struct {
		p  []byte
		ms int64
	}{{[]byte{0xF8}, 20}, {[]byte{0x08}, 20}, {[]byte{0x18}, 60}, {[]byte{0x79}, 40}, {[]byte{0xFB, 0x03}, 60}, {nil, 0}} {
		if got := opusDurationMS(c.p); got != c.ms {
			t.Errorf("opusDurationMS(%x) = %d, want %d", c.p, got, c.ms)
		}
	}
}
