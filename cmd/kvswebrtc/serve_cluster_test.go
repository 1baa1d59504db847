package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// docClusterCommands returns the serve command lines of docs/cluster.md's
// "Three nodes on a laptop", as argument lists after "kvswebrtc serve".
func docClusterCommands(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../docs/cluster.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "## Three nodes on a laptop")
	section, _, _ = strings.Cut(section, "\n#")
	var out [][]string
	for _, line := range strings.Split(section, "\n") {
		if rest, ok := strings.CutPrefix(line, "kvswebrtc serve "); ok {
			out = append(out, strings.Fields(rest))
		}
	}
	return out
}

// TestClusterDocCommands runs docs/cluster.md's three commands (route
// ports moved to 14631-14633, the service on free ports, data in
// temporary directories): the three nodes become ready, a channel created
// on the first is described on the third, and each stops cleanly.
func TestClusterDocCommands(t *testing.T) {
	cmds := docClusterCommands(t)
	if len(cmds) != 3 {
		t.Fatalf("docs/cluster.md has %d serve commands, want 3", len(cmds))
	}
	ports := strings.NewReplacer("127.0.0.1:6222", "127.0.0.1:14631", "127.0.0.1:6223", "127.0.0.1:14632", "127.0.0.1:6224", "127.0.0.1:14633")
	type node struct {
		cancel   context.CancelFunc
		done     chan int
		endpoint string
		stderr   *syncBuffer
	}
	var nodes []*node
	for _, args := range cmds {
		args = append([]string(nil), args...)
		for i := range args {
			args[i] = ports.Replace(args[i])
			if i > 0 && args[i-1] == "--addr" {
				args[i] = "127.0.0.1:0"
			}
			if i > 0 && args[i-1] == "--data" {
				args[i] = t.TempDir()
			}
		}
		args = append(args, "--log-level", "warn")
		ctx, cancel := context.WithCancel(context.Background())
		n := &node{cancel: cancel, done: make(chan int, 1), stderr: &syncBuffer{}}
		pr, pw := io.Pipe()
		go func() {
			n.done <- runServe(ctx, args, pw, n.stderr)
			pw.Close()
		}()
		sc := bufio.NewScanner(pr)
		var output string
		for sc.Scan() {
			output += sc.Text() + "\n"
			if f := strings.Fields(sc.Text()); len(f) > 1 && f[0] == "export" && strings.HasPrefix(f[1], "AWS_ENDPOINT_URL=") {
				n.endpoint = strings.TrimPrefix(f[1], "AWS_ENDPOINT_URL=")
				break
			}
		}
		go io.Copy(io.Discard, pr)
		if n.endpoint == "" {
			cancel()
			t.Fatalf("serve %v printed no endpoint:\n%s\nstderr: %s", args, output, n.stderr.String())
		}
		t.Cleanup(cancel)
		nodes = append(nodes, n)
	}
	deadline := time.Now().Add(90 * time.Second)
	for _, n := range nodes {
		for {
			resp, err := http.Get(n.endpoint + "/readyz")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 && bytes.HasPrefix(body, []byte("ready")) {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s/readyz never answered 200 (%v); stderr: %s", n.endpoint, err, n.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	client := func(endpoint string) *kinesisvideo.Client {
		return kinesisvideo.NewFromConfig(aws.Config{Region: "us-west-2",
			Credentials: credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, "")},
			func(o *kinesisvideo.Options) { o.BaseEndpoint = aws.String(endpoint) })
	}
	ctx := context.Background()
	if _, err := client(nodes[0].endpoint).CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("doc.demo")}); err != nil {
		t.Fatalf("create on the first node: %v", err)
	}
	d, err := client(nodes[2].endpoint).DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("doc.demo")})
	if err != nil || aws.ToString(d.ChannelInfo.ChannelName) != "doc.demo" {
		t.Fatalf("describe on the third node: %v", err)
	}
	for i, n := range nodes {
		n.cancel()
		select {
		case code := <-n.done:
			if code != 0 {
				t.Fatalf("node %d exited %d: %s", i, code, n.stderr.String())
			}
			if !strings.Contains(n.stderr.String(), "left the cluster") {
				t.Errorf("node %d: stderr %q does not say it left the cluster", i, n.stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("node %d did not stop", i)
		}
	}
}

// TestServeClusterFlags: cluster flags without a cluster, and remote route
// addresses without --allow-remote, are refused.
func TestServeClusterFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--addr", "127.0.0.1:0", "--data", "", "--routes", "127.0.0.1:1"},
		{"--addr", "127.0.0.1:0", "--data", "", "--cluster-listen", "127.0.0.1:1"},
		{"--addr", "127.0.0.1:0", "--data", "", "--cluster-name", "x", "--cluster-listen", "10.1.2.3:6222"},
		{"--addr", "127.0.0.1:0", "--data", "", "--cluster-name", "x"},
		{"--addr", "127.0.0.1:0", "--data", "", "--cluster-name", "x", "--cluster-listen", "127.0.0.1:1", "--nats", "nats://127.0.0.1:1"},
		{"--addr", "127.0.0.1:0", "--data", "", "--nats-creds", "/nonexistent"},
	} {
		var o, e bytes.Buffer
		if code := runServe(context.Background(), args, &o, &e); code != 2 || e.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, e.String())
		}
	}
	if got := redactNATS("nats://user:pass@h:4222,nats://h2:4222"); got != "nats://h:4222,nats://h2:4222" {
		t.Fatalf("redactNATS: %s", got)
	}
}
