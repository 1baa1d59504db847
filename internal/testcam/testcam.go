// Package testcam is an RTSP camera for tests, benchmarks and the CLI's
// demo: a gortsplib server that streams media Sources (the embedded H.264
// and Opus clip by default) in real time to every RTSP client, over TCP or
// UDP, with optional basic or digest authentication. It can be stopped and
// started again on the same address to play a camera that drops.
package testcam

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/auth"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	gformat "github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/media"
)

// Config describes a camera. Video and Audio are made anew at each Start
// (a source is read by one camera run only).
type Config struct {
	// Addr is the RTSP listen address; "" means 127.0.0.1 and a free port.
	// The camera keeps the address it got across Stop and Start.
	Addr string
	// Path is the stream's path; "" means "cam".
	Path string
	// User and Pass, when User is set, are required of clients.
	User, Pass string
	// Digest accepts only digest authentication (else basic and digest).
	Digest bool
	// UDP also serves RTP over UDP (on a free even port and the next).
	UDP bool
	// Video returns the H.264 video source; nil means the embedded clip.
	Video func() media.Source
	// Audio returns the Opus audio source; nil means the embedded clip's
	// audio. NoAudio leaves audio out.
	Audio   func() media.Source
	NoAudio bool
	// AAC announces an AAC audio track instead of Opus (for the tests of
	// streams a browser cannot take); nothing is sent on it.
	AAC bool
}

// Camera is a running (or stopped) test camera.
type Camera struct {
	cfg     Config
	addr    string
	udpPort int // even RTP port of UDP transport, RTCP on the next

	mu      sync.Mutex
	srv     *gortsplib.Server
	stream  *gortsplib.ServerStream
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	packets uint64
}

// Start starts a camera.
func Start(cfg Config) (*Camera, error) {
	if cfg.Path == "" {
		cfg.Path = "cam"
	}
	addr := cfg.Addr
	if addr == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		addr = l.Addr().String()
		l.Close()
	}
	c := &Camera{cfg: cfg, addr: addr}
	if err := c.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

// URL is the camera's rtsp:// URL, with the user and password when set.
func (c *Camera) URL() string {
	u := "rtsp://"
	if c.cfg.User != "" {
		u += c.cfg.User + ":" + c.cfg.Pass + "@"
	}
	return u + c.addr + "/" + c.cfg.Path
}

// Addr is the camera's RTSP address.
func (c *Camera) Addr() string { return c.addr }

// Packets is the number of RTP packets the camera has sent so far.
func (c *Camera) Packets() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.packets
}

// Start starts a stopped camera on its address.
func (c *Camera) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		return errors.New("testcam: already running")
	}
	h := &handler{c: c}
	h.mu.Lock() // requests wait for the stream (a client reconnecting may come at once)
	defer h.mu.Unlock()
	srv := &gortsplib.Server{Handler: h, RTSPAddress: c.addr}
	if c.cfg.Digest {
		srv.AuthMethods = []auth.VerifyMethod{auth.VerifyMethodDigestMD5}
	}
	if c.cfg.UDP {
		if c.udpPort == 0 {
			p, err := freeUDPPair()
			if err != nil {
				return err
			}
			c.udpPort = p
		}
		host, _, _ := net.SplitHostPort(c.addr)
		srv.UDPRTPAddress = net.JoinHostPort(host, strconv.Itoa(c.udpPort))
		srv.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(c.udpPort+1))
	}
	video := &description.Media{Type: description.MediaTypeVideo,
		Formats: []gformat.Format{&gformat.H264{PayloadTyp: 96, PacketizationMode: 1}}}
	desc := &description.Session{Medias: []*description.Media{video}}
	var audio *description.Media
	switch {
	case c.cfg.AAC:
		desc.Medias = append(desc.Medias, &description.Media{Type: description.MediaTypeAudio,
			Formats: []gformat.Format{&gformat.MPEG4Audio{PayloadTyp: 97, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3,
				Config: mustAACConfig()}}})
	case !c.cfg.NoAudio:
		audio = &description.Media{Type: description.MediaTypeAudio,
			Formats: []gformat.Format{&gformat.Opus{PayloadTyp: 111, ChannelCount: 2}}}
		desc.Medias = append(desc.Medias, audio)
	}
	if err := srv.Start(); err != nil {
		return fmt.Errorf("testcam: %w", err)
	}
	st := &gortsplib.ServerStream{Server: srv, Desc: desc}
	if err := st.Initialize(); err != nil {
		srv.Close()
		return fmt.Errorf("testcam: %w", err)
	}
	h.stream = st
	ctx, cancel := context.WithCancel(context.Background())
	c.srv, c.stream, c.cancel = srv, st, cancel

	vs := media.DefaultH264(media.Options{Loop: true})
	if c.cfg.Video != nil {
		vs = c.cfg.Video()
	}
	c.wg.Add(1)
	go c.send(ctx, st, video, vs)
	if audio != nil {
		as := media.DefaultAudio(media.Options{Loop: true})
		if c.cfg.Audio != nil {
			as = c.cfg.Audio()
		}
		c.wg.Add(1)
		go c.send(ctx, st, audio, as)
	}
	return nil
}

// Stop stops the camera abruptly: every client's connection drops.
func (c *Camera) Stop() {
	c.mu.Lock()
	srv, st, cancel := c.srv, c.stream, c.cancel
	c.srv, c.stream, c.cancel = nil, nil, nil
	c.mu.Unlock()
	if srv == nil {
		return
	}
	cancel()
	c.wg.Wait()
	st.Close()
	srv.Close()
}

// Close stops the camera for good.
func (c *Camera) Close() { c.Stop() }

// send reads src in real time and writes its samples as RTP.
func (c *Camera) send(ctx context.Context, st *gortsplib.ServerStream, m *description.Media, src media.Source) {
	defer c.wg.Done()
	defer src.Close()
	f := m.Formats[0]
	clock := time.Duration(f.ClockRate())
	var encode func([]byte) ([]*rtp.Packet, error)
	switch f := f.(type) {
	case *gformat.H264:
		enc, err := f.CreateEncoder()
		if err != nil {
			return
		}
		encode = func(b []byte) ([]*rtp.Packet, error) {
			var au mch264.AnnexB
			if err := au.Unmarshal(b); err != nil {
				return nil, err
			}
			return enc.Encode(au)
		}
	case *gformat.Opus:
		enc, err := f.CreateEncoder()
		if err != nil {
			return
		}
		encode = func(b []byte) ([]*rtp.Packet, error) {
			p, err := enc.Encode(b)
			return []*rtp.Packet{p}, err
		}
	default:
		return
	}
	start := time.Now()
	var at time.Duration
	for {
		s, err := src.Next(ctx)
		if err != nil {
			return
		}
		if src.Kind() == webrtc.RTPCodecTypeVideo && len(s.Data) == 0 {
			continue
		}
		if d := time.Until(start.Add(at)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		pkts, err := encode(s.Data)
		if err == nil {
			ts := uint32(int64(at) * int64(clock) / int64(time.Second))
			for _, p := range pkts {
				p.Timestamp += ts
				if st.WritePacketRTP(m, p) == nil {
					c.mu.Lock()
					c.packets++
					c.mu.Unlock()
				}
			}
		}
		at += s.Duration
	}
}

type handler struct {
	c      *Camera
	mu     sync.RWMutex
	stream *gortsplib.ServerStream
}

func (h *handler) auth(conn *gortsplib.ServerConn, req *base.Request) bool {
	return h.c.cfg.User == "" || conn.VerifyCredentials(req, h.c.cfg.User, h.c.cfg.Pass)
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.auth(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	if ctx.Path != "/"+h.c.cfg.Path {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if !h.auth(ctx.Conn, ctx.Request) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	return &base.Response{StatusCode: base.StatusOK}, h.stream, nil
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (h *handler) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func mustAACConfig() *mpeg4audio.AudioSpecificConfig {
	return &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2}
}

// freeUDPPair finds an even UDP port on 127.0.0.1 whose successor is free too.
func freeUDPPair() (int, error) {
	for range 100 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := a.LocalAddr().(*net.UDPAddr).Port &^ 1
		a.Close()
		if p < 1024 || p+1 > 65535 {
			continue
		}
		x, err1 := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		y, err2 := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		if x != nil {
			x.Close()
		}
		if y != nil {
			y.Close()
		}
		if err1 == nil && err2 == nil {
			return p, nil
		}
	}
	return 0, errors.New("testcam: no free UDP port pair")
}
