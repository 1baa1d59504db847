package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// TestServeDamagedStore (issue 13, defect 8): serve on a damaged store exits
// with an error naming the file and the way out, not a Go stack trace;
// serve --repair keeps what can be read and serves.
func TestServeDamagedStore(t *testing.T) {
	dir := t.TempDir()
	srv, err := localkvs.New(localkvs.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := srv.CreateChannel(context.Background(), fmt.Sprintf("cam-%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Close()
	path := filepath.Join(dir, "channels.db")
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)/2], 0o600); err != nil { // truncated
		t.Fatal(err)
	}

	env := cleanEnv(t)
	p := startBin(t, env, "", "serve", "--addr", "127.0.0.1:0", "--data", dir)
	if code := p.wait(30 * time.Second); code != 1 {
		t.Fatalf("serve on a truncated store exited %d, want 1\nstderr:\n%s", code, p.err.String())
	}
	stderr := p.err.String()
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic") {
		t.Fatalf("serve printed a stack trace:\n%s", stderr)
	}
	for _, want := range []string{path, "damaged", "--repair", "mv "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the error does not say %q:\n%s", want, stderr)
		}
	}

	p, env = startServe(t, env, "--data", dir, "--repair")
	if !regexp.MustCompile(`--repair: \S+ rebuilt with \d+ channel`).MatchString(p.err.String()) {
		t.Errorf("serve --repair did not say what it kept:\n%s", p.err.String())
	}
	kv := kinesisvideo.NewFromConfig(aws.Config{
		Region:       envValue(env, "AWS_REGION"),
		BaseEndpoint: aws.String(envValue(env, "AWS_ENDPOINT_URL")),
		Credentials:  credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
	})
	out, err := kv.ListSignalingChannels(context.Background(), &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil {
		t.Fatalf("list after the repair: %v", err)
	}
	if len(out.ChannelInfoList) == 0 {
		t.Error("no channel kept of a half-truncated store")
	}
	t.Logf("kept %d of 200 channels; %s", len(out.ChannelInfoList), strings.TrimSpace(p.err.String()))
	if p.stop(os.Interrupt) != 0 {
		t.Errorf("serve exited non-zero:\n%s", p.err.String())
	}
	matches, _ := filepath.Glob(path + ".damaged-*")
	if len(matches) != 1 {
		t.Errorf("damaged copies %v, want one", matches)
	}
}

// TestServeSecretNotOnCommandLine (issue 13, item 9): the secret of
// --access-key-id comes from a file or the environment, so that it is not
// in the process list; on the command line it still works, with a warning.
func TestServeSecretNotOnCommandLine(t *testing.T) {
	const akid, secret = "AKIDSECURETEST", "s3cr3t-from-elsewhere"
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte(secret+"\n"), 0o600)
	for _, how := range []string{"file", "env", "flag"} {
		t.Run(how, func(t *testing.T) {
			env := cleanEnv(t)
			args := []string{"--data", "", "--access-key-id", akid}
			switch how {
			case "file":
				args = append(args, "--secret-access-key-file", file)
			case "env":
				env = append(env, secretEnv+"="+secret)
			case "flag":
				args = append(args, "--secret-access-key", secret)
			}
			p, env := startServe(t, env, args...)
			if how == "flag" != strings.Contains(p.err.String(), "visible to every user") {
				t.Errorf("%s: warning about the process list: %v\n%s", how, !strings.Contains(p.err.String(), "visible"), p.err.String())
			}
			if strings.Contains(p.out.String(), secret) || strings.Contains(p.err.String(), secret) {
				t.Errorf("%s: serve printed the secret", how)
			}
			kv := kinesisvideo.NewFromConfig(aws.Config{
				Region:       envValue(env, "AWS_REGION"),
				BaseEndpoint: aws.String(envValue(env, "AWS_ENDPOINT_URL")),
				Credentials:  credentials.NewStaticCredentialsProvider(akid, secret, ""),
			})
			if _, err := kv.ListSignalingChannels(context.Background(), &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
				t.Errorf("%s: a call signed with the secret: %v", how, err)
			}
			p.stop(os.Interrupt)
		})
	}
	// A key id without its secret is a usage error.
	cmd := exec.Command(kvsBinary(t), "serve", "--addr", "127.0.0.1:0", "--data", "", "--access-key-id", akid)
	cmd.Env = cleanEnv(t)
	out, _ := cmd.CombinedOutput()
	if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "needs its secret") {
		t.Errorf("--access-key-id alone: exit %d\n%s", cmd.ProcessState.ExitCode(), out)
	}
}

// TestServeKill9KeepsAcknowledgedChannels (what held, issue 13): every
// channel whose CreateSignalingChannel was answered is there after
// `kill -9` of serve, and a second serve on the same data dir fails at once
// with a clear error while the first runs.
func TestServeKill9KeepsAcknowledgedChannels(t *testing.T) {
	dir := t.TempDir()
	env := cleanEnv(t)
	p, penv := startServe(t, env, "--data", dir)
	kv := kinesisvideo.NewFromConfig(aws.Config{
		Region:       envValue(penv, "AWS_REGION"),
		BaseEndpoint: aws.String(envValue(penv, "AWS_ENDPOINT_URL")),
		Credentials:  credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
	})
	acked := 0
	for i := 0; i < 50; i++ {
		if _, err := kv.CreateSignalingChannel(context.Background(), &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String(fmt.Sprintf("k9-%02d", i))}); err != nil {
			t.Fatal(err)
		}
		acked++
	}

	second := startBin(t, env, "", "serve", "--addr", "127.0.0.1:0", "--data", dir)
	start := time.Now()
	if code := second.wait(15 * time.Second); code == 0 {
		t.Fatalf("a second serve on the same data dir exited 0")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the second serve took %s to fail", d)
	}
	if !strings.Contains(second.err.String(), "in use by another process") || !strings.Contains(second.err.String(), dir) {
		t.Errorf("the second serve's error does not say the store is in use:\n%s", second.err.String())
	}

	p.cmd.Process.Kill() // kill -9
	p.wait(10 * time.Second)
	_, penv = startServe(t, env, "--data", dir)
	kv = kinesisvideo.NewFromConfig(aws.Config{
		Region:       envValue(penv, "AWS_REGION"),
		BaseEndpoint: aws.String(envValue(penv, "AWS_ENDPOINT_URL")),
		Credentials:  credentials.NewStaticCredentialsProvider(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
	})
	out, err := kv.ListSignalingChannels(context.Background(), &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.ChannelInfoList) != acked {
		t.Fatalf("%d channels after kill -9, want the %d acknowledged", len(out.ChannelInfoList), acked)
	}
}
