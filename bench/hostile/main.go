// Command hostile runs the attacks of the hostile-input audit (issue 13)
// against a `kvswebrtc serve` (and a `kvswebrtc viewer`) it starts, and
// measures what they cost the victim: its memory (RSS), file descriptors,
// open connections, log bytes, reconnects. Run it against two builds to
// compare, as docs/security.md does:
//
//	go build -o /tmp/kvs-after ./cmd/kvswebrtc
//	git worktree add /tmp/before 967bdf7 && (cd /tmp/before && go build -o /tmp/kvs-before ./cmd/kvswebrtc)
//	go run ./bench/hostile -bin /tmp/kvs-before
//	go run ./bench/hostile -bin /tmp/kvs-after
//	go run ./bench/hostile -bin /tmp/kvs-after -only pending,viewer
//
// Each attack runs on a fresh serve (memory store, no TURN). The figures
// are printed as a table; -json writes them too.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// result is one measured line.
type result struct {
	Attack string `json:"attack"`
	What   string `json:"what"`
	Value  string `json:"value"`
}

var (
	bin     = flag.String("bin", "", "kvswebrtc binary to attack")
	only    = flag.String("only", "", "comma-separated attacks to run (default all): bodies, trickle, keepalive, fdlimit, pending, logflood, viewer")
	jsonOut = flag.String("json", "", "also write the results here")
	results []result
)

func record(attack, what, format string, a ...any) {
	r := result{attack, what, fmt.Sprintf(format, a...)}
	results = append(results, r)
	log.Printf("%s: %s: %s", attack, what, r.Value)
}

func main() {
	log.SetFlags(log.Ltime)
	flag.Parse()
	if *bin == "" {
		log.Fatal("-bin is required (a kvswebrtc binary)")
	}
	attacks := []struct {
		name string
		run  func() error
	}{
		{"bodies", attackBodies}, {"trickle", attackTrickle}, {"keepalive", attackKeepAlive},
		{"fdlimit", attackFDLimit}, {"pending", attackPending}, {"logflood", attackLogFlood}, {"viewer", attackViewer},
	}
	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n != "" {
			want[n] = true
		}
	}
	for _, a := range attacks {
		if len(want) > 0 && !want[a.name] {
			continue
		}
		log.Printf("=== %s", a.name)
		if err := a.run(); err != nil {
			record(a.name, "error", "%v", err)
		}
	}
	fmt.Printf("\n| attack | measured | value |\n| --- | --- | --- |\n")
	for _, r := range results {
		fmt.Printf("| %s | %s | %s |\n", r.Attack, r.What, r.Value)
	}
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		os.WriteFile(*jsonOut, b, 0o644)
	}
}

// serve is a running `kvswebrtc serve`.
type serve struct {
	cmd  *exec.Cmd
	addr string
	logs *countingWriter
	dir  string
}

type countingWriter struct {
	n     atomic.Int64
	lines atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	w.lines.Add(int64(strings.Count(string(p), "\n")))
	return len(p), nil
}

// startServe starts serve on a free port; with nofile > 0 under that limit
// of file descriptors (soft and hard).
func startServe(nofile int, extra ...string) (*serve, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	dir, _ := os.MkdirTemp("", "hostile-")
	args := append([]string{"serve", "--addr", addr, "--data", "", "--no-turn", "--log-level", "info"}, extra...)
	var cmd *exec.Cmd
	if nofile > 0 {
		cmd = exec.Command("sh", append([]string{"-c", fmt.Sprintf("ulimit -n %d && exec \"$0\" \"$@\"", nofile), *bin}, args...)...)
	} else {
		cmd = exec.Command(*bin, args...)
	}
	s := &serve{cmd: cmd, addr: addr, logs: &countingWriter{}, dir: dir}
	cmd.Stdout, cmd.Stderr = io.Discard, s.logs
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL=")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			time.Sleep(200 * time.Millisecond)
			return s, nil
		}
	}
	s.stop()
	return nil, fmt.Errorf("serve did not start")
}

func (s *serve) stop() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
	os.RemoveAll(s.dir)
}

func (s *serve) url() string { return "http://" + s.addr }

func (s *serve) rssMB() float64 { return float64(rssKiB(s.cmd.Process.Pid)) / 1024 }
func (s *serve) fds() int       { return fdCount(s.cmd.Process.Pid) }

func rssKiB(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func fdCount(pid int) int {
	e, _ := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	return len(e)
}

func (s *serve) kv() *kinesisvideo.Client {
	return kinesisvideo.NewFromConfig(aws.Config{
		Region: localkvs.DefaultRegion, BaseEndpoint: aws.String(s.url()),
		Credentials: credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second},
	}, func(o *kinesisvideo.Options) { o.RetryMaxAttempts = 1 })
}

// signedHeaders returns the headers of a dev-key signed POST of body to path.
func signedHeaders(s *serve, path string, body []byte) http.Header {
	req, _ := http.NewRequest("POST", s.url()+path, strings.NewReader(string(body)))
	h := sha256.Sum256(body)
	v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: localkvs.DevAccessKeyID, SecretAccessKey: localkvs.DevSecretAccessKey},
		req, hex.EncodeToString(h[:]), "kinesisvideo", localkvs.DefaultRegion, time.Now())
	return req.Header
}

// openConns dials n connections to addr and writes head to each (in
// parallel, a few at a time); it returns those that are open.
func openConns(addr string, n int, head func(i int) string) []net.Conn {
	var mu sync.Mutex
	var out []net.Conn
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			if h := head(i); h != "" {
				c.SetWriteDeadline(time.Now().Add(20 * time.Second))
				if _, err := io.WriteString(c, h); err != nil {
					c.Close()
					return
				}
			}
			mu.Lock()
			out = append(out, c)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	return out
}

// stillOpen counts the connections the server has not closed: a read with
// a short deadline that times out means open.
func stillOpen(conns []net.Conn) int {
	n := 0
	buf := make([]byte, 4096)
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		for {
			_, err := c.Read(buf)
			if err == nil {
				continue
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				n++
			}
			break
		}
	}
	return n
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

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

var _ = filepath.Join
