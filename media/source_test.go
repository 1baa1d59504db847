package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// readAll reads src to its end.
func readAll(t *testing.T, src Source) []media.Sample {
	t.Helper()
	var out []media.Sample
	for {
		s, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d samples: %v", len(out), err)
		}
		out = append(out, s)
	}
}

func totalDuration(ss []media.Sample) time.Duration {
	var d time.Duration
	for _, s := range ss {
		d += s.Duration
	}

	return d
}

type clipCase struct {
	name      string
	open      func(Options) Source
	data      []byte
	ext       string
	mime      string
	kind      webrtc.RTPCodecType
	frames    int
	total     time.Duration
	frameDur  time.Duration // every sample lasts this, within a nanosecond
	keyframes int
}

var clips = []clipCase{
	{"vp8", DefaultVideo, clipVideo, ".ivf", webrtc.MimeTypeVP8, webrtc.RTPCodecTypeVideo,
		DefaultVideoFrames, 5 * time.Second, time.Second / 30, 5},
	{"opus", DefaultAudio, clipAudio, ".ogg", webrtc.MimeTypeOpus, webrtc.RTPCodecTypeAudio,
		DefaultAudioPackets, 5020 * time.Millisecond, 20 * time.Millisecond, DefaultAudioPackets},
	{"h264", DefaultH264, clipH264, ".h264", webrtc.MimeTypeH264, webrtc.RTPCodecTypeVideo,
		DefaultH264Frames, 2 * time.Second, time.Second / 30, 2},
}

func TestDefaultClips(t *testing.T) {
	if n := len(clipVideo) + len(clipAudio) + len(clipH264); n > 2<<20 {
		t.Errorf("embedded clips take %d bytes, over the 2 MiB budget", n)
	}
	for _, c := range clips {
		t.Run(c.name, func(t *testing.T) {
			src := c.open(Options{})
			defer src.Close()
			if got := src.Codec().MimeType; got != c.mime {
				t.Errorf("Codec().MimeType = %q, want %q", got, c.mime)
			}
			if src.Kind() != c.kind {
				t.Errorf("Kind() = %v, want %v", src.Kind(), c.kind)
			}
			ss := readAll(t, src)
			if len(ss) != c.frames {
				t.Errorf("%d samples, want %d", len(ss), c.frames)
			}
			if got := totalDuration(ss); got != c.total {
				t.Errorf("total duration %v, want %v", got, c.total)
			}
			keys := 0
			for i, s := range ss {
				if d := s.Duration - c.frameDur; d < -time.Nanosecond || d > time.Nanosecond {
					t.Fatalf("sample %d lasts %v, want %v", i, s.Duration, c.frameDur)
				}
				if len(s.Data) == 0 {
					t.Fatalf("sample %d is empty", i)
				}
				if IsKeyframe(c.mime, s.Data) {
					keys++
				}
			}
			if keys != c.keyframes {
				t.Errorf("%d key frames, want %d", keys, c.keyframes)
			}
			if !IsKeyframe(c.mime, ss[0].Data) {
				t.Error("first sample is not a key frame")
			}
			if _, err := src.Next(context.Background()); !errors.Is(err, io.EOF) {
				t.Errorf("Next after the end = %v, want io.EOF", err)
			}
		})
	}
}

func TestH264AccessUnits(t *testing.T) {
	ss := readAll(t, DefaultH264(Options{}))
	for i, s := range ss {
		var types []byte
		forEachNAL(s.Data, func(nal []byte) { types = append(types, nal[0]&0x1f) })
		if !bytes.HasPrefix(s.Data, annexBStartCode) {
			t.Fatalf("frame %d does not start with a 4-byte start code", i)
		}
		vcl := 0
		for _, typ := range types {
			switch typ {
			case nalSliceIDR, nalSliceNonIDR:
				vcl++
			case nalSEI, nalAUD, nalFiller:
				t.Fatalf("frame %d holds NAL type %d, which should be dropped", i, typ)
			}
		}
		if vcl != 1 { // one slice a picture in this clip
			t.Fatalf("frame %d has %d slices (NAL types %v), want 1", i, vcl, types)
		}
		if i == 0 && (types[0] != nalSPS || types[1] != nalPPS || types[2] != nalSliceIDR) {
			t.Fatalf("first frame NAL types %v, want SPS, PPS, IDR", types)
		}
	}
}

func TestLoop(t *testing.T) {
	for _, c := range clips {
		t.Run(c.name, func(t *testing.T) {
			once := readAll(t, c.open(Options{}))
			src := c.open(Options{Loop: true})
			n := len(once)*2 + len(once)/2
			var total time.Duration
			for i := range n {
				s, err := src.Next(context.Background())
				if err != nil {
					t.Fatalf("Next %d: %v", i, err)
				}
				if !bytes.Equal(s.Data, once[i%len(once)].Data) {
					t.Fatalf("sample %d differs from sample %d of the first pass", i, i%len(once))
				}
				if s.Duration <= 0 {
					t.Fatalf("sample %d lasts %v", i, s.Duration)
				}
				total += s.Duration
			}
			// Two and a half passes last two and a half clips, to a
			// microsecond (H.264 rounds each pass to the nanosecond).
			want := 2*c.total + totalDuration(once[:len(once)/2])
			if d := total - want; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("2.5 passes last %v, want %v", total, want)
			}
		})
	}
}

func TestOpenFiles(t *testing.T) {
	dir := t.TempDir()
	for _, c := range clips {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "clip"+strings.ToUpper(c.ext)) // extensions match in any case
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			src, err := Open(path, Options{Loop: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.frames + 3 {
				if _, err := src.Next(context.Background()); err != nil {
					t.Fatalf("Next %d: %v", i, err)
				}
			}
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if err := src.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := src.Next(context.Background()); !errors.Is(err, ErrClosed) {
				t.Errorf("Next after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestNextContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DefaultVideo(Options{}).Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestReaderNotAtStart checks that a loop goes back to where the reader
// was, not to offset zero.
func TestReaderNotAtStart(t *testing.T) {
	r := bytes.NewReader(append([]byte("junk before the clip"), clipVideo...))
	if _, err := r.Seek(int64(len("junk before the clip")), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	src, err := NewIVF(r, Options{Loop: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range DefaultVideoFrames + 2 {
		if _, err := src.Next(context.Background()); err != nil {
			t.Fatalf("Next %d: %v", i, err)
		}
	}
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	ivfHeader := clipVideo[:32]
	badFourCC := bytes.Clone(clipVideo)
	copy(badFourCC[8:12], "H264")
	hugeFrame := bytes.Clone(clipVideo)
	binary.LittleEndian.PutUint32(hugeFrame[32:], 0xfffffff0) // frame 0 claims 4 GiB
	badTimebase := bytes.Clone(clipVideo)
	binary.LittleEndian.PutUint32(badTimebase[16:20], 0)

	cases := []struct {
		name    string
		file    string
		data    []byte // nil: do not create the file
		opts    Options
		want    error
		mention []string // the message names these
	}{
		{"unknown extension", "clip.mp4", clipVideo, Options{}, ErrUnknownFormat, []string{"clip.mp4", ".mp4", ".ivf"}},
		{"no extension", "clip", clipVideo, Options{}, ErrUnknownFormat, []string{"clip", "(none)"}},
		{"missing file", "absent.ivf", nil, Options{}, os.ErrNotExist, []string{"absent.ivf"}},
		{"empty ivf", "empty.ivf", []byte{}, Options{}, ErrEmpty, []string{"empty.ivf", "empty"}},
		{"empty ogg", "empty.ogg", []byte{}, Options{}, ErrEmpty, []string{"empty.ogg", "empty"}},
		{"empty h264", "empty.h264", []byte{}, Options{}, ErrEmpty, []string{"empty.h264", "empty"}},
		{"ivf magic", "wrong.ivf", bytes.Repeat([]byte("NOTANIVF"), 8), Options{}, ErrBadFormat,
			[]string{"wrong.ivf", "not an IVF file", "signature"}},
		{"short ivf header", "short.ivf", clipVideo[:20], Options{}, ErrBadFormat, []string{"short.ivf", "header"}},
		{"ivf header only", "hdr.ivf", ivfHeader, Options{}, ErrEmpty, []string{"hdr.ivf", "no frames"}},
		{"ivf fourcc", "h264.ivf", badFourCC, Options{}, ErrUnsupportedCodec, []string{"h264.ivf", `"H264"`}},
		{"ivf frame size", "huge.ivf", hugeFrame, Options{}, ErrBadFormat,
			[]string{"huge.ivf", "frame 0", "4294967280 bytes", "64 MiB"}},
		{"ivf time base", "tb.ivf", badTimebase, Options{}, ErrBadFormat, []string{"tb.ivf", "timebase"}},
		{"ogg magic", "video.ogg", clipVideo, Options{}, ErrBadFormat, []string{"video.ogg", "not an Ogg file", `"DKIF"`}},
		{"ogg not opus", "vorbis.ogg", oggPage(1, 0, 0, []byte("\x01vorbis and so on")), Options{}, ErrBadFormat,
			[]string{"vorbis.ogg", "not an Ogg Opus file"}},
		{"ogg headers only", "hdr.ogg", oggHeadersOnly(t), Options{}, ErrEmpty, []string{"hdr.ogg", "no audio packets"}},
		{"h264 magic", "text.h264", []byte("this is plain text, not H.264"), Options{}, ErrBadFormat,
			[]string{"text.h264", "not an H.264 Annex-B stream"}},
		{"h264 frame rate", "rate.h264", clipH264, Options{FrameRate: -1}, nil, []string{"rate.h264", "FrameRate"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			if c.data != nil {
				if err := os.WriteFile(path, c.data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			src, err := Open(path, c.opts)
			if err == nil {
				src.Close()
				t.Fatal("Open succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("error %q is not %v", err, c.want)
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// oggHeadersOnly is the OpusHead and OpusTags pages of the audio clip.
func oggHeadersOnly(t *testing.T) []byte {
	t.Helper()
	// Page 1 (OpusHead) then page 2 (OpusTags); each page is 27 bytes, a
	// lacing table and the payload.
	off := 0
	for range 2 {
		n := int(clipAudio[off+26])
		size := 27 + n
		for _, l := range clipAudio[off+27 : off+27+n] {
			size += int(l)
		}
		off += size
	}

	return clipAudio[:off]
}

func TestTruncatedFiles(t *testing.T) {
	cases := []struct {
		name string
		open func(io.Reader) (Source, error)
		data []byte
		want []string
	}{
		{"ivf", func(r io.Reader) (Source, error) { return NewIVF(r, Options{}) }, clipVideo, []string{"IVF stream", "frame"}},
		{"ogg", func(r io.Reader) (Source, error) { return NewOgg(r, Options{}) }, clipAudio, []string{"Ogg stream", "page"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, err := c.open(bytes.NewReader(c.data[:len(c.data)/2]))
			if err != nil {
				t.Fatal(err)
			}
			for {
				_, err := src.Next(context.Background())
				if errors.Is(err, io.EOF) {
					t.Fatal("truncated file read to its end without an error")
				}
				if err != nil {
					if !errors.Is(err, ErrBadFormat) {
						t.Errorf("error %q is not ErrBadFormat", err)
					}
					for _, m := range c.want {
						if !strings.Contains(err.Error(), m) {
							t.Errorf("error %q does not mention %q", err, m)
						}
					}

					return
				}
			}
		})
	}
}

func TestLoopNeedsSeeker(t *testing.T) {
	for name, open := range map[string]func(io.Reader, Options) (Source, error){
		"ivf": NewIVF, "ogg": NewOgg, "h264": NewH264,
	} {
		_, err := open(io.MultiReader(bytes.NewReader(clipVideo)), Options{Loop: true})
		if !errors.Is(err, ErrNotSeekable) {
			t.Errorf("%s: Loop on a MultiReader = %v, want ErrNotSeekable", name, err)
		}
		if _, err := open(nil, Options{}); err == nil || !strings.Contains(err.Error(), "nil") {
			t.Errorf("%s: nil reader = %v, want an error about nil", name, err)
		}
	}
}

// TestOggPacketsAcrossPages reads pages with several packets each and a
// packet that goes on into the next page, as other muxers than ffmpeg's
// with -page_duration write them.
func TestOggPacketsAcrossPages(t *testing.T) {
	want := readAll(t, DefaultAudio(Options{}))
	// A 600-byte packet needs lacing values 255, 255, 90: make one so it
	// splits across pages.
	big := append([]byte{want[0].Data[0]}, bytes.Repeat([]byte{0x55}, 599)...)
	packets := [][]byte{want[0].Data, want[1].Data, big, want[2].Data, want[3].Data, want[4].Data}

	var file []byte
	head := oggHeadersOnly(t)
	file = append(file, head...)
	clipSerial := binary.LittleEndian.Uint32(clipAudio[14:18])
	otherSerial := clipSerial + 1 // pages of another logical stream must be skipped
	// Page 2: packets 0, 1 and the first two segments of big.
	file = append(file, oggPage(clipSerial, 2, 0, packets[0], packets[1], big[:510])...)
	// A page of another logical stream in between.
	file = append(file, oggPage(otherSerial, 0, 0, []byte("other stream"))...)
	// Page 3: the rest of big (continued), then the last three packets.
	cont := oggPage(clipSerial, 3, 0, big[510:], packets[3], packets[4], packets[5])
	cont[5] |= 0x01 // continued packet
	fixCRC(cont)
	file = append(file, cont...)

	src, err := NewOgg(bytes.NewReader(file), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, src)
	if len(got) != len(packets) {
		t.Fatalf("%d packets, want %d", len(got), len(packets))
	}
	for i := range packets {
		if !bytes.Equal(got[i].Data, packets[i]) {
			t.Errorf("packet %d: %d bytes, want %d", i, len(got[i].Data), len(packets[i]))
		}
		if got[i].Duration != 20*time.Millisecond {
			t.Errorf("packet %d lasts %v", i, got[i].Duration)
		}
	}
}

// oggPage builds one Ogg page whose payload is the packets laced in turn;
// a packet of a multiple of 255 bytes is left open (it goes on in the next
// page), as the caller wants for a split packet.
func oggPage(serial, seq uint32, granule uint64, packets ...[]byte) []byte {
	var lacing, payload []byte
	for i, p := range packets {
		n := len(p)
		for n >= 255 {
			lacing = append(lacing, 255)
			n -= 255
		}
		if n > 0 || i < len(packets)-1 || len(p)%255 != 0 {
			lacing = append(lacing, byte(n))
		}
		payload = append(payload, p...)
	}
	page := make([]byte, 27, 27+len(lacing)+len(payload))
	copy(page, "OggS")
	binary.LittleEndian.PutUint64(page[6:], granule)
	binary.LittleEndian.PutUint32(page[14:], serial)
	binary.LittleEndian.PutUint32(page[18:], seq)
	page[26] = byte(len(lacing))
	page = append(page, lacing...)
	page = append(page, payload...)
	fixCRC(page)

	return page
}

// fixCRC sets the checksum of an Ogg page (RFC 3533, 6).
func fixCRC(page []byte) {
	binary.LittleEndian.PutUint32(page[22:], 0)
	var crc uint32
	for _, b := range page {
		crc = (crc << 8) ^ oggCRCTable[byte(crc>>24)^b]
	}
	binary.LittleEndian.PutUint32(page[22:], crc)
}

var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = (r << 1) ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}

	return t
}()

func TestOpusDuration(t *testing.T) {
	cases := []struct {
		p    []byte
		want time.Duration // 0: an error
	}{
		{[]byte{0 << 3}, 10 * time.Millisecond},                // SILK 10 ms, one frame
		{[]byte{3 << 3}, 60 * time.Millisecond},                // SILK 60 ms
		{[]byte{11<<3 | 1}, 120 * time.Millisecond},            // SILK 60 ms, two frames
		{[]byte{12 << 3}, 10 * time.Millisecond},               // hybrid 10 ms
		{[]byte{15<<3 | 2}, 40 * time.Millisecond},             // hybrid 20 ms, two frames of different sizes
		{[]byte{16 << 3}, 2500 * time.Microsecond},             // CELT 2.5 ms
		{[]byte{0x04 | 31<<3}, 20 * time.Millisecond},          // CELT 20 ms, stereo bit set
		{[]byte{31<<3 | 3, 3}, 60 * time.Millisecond},          // code 3, three frames
		{[]byte{16<<3 | 3, 0xc0 | 48}, 120 * time.Millisecond}, // code 3, VBR and padding flags, 48 frames of 2.5 ms
		{[]byte{31<<3 | 3, 7}, 0},                              // 140 ms: too long
		{[]byte{31<<3 | 3, 0x80}, 0},                           // zero frames
		{[]byte{31<<3 | 3}, 0},                                 // no frame count byte
		{nil, 0},                                               // empty
	}
	for _, c := range cases {
		got, err := opusDuration(c.p)
		if c.want == 0 {
			if err == nil {
				t.Errorf("opusDuration(% x) = %v, want an error", c.p, got)
			}

			continue
		}
		if err != nil || got != c.want {
			t.Errorf("opusDuration(% x) = %v, %v; want %v", c.p, got, err, c.want)
		}
	}
}

func TestIsKeyframe(t *testing.T) {
	cases := []struct {
		mime string
		data []byte
		want bool
	}{
		{webrtc.MimeTypeVP8, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, true},
		{webrtc.MimeTypeVP8, []byte{0x11, 0x02, 0x00}, false},
		{webrtc.MimeTypeVP8, nil, false},
		{webrtc.MimeTypeVP9, []byte{0x82}, true},  // marker 2, profile 0, shown, key
		{webrtc.MimeTypeVP9, []byte{0x86}, false}, // frame_type 1
		{webrtc.MimeTypeVP9, []byte{0x88}, false}, // show_existing_frame
		{webrtc.MimeTypeVP9, []byte{0xb1}, true},  // profile 3: reserved bit, then key
		{webrtc.MimeTypeVP9, []byte{0xb2}, false}, // profile 3, frame_type 1
		{webrtc.MimeTypeVP9, []byte{0x42}, false}, // bad frame marker
		{webrtc.MimeTypeH264, []byte{0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2}, true},
		{webrtc.MimeTypeH264, []byte{0, 0, 1, 0x65, 0x88}, true},
		{webrtc.MimeTypeH264, []byte{0, 0, 0, 1, 0x41, 0x9a}, false},
		{"video/h264", []byte{0, 0, 0, 1, 0x65}, true},
		{webrtc.MimeTypeOpus, []byte{0xfc}, true},
		{webrtc.MimeTypeAV1, []byte{0x12}, true},
	}
	for _, c := range cases {
		if got := IsKeyframe(c.mime, c.data); got != c.want {
			t.Errorf("IsKeyframe(%s, % x) = %v, want %v", c.mime, c.data, got, c.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	for mime, want := range map[string]webrtc.RTPCodecType{
		"video/VP8": webrtc.RTPCodecTypeVideo, "Audio/opus": webrtc.RTPCodecTypeAudio, "text/plain": 0,
	} {
		if got := KindOf(webrtc.RTPCodecCapability{MimeType: mime}); got != want {
			t.Errorf("KindOf(%s) = %v, want %v", mime, got, want)
		}
	}
}
