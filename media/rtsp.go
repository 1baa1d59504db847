package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	gformat "github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/kvswebrtc/kvswebrtc/internal/backoff"
)

// URLOptions tune OpenURL. The zero value reads an RTSP camera over TCP
// and reconnects for ever.
type URLOptions struct {
	// Transport is "tcp" (the default: RTP interleaved in the RTSP
	// connection, which crosses NATs and firewalls) or "udp" (RTSP only).
	Transport string
	// SDP is the session description of an rtp:// URL: the path of a file
	// such as ffmpeg's -sdp_file writes, or the description itself
	// (starting with "v=0"). Required for rtp://, ignored for rtsp://.
	SDP string
	// SkipUnsupported drops tracks whose codec WebRTC cannot take (AAC
	// audio, say) with a warning, instead of failing OpenURL.
	SkipUnsupported bool
	// OnDemand connects an RTSP camera only while the stream is acquired
	// (LiveStream.Acquire): OpenURL reads its description and hangs up. rtp://
	// streams ignore it (the sender pushes anyway).
	OnDemand bool
	// Timeout bounds the connection and each RTSP request, and is how long
	// a stream may stay silent before it counts as dropped. Zero means 5 s.
	Timeout time.Duration
	// ReconnectBaseDelay and ReconnectMaxDelay bound the backoff between
	// reconnect attempts (full jitter). Zero means 500 ms and 10 s.
	ReconnectBaseDelay time.Duration
	ReconnectMaxDelay  time.Duration // see ReconnectBaseDelay
	// Logger receives the stream's state changes; nil means silence. Logs
	// carry the URL with its password redacted.
	Logger *slog.Logger
}

func (o URLOptions) withDefaults() URLOptions {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.ReconnectBaseDelay <= 0 {
		o.ReconnectBaseDelay = 500 * time.Millisecond
	}
	if o.ReconnectMaxDelay <= 0 {
		o.ReconnectMaxDelay = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// OpenURL opens a live stream and returns its Sources: an RTSP camera
// (rtsp://[user:pass@]host[:port]/path, basic or digest auth, H.264, H.265,
// Opus, PCMU and PCMA passed through without transcoding) or RTP packets
// sent to this host (rtp://bind-address:port with URLOptions.SDP, as ffmpeg
// -f rtp or a GStreamer udpsink send them). The stream's samples are read
// once, however many viewers they reach.
//
// OpenURL returns once the stream's tracks are known (for RTSP, after
// DESCRIBE, SETUP and PLAY; on demand, after DESCRIBE); from then on the
// stream reconnects by itself when the camera drops, with backoff, and its
// Sources carry on from the next key frame. A stream the browser cannot
// play fails with an error (ErrUnsupportedCodec, ErrNoTracks) that names
// the codec and says how to re-encode it; B-frames are found in the first
// frames and reported by the video Source's Next (ErrBFrames). Errors and
// logs never hold the URL's password. Close the LiveStream when done.
func OpenURL(ctx context.Context, rawURL string, opts URLOptions) (*LiveStream, error) {
	opts = opts.withDefaults()
	display := RedactURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %q does not parse as a URL", ErrBadURL, display)
	}
	st := &LiveStream{display: display, log: opts.Logger}
	switch strings.ToLower(u.Scheme) {
	case "rtsp", "rtsps":
		if err := openRTSP(ctx, st, rawURL, opts); err != nil {
			return nil, scrub(err, rawURL)
		}
	case "rtp":
		if err := openRTP(ctx, st, u, opts); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: %s: want rtsp://, rtsps:// or rtp://", ErrBadURL, display)
	}
	return st, nil
}

// rtspSource connects to one RTSP URL.
type rtspSource struct {
	st      *LiveStream
	rawURL  string
	u       *base.URL
	opts    URLOptions
	byKind  map[string]*liveTrack // "video"/"audio" -> track
	formats map[*liveTrack]string // track -> codec name it was made for
}

func openRTSP(ctx context.Context, st *LiveStream, rawURL string, opts URLOptions) error {
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	switch strings.ToLower(opts.Transport) {
	case "", "tcp", "udp":
	default:
		return fmt.Errorf("%w: URLOptions.Transport %q: want tcp or udp", ErrBadURL, opts.Transport)
	}
	r := &rtspSource{st: st, rawURL: rawURL, u: u, opts: opts, byKind: map[string]*liveTrack{}, formats: map[*liveTrack]string{}}
	st.setState(LiveConnecting, nil, 0)
	c, desc, err := r.describe(ctx)
	if err != nil {
		return fmt.Errorf("rtsp: %w", err)
	}
	var formats []gformat.Format
	for _, m := range desc.Medias {
		if !m.IsBackChannel && len(m.Formats) > 0 {
			formats = append(formats, m.Formats[0])
		}
	}
	byFormat, err := st.addTracks(formats, opts.SkipUnsupported)
	if err != nil {
		c.Close()
		return err
	}
	for f, t := range byFormat {
		r.byKind[t.kind.String()] = t
		r.formats[t] = f.Codec()
	}
	st.run = r.run
	if opts.OnDemand {
		c.Close()
		st.onDem = true
		st.status = LiveStatus{State: LiveIdle}
		return nil
	}
	if err := r.play(c, desc); err != nil {
		c.Close()
		return fmt.Errorf("rtsp: %w", err)
	}
	st.setState(LiveConnected, nil, 0)
	st.mu.Lock()
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	st.cancel, st.stopped = cancel, done
	st.mu.Unlock()
	go func() {
		defer close(done)
		r.loop(runCtx, c)
	}()
	return nil
}

// describe connects and asks for the session description.
func (r *rtspSource) describe(ctx context.Context) (*gortsplib.Client, *description.Session, error) {
	tr := gortsplib.TransportTCP
	if strings.EqualFold(r.opts.Transport, "udp") {
		tr = gortsplib.TransportUDP
	}
	dialer := &net.Dialer{Timeout: r.opts.Timeout}
	c := &gortsplib.Client{
		Scheme:       r.u.Scheme,
		Host:         r.u.Host,
		Transport:    &tr,
		ReadTimeout:  r.opts.Timeout,
		WriteTimeout: r.opts.Timeout,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}
	if err := c.Start2(); err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, c.Close)
	desc, _, err := c.Describe(r.u)
	stop()
	if err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, err
	}
	return c, desc, nil
}

// play sets up the medias that have a track and starts them.
func (r *rtspSource) play(c *gortsplib.Client, desc *description.Session) error {
	n := 0
	for _, m := range desc.Medias {
		if m.IsBackChannel || len(m.Formats) == 0 {
			continue
		}
		f := m.Formats[0]
		t := r.trackOf(m)
		if t == nil || r.formats[t] != f.Codec() {
			continue
		}
		if _, err := c.Setup(desc.BaseURL, m, 0, 0); err != nil {
			return err
		}
		c.OnPacketRTP(m, f, func(p *rtp.Packet) {
			r.st.bytesIn.Add(uint64(len(p.Payload)))
			t.push(p, time.Now())
		})
		n++
	}
	if n == 0 {
		return fmt.Errorf("%w: the camera's description changed and holds none of the tracks first seen", ErrNoTracks)
	}
	_, err := c.Play(nil)
	return err
}

func (r *rtspSource) trackOf(m *description.Media) *liveTrack {
	switch m.Type {
	case description.MediaTypeVideo:
		return r.byKind["video"]
	case description.MediaTypeAudio:
		return r.byKind["audio"]
	}
	return nil
}

// run connects and plays, then keeps the stream up (an on-demand start).
func (r *rtspSource) run(ctx context.Context) { r.loop(ctx, nil) }

// loop waits on the playing client c (nil: connect first) and reconnects
// with backoff whenever the camera drops, until ctx is done.
func (r *rtspSource) loop(ctx context.Context, c *gortsplib.Client) {
	attempt := 0
	for {
		if c == nil {
			r.st.setState(LiveConnecting, nil, attempt)
			cl, desc, err := r.describe(ctx)
			if err == nil {
				if err = r.play(cl, desc); err != nil {
					cl.Close()
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				attempt++
				if !r.pause(ctx, scrub(fmt.Errorf("rtsp: %w", err), r.rawURL), attempt) {
					return
				}
				continue
			}
			c = cl
			r.st.setState(LiveConnected, nil, 0)
		}
		up := time.Now()
		stop := context.AfterFunc(ctx, c.Close)
		err := c.Wait()
		stop()
		c.Close()
		c = nil
		if ctx.Err() != nil {
			return
		}
		for _, t := range r.st.tracks {
			t.restart()
		}
		if time.Since(up) > 10*time.Second {
			attempt = 0 // it had proved itself: start the backoff again
		}
		attempt++
		if err == nil {
			err = errors.New("session ended")
		}
		if !r.pause(ctx, scrub(fmt.Errorf("rtsp: camera dropped: %w", err), r.rawURL), attempt) {
			return
		}
	}
}

// pause reports the failure and waits out the backoff of attempt; false
// when ctx ended first.
func (r *rtspSource) pause(ctx context.Context, err error, attempt int) bool {
	r.st.setState(LiveReconnecting, err, attempt)
	t := time.NewTimer(backoff.FullJitter(r.opts.ReconnectBaseDelay, r.opts.ReconnectMaxDelay, attempt-1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
