package media_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"github.com/kvswebrtc/kvswebrtc/media"
)

// Reading a source: samples come as fast as they are asked for, each with
// its duration.
func Example() {
	src := media.DefaultVideo(media.Options{})
	defer src.Close()
	fmt.Println(src.Kind(), src.Codec().MimeType, src.Codec().ClockRate)

	var total time.Duration
	frames := 0
	for {
		s, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println(err)

			return
		}
		if frames == 0 {
			fmt.Println("first frame is a key frame:", media.IsKeyframe(src.Codec().MimeType, s.Data))
		}
		frames++
		total += s.Duration
	}
	fmt.Println(frames, "frames,", total)
	// Output:
	// video video/VP8 90000
	// first frame is a key frame: true
	// 150 frames, 5s
}

// Any file by its extension; bad input says what is wrong with which file.
func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "media")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "notes.ogg")
	_ = os.WriteFile(path, []byte("not audio at all"), 0o600)

	_, err := media.Open(path, media.Options{Loop: true})
	fmt.Println(errors.Is(err, media.ErrBadFormat))
	_, err = media.Open(filepath.Join(dir, "clip.mp4"), media.Options{})
	fmt.Println(errors.Is(err, media.ErrUnknownFormat))
	// Output:
	// true
	// true
}

// A master sends one source to many viewers: one Broadcaster, a track per
// viewer, added and removed as viewers come and go. Here two writers stand
// in for the tracks, and the source stops after three samples.
func ExampleBroadcaster() {
	b := media.NewBroadcaster(&firstN{Source: media.DefaultAudio(media.Options{Loop: true}), n: 3})
	alice, bob := &countingWriter{}, &countingWriter{}
	b.Add(alice)
	b.Add(bob)
	b.OnWriteError(func(w media.SampleWriter, err error) { fmt.Println("write failed:", err) })

	// In a master: b.Add(track) for each viewer's
	// *webrtc.TrackLocalStaticSample once its connection is up, and
	// b.Remove(track) when the viewer leaves.
	if err := b.Run(context.Background()); err != nil && !errors.Is(err, errDone) {
		fmt.Println(err)
	}
	fmt.Println(alice.n, bob.n, "samples, each 20ms; paced:", alice.last.Sub(alice.first) >= 40*time.Millisecond)
	// Output:
	// 3 3 samples, each 20ms; paced: true
}

// With fast start, a viewer's track that joins in the middle of a group of
// pictures gets at once the samples since the last key frame, so that its
// first frame decodes with no wait. Here the late writer joins after ten
// frames of the clip, whose first is a key frame.
func ExampleBroadcaster_SetFastStart() {
	b := media.NewBroadcaster(&firstN{Source: media.DefaultVideo(media.Options{}), n: 12})
	b.SetFastStart(true)
	var late keyWriter
	var early countingWriter
	b.Add(&onSample{func(s pionmedia.Sample) error {
		if err := early.WriteSample(s); err != nil {
			return err
		}
		if early.n == 10 {
			b.Add(&late) // gets frames 0-9 at once, 1 ms apart
		}

		return nil
	}})
	if err := b.Run(context.Background()); err != nil && !errors.Is(err, errDone) {
		fmt.Println(err)
	}
	fmt.Println("late writer:", len(late.keys), "samples, the first a key frame:", late.keys[0])
	// Output:
	// late writer: 12 samples, the first a key frame: true
}

// keyWriter notes, for each sample, whether it is a VP8 key frame.
type keyWriter struct{ keys []bool }

func (w *keyWriter) WriteSample(s pionmedia.Sample) error {
	w.keys = append(w.keys, media.IsKeyframe(webrtc.MimeTypeVP8, s.Data))

	return nil
}

// onSample is a SampleWriter that calls a function (a pointer, so that it
// is comparable, as Broadcaster.Add asks).
type onSample struct{ f func(pionmedia.Sample) error }

func (w *onSample) WriteSample(s pionmedia.Sample) error { return w.f(s) }

// A viewer counts and records what it receives. Packets made here with
// pion's packetizer stand in for a *webrtc.TrackRemote.
func ExampleConsume() {
	dir, _ := os.MkdirTemp("", "media")
	defer os.RemoveAll(dir)

	rec, err := media.NewRecorder(filepath.Join(dir, "received.ogg"))
	if err != nil {
		fmt.Println(err)

		return
	}
	var counter media.Counter
	counter.OnFirstFrame(func(f media.Frame) { fmt.Println("first frame:", len(f.Packets), "packet") })

	track := packetsOf(media.DefaultAudio(media.Options{}))
	// In a viewer: peerConnection.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	//	go media.Consume(ctx, track, &counter, rec)
	// })
	if err := media.Consume(context.Background(), track, &counter, rec); err != nil {
		fmt.Println(err)
	}
	if err := rec.Close(); err != nil {
		fmt.Println(err)
	}
	fmt.Println(counter.Frames(), "frames counted,", rec.Frames(), "recorded")

	back, err := media.Open(rec.Path(), media.Options{})
	if err != nil {
		fmt.Println(err)

		return
	}
	defer back.Close()
	n := 0
	for _, err := back.Next(context.Background()); err == nil; _, err = back.Next(context.Background()) {
		n++
	}
	fmt.Println(n, "packets in", filepath.Base(rec.Path()))
	// Output:
	// first frame: 1 packet
	// 251 frames counted, 251 recorded
	// 251 packets in received.ogg
}

// firstN ends a source after n samples.
type firstN struct {
	media.Source
	n int
}

var errDone = errors.New("done")

func (f *firstN) Next(ctx context.Context) (pionmedia.Sample, error) {
	if f.n == 0 {
		return pionmedia.Sample{}, errDone
	}
	f.n--

	return f.Source.Next(ctx)
}

// countingWriter stands in for a *webrtc.TrackLocalStaticSample.
type countingWriter struct {
	n           int
	first, last time.Time
}

func (w *countingWriter) WriteSample(pionmedia.Sample) error {
	w.n++
	w.last = time.Now()
	if w.first.IsZero() {
		w.first = w.last
	}

	return nil
}

// packetList is an RTPReader over packets made in advance.
type packetList struct {
	codec   webrtc.RTPCodecParameters
	packets []*rtp.Packet
}

func (l *packetList) Codec() webrtc.RTPCodecParameters { return l.codec }

func (l *packetList) ReadRTP() (*rtp.Packet, interceptor.Attributes, error) {
	if len(l.packets) == 0 {
		return nil, nil, io.EOF
	}
	p := l.packets[0]
	l.packets = l.packets[1:]

	return p, nil, nil
}

// packetsOf packetizes an Opus source, as a TrackLocalStaticSample does.
func packetsOf(src media.Source) *packetList {
	codec := src.Codec()
	p := rtp.NewPacketizer(1200, 111, 1, &codecs.OpusPayloader{}, rtp.NewRandomSequencer(), codec.ClockRate)
	list := &packetList{codec: webrtc.RTPCodecParameters{RTPCodecCapability: codec, PayloadType: 111}}
	for {
		s, err := src.Next(context.Background())
		if err != nil {
			return list
		}
		list.packets = append(list.packets, p.Packetize(s.Data, uint32(s.Duration.Seconds()*float64(codec.ClockRate)))...)
	}
}
