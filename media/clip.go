package media

import (
	"bytes"
	_ "embed" // the test clips
	"fmt"
)

//go:generate sh clip/generate.sh

// The clips are made by clip/generate.sh from ffmpeg's testsrc and sine
// sources; see clip/README.md.
var (
	//go:embed clip/video.ivf
	clipVideo []byte
	//go:embed clip/audio.ogg
	clipAudio []byte
	//go:embed clip/video.h264
	clipH264 []byte
)

// Facts about the embedded clips, for tests that check what arrived.
const (
	// DefaultVideoFrames is the number of frames in one pass of DefaultVideo:
	// 5 s of 640x480 VP8 at 30 frames per second, a key frame every 30.
	DefaultVideoFrames = 150
	// DefaultAudioPackets is the number of packets in one pass of
	// DefaultAudio: 5 s of a 440 Hz tone in stereo Opus, 20 ms a packet,
	// plus one for the encoder delay.
	DefaultAudioPackets = 251
	// DefaultH264Frames is the number of frames in one pass of DefaultH264:
	// 2 s of 320x240 constrained-baseline H.264 at 30 frames per second.
	DefaultH264Frames = 60
)

// DefaultVideo returns a Source over the embedded VP8 clip (see
// DefaultVideoFrames). Set opts.Loop for a source that never ends.
func DefaultVideo(opts Options) Source {
	return mustClip(newIVF(bytes.NewReader(clipVideo), opts, "embedded clip video.ivf", nil))
}

// DefaultAudio returns a Source over the embedded Opus clip (see
// DefaultAudioPackets). Set opts.Loop for a source that never ends.
func DefaultAudio(opts Options) Source {
	return mustClip(newOgg(bytes.NewReader(clipAudio), opts, "embedded clip audio.ogg", nil))
}

// DefaultH264 returns a Source over the embedded H.264 clip (see
// DefaultH264Frames). Set opts.Loop for a source that never ends;
// opts.FrameRate, if set, changes its pace. Like time.NewTicker with a
// non-positive period, it panics if opts.FrameRate is negative (or so high
// that a frame would last less than a nanosecond).
func DefaultH264(opts Options) Source {
	return mustClip(newH264(bytes.NewReader(clipH264), opts, "embedded clip video.h264", nil))
}

// mustClip turns an error on the embedded clips, which the tests rule out,
// into a panic.
func mustClip(s Source, err error) Source {
	if err != nil {
		panic(fmt.Sprintf("media: embedded clip is broken: %v", err))
	}

	return s
}
