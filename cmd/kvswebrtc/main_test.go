package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestDispatcher(t *testing.T) {
	if code, _, errOut := runCmd(); code != 2 || !strings.Contains(errOut, "Usage: kvswebrtc <command>") {
		t.Fatalf("no args: %d %q", code, errOut)
	}
	if code, _, errOut := runCmd("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Fatalf("unknown: %d %q", code, errOut)
	}
	code, out, _ := runCmd("help")
	if code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "sign") {
		t.Fatalf("help: %d %q", code, out)
	}
	if code, out, _ := runCmd("help", "sign"); code != 0 || !strings.Contains(out, "--channel-arn") {
		t.Fatalf("help sign: %d %q", code, out)
	}
	if code, out, _ := runCmd("help", "channel"); code != 0 || !strings.Contains(out, "describe") {
		t.Fatalf("help channel: %d %q", code, out)
	}
	if code, out, _ := runCmd("help", "channel", "create"); code != 0 || !strings.Contains(out, "--message-ttl") {
		t.Fatalf("help channel create: %d %q", code, out)
	}
	if code, _, _ := runCmd("serve", "--no-such-flag"); code != 2 {
		t.Fatalf("bad flag: %d", code)
	}
}

// isolateAWS points the AWS default chain at env credentials only.
func isolateAWS(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIA4F7WJQR7FMMWMNXI")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "FakeSecretKey")
	t.Setenv("AWS_SESSION_TOKEN", "FakeSessionToken")
}

func TestSignMatchesSigv4(t *testing.T) {
	isolateAWS(t)
	const arn = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/cam/1700000000000"
	date := time.Date(2019, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ endpoint, clientID string }{
		{"wss://kvs.awsamazon.com", ""},
		{"ws://127.0.0.1:4566", "viewer-1"},
	} {
		code, out, errOut := runCmd("sign", "--endpoint-url", tc.endpoint, "--channel-arn", arn, "--client-id", tc.clientID,
			"--date", date.Format(time.RFC3339))
		if code != 0 {
			t.Fatalf("sign: %d %s", code, errOut)
		}
		p, err := sigv4.New("us-west-2", sigv4.StaticCredentials("AKIA4F7WJQR7FMMWMNXI", "FakeSecretKey", "FakeSessionToken"), sigv4.AllowInsecureEndpoint())
		if err != nil {
			t.Fatal(err)
		}
		q := map[string]string{sigv4.ParamChannelARN: arn}
		if tc.clientID != "" {
			q[sigv4.ParamClientID] = tc.clientID
		}
		want, err := p.PresignURL(context.Background(), tc.endpoint, q, date)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(out) != want {
			t.Fatalf("sign printed\n%s\nwant\n%s", out, want)
		}
	}
}

func TestSignErrors(t *testing.T) {
	isolateAWS(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sign", "--region", "us-west-2"}, 2, "--channel-arn"},
		{[]string{"sign", "--endpoint-url", "ftp://x", "--channel-arn", "arn:aws:kinesisvideo:us-west-2:1:channel/x/1"}, 2, "wss://"},
		{[]string{"sign", "--endpoint-url", "wss://x", "--channel", "name"}, 2, "give the channel's ARN"},
		{[]string{"sign", "--channel-arn", "name"}, 2, "not an ARN"},
		{[]string{"sign", "--endpoint-url", "wss://x", "--channel-arn", "arn:aws:kinesisvideo:us-west-2:1:channel/x/1", "--date", "yesterday"}, 2, "--date"},
	} {
		if code, _, errOut := runCmd(tc.args...); code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d %q, want %d and %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

// TestSignLooksUpTheEndpoint: without a wss:// endpoint, sign asks the
// control plane for the channel's endpoint (by name or ARN) and signs for
// it; the region defaults to the ARN's.
func TestSignLooksUpTheEndpoint(t *testing.T) {
	srv := localForCLI(t)
	arn, err := srv.CreateChannel(context.Background(), "signed")
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"sign", "--channel", "signed", "--endpoint-url", srv.URL()},
		{"sign", "--channel-arn", arn, "--endpoint-url", srv.URL(), "--client-id", "v1", "--output", "json"},
	} {
		code, out, errOut := runCmd(args...)
		if code != 0 || !strings.Contains(out, srv.WSSEndpoint()) || !strings.Contains(out, "X-Amz-Credential="+localkvs.DevAccessKeyID+"%2F") ||
			!strings.Contains(out, "%2Fus-west-2%2Fkinesisvideo%2F") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeAnswersAndStops(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		var errOut syncBuffer
		args := []string{"--addr", "127.0.0.1:0", "--data", dir, "--log-level", "warn"}
		if tlsOn {
			args = append(args, "--tls")
		}
		done := make(chan int, 1)
		go func() {
			done <- runServe(ctx, args, pw, &errOut)
			pw.Close()
		}()

		var endpoint, output string
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			output += line + "\n"
			if f := strings.Fields(line); len(f) > 1 && f[0] == "export" && strings.HasPrefix(f[1], "AWS_ENDPOINT_URL=") {
				endpoint = strings.TrimPrefix(f[1], "AWS_ENDPOINT_URL=")
				if !tlsOn {
					break
				}
			}
			if strings.Contains(line, "AWS_CA_BUNDLE="+filepath.Join(dir, "ca.pem")) {
				break
			}
		}
		go io.Copy(io.Discard, pr)
		if endpoint == "" {
			cancel()
			t.Fatalf("no endpoint printed; output:\n%s\nstderr: %s", output, errOut.String())
		}
		for _, want := range []string{localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, "AWS_REGION=us-west-2"} {
			if !strings.Contains(output, want) {
				t.Errorf("output lacks %q:\n%s", want, output)
			}
		}

		// Talk to it as a user would: the printed endpoint, the printed CA bundle.
		awsCfg := aws.Config{Region: "us-west-2", Credentials: credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, "")}
		if tlsOn {
			awsCfg.HTTPClient = caClient(t, filepath.Join(dir, "ca.pem"))
		}
		kv := kinesisvideo.NewFromConfig(awsCfg, func(o *kinesisvideo.Options) { o.BaseEndpoint = aws.String(endpoint) })
		if _, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("cli")}); err != nil {
			t.Fatalf("tls=%v: CreateSignalingChannel: %v", tlsOn, err)
		}
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("serve exited %d: %s", code, errOut.String())
			}
		case <-time.After(20 * time.Second):
			t.Fatal("serve did not stop on context cancel")
		}
	}
}

func TestServeRefusesRemoteAndBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--addr", "0.0.0.0:0", "--data", ""},
		{"--addr", ":4566", "--data", ""},
		{"--access-key-id", "AKIA", "--data", ""},
		{"--log-level", "loud", "--data", ""},
		{"--region", "Mars", "--addr", "127.0.0.1:0", "--data", ""},
		{"--max-duration", "1s", "--addr", "127.0.0.1:0", "--data", ""},
	} {
		var o, e bytes.Buffer
		if code := runServe(context.Background(), args, &o, &e); code != 2 || e.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, e.String())
		}
	}
	if !isLoopback("[::1]:1") || !isLoopback("localhost:1") || isLoopback("10.0.0.1:1") {
		t.Fatal("isLoopback is wrong")
	}
}

func TestServeCustomKeyNotPrinted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runServe(ctx, []string{"--addr", "127.0.0.1:0", "--data", "", "--access-key-id", "AKIAMINE", "--secret-access-key", "my-real-secret"}, pw, &errOut)
		pw.Close()
	}()
	var output string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		output += sc.Text() + "\n"
		if strings.Contains(sc.Text(), "export AWS_ENDPOINT_URL") {
			break
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	<-done
	if strings.Contains(output+errOut.String(), "my-real-secret") || !strings.Contains(output, "AKIAMINE") {
		t.Fatalf("output:\n%s", output)
	}
}
