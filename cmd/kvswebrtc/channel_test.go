package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

func TestChannelCommands(t *testing.T) {
	isolateAWS(t)
	// The local service's own key pair, as a user pastes from `serve`.
	t.Setenv("AWS_ACCESS_KEY_ID", localkvs.DevAccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", localkvs.DevSecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ep := "--endpoint-url=" + srv.URL()

	code, out, errOut := runCmd("channel", "create", ep, "--message-ttl", "30s", "cli-demo")
	if code != 0 || !strings.HasPrefix(out, "arn:aws:kinesisvideo:us-west-2:000000000000:channel/cli-demo/") {
		t.Fatalf("create: %d %q %q", code, out, errOut)
	}
	arn := strings.TrimSpace(out)
	if code, _, errOut := runCmd("channel", "create", ep, "cli-demo"); code != 1 || !strings.Contains(errOut, "ResourceInUse") {
		t.Fatalf("create twice: %d %q", code, errOut)
	}
	runCmd("channel", "create", ep, "other")

	code, out, _ = runCmd("channel", "describe", ep, "--json", arn)
	var res struct {
		ChannelInfo struct {
			ChannelName               string
			SingleMasterConfiguration struct{ MessageTtlSeconds int }
		}
	}
	info := &res.ChannelInfo
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || info.ChannelName != "cli-demo" || info.SingleMasterConfiguration.MessageTtlSeconds != 30 {
		t.Fatalf("describe: %d %q", code, out)
	}
	code, out, _ = runCmd("channel", "list", ep, "--prefix", "cli")
	if code != 0 || !strings.Contains(out, "cli-demo") || strings.Contains(out, "other") {
		t.Fatalf("list --prefix: %d %q", code, out)
	}
	if code, out, _ := runCmd("channel", "delete", ep, "cli-demo"); code != 0 || !strings.Contains(out, arn) {
		t.Fatalf("delete: %d %q", code, out)
	}
	if code, _, errOut := runCmd("channel", "describe", ep, "cli-demo"); code != 1 || !strings.Contains(errOut, "ResourceNotFound") {
		t.Fatalf("describe deleted: %d %q", code, errOut)
	}
}

func TestChannelUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"channel"}, "missing subcommand"},
		{[]string{"channel", "rename", "x"}, `unknown subcommand "rename"`},
		{[]string{"channel", "create"}, "missing channel name"},
		{[]string{"channel", "create", "arn:aws:kinesisvideo:us-west-2:1:channel/x/1"}, "not an ARN"},
		{[]string{"channel", "create", "--message-ttl", "1s", "x"}, "between 5s and 120s"},
		{[]string{"channel", "list", "x"}, "use --prefix"},
		{[]string{"channel", "describe", "--endpoint-url", "ftp://x", "x"}, "not an http"},
	} {
		code, _, errOut := runCmd(tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: %d %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestLoopbackFallsBackToDevKey: with no credentials anywhere, a loopback
// endpoint uses the local service's development key pair.
func TestLoopbackFallsBackToDevKey(t *testing.T) {
	isolateAWS(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	code, _, errOut := runCmd("channel", "list", "--endpoint-url", srv.URL())
	if code != 0 || !strings.Contains(errOut, "development key") {
		t.Fatalf("%d %q", code, errOut)
	}
}
