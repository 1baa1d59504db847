package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// serveInfo is what runServe knows beyond the server about what to print.
type serveInfo struct {
	data    string // --data, "" for memory only
	keyID   string // the access key id accepted
	devPair bool   // the key pair is the public development pair
	tls     bool
	turnTTL time.Duration
}

// serveThing is the thing name the printed IoT lines use.
const serveThing = "my-camera"

// serveEnv returns the environment variables that point the aws CLI, the
// AWS SDKs and kvswebrtc at srv, in the order they are printed. The aws CLI
// v1 reads the region from AWS_DEFAULT_REGION, the SDKs and CLI v2 from
// AWS_REGION: both are set.
func serveEnv(srv *localkvs.Server, in serveInfo) [][2]string {
	env := [][2]string{
		{"AWS_ENDPOINT_URL", srv.URL()},
		{"AWS_REGION", srv.Region()},
		{"AWS_DEFAULT_REGION", srv.Region()},
		{"AWS_ACCESS_KEY_ID", in.keyID},
	}
	if in.devPair {
		env = append(env, [2]string{"AWS_SECRET_ACCESS_KEY", localkvs.DevSecretAccessKey})
	}
	if in.tls && in.data != "" {
		env = append(env, [2]string{"AWS_CA_BUNDLE", filepath.Join(in.data, "ca.pem")})
	}
	return env
}

// serveJSON is `serve --output json`: one object, printed once the service listens.
type serveJSON struct {
	Endpoint          string
	SignalingEndpoint string
	TURN              []string `json:",omitempty"`
	Region            string
	DataDir           string `json:",omitempty"`
	AccessKeyId       string
	SecretAccessKey   string `json:",omitempty"` // the public development secret only
	Environment       map[string]string
	IoT               *serveIoTJSON `json:",omitempty"`
}

// serveIoTJSON describes the emulated AWS IoT credentials provider.
type serveIoTJSON struct {
	CredentialEndpoint string
	CACert             string `json:",omitempty"` // trusts the endpoint (--iot-ca)
	DeviceCACert       string `json:",omitempty"` // signs device certificates
	DeviceCAKey        string `json:",omitempty"`
}

// printServe prints where srv listens and the lines that point clients at it.
func printServe(w io.Writer, format string, srv *localkvs.Server, in serveInfo) {
	if format == "json" {
		j := serveJSON{Endpoint: srv.URL(), SignalingEndpoint: srv.WSSEndpoint(), TURN: srv.TURNURLs(), Region: srv.Region(),
			DataDir: in.data, AccessKeyId: in.keyID, Environment: map[string]string{}}
		if in.devPair {
			j.SecretAccessKey = localkvs.DevSecretAccessKey
		}
		for _, kv := range serveEnv(srv, in) {
			j.Environment[kv[0]] = kv[1]
		}
		if ep := srv.IoTCredentialEndpoint(); ep != "" {
			j.IoT = &serveIoTJSON{CredentialEndpoint: ep}
			if in.data != "" {
				j.IoT.CACert = filepath.Join(in.data, "ca.pem")
				j.IoT.DeviceCACert = filepath.Join(in.data, "iot-ca.pem")
				j.IoT.DeviceCAKey = filepath.Join(in.data, "iot-ca-key.pem")
			}
		}
		printJSON(w, j)
		return
	}
	fmt.Fprintln(w, "kvswebrtc local KVS signaling service")
	fmt.Fprintf(w, "  endpoint:      %s\n", srv.URL())
	fmt.Fprintf(w, "  signaling:     %s\n", srv.WSSEndpoint())
	if urls := srv.TURNURLs(); urls != nil {
		fmt.Fprintf(w, "  turn/stun:     %s (credentials valid %s)\n", strings.Join(urls, " "), in.turnTTL)
	} else {
		fmt.Fprintln(w, "  turn/stun:     off")
	}
	fmt.Fprintf(w, "  region:        %s\n", srv.Region())
	if in.data != "" {
		fmt.Fprintf(w, "  data:          %s\n", in.data)
	} else {
		fmt.Fprintln(w, "  data:          (memory only)")
	}
	fmt.Fprintf(w, "  access key id: %s\n", in.keyID)
	if in.devPair {
		fmt.Fprintf(w, "  secret key:    %s (the public development key)\n", localkvs.DevSecretAccessKey)
	} else {
		fmt.Fprintln(w, "  secret key:    (the one you gave)")
	}
	fmt.Fprintln(w, "Paste into a shell (the aws CLI, the AWS SDKs and kvswebrtc then talk to this service):")
	var env []string
	for _, kv := range serveEnv(srv, in) {
		env = append(env, kv[0]+"="+kv[1])
	}
	fmt.Fprintf(w, "  export %s\n", strings.Join(env, " "))
	if !in.devPair {
		fmt.Fprintln(w, "  export AWS_SECRET_ACCESS_KEY=... # the secret you gave")
	}
	if in.tls && in.data == "" {
		fmt.Fprintln(w, "  (the CA is not written anywhere without --data; clients must trust it another way)")
	}
	fmt.Fprintln(w, "Then try:")
	fmt.Fprintln(w, "  aws kinesisvideo list-signaling-channels")
	fmt.Fprintln(w, "  kvswebrtc master --channel demo --create")
	if ep := srv.IoTCredentialEndpoint(); ep != "" {
		printServeIoT(w, srv, in, ep)
	}
}

// printServeIoT prints the IoT credentials provider and how to make a
// device certificate and use it.
func printServeIoT(w io.Writer, srv *localkvs.Server, in serveInfo, ep string) {
	fmt.Fprintf(w, "AWS IoT credentials provider (emulated): %s, mutual TLS; any role alias; a certificate's CN is its thing\n", ep)
	if in.data == "" {
		fmt.Fprintln(w, "  (without --data the device CA lives in memory only: make device certificates with")
		fmt.Fprintln(w, "  localkvs.Server.IssueIoTDeviceCertificate in Go, or run serve with --data)")
		return
	}
	ca, serverCA := filepath.Join(in.data, "iot-ca.pem"), filepath.Join(in.data, "ca.pem")
	t := serveThing
	fmt.Fprintf(w, "Make a device certificate for thing %s, signed by the local device CA (%s):\n", t, ca)
	for _, l := range iotCertCommands(in.data, t) {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintf(w, "Then stream from the device with it, no AWS keys (the endpoint's CA is %s):\n", serverCA)
	fmt.Fprintf(w, "  kvswebrtc master --channel %s --create --endpoint-url %s --iot-credential-endpoint %s --iot-role-alias kvs-camera --iot-thing-name %s --iot-cert %s.pem --iot-key %s.key --iot-ca %s\n",
		t, srv.URL(), ep, t, t, t, serverCA)
	fmt.Fprintln(w, "or with the variables the C SDK's samples read:")
	fmt.Fprintf(w, "  export AWS_IOT_CORE_CREDENTIAL_ENDPOINT=%s AWS_IOT_CORE_ROLE_ALIAS=kvs-camera AWS_IOT_CORE_THING_NAME=%s AWS_IOT_CORE_CERT=%s.pem AWS_IOT_CORE_PRIVATE_KEY=%s.key AWS_KVS_CACERT_PATH=%s\n",
		ep, t, t, t, serverCA)
}

// iotCertCommands are the openssl commands that make a device certificate
// for thing (its CN) signed by the device CA in dataDir: a P-256 key and a
// request, then the certificate. They write THING.key, THING.csr,
// THING.srl and THING.pem in the current directory.
func iotCertCommands(dataDir, thing string) []string {
	return []string{
		fmt.Sprintf("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=%s -keyout %s.key -out %s.csr", thing, thing, thing),
		fmt.Sprintf("openssl x509 -req -days 365 -in %s.csr -CA %s -CAkey %s -CAcreateserial -CAserial %s.srl -out %s.pem",
			thing, filepath.Join(dataDir, "iot-ca.pem"), filepath.Join(dataDir, "iot-ca-key.pem"), thing, thing),
	}
}
