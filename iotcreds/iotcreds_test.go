package iotcreds_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/iotcreds"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// iotServer starts a local service with the IoT credentials provider on.
func iotServer(t *testing.T, iot localkvs.IoTConfig) *localkvs.Server {
	t.Helper()
	iot.Enabled = true
	srv, err := localkvs.Start(localkvs.Config{IoT: iot, TURN: localkvs.TURNConfig{Disabled: true}}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// device returns a Config for thing with a certificate of srv's device CA.
func device(t *testing.T, srv *localkvs.Server, thing string) iotcreds.Config {
	t.Helper()
	certPEM, keyPEM, err := srv.IssueIoTDeviceCertificate(thing, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(srv.IoTCACertPEM())
	return iotcreds.Config{Endpoint: srv.IoTCredentialEndpoint(), RoleAlias: "kvs-camera", ThingName: thing, Certificate: cert, RootCAs: roots}
}

// TestRetrieveAndUse: the device certificate buys temporary credentials
// that the service accepts.
func TestRetrieveAndUse(t *testing.T) {
	srv := iotServer(t, localkvs.IoTConfig{CredentialDuration: 20 * time.Minute})
	ctx := context.Background()
	p, err := iotcreds.New(device(t, srv, "cam-1"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.SecretAccessKey == "" || c.SessionToken == "" || !c.CanExpire ||
		c.Expires.Before(time.Now().Add(19*time.Minute)) || c.Expires.After(time.Now().Add(21*time.Minute)) {
		t.Fatalf("credentials %s, expires %s", c.AccessKeyID, c.Expires)
	}
	cfg := srv.AWSConfig()
	cfg.Credentials = aws.NewCredentialsCache(p)
	if _, err := kinesisvideo.NewFromConfig(cfg).ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
		t.Fatalf("the service refused the IoT credentials: %v", err)
	}
	if n := srv.IoTCredentialsIssued(); n != 2 {
		t.Fatalf("issued %d times, want 2", n)
	}
}

// TestFiles: the certificate, key and CA are read from PEM files, as the
// C SDK's samples take them; the endpoint may be an https:// URL.
func TestFiles(t *testing.T) {
	srv := iotServer(t, localkvs.IoTConfig{})
	dir := t.TempDir()
	certPEM, keyPEM, err := srv.IssueIoTDeviceCertificate("cam-files", 0)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := iotcreds.Config{
		Endpoint:  "https://" + srv.IoTCredentialEndpoint(),
		RoleAlias: "kvs-camera",
		CertFile:  write("cert.pem", certPEM),
		KeyFile:   write("key.pem", keyPEM),
		CAFile:    write("ca.pem", srv.IoTCACertPEM()),
	}
	creds, err := iotcreds.NewCache(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := creds.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRefusals: a wrong thing, an unknown role alias and a certificate of
// another CA are refused, and no error holds a secret.
func TestRefusals(t *testing.T) {
	srv := iotServer(t, localkvs.IoTConfig{RoleAliases: []string{"kvs-camera"}})
	other := iotServer(t, localkvs.IoTConfig{})
	ctx := context.Background()
	_, keyPEM, _ := srv.IssueIoTDeviceCertificate("x", 0)

	check := func(name string, cfg iotcreds.Config, status int) {
		t.Helper()
		p, err := iotcreds.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Retrieve(ctx)
		var se *iotcreds.ServiceError
		switch {
		case err == nil:
			t.Errorf("%s: no error", name)
		case status != 0 && (!errors.As(err, &se) || se.StatusCode != status):
			t.Errorf("%s: %v, want status %d", name, err, status)
		case status == 0 && errors.As(err, &se):
			t.Errorf("%s: %v, want a TLS error", name, err)
		case strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(keyPEM[40:80])):
			t.Errorf("%s: the error holds key material: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	cfg := device(t, srv, "cam-2")
	cfg.ThingName = "cam-3"
	check("another thing", cfg, http.StatusForbidden)
	cfg = device(t, srv, "cam-2")
	cfg.RoleAlias = "admin"
	check("unknown role alias", cfg, http.StatusNotFound)
	cfg = device(t, other, "cam-2") // signed by the other server's device CA
	cfg.Endpoint, cfg.RootCAs = srv.IoTCredentialEndpoint(), device(t, srv, "cam-2").RootCAs
	check("foreign certificate", cfg, 0)
	cfg = device(t, srv, "cam-2")
	cfg.RootCAs = x509.NewCertPool() // does not trust the endpoint
	check("untrusted endpoint", cfg, 0)
}

func TestConfigErrors(t *testing.T) {
	srv := iotServer(t, localkvs.IoTConfig{})
	good := device(t, srv, "cam-4")
	for name, mod := range map[string]func(*iotcreds.Config){
		"no endpoint":    func(c *iotcreds.Config) { c.Endpoint = "" },
		"http endpoint":  func(c *iotcreds.Config) { c.Endpoint = "http://x" },
		"endpoint path":  func(c *iotcreds.Config) { c.Endpoint = "https://x/role-aliases" },
		"no role alias":  func(c *iotcreds.Config) { c.RoleAlias = "" },
		"bad role alias": func(c *iotcreds.Config) { c.RoleAlias = "a/b" },
		"bad thing":      func(c *iotcreds.Config) { c.ThingName = "a b" },
		"no certificate": func(c *iotcreds.Config) { c.Certificate = tls.Certificate{} },
		"missing files": func(c *iotcreds.Config) {
			c.Certificate, c.CertFile, c.KeyFile = tls.Certificate{}, "/nonexistent/c", "/nonexistent/k"
		},
		"missing CA file":  func(c *iotcreds.Config) { c.RootCAs, c.CAFile = nil, "/nonexistent/ca" },
		"negative timeout": func(c *iotcreds.Config) { c.Timeout = -1 },
	} {
		cfg := good
		mod(&cfg)
		if _, err := iotcreds.New(cfg); !errors.Is(err, iotcreds.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestCacheRenewsBeforeExpiry: with 4 s credentials the cache renews them
// halfway (not on every call, not after they expired), and each set works.
func TestCacheRenewsBeforeExpiry(t *testing.T) {
	srv := iotServer(t, localkvs.IoTConfig{CredentialDuration: 4 * time.Second})
	creds, err := iotcreds.NewCache(device(t, srv, "cam-5"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := srv.AWSConfig()
	cfg.Credentials = creds
	kv := kinesisvideo.NewFromConfig(cfg)
	ctx := context.Background()
	keys := map[string]bool{}
	for end := time.Now().Add(9 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		c, err := creds.Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !time.Now().Before(c.Expires) {
			t.Fatalf("the cache handed out credentials past their expiry %s", c.Expires)
		}
		keys[c.AccessKeyID] = true
		if _, err := kv.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{}); err != nil {
			t.Fatalf("after %d renewals: %v", len(keys)-1, err)
		}
	}
	// 9 s of 4 s credentials renewed at about half their life: 4 to 6 sets.
	if n := srv.IoTCredentialsIssued(); n < 3 || n > 7 || len(keys) != n {
		t.Fatalf("%d credentials issued, %d seen", n, len(keys))
	}
}

// TestKeepsValidCredentialsWhenRenewalFails: the endpoint fails after the
// first answer (a fault only a fake can inject); the cache keeps the
// credentials it has while they are valid, then reports the failure.
func TestKeepsValidCredentialsWhenRenewalFails(t *testing.T) {
	var calls atomic.Int32
	fake := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 {
			http.Error(w, `{"message":"Service Unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		exp := time.Now().Add(3 * time.Second).UTC().Format(time.RFC3339)
		w.Write([]byte(`{"credentials":{"accessKeyId":"ASIAFAKE","secretAccessKey":"s3cr3t-value","sessionToken":"t0ken-value","expiration":"` + exp + `"}}`))
	}))
	fake.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	fake.StartTLS()
	defer fake.Close()
	srv := iotServer(t, localkvs.IoTConfig{})
	cfg := device(t, srv, "cam-6")
	cfg.Endpoint = fake.URL
	cfg.RootCAs = x509.NewCertPool()
	cfg.RootCAs.AddCert(fake.Certificate())
	creds, err := iotcreds.NewCache(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, err := creds.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1700 * time.Millisecond) // past the renewal point, before the expiry
	again, err := creds.Retrieve(ctx)
	if err != nil || again.AccessKeyID != first.AccessKeyID || calls.Load() < 2 {
		t.Fatalf("after a failed renewal: %v %q (calls %d)", err, again.AccessKeyID, calls.Load())
	}
	time.Sleep(2 * time.Second) // past the expiry
	_, err = creds.Retrieve(ctx)
	var se *iotcreds.ServiceError
	if !errors.As(err, &se) || se.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after the expiry: %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "t0ken") {
		t.Fatalf("the error holds a secret: %v", err)
	}
}
