package localkvs

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// The recorder turns the media server's RTP into fragments, without
// decoding anything: H.264 packets are put together into access units
// (AVC, length-prefixed NAL units, as Matroska stores them) and Opus
// packets are taken as they come. A fragment is one Matroska cluster: it
// starts at a video key frame and runs to the next one (an audio-only
// recording is cut every audioFragment). Timestamps are the RTP
// timestamps, anchored to the wall clock at the first packet of each
// track: that is the producer timestamp; the server timestamp is the
// arrival of the fragment's first frame. Audio stays Opus (KVS converts it
// to AAC; docs/protocol.md, "Differences from KVS").

const (
	// maxFragment cuts a fragment whose next key frame does not come (a
	// block's timecode is 16 bits of ms relative to its cluster's).
	maxFragment = 30 * time.Second
	// audioFragment is the length of the fragments of an audio-only recording.
	audioFragment = 2 * time.Second
	// maxEarlyAudio bounds the audio kept before the first key frame.
	maxEarlyAudio = 250
	// writeQueue is how many finished fragments may wait to be written.
	writeQueue = 16
	// keyFrameEvery is how long a fragment runs before the media server
	// asks the master for a key frame (an RTCP PLI). A browser's encoder
	// sends one only when asked, so without it a page's recording would be
	// one fragment per maxFragment. A master that sends key frames on its
	// own schedule (a file, a camera) cuts fragments first and is not asked.
	keyFrameEvery = 4 * time.Second
	// askKeyEvery bounds how often the media server asks for a key frame
	// that has not come.
	askKeyEvery = time.Second
)

// recorder records one storage session.
type recorder struct {
	ms     *mediaServer
	stream *streamRec
	joined time.Time

	mu         sync.Mutex
	tracks     mkvTracksInfo
	hasVideo   bool
	cur        *fragBuilder
	early      []mkvFrame // audio before the first key frame
	lastVideo  int64      // ts of the last video frame, for the final fragment's length
	videoDelta int64      // ms between the last two video frames
	st         StorageStats
	stopping   bool      // finish was called: no new track, no new frame
	askKey     func()    // sends the master a PLI for its video (set with the video track)
	askedAt    time.Time // when askKey was last called

	out  chan *fragBuilder
	done chan struct{}
	wg   sync.WaitGroup // the track readers
}

// fragBuilder is a fragment being recorded.
type fragBuilder struct {
	start  int64 // producer timestamp of its first frame, epoch ms
	server int64 // arrival of its first frame, epoch ms
	end    int64 // set when it is closed
	tracks mkvTracksInfo
	frames []mkvFrame
	live   *liveFragment // what GetMedia sends of it while it is recorded; nil if it could not be numbered
}

// add records one frame of the fragment.
func (f *fragBuilder) add(fr mkvFrame) {
	f.frames = append(f.frames, fr)
	if f.live != nil {
		f.live.add(fr)
	}
}

// head returns the fragment's Info and Tracks, as encoded when it started
// (for GetMedia) or now.
func (f *fragBuilder) head() ([]byte, error) {
	if f.live != nil {
		return f.live.head, nil
	}
	return f.tracks.encode()
}

// newFragmentLocked starts a fragment at ts (producer, epoch ms) and
// numbers it, so that GetMedia sends its frames as they come.
func (r *recorder) newFragmentLocked(ts int64, now time.Time) *fragBuilder {
	f := &fragBuilder{start: ts, server: now.UnixMilli(), tracks: r.tracks}
	number, err := r.ms.store.reserve(r.stream.ARN)
	if err != nil {
		return f // the stream is gone: storing it fails too
	}
	head, err := f.tracks.encode()
	if err != nil {
		return f
	}
	f.live = newLiveFragment(number, f.start, f.server, head, r.hasVideo)
	r.ms.store.startLive(r.stream.ARN, f.live)
	return f
}

func newRecorder(ms *mediaServer, stream *streamRec, joined time.Time) *recorder {
	r := &recorder{ms: ms, stream: stream, joined: joined, out: make(chan *fragBuilder, writeQueue), done: make(chan struct{})}
	go r.writeLoop()
	return r
}

// clockMapper maps a track's RTP timestamps to epoch ms: the first packet
// is anchored at its arrival, the others follow by their RTP timestamps
// (unwrapped to 64 bits).
type clockMapper struct {
	rate    int64
	started bool
	anchor  int64 // epoch ms of the first packet
	first   int64 // its unwrapped timestamp
	last    uint32
	ext     int64
}

func (c *clockMapper) ms(ts uint32, now time.Time) int64 {
	if !c.started {
		c.started, c.last, c.ext, c.first = true, ts, int64(ts), int64(ts)
		c.anchor = now.UnixMilli()
	} else {
		c.ext += int64(int32(ts - c.last))
		c.last = ts
	}
	return c.anchor + (c.ext-c.first)*1000/c.rate
}

// expect sets the tracks the master's answer sends, so that every
// fragment's Tracks names them all from the first one on.
func (r *recorder) expect(video, audio bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hasVideo = r.hasVideo || video
	if audio && !r.tracks.Audio {
		r.tracks.Audio, r.tracks.Channels = true, 2
	}
}

// consume reads a track until it ends, handing each packet to tap too
// (the storage session's viewers) before it is recorded.
func (r *recorder) consume(track *webrtc.TrackRemote, tap func(*rtp.Packet)) {
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	mime := strings.ToLower(track.Codec().MimeType)
	switch {
	case mime == strings.ToLower(webrtc.MimeTypeH264):
		r.mu.Lock()
		r.hasVideo = true
		r.mu.Unlock()
		r.consumeH264(track, tap)
	case mime == strings.ToLower(webrtc.MimeTypeOpus):
		r.mu.Lock()
		r.tracks.Audio, r.tracks.Channels = true, int(max(track.Codec().Channels, 1))
		r.mu.Unlock()
		r.consumeOpus(track, tap)
	default:
		r.ms.s.log.Info("localkvs: media server: a track it does not record", "codec", track.Codec().MimeType)
		for {
			if _, _, err := track.ReadRTP(); err != nil {
				return
			}
		}
	}
}

func (r *recorder) consumeH264(track *webrtc.TrackRemote, tap func(*rtp.Packet)) {
	sb := samplebuilder.New(1024, &codecs.H264Packet{IsAVC: true}, 90000, samplebuilder.WithMaxTimeDelay(time.Second))
	clk := clockMapper{rate: 90000}
	for {
		p, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		tap(p)
		now := r.ms.s.clock.Now()
		sb.Push(p)
		for s := sb.Pop(); s != nil; s = sb.Pop() {
			r.addVideo(clk.ms(s.PacketTimestamp, now), s.Data, now)
		}
	}
}

func (r *recorder) consumeOpus(track *webrtc.TrackRemote, tap func(*rtp.Packet)) {
	clk := clockMapper{rate: 48000}
	var last uint16
	have := false
	for {
		p, _, err := track.ReadRTP()
		if err != nil {
			return
		}
		tap(p)
		if have && int16(p.SequenceNumber-last) <= 0 {
			continue // a duplicate or a late packet
		}
		have, last = true, p.SequenceNumber
		if len(p.Payload) == 0 {
			continue
		}
		now := r.ms.s.clock.Now()
		r.addAudio(clk.ms(p.Timestamp, now), slices.Clone(p.Payload), now)
	}
}

// nalus splits AVC data (4-byte lengths) into NAL units; nil when it does
// not parse.
func nalus(avc []byte) [][]byte {
	var out [][]byte
	for len(avc) >= 4 {
		n := int(binary.BigEndian.Uint32(avc))
		if n == 0 || n > len(avc)-4 {
			return nil
		}
		out = append(out, avc[4:4+n])
		avc = avc[4+n:]
	}
	return out
}

// receivedLocked counts a frame received (video or audio) and reports
// whether it is to be recorded: not once finish was called. r.mu is held.
func (r *recorder) receivedLocked(data []byte) bool {
	r.st.FramesReceived++
	r.st.BytesReceived += uint64(len(data))
	return !r.stopping
}

// addVideo records one access unit (AVC data) with its timestamp.
func (r *recorder) addVideo(ts int64, data []byte, now time.Time) {
	units := nalus(data)
	key := false
	var sps, pps []byte
	for _, u := range units {
		switch h264.NALUType(u[0] & 0x1F) {
		case h264.NALUTypeIDR:
			key = true
		case h264.NALUTypeSPS:
			sps = u
		case h264.NALUTypePPS:
			pps = u
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.receivedLocked(data) {
		return
	}
	if sps != nil && pps != nil {
		if avc := avcConfig(sps, pps); !bytes.Equal(avc, r.tracks.AVC) {
			var p h264.SPS
			if err := p.Unmarshal(sps); err == nil {
				r.tracks.Width, r.tracks.Height = p.Width(), p.Height()
			}
			r.tracks.AVC = avc
		}
	}
	if units == nil || (key && r.tracks.AVC == nil) {
		r.st.FramesDropped++
		return
	}
	if r.lastVideo != 0 && ts > r.lastVideo {
		r.videoDelta = ts - r.lastVideo
	}
	r.lastVideo = ts
	if !key && (r.cur == nil || ts-r.cur.start >= keyFrameEvery.Milliseconds()) {
		r.askKeyLocked(now) // waiting for a first key frame, or a long fragment
	}
	switch {
	case r.cur == nil && !key:
		r.st.FramesDropped++ // wait for a key frame
		return
	case r.cur == nil:
		r.startLocked(ts, now)
	case key && ts > r.cur.start, ts-r.cur.start >= maxFragment.Milliseconds():
		r.cutLocked(ts, now)
	}
	r.cur.add(mkvFrame{track: mkvVideoTrack, ts: ts, key: key, data: data})
}

// setKeyFrameRequester sets how the recorder asks the master for a video key
// frame.
func (r *recorder) setKeyFrameRequester(ask func()) {
	r.mu.Lock()
	r.askKey = ask
	r.mu.Unlock()
}

// requestKeyFrame asks the master for a key frame (within askKeyEvery of
// the last request it does nothing): a viewer of the session connected or
// asked for one.
func (r *recorder) requestKeyFrame() {
	r.mu.Lock()
	r.askKeyLocked(r.ms.s.clock.Now())
	r.mu.Unlock()
}

// askKeyLocked asks for a key frame, at most once per askKeyEvery. The
// request is sent from a goroutine of its own: it writes to the network.
func (r *recorder) askKeyLocked(now time.Time) {
	if r.askKey == nil || now.Sub(r.askedAt) < askKeyEvery {
		return
	}
	r.askedAt = now
	r.st.KeyFramesAsked++
	go r.askKey()
}

// addAudio records one Opus packet.
func (r *recorder) addAudio(ts int64, data []byte, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.receivedLocked(data) {
		return
	}
	f := mkvFrame{track: mkvAudioTrack, ts: ts, key: true, data: data}
	switch {
	case r.cur == nil && r.hasVideo:
		r.early = append(r.early, f)
		if len(r.early) > maxEarlyAudio {
			r.early = r.early[1:]
			r.st.FramesDropped++
		}
		return
	case r.cur == nil:
		r.startLocked(ts, now)
	case !r.hasVideo && ts-r.cur.start >= audioFragment.Milliseconds():
		r.cutLocked(ts, now)
	}
	r.cur.add(f)
}

// startLocked starts a fragment at ts; the early audio from ts on goes in it.
func (r *recorder) startLocked(ts int64, now time.Time) {
	r.cur = r.newFragmentLocked(ts, now)
	for _, f := range r.early {
		if f.ts >= ts {
			r.cur.add(f)
		} else {
			r.st.FramesDropped++
		}
	}
	r.early = nil
}

// cutLocked closes the current fragment at ts and starts the next there;
// frames of the closed one from ts on (audio that came ahead of the key
// frame) move to the next.
func (r *recorder) cutLocked(ts int64, now time.Time) {
	old := r.cur
	old.end = ts
	if old.live != nil {
		old.live.close(ts)
	}
	r.cur = r.newFragmentLocked(ts, now)
	keep := old.frames[:0]
	for _, f := range old.frames {
		if f.ts >= ts && f.track == mkvAudioTrack {
			r.cur.add(f)
		} else {
			keep = append(keep, f)
		}
	}
	old.frames = keep
	r.emitLocked(old)
}

// emitLocked hands a closed fragment to the writer.
func (r *recorder) emitLocked(f *fragBuilder) {
	if len(f.frames) == 0 {
		if f.live != nil {
			r.ms.store.dropLive(r.stream.ARN, f.live.number)
		}
		return
	}
	select {
	case r.out <- f:
	default:
		if f.live != nil {
			r.ms.store.dropLive(r.stream.ARN, f.live.number)
		}
		r.st.FramesDropped += uint64(len(f.frames))
		r.ms.s.log.Warn("localkvs: media server: the fragment writer is behind; fragment dropped", "stream", r.stream.Name)
	}
}

// finish stores the fragment being recorded and waits for the writer.
func (r *recorder) finish() {
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		<-r.done
		return
	}
	r.stopping = true
	r.mu.Unlock()
	r.wg.Wait() // the peer connection is closed: the readers end
	r.mu.Lock()
	if f := r.cur; f != nil {
		end := f.start
		for _, fr := range f.frames {
			d := int64(20) // an Opus packet
			if fr.track == mkvVideoTrack {
				d = max(r.videoDelta, 1)
			}
			end = max(end, fr.ts+d)
		}
		f.end = end
		r.cur = nil
		if f.live != nil {
			f.live.close(0)
		}
		r.emitLocked(f)
	}
	close(r.out)
	r.mu.Unlock()
	<-r.done
}

// writeLoop encodes and stores the closed fragments, in order.
func (r *recorder) writeLoop() {
	defer close(r.done)
	retention := time.Duration(r.stream.Retention) * time.Hour
	for f := range r.out {
		slices.SortStableFunc(f.frames, func(a, b mkvFrame) int { return int(a.ts - b.ts) })
		head, err := f.head()
		if err != nil {
			r.fail(f, err)
			continue
		}
		cluster, err := encodeCluster(f.start, f.frames)
		if err != nil {
			r.fail(f, err)
			continue
		}
		data := append(slices.Clip(head), cluster...) // head may be the live fragment's: not written to
		m := fragmentMeta{Producer: f.start, Server: f.server, LengthMS: max(f.end-f.start, 0), TracksLen: len(head)}
		if f.live != nil {
			m.Number = f.live.number
		}
		m, err = r.ms.store.add(r.stream.ARN, m, data, retention, r.ms.s.clock.Now())
		if err != nil {
			r.fail(f, err)
			continue
		}
		var frameBytes uint64
		for _, fr := range f.frames {
			frameBytes += uint64(len(fr.data))
		}
		r.mu.Lock()
		if r.st.Fragments == 0 {
			r.st.JoinToFirstFragment = time.Since(r.joined)
		}
		r.st.Fragments++
		r.st.FramesStored += uint64(len(f.frames))
		r.st.FrameBytesStored += frameBytes
		r.st.BytesWritten += uint64(len(data))
		r.mu.Unlock()
		r.ms.s.log.Debug("localkvs: fragment stored", "stream", r.stream.Name, "number", m.Number,
			"lengthMs", m.LengthMS, "bytes", len(data), "frames", len(f.frames))
	}
}

func (r *recorder) fail(f *fragBuilder, err error) {
	if f.live != nil {
		r.ms.store.dropLive(r.stream.ARN, f.live.number)
	}
	r.mu.Lock()
	r.st.FramesDropped += uint64(len(f.frames))
	r.mu.Unlock()
	r.ms.s.log.Warn("localkvs: media server: storing a fragment failed", "stream", r.stream.Name, "err", err)
}

func (r *recorder) stats() StorageStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}
