package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// TestJoinStorageSessionJSv3 calls JoinStorageSession with the AWS SDK for
// JavaScript v3 (@aws-sdk/client-kinesis-video-webrtc-storage) on the local
// service with TLS: a 200, then the media server's SDP offer (no sender
// client id, H.264 and Opus to receive) reaches the channel's master over
// signaling; on a channel without media storage, on a missing channel and as
// a viewer, the documented errors.
func TestJoinStorageSessionJSv3(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	e.recordInto(t, "interop")
	plain, err := e.srv.CreateChannel(ctx, "interop-plain")
	if err != nil {
		t.Fatal(err)
	}
	_, events := e.goClient(t, signaling.RoleMaster, "")

	outb := e.runAWSv3(t, context.Background(), "storage.mjs", "KVS_CHANNEL_ARN="+e.arn, "KVS_PLAIN_ARN="+plain)
	steps := map[string]map[string]any{}
	sc := bufio.NewScanner(bytes.NewReader(outb))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		steps[m["step"].(string)] = m
	}
	want := func(step, key string, v any) {
		t.Helper()
		b1, _ := json.Marshal(steps[step][key])
		b2, _ := json.Marshal(v)
		if !bytes.Equal(b1, b2) {
			t.Errorf("%s.%s = %s, want %s (output:\n%s)", step, key, b1, b2, outb)
		}
	}
	want("endpoint", "endpoint", e.srv.URL())
	want("endpointNoStorage", "error", "InvalidArgumentException")
	want("join", "status", 200)
	want("joinNoStorage", "error", "InvalidArgumentException")
	want("joinNoStorage", "status", 400)
	want("joinMissing", "error", "ResourceNotFoundException")
	want("joinMissing", "status", 404)
	want("joinAsViewer", "error", nil) // the master's storage session takes viewers

	offer := nextGo(t, events, "offer")
	if offer.sender != "" {
		t.Errorf("the media server's offer came from %q, want no sender client id", offer.sender)
	}
	for _, s := range []string{"m=video", "H264/90000", "m=audio", "opus/48000", "a=recvonly"} {
		if !strings.Contains(offer.sdp.SDP, s) {
			t.Errorf("the media server's offer lacks %q", s)
		}
	}
	if strings.Contains(offer.sdp.SDP, "m=application") {
		t.Error("the media server's offer has a data channel")
	}
}

// recordInto creates the stream and makes it the media storage of the
// env's channel.
func (e env) recordInto(t *testing.T, stream string) {
	t.Helper()
	ctx := context.Background()
	kv := kinesisvideo.NewFromConfig(e.srv.AWSConfig())
	st, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(stream), DataRetentionInHours: aws.Int32(24)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
		ChannelARN:                aws.String(e.arn),
		MediaStorageConfiguration: &types.MediaStorageConfiguration{Status: types.MediaStorageConfigurationStatusEnabled, StreamARN: st.StreamARN},
	}); err != nil {
		t.Fatal(err)
	}
}

// runAWSv3 runs a Node script of the AWS SDK for JavaScript v3 against the
// env's service (its endpoint, the development keys, its CA, nothing from
// the user's AWS files), with the extra environment, and returns what it
// printed; it fails t if the script fails.
func (e env) runAWSv3(t *testing.T, ctx context.Context, script string, extra ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Env = append(os.Environ(),
		"KVS_ENDPOINT_URL="+e.srv.URL(),
		"AWS_REGION="+e.srv.Region(), "AWS_ACCESS_KEY_ID="+localkvs.DevAccessKeyID, "AWS_SECRET_ACCESS_KEY="+localkvs.DevSecretAccessKey,
		"AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"NODE_EXTRA_CA_CERTS="+e.caFile, "NODE_NO_WARNINGS=1",
	)
	cmd.Env = append(cmd.Env, extra...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, err, out, stderr.String())
	}
	return out
}
