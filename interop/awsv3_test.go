package interop_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// TestAWSSDKForJavaScriptV3 runs every control-plane operation and
// GetIceServerConfig through the AWS SDK for JavaScript v3 against the local
// service with TLS: a client nobody here wrote, with its own signer and
// (de)serializers.
func TestAWSSDKForJavaScriptV3(t *testing.T) {
	e := setup(t)
	cmd := exec.Command("node", "awsv3.mjs")
	cmd.Env = append(os.Environ(),
		"KVS_ENDPOINT_URL="+e.srv.URL(),
		"KVS_CHANNEL_NAME=jsv3-channel",
		"AWS_REGION="+e.srv.Region(),
		"AWS_ACCESS_KEY_ID="+localkvs.DevAccessKeyID,
		"AWS_SECRET_ACCESS_KEY="+localkvs.DevSecretAccessKey,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"NODE_EXTRA_CA_CERTS="+e.caFile,
		"NODE_NO_WARNINGS=1",
	)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	outb, err := cmd.Output()
	if err != nil {
		t.Fatalf("node awsv3.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, outb, stderr.String())
	}
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
		got, ok := steps[step]
		if !ok {
			t.Fatalf("step %q missing; output:\n%s", step, outb)
		}
		b1, _ := json.Marshal(got[key])
		b2, _ := json.Marshal(v)
		if !bytes.Equal(b1, b2) {
			t.Errorf("%s.%s = %s, want %s", step, key, b1, b2)
		}
	}
	arn, _ := steps["create"]["arn"].(string)
	if len(arn) == 0 || arn[:len("arn:aws:kinesisvideo:us-west-2:000000000000:channel/jsv3-channel/")] != "arn:aws:kinesisvideo:us-west-2:000000000000:channel/jsv3-channel/" {
		t.Fatalf("create: ARN %q", arn)
	}
	want("describe", "status", "ACTIVE")
	want("describe", "ttl", 30)
	want("describe", "created", true)
	want("describeByARN", "name", "jsv3-channel")
	want("endpoint", "WSS", e.srv.WSSEndpoint())
	want("endpoint", "HTTPS", e.srv.URL())
	want("list", "names", []string{"jsv3-channel"})
	want("update", "ttl", 90)
	want("tags", "tags", map[string]string{"env": "test"})
	want("ice", "servers", 1)
	want("ice", "ttl", 300)
	want("ice", "hasCredentials", true)
	if uris, _ := steps["ice"]["uris"].([]any); !slices.ContainsFunc(uris, func(u any) bool { s, _ := u.(string); return len(s) > 5 && s[:5] == "turn:" }) {
		t.Errorf("ice: no turn: URI in %v", uris)
	}
	want("notFound", "error", "ResourceNotFoundException")
	want("notFound", "status", 404)
	want("inUse", "error", "ResourceInUseException")
	want("delete", "step", "delete")
}
