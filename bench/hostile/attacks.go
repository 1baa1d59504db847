package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// The attacks against serve, one function each (main.go runs them).

// attackBodies: 1,000 connections announce a body of 1 MiB - 1, send all
// of it but the last byte, and stall; unsigned, then with the public
// development key's signature headers.
func attackBodies() error {
	for _, signed := range []bool{false, true} {
		s, err := startServe(0)
		if err != nil {
			return err
		}
		name := "unsigned"
		if signed {
			name = "dev-key headers"
		}
		before := s.rssMB()
		body := strings.Repeat("x", 1<<20-1)
		hdr := signedHeaders(s, "/describeSignalingChannel", []byte(body))
		conns := openConns(s.addr, 1000, func(int) string {
			h := "POST /describeSignalingChannel HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
			if signed {
				for k, vs := range hdr {
					if k != "Content-Length" {
						h += k + ": " + vs[0] + "\r\n"
					}
				}
			}
			return h + "\r\n" + body[:len(body)-1]
		})
		time.Sleep(3 * time.Second)
		peak := s.rssMB()
		open3 := stillOpen(conns)
		time.Sleep(12 * time.Second)
		record("bodies ("+name+")", "1,000 conns x 1 MiB-1 stalled: serve RSS before / after 3 s / after 15 s", "%.0f MB / %.0f MB / %.0f MB", before, peak, s.rssMB())
		record("bodies ("+name+")", "connections still open after 3 s / 15 s", "%d / %d", open3, stillOpen(conns))
		closeAll(conns)
		s.stop()
	}
	return nil
}

// attackTrickle: a signed-looking body sent a byte every 5 s.
func attackTrickle() error {
	s, err := startServe(0)
	if err != nil {
		return err
	}
	defer s.stop()
	body := `{"ChannelName":"trickle"}`
	hdr := signedHeaders(s, "/describeSignalingChannel", []byte(body))
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	h := "POST /describeSignalingChannel HTTP/1.1\r\nHost: " + s.addr + "\r\n"
	for k, vs := range hdr {
		h += k + ": " + vs[0] + "\r\n"
	}
	io.WriteString(c, h+"Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
	start := time.Now()
	done := make(chan string, 1)
	go func() {
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			done <- "closed without an answer"
			return
		}
		done <- resp.Status
	}()
	for i := 0; i < len(body); i++ {
		select {
		case st := <-done:
			record("trickle", "a body sent a byte every 5 s", "cut after %s (%s)", time.Since(start).Round(time.Second), st)
			return nil
		case <-time.After(5 * time.Second):
		}
		if _, err := c.Write([]byte{body[i]}); err != nil {
			record("trickle", "a body sent a byte every 5 s", "cut after %s (write failed)", time.Since(start).Round(time.Second))
			return nil
		}
		if time.Since(start) > 40*time.Second {
			break
		}
	}
	record("trickle", "a body sent a byte every 5 s", "still open after %s", time.Since(start).Round(time.Second))
	return nil
}

// attackKeepAlive: 2,000 clients get a 403 and keep their connections.
func attackKeepAlive() error {
	s, err := startServe(0)
	if err != nil {
		return err
	}
	defer s.stop()
	conns := openConns(s.addr, 2000, func(int) string {
		return "POST /describeSignalingChannel HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Length: 2\r\n\r\n{}"
	})
	time.Sleep(2 * time.Second)
	fds2 := s.fds()
	open2 := stillOpen(conns)
	time.Sleep(40 * time.Second)
	record("keepalive", "2,000 connections after a 403: open after 2 s / 42 s", "%d / %d", open2, stillOpen(conns))
	record("keepalive", "serve fds after 2 s / 42 s", "%d / %d", fds2, s.fds())
	closeAll(conns)
	return nil
}

// attackFDLimit: serve under a 1,024-descriptor limit; 1,500 clients each
// make an unsigned request (403) and keep the connection; then a
// legitimate CreateSignalingChannel.
func attackFDLimit() error {
	s, err := startServe(1024)
	if err != nil {
		return err
	}
	defer s.stop()
	conns := openConns(s.addr, 1500, func(int) string {
		return "POST /describeSignalingChannel HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Length: 2\r\n\r\n{}"
	})
	time.Sleep(15 * time.Second) // past the 10 s header timeout
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = s.kv().CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("legit")})
	res := "succeeded"
	if err != nil {
		res = "failed: " + strings.SplitN(err.Error(), ", ", 2)[0]
	}
	record("fdlimit", "1,500 clients keep their connection after a 403, on a 1,024-fd serve; 15 s later a legitimate CreateSignalingChannel (30 s timeout)", "%s after %s (serve fds %d)", res, time.Since(start).Round(100*time.Millisecond), s.fds())
	closeAll(conns)
	return nil
}

// attackPending: 20 masters send 10 KB payloads to made-up recipients at
// the ICE rate limit for 60 s.
func attackPending() error {
	s, err := startServe(0)
	if err != nil {
		return err
	}
	defer s.stop()
	kv := s.kv()
	before := s.rssMB()
	p, _ := sigv4.New(localkvs.DefaultRegion, sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""), sigv4.AllowInsecureEndpoint())
	var wg sync.WaitGroup
	var sent, refused atomic.Int64
	stop := time.Now().Add(60 * time.Second)
	for m := 0; m < 20; m++ {
		out, err := kv.CreateSignalingChannel(context.Background(), &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String(fmt.Sprintf("pend-%d", m))})
		if err != nil {
			return err
		}
		u, _ := p.PresignURL(context.Background(), "ws://"+s.addr, map[string]string{sigv4.ParamChannelARN: *out.ChannelARN}, time.Now())
		c, _, err := websocket.Dial(context.Background(), u, nil)
		if err != nil {
			return err
		}
		c.SetReadLimit(1 << 20)
		wg.Add(1)
		go func(m int, c *websocket.Conn) {
			defer wg.Done()
			defer c.CloseNow()
			go func() { // count the refusals
				for {
					_, b, err := c.Read(context.Background())
					if err != nil {
						return
					}
					if strings.Contains(string(b), "STATUS_RESPONSE") {
						refused.Add(1)
					}
				}
			}()
			payload := strings.Repeat("A", 10000)
			t := time.NewTicker(55 * time.Millisecond) // under 20 a second
			defer t.Stop()
			for i := 0; time.Now().Before(stop); i++ {
				<-t.C
				b, _ := json.Marshal(wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: payload,
					RecipientClientID: fmt.Sprintf("nobody-%d-%d", m, i), CorrelationID: "c" + strconv.Itoa(i)})
				if c.Write(context.Background(), websocket.MessageText, b) != nil {
					return
				}
				sent.Add(1)
			}
			time.Sleep(150 * time.Second) // stay connected while the TTL passes
		}(m, c)
	}
	time.Sleep(61 * time.Second)
	at60 := s.rssMB()
	time.Sleep(120 * time.Second) // TTL 60 s + 1 min
	record("pending", "20 masters x 10 KB to made-up recipients for 60 s: serve RSS before / at 60 s / 2 min later", "%.0f MB / %.0f MB / %.0f MB", before, at60, s.rssMB())
	record("pending", "messages sent / refused (STATUS_RESPONSE)", "%d / %d", sent.Load(), refused.Load())
	return nil
}

// attackLogFlood: one viewer connection sends bad frames as fast as it can
// for 3 s.
func attackLogFlood() error {
	s, err := startServe(0)
	if err != nil {
		return err
	}
	defer s.stop()
	out, err := s.kv().CreateSignalingChannel(context.Background(), &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("flood")})
	if err != nil {
		return err
	}
	p, _ := sigv4.New(localkvs.DefaultRegion, sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""), sigv4.AllowInsecureEndpoint())
	u, _ := p.PresignURL(context.Background(), "ws://"+s.addr, map[string]string{sigv4.ParamChannelARN: *out.ChannelARN, sigv4.ParamClientID: "v"}, time.Now())
	c, _, err := websocket.Dial(context.Background(), u, nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	before := s.logs.n.Load()
	frames := 0
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		if c.Write(context.Background(), websocket.MessageText, []byte("{not json")) != nil {
			break
		}
		frames++
	}
	time.Sleep(500 * time.Millisecond)
	record("logflood", "one connection's bad frames for 3 s: frames sent / log written", "%d / %.1f MB (%d lines)", frames, float64(s.logs.n.Load()-before)/1e6, s.logs.lines.Load())
	return nil
}
