package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	gformat "github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/rtpreorderer"
	"github.com/bluenviron/gortsplib/v4/pkg/sdp"
	"github.com/pion/rtp"
)

// rtpPort is one UDP port of an rtp:// stream and the track it feeds.
type rtpPort struct {
	conn  net.PacketConn
	pt    uint8
	track *liveTrack
}

// openRTP listens on the ports the SDP names, on the URL's host.
func openRTP(_ context.Context, st *LiveStream, u *url.URL, opts URLOptions) error {
	if opts.SDP == "" {
		return fmt.Errorf("%w: %s needs a session description (URLOptions.SDP, --sdp FILE), as ffmpeg -sdp_file writes it", ErrBadURL, st.display)
	}
	text := opts.SDP
	if !strings.HasPrefix(strings.TrimSpace(text), "v=0") {
		b, err := os.ReadFile(opts.SDP)
		if err != nil {
			return fmt.Errorf("%w: reading the SDP: %w", ErrBadURL, err)
		}
		text = string(b)
	}
	var raw sdp.SessionDescription
	if err := raw.Unmarshal([]byte(text)); err != nil {
		return fmt.Errorf("%w: the SDP does not parse: %v", ErrBadURL, err)
	}
	var desc description.Session
	if err := desc.Unmarshal(&raw); err != nil {
		return fmt.Errorf("%w: the SDP's medias: %v", ErrBadURL, err)
	}
	host := u.Hostname()
	if host == "" {
		host = "127.0.0.1"
	}
	urlPort := 0
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("%w: %s: port %q is not a UDP port", ErrBadURL, st.display, p)
		}
		urlPort = n
	}
	var formats []gformat.Format
	ports := map[gformat.Format]int{}
	seen := false
	for i, m := range desc.Medias {
		if len(m.Formats) == 0 || i >= len(raw.MediaDescriptions) {
			continue
		}
		port := raw.MediaDescriptions[i].MediaName.Port.Value
		if port == 0 && len(desc.Medias) == 1 {
			port = urlPort
		}
		if port == urlPort {
			seen = true
		}
		formats = append(formats, m.Formats[0])
		ports[m.Formats[0]] = port
	}
	if urlPort != 0 && !seen {
		return fmt.Errorf("%w: %s: the SDP names no media on port %d (its m= lines give the ports, one per stream)", ErrBadURL, st.display, urlPort)
	}
	byFormat, err := st.addTracks(formats, opts.SkipUnsupported)
	if err != nil {
		return err
	}
	var rp []*rtpPort
	for f, t := range byFormat {
		addr := net.JoinHostPort(host, strconv.Itoa(ports[f]))
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			for _, p := range rp {
				p.conn.Close()
			}
			return fmt.Errorf("media: rtp: listening on %s for %s: %w", addr, f.Codec(), err)
		}
		rp = append(rp, &rtpPort{conn: c, pt: f.PayloadType(), track: t})
	}
	st.status = LiveStatus{State: LiveConnecting}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	st.cancel, st.stopped = cancel, done
	st.run = func(context.Context) {} // not on demand: nothing to restart
	go func() {
		defer close(done)
		runRTP(ctx, st, rp, opts.Timeout)
	}()
	return nil
}

// runRTP reads every port until ctx is done. A port that stays silent for
// timeout marks the stream reconnecting; a new SSRC (the sender started
// again) restarts its track at the next key frame.
func runRTP(ctx context.Context, st *LiveStream, ports []*rtpPort, timeout time.Duration) {
	stop := context.AfterFunc(ctx, func() {
		for _, p := range ports {
			p.conn.Close()
		}
	})
	defer stop()
	alive := make(chan bool, len(ports))
	for _, p := range ports {
		go p.read(ctx, st, timeout, alive)
	}
	up := 0
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-alive:
			if a {
				up++
				if up == 1 {
					st.setState(LiveConnected, nil, 0)
				}
			} else {
				up--
				if up == 0 {
					st.setState(LiveReconnecting, fmt.Errorf("rtp: no packet for %v: is the sender running?", timeout), 0)
				}
			}
		}
	}
}

// read receives one port's packets; it reports on alive when packets
// start and stop flowing.
func (p *rtpPort) read(ctx context.Context, st *LiveStream, timeout time.Duration, alive chan<- bool) {
	buf := make([]byte, 1500)
	re := rtpreorderer.New()
	var ssrc uint32
	flowing := false
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(timeout))
		n, _, err := p.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if flowing {
					flowing = false
					alive <- false
				}
				continue
			}
			return
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != p.pt {
			continue // RTCP or another stream on the port
		}
		if !flowing || pkt.SSRC != ssrc {
			if flowing && pkt.SSRC != ssrc {
				p.track.restart()
			}
			re = rtpreorderer.New()
			ssrc = pkt.SSRC
			if !flowing {
				flowing = true
				alive <- true
			}
		}
		pkt.Payload = append([]byte(nil), pkt.Payload...)
		pkts, _ := re.Process(&pkt)
		now := time.Now()
		for _, q := range pkts {
			st.bytesIn.Add(uint64(len(q.Payload)))
			p.track.push(q, now)
		}
	}
}
