package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// The attack on the client: a viewer against a service that drops every
// connection.

// attackViewer: `kvswebrtc viewer` against a service whose signaling
// WebSocket closes each connection right after it opens (a front that
// passes the control plane to serve and rewrites the WSS endpoint to
// itself), for 60 s.
func attackViewer() error {
	if err := viewerAgainst(0); err != nil {
		return err
	}
	return viewerAgainst(500 * time.Millisecond)
}

// viewerAgainst runs the viewer against a front closing each signaling
// connection closeAfter after it opens.
func viewerAgainst(closeAfter time.Duration) error {
	name := "viewer (closed at once)"
	if closeAfter > 0 {
		name = fmt.Sprintf("viewer (closed %s after open)", closeAfter)
	}
	s, err := startServe(0)
	if err != nil {
		return err
	}
	defer s.stop()
	if _, err := s.kv().CreateSignalingChannel(context.Background(), &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("broken")}); err != nil {
		return err
	}
	front, opens, err := brokenFront(s, closeAfter)
	if err != nil {
		return err
	}
	tmp, _ := os.MkdirTemp("", "hostile-viewer-")
	defer os.RemoveAll(tmp)
	cmd := exec.Command(*bin, "viewer", "--channel", "broken", "--client-id", "broken-viewer", "--endpoint-url", front, "--region", localkvs.DefaultRegion, "--nat", "disabled", "--log-level", "info")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+localkvs.DevAccessKeyID, "AWS_SECRET_ACCESS_KEY="+localkvs.DevSecretAccessKey, "HOME="+tmp, "AWS_ENDPOINT_URL=")
	logs := &countingWriter{}
	var attempts attemptLog
	cmd.Stdout, cmd.Stderr = io.Discard, io.MultiWriter(logs, &attempts)
	if err := cmd.Start(); err != nil {
		return err
	}
	defer cmd.Process.Kill()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	time.Sleep(3 * time.Second)
	fds0, rss0 := fdCount(cmd.Process.Pid), float64(rssKiB(cmd.Process.Pid))/1024
	select {
	case err := <-exited:
		record(name, "the viewer", "exited within 3 s: %v (%d signaling connections)", err, opens.Load())
		return nil
	case <-time.After(57 * time.Second):
	}
	record(name, "signaling connections in 60 s", "%d", opens.Load())
	record(name, "viewer fds at 3 s / 60 s", "%d / %d", fds0, fdCount(cmd.Process.Pid))
	record(name, "viewer RSS at 3 s / 60 s", "%.0f MB / %.0f MB", rss0, float64(rssKiB(cmd.Process.Pid))/1024)
	record(name, "highest reconnect attempt logged", "%d", attempts.max.Load())
	return nil
}

// attemptLog keeps the highest "attempt=N" the viewer logged.
type attemptLog struct{ max atomic.Int64 }

func (a *attemptLog) Write(p []byte) (int, error) {
	for _, f := range strings.Fields(string(p)) {
		if v, ok := strings.CutPrefix(f, "attempt="); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > a.max.Load() {
				a.max.Store(n)
			}
		}
	}
	return len(p), nil
}

// brokenFront serves the control plane by passing it to s, with the WSS
// endpoint of GetSignalingChannelEndpoint rewritten to itself, and accepts
// every signaling WebSocket only to close it at once.
func brokenFront(s *serve, closeAfter time.Duration) (string, *atomic.Int64, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	self := l.Addr().String()
	opens := &atomic.Int64{}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			opens.Add(1)
			if closeAfter > 0 {
				ctx, cancel := context.WithTimeout(r.Context(), closeAfter)
				go func() { // read (pings, the client's frames) meanwhile
					for {
						if _, _, err := c.Read(ctx); err != nil {
							return
						}
					}
				}()
				<-ctx.Done()
				cancel()
			}
			c.Close(websocket.StatusNormalClosure, "broken on purpose")
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequest(r.Method, s.url()+r.URL.RequestURI(), strings.NewReader(string(body)))
		req.Header = r.Header.Clone()
		req.Host = r.Host // the signature covers the host the client signed for
		resp, err := http.DefaultTransport.RoundTrip(withHost(req, s.addr))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		out := strings.ReplaceAll(string(rb), s.addr, self)
		for k, vs := range resp.Header {
			if k != "Content-Length" {
				w.Header()[k] = vs
			}
		}
		w.WriteHeader(resp.StatusCode)
		io.WriteString(w, out)
	}))
	return "http://" + self, opens, nil
}

// withHost sends req to addr while keeping its Host header.
func withHost(req *http.Request, addr string) *http.Request {
	req.URL.Host = addr
	return req
}
