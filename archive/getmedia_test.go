package archive_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/archive"
)

// The EBML ids a GetMedia reader looks at (Matroska).
const (
	idEBML        = 0x1A45DFA3
	idSegment     = 0x18538067
	idInfo        = 0x1549A966
	idTracks      = 0x1654AE6B
	idTags        = 0x1254C367
	idTag         = 0x7373
	idSimpleTag   = 0x67C8
	idTagName     = 0x45A3
	idTagString   = 0x4487
	idCluster     = 0x1F43B675
	idTimecode    = 0xE7
	idSimpleBlock = 0xA3
)

// mkvEvent is what a GetMedia stream says, in order: a new chunk (its
// EBML header), a tag, a cluster's timecode, a frame.
type mkvEvent struct {
	kind      string // "chunk", "tag", "cluster", "block"
	name, val string // tag
	timecode  uint64 // cluster
	track     uint64 // block
	key       bool   // block
	relative  int16  // block
}

// mkvReader reads a GetMedia stream element by element as it arrives:
// the master elements it opens (Segment, Cluster, Tags, Tag, SimpleTag)
// may be of unknown size, so it reads their children as a flat sequence.
type mkvReader struct {
	r       *countingReader
	tagName string
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func newMKVReader(r io.Reader) *mkvReader {
	return &mkvReader{r: &countingReader{r: bufio.NewReader(r)}}
}

func vint(r io.ByteReader, keepMarker bool) (v uint64, unknown bool, err error) {
	b, err := r.ReadByte()
	if err != nil {
		return 0, false, err
	}
	n := 1
	for mask := byte(0x80); n <= 8 && b&mask == 0; mask >>= 1 {
		n++
	}
	if n > 8 {
		return 0, false, fmt.Errorf("bad EBML vint %#x", b)
	}
	v = uint64(b)
	if !keepMarker {
		v &= uint64(0xFF >> n)
	}
	allOnes := v == uint64(0xFF>>n)
	for i := 1; i < n; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, false, err
		}
		v = v<<8 | uint64(c)
		allOnes = allOnes && c == 0xFF
	}
	return v, !keepMarker && allOnes, nil
}

// next returns the next event, io.EOF at the end of the stream.
func (m *mkvReader) next() (mkvEvent, error) {
	for {
		id, _, err := vint(m.r, true)
		if err != nil {
			return mkvEvent{}, err
		}
		size, unknown, err := vint(m.r, false)
		if err != nil {
			return mkvEvent{}, err
		}
		switch id {
		case idSegment, idCluster, idTags, idTag, idSimpleTag:
			continue // read its children
		}
		if unknown {
			return mkvEvent{}, fmt.Errorf("element %#x of unknown size", id)
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(m.r, data); err != nil {
			return mkvEvent{}, err
		}
		switch id {
		case idEBML:
			return mkvEvent{kind: "chunk"}, nil
		case idTagName:
			m.tagName = string(data)
		case idTagString:
			return mkvEvent{kind: "tag", name: m.tagName, val: string(data)}, nil
		case idTimecode:
			var tc uint64
			for _, c := range data {
				tc = tc<<8 | uint64(c)
			}
			return mkvEvent{kind: "cluster", timecode: tc}, nil
		case idSimpleBlock:
			if len(data) < 4 || data[0]&0x80 == 0 {
				return mkvEvent{}, fmt.Errorf("SimpleBlock % x...: want a one-byte track number", data[:min(len(data), 4)])
			}
			return mkvEvent{kind: "block", track: uint64(data[0] & 0x7F), relative: int16(binary.BigEndian.Uint16(data[1:3])),
				key: data[3]&0x80 != 0}, nil
		}
	}
}

// chunk is one fragment as GetMedia sent it.
type chunk struct {
	tags   map[string]string
	order  []string // tag names, in order
	blocks []mkvEvent
	// tagsAfterBlocks are the tags that came after its first frame.
	tagsAfterBlocks []string
}

// readChunks reads n chunks of a GetMedia stream, up to the end of the
// last one.
func readChunks(t *testing.T, m *mkvReader, n int) []chunk {
	t.Helper()
	var out []chunk
	for {
		ev, err := m.next()
		if err != nil {
			t.Fatalf("reading GetMedia after %d chunks: %v", len(out), err)
		}
		if ev.kind == "chunk" {
			out = append(out, chunk{tags: map[string]string{}})
			continue
		}
		if len(out) == 0 {
			t.Fatalf("GetMedia sent a %s before the first EBML header", ev.kind)
		}
		c := &out[len(out)-1]
		switch ev.kind {
		case "tag":
			c.tags[ev.name] = ev.val
			c.order = append(c.order, ev.name)
			if len(c.blocks) > 0 {
				c.tagsAfterBlocks = append(c.tagsAfterBlocks, ev.name)
			}
			if len(out) == n && ev.name == "AWS_KINESISVIDEO_CONTINUATION_TOKEN" {
				return out // the last tag of the chunk
			}
		case "block":
			c.blocks = append(c.blocks, ev)
		}
	}
}

func getMedia(t testing.TB, r *recording, start archive.Start) *mkvReader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	body, err := r.ac.GetMedia(ctx, r.stream, start)
	if err != nil {
		t.Fatalf("GetMedia %+v: %v", start, err)
	}
	t.Cleanup(func() { body.Close() })
	return newMKVReader(body)
}

// checkChunk checks what every GetMedia chunk carries, in KVS's order: the
// fragment's number and timestamps before its frames, how far behind it
// is and the continuation token (its number) after them; and a cluster
// that starts with a video key frame.
func checkChunk(t *testing.T, c chunk, number string) {
	t.Helper()
	if got := c.tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"]; got != number {
		t.Errorf("chunk of fragment %s: AWS_KINESISVIDEO_FRAGMENT_NUMBER %q", number, got)
	}
	for _, k := range []string{"AWS_KINESISVIDEO_SERVER_TIMESTAMP", "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP", "AWS_KINESISVIDEO_MILLIS_BEHIND_NOW"} {
		if c.tags[k] == "" {
			t.Errorf("chunk of fragment %s has no %s: %v", number, k, c.tags)
		}
	}
	if got := c.tags["AWS_KINESISVIDEO_CONTINUATION_TOKEN"]; got != number {
		t.Errorf("chunk of fragment %s: continuation token %q, want its number", number, got)
	}
	if !slices.Equal(c.tagsAfterBlocks, []string{"AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", "AWS_KINESISVIDEO_CONTINUATION_TOKEN"}) {
		t.Errorf("chunk of fragment %s: tags after its frames %v, want millis behind now and the continuation token, as KVS (tag order %v)", number, c.tagsAfterBlocks, c.order)
	}
	if v := slices.IndexFunc(c.blocks, func(e mkvEvent) bool { return e.track == 1 }); len(c.blocks) < 20 || v < 0 || !c.blocks[v].key {
		t.Errorf("chunk of fragment %s: %d frames, want a second of video starting with a key frame", number, len(c.blocks))
	}
	var video, audio int
	for _, b := range c.blocks {
		switch b.track {
		case 1:
			video++
		case 2:
			audio++
		}
	}
	if video == 0 || audio == 0 {
		t.Errorf("chunk of fragment %s: %d video and %d audio frames, want both", number, video, audio)
	}
}

// TestGetMedia: GetMedia from each start selector sends the stored
// fragments in order, one MKV chunk each, with KVS's tags, and goes on
// live; a fragment being recorded is sent frame by frame, before it is
// stored; bad selectors are refused.
func TestGetMedia(t *testing.T) {
	r := record(t, "getmedia", 4)
	list := r.waitFragments(t, 4)[:4]

	t.Run("Earliest", func(t *testing.T) {
		chunks := readChunks(t, getMedia(t, r, archive.Start{Type: archive.StartEarliest}), 5)
		for i, f := range list {
			checkChunk(t, chunks[i], f.Number)
		}
		if next := chunks[4].tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"]; next <= list[3].Number {
			t.Errorf("after the stored fragments GetMedia sent %q, want a newer one", next)
		}
	})
	t.Run("FragmentNumber", func(t *testing.T) {
		chunks := readChunks(t, getMedia(t, r, archive.Start{Type: archive.StartFragmentNumber, FragmentNumber: list[1].Number}), 2)
		checkChunk(t, chunks[0], list[1].Number)
		checkChunk(t, chunks[1], list[2].Number)
	})
	t.Run("ContinuationToken", func(t *testing.T) {
		chunks := readChunks(t, getMedia(t, r, archive.Start{Type: archive.StartContinuationToken, ContinuationToken: list[1].Number}), 1)
		checkChunk(t, chunks[0], list[2].Number)
	})
	t.Run("ServerTimestamp", func(t *testing.T) {
		at := list[2].Server.Add(time.Millisecond)
		chunks := readChunks(t, getMedia(t, r, archive.Start{Type: archive.StartServerTimestamp, Timestamp: at}), 1)
		checkChunk(t, chunks[0], list[2].Number)
	})
	t.Run("NowIsLive", func(t *testing.T) {
		m := getMedia(t, r, archive.Start{Type: archive.StartNow})
		stored, err := r.ac.ListFragments(ctxT(t), r.stream, nil)
		if err != nil {
			t.Fatal(err)
		}
		newest := stored[len(stored)-1].Number
		first := readChunks(t, m, 1)[0]
		number := first.tags["AWS_KINESISVIDEO_FRAGMENT_NUMBER"]
		if number <= newest {
			t.Fatalf("GetMedia NOW started with fragment %s, want one after the newest stored (%s)", number, newest)
		}
		checkChunk(t, first, number)
		// The next fragment is sent as it is recorded: when its first
		// frame has come, ListFragments does not list it yet (it is
		// stored when it ends, about a second later).
		var number2 string
		for {
			ev, err := m.next()
			if err != nil {
				t.Fatal(err)
			}
			if ev.kind == "tag" && ev.name == "AWS_KINESISVIDEO_FRAGMENT_NUMBER" {
				number2 = ev.val
			}
			if ev.kind == "block" {
				break
			}
		}
		listed, err := r.ac.ListFragments(ctxT(t), r.stream, nil)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(listed, func(f archive.Fragment) bool { return f.Number == number2 }) {
			t.Errorf("the first frame of fragment %s came after the fragment was stored: GetMedia waited for the whole fragment", number2)
		}
	})
	t.Run("FFprobeReadsIt", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		body, err := r.ac.GetMedia(ctx, r.stream, archive.Start{Type: archive.StartEarliest})
		if err != nil {
			t.Fatal(err)
		}
		defer body.Close()
		path := filepath.Join(t.TempDir(), "getmedia.mkv")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		// Five chunks: the stored fragments and one sent live; then the
		// file is cut where the fifth ends.
		m := newMKVReader(io.TeeReader(body, f))
		readChunks(t, m, 5)
		if err := f.Truncate(m.r.n); err != nil {
			t.Fatal(err)
		}
		f.Close()
		out, err := exec.Command(tool(t, "ffprobe"), "-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
		if err != nil {
			t.Fatalf("ffprobe: %v: %s", err, out)
		}
		t.Logf("ffprobe of 5 GetMedia chunks: %q", out)
		if got := string(out); !strings.Contains(got, "h264,") || !strings.Contains(got, "opus,") || strings.Contains(got, "rror") {
			t.Errorf("ffprobe of the GetMedia stream: %q, want h264 and opus frames", got)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		ctx := ctxT(t)
		_, err := r.ac.GetMedia(ctx, r.stream, archive.Start{Type: archive.StartFragmentNumber, FragmentNumber: "91343852333100000000000000000999"})
		if !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("GetMedia from a fragment that does not exist: %v, want ErrNotFound", err)
		}
		_, err = r.ac.GetMedia(ctx, "no-such-stream", archive.Start{Type: archive.StartNow})
		if !errors.Is(err, archive.ErrNotFound) {
			t.Errorf("GetMedia of a stream that does not exist: %v, want ErrNotFound", err)
		}
		_, err = r.ac.GetMedia(ctx, r.stream, archive.Start{Type: archive.StartFragmentNumber})
		if !errors.Is(err, archive.ErrInvalidArgument) || !strings.Contains(err.Error(), "AfterFragmentNumber") {
			t.Errorf("GetMedia FRAGMENT_NUMBER without a number: %v, want ErrInvalidArgument naming AfterFragmentNumber", err)
		}
		_, err = r.ac.GetMedia(ctx, r.stream, archive.Start{Type: "LATEST"})
		if !errors.Is(err, archive.ErrInvalidArgument) {
			t.Errorf("GetMedia with start type LATEST: %v, want ErrInvalidArgument", err)
		}
	})
}

// BenchmarkGetMediaLiveLatency measures how far behind the master a live
// GetMedia reader is: for each video frame of the fragments sent live, the
// time it was read less its producer timestamp (the cluster's timecode
// plus the block's; the media server anchors it to its clock when the
// first packet arrives, on this same machine). The embedded clip has a key
// frame, hence a fragment, every second. Reported: the median and the 99th
// percentile, in ms (run with -benchtime=Nx: N fragments).
func BenchmarkGetMediaLiveLatency(b *testing.B) {
	r := record(b, "latency", 1)
	m := getMedia(b, r, archive.Start{Type: archive.StartNow})
	var lat []float64
	var cluster uint64
	fragments := 0
	b.ResetTimer()
	for fragments <= b.N {
		ev, err := m.next()
		if err != nil {
			b.Fatal(err)
		}
		switch ev.kind {
		case "chunk":
			fragments++
		case "cluster":
			cluster = ev.timecode
		case "block":
			if ev.track == 1 && fragments > 0 {
				at := int64(cluster) + int64(ev.relative)
				lat = append(lat, float64(time.Now().UnixMilli()-at))
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[len(lat)*99/100], "p99-ms")
	b.ReportMetric(float64(len(lat)), "frames")
}
