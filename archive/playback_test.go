package archive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/archive"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// wait bounds each wait of these tests.
const wait = 45 * time.Second

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

// recording is a local service with a stream a Go master records into.
type recording struct {
	srv    *localkvs.Server
	ac     *archive.Client
	stream string
	master *peer.Master
}

// record starts the local service, a channel whose media storage is
// stream, and a master in ingestion mode streaming the embedded H.264 +
// Opus clips, and waits for n fragments.
func record(t testing.TB, stream string, n int) *recording {
	t.Helper()
	srv, err := localkvs.Start(localkvs.Config{TURN: localkvs.TURNConfig{AllowLoopbackPeers: true}}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx := ctxT(t)
	awsCfg := srv.AWSConfig()
	kv := kinesisvideo.NewFromConfig(awsCfg)
	chARN, err := srv.CreateChannel(ctx, stream+"-channel")
	if err != nil {
		t.Fatal(err)
	}
	out, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(stream), DataRetentionInHours: aws.Int32(24)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
		ChannelARN:                aws.String(chARN),
		MediaStorageConfiguration: &types.MediaStorageConfiguration{Status: types.MediaStorageConfigurationStatusEnabled, StreamARN: out.StreamARN},
	}); err != nil {
		t.Fatal(err)
	}
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsCfg, Channel: stream + "-channel"},
		Video:         media.DefaultH264(media.Options{Loop: true}),
		Audio:         media.DefaultAudio(media.Options{Loop: true}),
		Ingestion:     peer.IngestOn,
		Settings: peer.Settings{
			NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4},
			IPFilter:     func(ip net.IP) bool { return ip.IsLoopback() },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ac, err := archive.New(awsCfg, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &recording{srv: srv, ac: ac, stream: stream, master: m}
	r.waitFragments(t, n)
	return r
}

func (r *recording) waitFragments(t testing.TB, n int) []archive.Fragment {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		list, err := r.ac.ListFragments(ctxT(t), r.stream, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) >= n {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d fragments after %v, want %d", len(list), wait, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the recording and returns every fragment stored.
func (r *recording) stop(t *testing.T) []archive.Fragment {
	t.Helper()
	r.master.Close()
	// The media server stores the last fragment when the session ends.
	time.Sleep(500 * time.Millisecond)
	list, err := r.ac.ListFragments(ctxT(t), r.stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func get(t *testing.T, u string) (int, http.Header, []byte) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// mustGet GETs u and fails on a status other than 200.
func mustGet(t *testing.T, u string) []byte {
	t.Helper()
	code, _, b := get(t, u)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", redact(u), code, b)
	}
	return b
}

var tokenRE = regexp.MustCompile(`SessionToken=[^&"\s]+`)

func redact(s string) string { return tokenRE.ReplaceAllString(s, "SessionToken=...") }

// playlistURIs returns the URI lines of a playlist, resolved against base.
func playlistURIs(t *testing.T, base, text string) []string {
	t.Helper()
	b, _ := url.Parse(base)
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			u, err := b.Parse(l)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, u.String())
		}
	}
	return out
}

// tool finds ffmpeg or ffprobe; the test skips without them unless CI is set.
func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found (CI=%s): apt-get install -y ffmpeg", name, os.Getenv("CI"))
		}
		t.Skipf("%s not found; apt-get install -y ffmpeg", name)
	}
	return p
}

// probe is what ffprobe says of an input: its format, streams and the
// frames it decoded.
type probe struct {
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecType   string `json:"codec_type"`
		CodecName   string `json:"codec_name"`
		Width       int    `json:"width"`
		Height      int    `json:"height"`
		ReadFrames  string `json:"nb_read_frames"`
		SampleRate  string `json:"sample_rate"`
		ChannelsNum int    `json:"channels"`
	} `json:"streams"`
}

func ffprobe(t *testing.T, input string, extra ...string) probe {
	t.Helper()
	args := append([]string{"-v", "error", "-count_frames", "-show_format", "-show_streams", "-of", "json"}, extra...)
	args = append(args, input)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool(t, "ffprobe"), args...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("ffprobe %s: %v: %s", redact(input), err, ee.Stderr)
	}
	if err != nil {
		t.Fatalf("ffprobe %s: %v", redact(input), err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v: %s", err, out)
	}
	return p
}

// videoAudio returns the frames ffprobe read of the first video and audio
// streams, failing when either is missing or not H.264 / Opus.
func (p probe) videoAudio(t *testing.T) (video, audio int) {
	t.Helper()
	for _, s := range p.Streams {
		n, _ := strconv.Atoi(s.ReadFrames)
		switch s.CodecType {
		case "video":
			if s.CodecName != "h264" {
				t.Errorf("video codec %q, want h264", s.CodecName)
			}
			video = n
		case "audio":
			if s.CodecName != "opus" {
				t.Errorf("audio codec %q, want opus", s.CodecName)
			}
			audio = n
		}
	}
	if video == 0 || audio == 0 {
		t.Errorf("ffprobe read %d video and %d audio frames: %+v", video, audio, p)
	}
	return video, audio
}

func totalLength(list []archive.Fragment) time.Duration {
	var d time.Duration
	for _, f := range list {
		d += f.Length
	}
	return d
}

// TestHLSLive: a live HLS session of a stream being recorded: the master
// playlist names the media playlist with CODECS (H.264 and Opus) and the
// picture size; the media playlist holds the newest fragments (5 by
// default) as fragmented MP4 segments after an EXT-X-MAP, with no end; the
// init segment has an H.264 and an Opus track; a media segment starts
// with a key frame; and ffmpeg plays the session URL.
func TestHLSLive(t *testing.T) {
	r := record(t, "live", 6)
	u, err := r.ac.HLSStreamingSessionURL(ctxT(t), r.stream, archive.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=") {
		t.Fatalf("session URL %s", redact(u))
	}
	master := string(mustGet(t, u))
	t.Logf("master playlist:\n%s", redact(master))
	if !regexp.MustCompile(`#EXT-X-STREAM-INF:BANDWIDTH=\d+,CODECS="avc1\.[0-9a-f]{6},opus",RESOLUTION=\d+x\d+`).MatchString(master) {
		t.Errorf("master playlist without CODECS and RESOLUTION:\n%s", redact(master))
	}
	mediaURL := playlistURIs(t, u, master)[0]
	pl := string(mustGet(t, mediaURL))
	t.Logf("media playlist:\n%s", redact(pl))
	segs := playlistURIs(t, mediaURL, pl)
	if len(segs) != 5 || strings.Contains(pl, "#EXT-X-ENDLIST") || !strings.Contains(pl, "#EXT-X-MAP:URI=\"getMP4InitFragment.mp4?") {
		t.Errorf("live playlist: %d segments (want 5), ENDLIST %v, EXT-X-MAP %v", len(segs), strings.Contains(pl, "#EXT-X-ENDLIST"), strings.Contains(pl, "#EXT-X-MAP"))
	}
	mapURI := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindStringSubmatch(pl)
	base, _ := url.Parse(mediaURL)
	initURL, _ := base.Parse(mapURI[1])
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(mustGet(t, initURL.String()))); err != nil {
		t.Fatalf("init segment: %v", err)
	}
	if len(init.Tracks) != 2 {
		t.Fatalf("init segment has %d tracks, want H.264 and Opus", len(init.Tracks))
	}
	if _, ok := init.Tracks[0].Codec.(*fmp4.CodecH264); !ok {
		t.Errorf("track 1 codec %T, want H.264", init.Tracks[0].Codec)
	}
	if o, ok := init.Tracks[1].Codec.(*fmp4.CodecOpus); !ok || o.ChannelCount != 2 {
		t.Errorf("track 2 codec %#v, want Opus, 2 channels", init.Tracks[1].Codec)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(mustGet(t, segs[0])); err != nil {
		t.Fatalf("media segment: %v", err)
	}
	if len(parts) != 1 || len(parts[0].Tracks) != 2 {
		t.Fatalf("media segment: %d parts", len(parts))
	}
	v := parts[0].Tracks[0]
	if len(v.Samples) < 20 || v.Samples[0].IsNonSyncSample {
		t.Errorf("video of the first segment: %d samples, first a key frame: %v", len(v.Samples), !v.Samples[0].IsNonSyncSample)
	}
	var d uint64
	for _, s := range v.Samples {
		d += uint64(s.Duration)
	}
	if ms := d * 1000 / 90000; ms < 900 || ms > 1100 {
		t.Errorf("the first segment's video lasts %d ms, want about 1 s", ms)
	}

	t.Run("FFmpegPlays", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		out, err := exec.CommandContext(ctx, tool(t, "ffmpeg"), "-v", "error", "-nostats", "-i", u, "-t", "4",
			"-f", "null", "-progress", "pipe:1", "-").Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffmpeg: %v: %s", err, ee.Stderr)
		}
		m := regexp.MustCompile(`(?m)^frame=(\d+)$`).FindAllStringSubmatch(string(out), -1)
		if len(m) == 0 {
			t.Fatalf("ffmpeg printed no progress: %s", out)
		}
		frames, _ := strconv.Atoi(m[len(m)-1][1])
		t.Logf("ffmpeg decoded %d video frames of the live session", frames)
		if frames < 60 {
			t.Errorf("ffmpeg decoded %d frames in 4 s of live HLS, want at least 60", frames)
		}
	})
}

// TestHLSOnDemand: an on-demand session of a finished recording (fMP4 and
// MPEG-TS) lists every fragment and ends; ffprobe reads H.264 and Opus
// from both, as long as the recording.
func TestHLSOnDemand(t *testing.T) {
	r := record(t, "vod", 4)
	list := r.stop(t)
	first, last := list[0], list[len(list)-1]
	sel := &archive.Selector{Type: archive.ProducerTimestamp, Start: first.Producer, End: last.Producer.Add(last.Length)}
	for _, c := range []archive.ContainerFormat{archive.FragmentedMP4, archive.MPEGTS} {
		t.Run(string(c), func(t *testing.T) {
			u, err := r.ac.HLSStreamingSessionURL(ctxT(t), r.stream, archive.SessionOptions{Mode: archive.OnDemand, Selector: sel, Container: c})
			if err != nil {
				t.Fatal(err)
			}
			mediaURL := playlistURIs(t, u, string(mustGet(t, u)))[0]
			pl := string(mustGet(t, mediaURL))
			segs := playlistURIs(t, mediaURL, pl)
			if len(segs) != len(list) || !strings.Contains(pl, "#EXT-X-ENDLIST") || !strings.Contains(pl, "#EXT-X-PLAYLIST-TYPE:VOD") {
				t.Errorf("on-demand playlist: %d segments of %d fragments, ENDLIST %v", len(segs), len(list), strings.Contains(pl, "#EXT-X-ENDLIST"))
			}
			wantExt := map[archive.ContainerFormat]string{archive.FragmentedMP4: "getMP4MediaFragment.mp4?", archive.MPEGTS: "getTSFragment.ts?"}[c]
			if !strings.Contains(segs[0], wantExt) || (c == archive.MPEGTS) == strings.Contains(pl, "EXT-X-MAP") {
				t.Errorf("%s playlist segments like %s", c, redact(segs[0]))
			}
			p := ffprobe(t, u)
			video, audio := p.videoAudio(t)
			dur, _ := strconv.ParseFloat(p.Format.Duration, 64)
			want := totalLength(list).Seconds()
			t.Logf("%s: %s, %.2f s (recorded %.2f s), %d video and %d audio frames", c, p.Format.FormatName, dur, want, video, audio)
			if math.Abs(dur-want) > 0.5 {
				t.Errorf("duration %.2f s, the recording is %.2f s", dur, want)
			}
			if fps := float64(video) / want; fps < 27 {
				t.Errorf("%d video frames in %.1f s (%.1f fps)", video, want, fps)
			}
		})
	}
}

// TestDASHOnDemand: the MPD of an on-demand session is static, lists one
// segment per fragment with its time, and ffprobe plays it.
func TestDASHOnDemand(t *testing.T) {
	r := record(t, "dash", 3)
	list := r.stop(t)
	first, last := list[0], list[len(list)-1]
	sel := &archive.Selector{Start: first.Producer, End: last.Producer.Add(last.Length)}
	u, err := r.ac.DASHStreamingSessionURL(ctxT(t), r.stream, archive.SessionOptions{Mode: archive.OnDemand, Selector: sel})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(u, "/dash/v1/getDASHManifest.mpd?SessionToken=") {
		t.Fatalf("session URL %s", redact(u))
	}
	mpd := mustGet(t, u)
	var m struct {
		Type   string `xml:"type,attr"`
		Period struct {
			Sets []struct {
				Reps []struct {
					Codecs string `xml:"codecs,attr"`
					List   struct {
						URLs []struct {
							Media string `xml:"media,attr"`
						} `xml:"SegmentURL"`
						Timeline struct {
							S []struct {
								T int64 `xml:"t,attr"`
								D int64 `xml:"d,attr"`
							} `xml:"S"`
						} `xml:"SegmentTimeline"`
					} `xml:"SegmentList"`
				} `xml:"Representation"`
			} `xml:"AdaptationSet"`
		} `xml:"Period"`
	}
	if err := xml.Unmarshal(mpd, &m); err != nil {
		t.Fatalf("MPD: %v\n%s", err, redact(string(mpd)))
	}
	if len(m.Period.Sets) != 2 {
		t.Fatalf("MPD with %d adaptation sets, want video and audio:\n%s", len(m.Period.Sets), redact(string(mpd)))
	}
	rep := m.Period.Sets[0].Reps[0]
	if m.Type != "static" || len(rep.List.URLs) != len(list) || len(rep.List.Timeline.S) != len(list) || !strings.HasPrefix(rep.Codecs, "avc1.") ||
		m.Period.Sets[1].Reps[0].Codecs != "opus" || !strings.Contains(m.Period.Sets[1].Reps[0].List.URLs[0].Media, "TrackNumber=2") {
		t.Errorf("MPD type %q, %d segments, %d timeline entries for %d fragments, codecs %q and %q:\n%s", m.Type, len(rep.List.URLs), len(rep.List.Timeline.S), len(list), rep.Codecs, m.Period.Sets[1].Reps[0].Codecs, redact(string(mpd)))
	}
	for i := 1; i < len(rep.List.Timeline.S); i++ {
		if s, p := rep.List.Timeline.S[i], rep.List.Timeline.S[i-1]; s.T < p.T+p.D-50 || s.T > p.T+p.D+50 {
			t.Errorf("timeline entry %d at %d, the one before ends at %d", i, s.T, p.T+p.D)
		}
	}
	p := ffprobe(t, u)
	video, audio := p.videoAudio(t)
	want := totalLength(list).Seconds()
	t.Logf("DASH: %d video and %d audio frames, %s s (recorded %.2f s)", video, audio, p.Format.Duration, want)
	if fps := float64(video) / want; fps < 27 {
		t.Errorf("%d video frames in %.1f s (%.1f fps; the clip is 30 fps): a segment was not played", video, want, fps)
	}
}

// TestGetClip: one progressive MP4 of a time range: the fragments that
// overlap it, H.264 and Opus, as long as they are; a range with nothing
// recorded is ResourceNotFoundException.
func TestGetClip(t *testing.T) {
	r := record(t, "clip", 4)
	list := r.stop(t)
	// The range ends inside the third fragment: three fragments.
	sel := archive.Selector{Start: list[0].Producer.Add(10 * time.Millisecond), End: list[2].Producer.Add(100 * time.Millisecond)}
	body, err := r.ac.GetClip(ctxT(t), r.stream, sel)
	if err != nil {
		t.Fatal(err)
	}
	clip, err := io.ReadAll(body)
	body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(clip) < 12 || string(clip[4:8]) != "ftyp" || !bytes.Contains(clip[:4096], []byte("moov")) {
		t.Fatalf("GetClip answered %d bytes starting %q: not a progressive MP4", len(clip), clip[:min(16, len(clip))])
	}
	f, err := os.CreateTemp(t.TempDir(), "clip-*.mp4")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(clip)
	f.Close()
	p := ffprobe(t, f.Name())
	video, audio := p.videoAudio(t)
	dur, _ := strconv.ParseFloat(p.Format.Duration, 64)
	want := totalLength(list[:3]).Seconds()
	t.Logf("clip: %d bytes, %s, %.2f s (3 fragments: %.2f s), %d video, %d audio frames", len(clip), p.Format.FormatName, dur, want, video, audio)
	if !strings.Contains(p.Format.FormatName, "mp4") || math.Abs(dur-want) > 0.3 {
		t.Errorf("clip format %q, %.2f s; want mp4, %.2f s", p.Format.FormatName, dur, want)
	}
	_, err = r.ac.GetClip(ctxT(t), r.stream, archive.Selector{Start: time.Now().Add(time.Hour), End: time.Now().Add(2 * time.Hour)})
	if !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("GetClip of a range with nothing: %v, want ErrNotFound", err)
	}
}

// TestSessionRefusals: a live session of a stream with nothing recorded
// lately is ResourceNotFoundException; a forged or altered token gets 403
// on every URL of the session; a token of an HLS session does not open a
// DASH manifest.
func TestSessionRefusals(t *testing.T) {
	r := record(t, "refuse", 2)
	u, err := r.ac.HLSStreamingSessionURL(ctxT(t), r.stream, archive.SessionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenRE.FindString(u)[len("SessionToken="):]
	tok, _ = url.QueryUnescape(tok)
	base := u[:strings.Index(u, "/hls/")]
	flip := []byte(tok)
	flip[5] ^= 1
	for name, path := range map[string]string{
		"altered":   "/hls/v1/getHLSMediaPlaylist.m3u8?SessionToken=" + url.QueryEscape(string(flip)),
		"forged":    "/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=eyJrIjoiaGxzIn0.AAAA",
		"dash":      "/dash/v1/getDASHManifest.mpd?SessionToken=" + url.QueryEscape(tok),
		"segment":   "/hls/v1/getMP4MediaFragment.mp4?FragmentNumber=1&SessionToken=" + url.QueryEscape(string(flip)),
		"no token":  "/hls/v1/getHLSMediaPlaylist.m3u8",
		"wrong res": "/hls/v1/getTSFragment.ts?FragmentNumber=1&SessionToken=" + url.QueryEscape(tok),
	} {
		code, h, b := get(t, base+path)
		want := map[string]int{"no token": 400, "wrong res": 404}[name]
		if want == 0 {
			want = 403
		}
		if code != want {
			t.Errorf("%s: %d %s %s, want %d", name, code, h.Get("X-Amzn-Errortype"), b, want)
		}
	}
	// Nothing recorded in the last 30 s: no live session.
	kv := kinesisvideo.NewFromConfig(r.srv.AWSConfig())
	if _, err := kv.CreateStream(ctxT(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String("empty"), DataRetentionInHours: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ac.HLSStreamingSessionURL(ctxT(t), "empty", archive.SessionOptions{}); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("live session of an empty stream: %v, want ErrNotFound", err)
	}
	if _, err := r.ac.DASHStreamingSessionURL(ctxT(t), "empty", archive.SessionOptions{Mode: archive.OnDemand, Selector: &archive.Selector{Start: time.Now().Add(-time.Hour), End: time.Now()}}); !errors.Is(err, archive.ErrNotFound) {
		t.Errorf("on-demand session of an empty stream: %v, want ErrNotFound", err)
	}
	if _, err := r.ac.HLSStreamingSessionURL(ctxT(t), r.stream, archive.SessionOptions{Mode: archive.OnDemand, Selector: &archive.Selector{Start: time.Now().Add(-48 * time.Hour), End: time.Now()}}); !errors.Is(err, archive.ErrInvalidArgument) {
		t.Errorf("on-demand session of 48 h: %v, want ErrInvalidArgument (24 h at most)", err)
	}
}
