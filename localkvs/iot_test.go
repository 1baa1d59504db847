package localkvs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// iotCreds is the credentials object of the provider's answer.
type iotCreds struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	SessionToken    string `json:"sessionToken"`
	Expiration      string `json:"expiration"`
}

// iotClient is an HTTP client presenting a device certificate for thing
// (none when thing is "") and trusting the provider's CA.
func iotClient(t *testing.T, srv *localkvs.Server, thing string) *http.Client {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(srv.IoTCACertPEM()) {
		t.Fatal("IoTCACertPEM holds no certificate")
	}
	cfg := &tls.Config{RootCAs: roots}
	if thing != "" {
		certPEM, keyPEM, err := srv.IssueIoTDeviceCertificate(thing, 0)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: waitTimeout}
}

// getIoT asks the provider for role alias credentials with the thing header.
func getIoT(t *testing.T, srv *localkvs.Server, c *http.Client, method, path, thing string) (int, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+srv.IoTCredentialEndpoint()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if thing != "" {
		req.Header.Set("x-amzn-iot-thingname", thing)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

// TestIoTCredentialsLifecycle: a device certificate buys credentials the
// control plane and the signaling WebSocket accept, with their session
// token only, until they expire; then they are ExpiredTokenException.
func TestIoTCredentialsLifecycle(t *testing.T) {
	srv, clk := startClock(t, localkvs.Config{IoT: localkvs.IoTConfig{Enabled: true, CredentialDuration: 10 * time.Minute}})
	arn := mustCreate(t, srv, "iot")
	status, body, err := getIoT(t, srv, iotClient(t, srv, "cam-1"), http.MethodGet, "/role-aliases/kvs-role/credentials", "cam-1")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET credentials: %d %s %v", status, body, err)
	}
	var r struct{ Credentials iotCreds }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	c := r.Credentials
	exp, err := time.Parse(time.RFC3339, c.Expiration)
	if err != nil || !strings.HasPrefix(c.AccessKeyID, "ASIA") || len(c.AccessKeyID) != 20 || len(c.SecretAccessKey) != 40 ||
		c.SessionToken == "" || exp.Sub(clk.Now()) > 10*time.Minute || exp.Sub(clk.Now()) < 10*time.Minute-time.Second {
		t.Fatalf("credentials %+v (now %s)", c.AccessKeyID, clk.Now())
	}
	if srv.IoTCredentialsIssued() != 1 {
		t.Fatalf("issued %d", srv.IoTCredentialsIssued())
	}

	api := func(token string) error {
		cfg := srv.AWSConfig()
		cfg.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, token)
		_, err := newKVS(cfg).DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("iot")})
		return err
	}
	wsURL := func(token string) string {
		p, err := sigv4.New(srv.Region(), sigv4.StaticCredentials(c.AccessKeyID, c.SecretAccessKey, token), sigv4.AllowInsecureEndpoint())
		if err != nil {
			t.Fatal(err)
		}
		u, err := p.PresignURL(context.Background(), srv.WSSEndpoint(), map[string]string{sigv4.ParamChannelARN: arn}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if err := api(c.SessionToken); err != nil {
		t.Fatalf("the API refused fresh IoT credentials: %v", err)
	}
	conn, _, err := dialErr(srv, wsURL(c.SessionToken))
	if err != nil {
		t.Fatalf("the WebSocket refused fresh IoT credentials: %v", err)
	}
	conn.CloseNow()
	if err := api("another-token"); !isCode(err, "UnrecognizedClientException") {
		t.Fatalf("a wrong session token: %v", err)
	}
	if err := api(""); !isCode(err, "UnrecognizedClientException") {
		t.Fatalf("no session token: %v", err)
	}
	refused(t, srv, wsURL("another-token"), http.StatusForbidden, "UnrecognizedClientException")

	clk.Advance(10 * time.Minute)
	if err := api(c.SessionToken); !isCode(err, "ExpiredTokenException") {
		t.Fatalf("expired credentials on the API: %v", err)
	}
	refused(t, srv, wsURL(c.SessionToken), http.StatusForbidden, "ExpiredTokenException")
	// The configured key pair is unaffected.
	if _, err := devClient(srv).ListSignalingChannels(context.Background(), &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		t.Fatal(err)
	}
}

// TestIoTRefusals: no client certificate, another thing, an unknown role
// alias, a wrong path or method are refused the way AWS IoT does.
func TestIoTRefusals(t *testing.T) {
	srv := start(t, localkvs.Config{IoT: localkvs.IoTConfig{Enabled: true, RoleAliases: []string{"kvs-role"}}})
	dev := iotClient(t, srv, "cam-2")
	if _, _, err := getIoT(t, srv, iotClient(t, srv, ""), http.MethodGet, "/role-aliases/kvs-role/credentials", ""); err == nil {
		t.Fatal("a client without a certificate got through the TLS handshake")
	}
	for _, tc := range []struct {
		method, path, thing string
		status              int
		msg                 string
	}{
		{http.MethodGet, "/role-aliases/kvs-role/credentials", "cam-3", http.StatusForbidden, "not attached to thing cam-3"},
		{http.MethodGet, "/role-aliases/other/credentials", "cam-2", http.StatusNotFound, "Role alias other does not exist"},
		{http.MethodGet, "/role-aliases/kvs-role", "", http.StatusNotFound, "/role-aliases/<role-alias>/credentials"},
		{http.MethodPost, "/role-aliases/kvs-role/credentials", "", http.StatusMethodNotAllowed, "GET"},
		{http.MethodGet, "/role-aliases/kvs-role/credentials", "bad thing!", http.StatusBadRequest, "invalid thing name"},
	} {
		status, body, err := getIoT(t, srv, dev, tc.method, tc.path, tc.thing)
		var e struct{ Message string }
		if err != nil || status != tc.status || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s %s (thing %q): %d %s %v, want %d %q", tc.method, tc.path, tc.thing, status, body, err, tc.status, tc.msg)
		}
	}
	// Without the header any thing's certificate is accepted.
	if status, body, _ := getIoT(t, srv, dev, http.MethodGet, "/role-aliases/kvs-role/credentials", ""); status != http.StatusOK {
		t.Fatalf("no thing header: %d %s", status, body)
	}
	if srv.IoTCredentialsIssued() != 1 {
		t.Fatalf("issued %d, want 1", srv.IoTCredentialsIssued())
	}
}

// TestIoTDeviceCAPersists: with DataDir the device CA is written there
// (its key readable by the owner only) and reused by the next server.
func TestIoTDeviceCAPersists(t *testing.T) {
	dir := t.TempDir()
	cfg := localkvs.Config{DataDir: dir, IoT: localkvs.IoTConfig{Enabled: true}}
	a := start(t, cfg)
	ca := a.IoTDeviceCACertPEM()
	a.Close()
	b := start(t, cfg)
	if string(b.IoTDeviceCACertPEM()) != string(ca) {
		t.Fatal("the second server made a new device CA")
	}
	onDisk, err := os.ReadFile(filepath.Join(dir, "iot-ca.pem"))
	if err != nil || string(onDisk) != string(ca) {
		t.Fatalf("iot-ca.pem: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "iot-ca-key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("iot-ca-key.pem: %v %v", fi.Mode(), err)
	}
	if pem, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); string(pem) != string(b.IoTCACertPEM()) {
		t.Fatal("the endpoint's CA is not DataDir/ca.pem")
	}
}

func TestIoTConfigErrors(t *testing.T) {
	for name, iot := range map[string]localkvs.IoTConfig{
		"short duration": {Enabled: true, CredentialDuration: 500 * time.Millisecond},
		"long duration":  {Enabled: true, CredentialDuration: 13 * time.Hour},
		"bad alias":      {Enabled: true, RoleAliases: []string{"a/b"}},
		"bad addr":       {Enabled: true, Addr: "nowhere"},
	} {
		if _, err := localkvs.New(localkvs.Config{IoT: iot}); !errors.Is(err, localkvs.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	srv := start(t, localkvs.Config{})
	if _, _, err := srv.IssueIoTDeviceCertificate("x", 0); err == nil || srv.IoTCredentialEndpoint() != "" {
		t.Fatal("IoT off, yet a certificate or an endpoint")
	}
	on := start(t, localkvs.Config{IoT: localkvs.IoTConfig{Enabled: true}})
	if _, _, err := on.IssueIoTDeviceCertificate("a b", 0); !errors.Is(err, localkvs.ErrInvalidArgument) {
		t.Fatalf("bad thing name: %v", err)
	}
}
