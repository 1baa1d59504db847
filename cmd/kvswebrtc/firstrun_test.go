package main

// Issue 14: the first run of someone who knows the aws CLI, against the
// built binary.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// bgProc is the binary running in the background.
type bgProc struct {
	t        *testing.T
	name     string
	cmd      *exec.Cmd
	out, err syncBuffer
	done     chan struct{}
	code     int
}

// startBin starts the binary with env and args; the test's cleanup kills
// it if it still runs.
func startBin(t *testing.T, env []string, dir string, args ...string) *bgProc {
	t.Helper()
	p := &bgProc{t: t, name: strings.Join(args[:1], " "), done: make(chan struct{})}
	p.cmd = exec.Command(kvsBinary(t), args...)
	p.cmd.Env, p.cmd.Dir = env, dir
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.err
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitOut waits up to 30 s for stdout to match re and returns the match.
func (p *bgProc) waitOut(re *regexp.Regexp) []string {
	p.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			p.t.Fatalf("kvswebrtc %s exited %d before printing %s\nstdout:\n%s\nstderr:\n%s", p.name, p.code, re, p.out.String(), p.err.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("kvswebrtc %s did not print %s in 30 s\nstdout:\n%s\nstderr:\n%s", p.name, re, p.out.String(), p.err.String())
		}
	}
}

// stop sends sig and waits up to 30 s for the exit code.
func (p *bgProc) stop(sig os.Signal) int {
	p.t.Helper()
	p.cmd.Process.Signal(sig)
	return p.wait(30 * time.Second)
}

// wait waits up to d for the process to exit and returns its code.
func (p *bgProc) wait(d time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		p.t.Fatalf("kvswebrtc %s still runs after %s\nstdout:\n%s\nstderr:\n%s", p.name, d, p.out.String(), p.err.String())
		return -1
	}
}

var exportRe = regexp.MustCompile(`(?m)^  export (AWS_ENDPOINT_URL=.*)$`)

// serveEnv starts `kvswebrtc serve` with extra args and returns it and the
// environment of its printed export line(s) added to env.
func startServe(t *testing.T, env []string, args ...string) (*bgProc, []string) {
	t.Helper()
	srv := startBin(t, env, "", append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	srv.waitOut(regexp.MustCompile(`Then try:`))
	out := env
	for _, line := range regexp.MustCompile(`(?m)^  export (.*)$`).FindAllStringSubmatch(srv.out.String(), -1) {
		if strings.Contains(line[1], "AWS_IOT_CORE") {
			continue
		}
		out = append(out, strings.Fields(line[1])...)
	}
	return srv, out
}

// envValue returns the value of key in env.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, _ := strings.Cut(kv, "="); k == key {
			v = val
		}
	}
	return v
}

// TestServeLinesWorkInTheAWSCLI: the lines serve prints, pasted, are all the
// aws CLI needs: endpoint, keys, the region for CLI v1 (AWS_DEFAULT_REGION)
// and v2 (AWS_REGION), and the CA bundle with --tls (issue 14, item 1).
func TestServeLinesWorkInTheAWSCLI(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	for _, tlsOn := range []bool{false, true} {
		args := []string{"--data", t.TempDir()}
		if tlsOn {
			args = append(args, "--tls")
		}
		srv, env := startServe(t, cleanEnv(t), args...)
		for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			if envValue(env, k) == "" {
				t.Fatalf("serve printed no %s:\n%s", k, srv.out.String())
			}
		}
		if tlsOn != (envValue(env, "AWS_CA_BUNDLE") != "") {
			t.Fatalf("tls=%v, AWS_CA_BUNDLE=%q", tlsOn, envValue(env, "AWS_CA_BUNDLE"))
		}
		name := fmt.Sprintf("pasted-%v", tlsOn)
		if err != nil {
			// No aws CLI here: the same environment through kvswebrtc itself.
			t.Logf("aws CLI not installed (%v): checking the lines with kvswebrtc channel create/list", err)
			if r := runBin(t, env, "channel", "create", name); r.code != 0 {
				t.Fatalf("channel create with the printed lines: %d %s", r.code, r.stderr)
			}
			continue
		}
		for _, args := range [][]string{
			{"kinesisvideo", "create-signaling-channel", "--channel-name", name},
			{"kinesisvideo", "list-signaling-channels"},
		} {
			cmd := exec.Command(awsCLI, args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("tls=%v: aws %s with the printed lines: %v\n%s\nserve printed:\n%s", tlsOn, strings.Join(args, " "), err, out, srv.out.String())
			}
			if args[1] == "list-signaling-channels" && !strings.Contains(string(out), name) {
				t.Fatalf("aws list-signaling-channels:\n%s", out)
			}
		}
		// AWS_REGION alone is what CLI v1 refuses: the test means something.
		var noDefault []string
		for _, kv := range env {
			if !strings.HasPrefix(kv, "AWS_DEFAULT_REGION=") {
				noDefault = append(noDefault, kv)
			}
		}
		cmd := exec.Command(awsCLI, "--version")
		v, _ := cmd.CombinedOutput()
		if strings.HasPrefix(string(v), "aws-cli/1.") {
			cmd = exec.Command(awsCLI, "kinesisvideo", "list-signaling-channels")
			cmd.Env = noDefault
			if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "region") {
				t.Errorf("aws CLI v1 without AWS_DEFAULT_REGION: %v %s", err, out)
			}
		}
		if code := srv.stop(syscall.SIGTERM); code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	}
}

// TestServeLogsShutdown: SIGTERM is logged, with the GO_AWAYs sent and the
// store closed (issue 14, item 6).
func TestServeLogsShutdown(t *testing.T) {
	dir := t.TempDir()
	srv, env := startServe(t, cleanEnv(t), "--data", dir)
	cfg := aws.Config{Region: envValue(env, "AWS_REGION"), BaseEndpoint: aws.String(envValue(env, "AWS_ENDPOINT_URL")),
		Credentials: aws.NewCredentialsCache(staticCreds(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey))}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kinesisvideo.NewFromConfig(cfg).CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("bye")})
	if err != nil {
		t.Fatal(err)
	}
	ws := strings.Replace(envValue(env, "AWS_ENDPOINT_URL"), "http://", "ws://", 1)
	sc, err := signaling.New(signaling.Config{Role: signaling.RoleMaster, ChannelARN: aws.ToString(res.ChannelARN), ChannelEndpoint: ws,
		Region: cfg.Region, Credentials: cfg.Credentials, AllowInsecureEndpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if code := srv.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("serve exited %d: %s", code, srv.err.String())
	}
	e := srv.err.String()
	for _, want := range []string{"kvswebrtc serve: terminated signal received: shutting down",
		"GO_AWAY sent to 1 signaling connection(s)", "channel store " + filepath.Join(dir, "channels.db") + " closed"} {
		if !strings.Contains(e, want) {
			t.Errorf("stderr lacks %q:\n%s", want, e)
		}
	}
}

// TestDemoChecksTheWebPortFirst: with the page's port taken, demo --web
// fails at once, before starting the service (issue 14, item 6).
func TestDemoChecksTheWebPortFirst(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start := time.Now()
	r := runBin(t, cleanEnv(t), "demo", "--web", "--web-addr", l.Addr().String(), "--duration", "20s")
	if r.code != 1 || time.Since(start) > 10*time.Second || r.stdout != "" ||
		!strings.Contains(r.stderr, "--web-addr "+l.Addr().String()) || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.code, time.Since(start), r.stdout, r.stderr)
	}
	r = runBin(t, cleanEnv(t), "web", "--local", "--addr", l.Addr().String())
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "address already in use") || strings.Contains(r.stderr, "note:") {
		t.Fatalf("web: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestNoCredentialsIsOneLine: with nothing configured, master, viewer and
// channel say in one line what is missing and the ways out, with no SDK
// (IMDS) noise (issue 14, item 4).
func TestNoCredentialsIsOneLine(t *testing.T) {
	base := cleanEnv(t)
	var withIMDS []string // instance metadata tried, as on a laptop
	for _, kv := range base {
		if !strings.HasPrefix(kv, "AWS_EC2_METADATA_DISABLED=") {
			withIMDS = append(withIMDS, kv)
		}
	}
	if r := runBin(t, withIMDS, "channel", "list"); r.code == 0 {
		t.Log("this machine has credentials from instance metadata: only the IMDS-off case is checked")
		withIMDS = nil
	}
	for _, env := range [][]string{base, withIMDS} {
		if env == nil {
			continue
		}
		for _, args := range [][]string{
			{"channel", "list"},
			{"master", "--channel", "x"},
			{"viewer", "--channel", "x", "--duration", "2s"},
		} {
			r := runBin(t, env, args...)
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if r.code != 1 || len(lines) != 1 || !strings.Contains(r.stderr, "no AWS credentials found") ||
				!strings.Contains(r.stderr, "kvswebrtc serve") || !strings.Contains(r.stderr, "--endpoint-url") ||
				strings.Contains(r.stderr, "IMDS") || strings.Contains(r.stderr, "SDK ") {
				t.Errorf("%v: exit %d, stderr:\n%s", args, r.code, r.stderr)
			}
		}
	}
	r := runBin(t, base, "channel", "list", "--profile", "nope")
	if r.code != 2 || !strings.Contains(r.stderr, `profile "nope"`) {
		t.Errorf("--profile nope: %d %s", r.code, r.stderr)
	}
}

// TestViewerWithoutMasterOrChannel: no master answering, and no channel,
// are each one readable sentence with the way on (issue 14, item 5).
func TestViewerWithoutMasterOrChannel(t *testing.T) {
	srv := localService(t)
	env := cleanEnv(t)
	ep := srv.URL()
	r := runBin(t, env, "viewer", "--channel", "nope", "--endpoint-url", ep, "--duration", "2s")
	want := "kvswebrtc viewer: signaling channel \"nope\" does not exist in us-west-2; create it with `kvswebrtc channel create nope --endpoint-url " + ep + "`, or add --create\n"
	if r.code != 1 || !strings.HasSuffix(r.stderr, want) || strings.Count(r.stderr, "\n") != 2 { // the note on the development key, and this
		t.Fatalf("missing channel: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = runBin(t, env, "master", "--channel", "nope", "--endpoint-url", ep)
	if r.code != 1 || !strings.Contains(r.stderr, "kvswebrtc master: signaling channel \"nope\" does not exist") {
		t.Fatalf("master on a missing channel: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	// --create makes it; no master answers: said once, with how to start one.
	r = runBin(t, env, "viewer", "--channel", "lonely", "--create", "--endpoint-url", ep, "--duration", "5s")
	wantErr := "kvswebrtc viewer: no master answered the offer on channel \"lonely\" in 5s; start one: kvswebrtc master --channel lonely --endpoint-url " + ep + "\n"
	if r.code != 1 || !strings.HasSuffix(r.stderr, wantErr) {
		t.Fatalf("no master: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "waiting for the master's answer"); n != 1 {
		t.Errorf("the waiting line %d times, want once:\n%s", n, r.stdout)
	}
	if n := strings.Count(r.stdout, "no master has answered the offer yet; start one: kvswebrtc master --channel lonely"); n != 1 {
		t.Errorf("the no-master line %d times, want once:\n%s", n, r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, "waiting for media") || strings.Contains(r.stderr, "no video frame") {
		t.Errorf("output:\n%s%s", r.stdout, r.stderr)
	}
	if _, err := srv.CreateChannel(context.Background(), "lonely"); err == nil {
		t.Error("viewer --create did not create the channel")
	}
}

// TestStatsAsJSONLines: viewer --output json prints JSON lines only, with
// the stats every second; the master's text stats of a send-only session
// have no receive counters (issue 14, item 7).
func TestStatsAsJSONLines(t *testing.T) {
	srv := localService(t)
	env := cleanEnv(t)
	ep := srv.URL()
	m := startBin(t, env, "", "master", "--channel", "json", "--create", "--endpoint-url", ep, "--stats-interval", "1s")
	m.waitOut(regexp.MustCompile(`master on arn:`))
	r := runBin(t, env, "viewer", "--channel", "json", "--endpoint-url", ep, "--duration", "4s", "--output", "json", "--client-id", "jv")
	if r.code != 0 {
		t.Fatalf("viewer: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	events := map[string]int{}
	var last jsonLine
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var l jsonLine
		if err := json.Unmarshal([]byte(line), &l); err != nil || l.Time.IsZero() {
			t.Fatalf("not a JSON line: %q (%v)", line, err)
		}
		events[l.Event]++
		last = l
	}
	if events["started"] != 1 || events["firstFrame"] != 1 || events["stats"] < 3 || events["summary"] != 1 || last.Event != "summary" ||
		last.Session == nil || last.Session.VideoFrames == 0 || last.Session.PacketsLost == nil || last.Session.FramesSent != 0 || last.ClientID != "jv" {
		t.Fatalf("events %v, last %+v\n%s", events, last, r.stdout)
	}
	m.waitOut(regexp.MustCompile(`session jv: connected`))
	stats := m.out.String()[strings.Index(m.out.String(), "session jv:"):]
	if !regexp.MustCompile(`rtp: sent \d+ frames \d+ bytes`).MatchString(stats) || strings.Contains(stats, "rtp: received") {
		t.Errorf("the master's stats of a send-only session:\n%s", stats)
	}
	if code := m.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("master exited %d", code)
	}
}

// TestIoTDeviceStreamsPastCredentialExpiry runs the whole device path with
// the binary: `serve --iot` prints how to make a device certificate, the
// printed openssl lines make one, the printed master line streams with it
// and no AWS keys, and a viewer watches for four lifetimes of the
// temporary credentials: they are renewed before they expire, the
// master's signaling reconnects (GO_AWAY every 5 s) with renewed ones
// after the first set expired, no request is refused, and the viewer's
// frames never stop.
func TestIoTDeviceStreamsPastCredentialExpiry(t *testing.T) {
	data, devDir := t.TempDir(), t.TempDir()
	env := cleanEnv(t)
	const lifetime = 4 * time.Second
	srv, svcEnv := startServe(t, env, "--data", data, "--iot", "--iot-credential-duration", lifetime.String(),
		"--max-duration", "5s", "--go-away-lead", "1s", "--log-level", "debug")
	out := srv.out.String()

	// The device certificate, as the lines printed say.
	if _, err := exec.LookPath("openssl"); err == nil {
		for _, line := range regexp.MustCompile(`(?m)^  (openssl .*)$`).FindAllStringSubmatch(out, -1) {
			f := strings.Fields(line[1])
			cmd := exec.Command(f[0], f[1:]...)
			cmd.Dir = devDir
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", line[1], err, b)
			}
		}
	} else {
		t.Log("no openssl: signing the device certificate in Go with the printed CA key")
		signDevice(t, data, devDir, serveThing)
	}
	masterLine := regexp.MustCompile(`(?m)^  kvswebrtc (master .*--iot-credential-endpoint.*)$`).FindStringSubmatch(out)
	if masterLine == nil {
		t.Fatalf("serve --iot printed no master line:\n%s", out)
	}
	args := append(strings.Fields(masterLine[1]), "--output", "json", "--stats-interval", "1s")
	master := startBin(t, env, devDir, args...) // env: no AWS keys at all
	master.waitOut(regexp.MustCompile(`"event":"started"`))
	started := time.Now()

	// The viewer joins once the master's first credentials have expired.
	time.Sleep(lifetime + 500*time.Millisecond)
	viewer := startBin(t, svcEnv, "", "viewer", "--channel", serveThing, "--duration", "12s", "--output", "json", "--client-id", "watcher")
	if code := viewer.wait(60 * time.Second); code != 0 {
		t.Fatalf("viewer exited %d\n%s\n%s\nmaster:\n%s\n%s", code, viewer.out.String(), viewer.err.String(), master.out.String(), master.err.String())
	}
	if code := master.stop(syscall.SIGTERM); code != 0 {
		t.Fatalf("master exited %d: %s", code, master.err.String())
	}
	ran := time.Since(started)

	// The viewer's frames never stopped: every stats line after the first
	// frame has more than the one before, and no session was re-made.
	var prev uint64
	var summary *sessionJSON
	var viewerEnd time.Time
	for _, line := range strings.Split(strings.TrimSpace(viewer.out.String()), "\n") {
		var l jsonLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("viewer line %q: %v", line, err)
		}
		if l.Session == nil {
			continue
		}
		if l.Event == "summary" {
			summary = l.Session
			continue
		}
		viewerEnd = l.Time // the last stats line: the viewer still ran
		if prev > 0 && l.Session.VideoFrames <= prev {
			t.Errorf("the video stalled at %.0fs: %d frames, %d a second before", l.ElapsedSeconds, l.Session.VideoFrames, prev)
		}
		prev = l.Session.VideoFrames
	}
	if summary == nil || summary.VideoFrames < 200 || summary.Reoffers != 0 {
		t.Fatalf("viewer summary %+v\n%s", summary, viewer.out.String())
	}
	// The master's session stayed up and kept sending.
	var sent []uint64
	for _, line := range strings.Split(master.out.String(), "\n") {
		var l jsonLine
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		if l.Event == "viewerLeft" && l.Time.Before(viewerEnd) {
			t.Errorf("the viewer left the master before it stopped: %s", line)
		}
		for _, s := range l.Sessions {
			if s.ClientID == "watcher" && s.State == "connected" {
				sent = append(sent, s.FramesSent)
			}
		}
	}
	for i := 1; i < len(sent); i++ {
		if sent[i] <= sent[i-1] {
			t.Errorf("the master stopped sending: %v", sent)
			break
		}
	}
	if len(sent) < 8 {
		t.Errorf("%d master stats lines with the viewer connected: %v", len(sent), sent)
	}

	// The service: credentials renewed all along, renewed ones used to
	// reconnect the signaling after the first ones expired, none refused.
	logs := srv.err.String()
	issued := regexp.MustCompile(`time=(\S+) level=INFO msg="localkvs: IoT credentials issued" thing=my-camera role_alias=kvs-camera access_key_id=(\S+) expires=(\S+)`).FindAllStringSubmatch(logs, -1)
	if min := int(ran / lifetime); len(issued) < min {
		t.Fatalf("%d credentials issued in %s of %s credentials, want at least %d\n%s", len(issued), ran, lifetime, min, logs)
	}
	firstKey := issued[0][2]
	firstExpiry, _ := time.Parse(time.RFC3339, issued[0][3])
	reconnectedAfter := 0
	for _, m := range regexp.MustCompile(`time=(\S+) level=DEBUG msg="localkvs: IoT credentials accepted" for="signaling WebSocket" access_key_id=(\S+)`).FindAllStringSubmatch(logs, -1) {
		at, _ := time.Parse(time.RFC3339Nano, m[1])
		if m[2] != firstKey && at.After(firstExpiry) {
			reconnectedAfter++
		}
	}
	if reconnectedAfter < 2 {
		t.Errorf("the master's signaling reconnected %d times with renewed credentials after the first expired", reconnectedAfter)
	}
	for _, bad := range []string{"ExpiredTokenException", "UnrecognizedClientException", "request refused", "WebSocket refused"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the service refused a request (%s):\n%s", bad, grepLines(logs, bad))
		}
	}
	if strings.Contains(master.err.String()+master.out.String(), "secretAccessKey") {
		t.Error("the master printed a secret")
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

func staticCreds(id, secret string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(id, secret, "")
}

// signDevice makes dir/thing.pem and dir/thing.key with the device CA in
// data, as the printed openssl lines do.
func signDevice(t *testing.T, data, dir, thing string) {
	t.Helper()
	ca, err := tls.LoadX509KeyPair(filepath.Join(data, "iot-ca.pem"), filepath.Join(data, "iot-ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: thing},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, ca.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(filepath.Join(dir, thing+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, thing+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
}
