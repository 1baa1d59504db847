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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/bench/internal/procfs"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
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

// rssKiB is VmRSS of process pid in KiB (0 when unread).
func rssKiB(pid int) int64 {
	rss, _, _ := procfs.MemKiB(pid)
	return rss
}

// fdCount is how many files process pid has open (0 when unread).
func fdCount(pid int) int {
	n, _ := procfs.FDs(pid)
	return n
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
