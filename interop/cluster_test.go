package interop_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// clusterPorts is the first of the three fixed loopback route ports of the
// interop cluster (outside Linux's ephemeral range; the localkvs tests use
// 14601-14613).
const clusterPorts = 14621

// setupCluster starts three localkvs nodes with TLS on an embedded NATS
// JetStream cluster, sharing one CA (node A's, copied into the others'
// data directories as docs/cluster.md says), and a channel; it returns an
// env per node, all for that channel.
func setupCluster(t *testing.T) [3]env {
	t.Helper()
	requireNode(t)
	var routes []string
	for i := 0; i < 3; i++ {
		routes = append(routes, fmt.Sprintf("127.0.0.1:%d", clusterPorts+i))
	}
	var envs [3]env
	var dirs [3]string
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	for i := 0; i < 3; i++ {
		if i > 0 { // node A's CA and certificate, so that clients trust every node alike
			for _, f := range []string{"ca.pem", "ca-key.pem", "cert.pem", "cert-key.pem"} {
				b, err := os.ReadFile(filepath.Join(dirs[0], f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dirs[i], f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		srv, err := localkvs.Start(localkvs.Config{
			TLS:     true,
			DataDir: dirs[i],
			TURN:    localkvs.TURNConfig{AllowLoopbackPeers: true},
			Cluster: localkvs.ClusterConfig{
				Name:     "interop",
				Listen:   routes[i],
				Routes:   routes,
				NodeName: "interop-" + string(rune('a'+i)),
			},
		}, "127.0.0.1:0")
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		t.Cleanup(func() { srv.Close() })
		envs[i] = env{srv: srv, caFile: filepath.Join(dirs[0], "ca.pem")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := range envs {
		if err := envs[i].srv.WaitReady(ctx); err != nil {
			t.Fatalf("node %d not ready: %v", i, err)
		}
	}
	arn, err := envs[0].srv.CreateChannel(ctx, "interop.cluster")
	if err != nil {
		t.Fatal(err)
	}
	for i := range envs {
		envs[i].arn = arn
	}
	return envs
}

// TestClusterGoMasterJSViewer: our master on node A, the official SDK's
// viewer on node B (not the master's node); offers, answers and candidates
// both ways, the viewer's early candidate buffered by the JS SDK.
func TestClusterGoMasterJSViewer(t *testing.T) {
	envs := setupCluster(t)
	offer, answer, cands := realSDP(t)
	master, events := envs[0].goClient(t, signaling.RoleMaster, "")

	js := startJS(t, envs[1].jsEnv("VIEWER", "js.viewer.on.b"))
	js.next("ready")
	js.next("open")
	js.send("sendSdpOffer", map[string]string{"type": "offer", "sdp": offer.SDP}, "")
	js.send("sendIceCandidate", map[string]any{"candidate": cands[1].Candidate, "sdpMid": "0", "sdpMLineIndex": 0}, "")

	o := nextGo(t, events, "offer")
	if o.sender != "js.viewer.on.b" || o.sdp.Type != webrtc.SDPTypeOffer || o.sdp.SDP != offer.SDP {
		t.Errorf("Go master on A got offer type %v from %q, %d bytes (sent %d)", o.sdp.Type, o.sender, len(o.sdp.SDP), len(offer.SDP))
	}
	c := nextGo(t, events, "candidate")
	if c.sender != "js.viewer.on.b" || c.cand.Candidate != cands[1].Candidate {
		t.Errorf("Go master on A got candidate %q from %q", c.cand.Candidate, c.sender)
	}
	if err := master.SendICECandidate(cands[0], signaling.WithRecipient("js.viewer.on.b")); err != nil {
		t.Fatal(err)
	}
	if err := master.SendSDPAnswer(answer, signaling.WithRecipient("js.viewer.on.b")); err != nil {
		t.Fatal(err)
	}
	got := js.next("sdpAnswer")
	if got.Sender != "" {
		t.Errorf("JS viewer on B saw sender %q for the master's answer, want none", got.Sender)
	}
	if d := jsSDP(t, got.Payload); d.Type != webrtc.SDPTypeAnswer || d.SDP != answer.SDP {
		t.Errorf("JS viewer on B got a different answer: %v, %d bytes", d.Type, len(d.SDP))
	}
	jc := jsCandidate(t, js.next("iceCandidate").Payload)
	if jc.Candidate != cands[0].Candidate || jc.UsernameFragment == nil || *jc.UsernameFragment != "abcd" {
		t.Errorf("JS viewer on B got candidate %+v", jc)
	}
}

// TestClusterJSMasterJSViewer: two official clients, the master on node C
// and the viewer on node B, talk through the cluster alone.
func TestClusterJSMasterJSViewer(t *testing.T) {
	envs := setupCluster(t)
	offer, answer, cands := realSDP(t)
	master := startJS(t, envs[2].jsEnv("MASTER", ""))
	master.next("ready")
	master.next("open")
	viewer := startJS(t, envs[1].jsEnv("VIEWER", "js.viewer"))
	viewer.next("ready")
	viewer.next("open")

	viewer.send("sendSdpOffer", map[string]string{"type": "offer", "sdp": offer.SDP}, "")
	got := master.next("sdpOffer")
	if got.Sender != "js.viewer" || jsSDP(t, got.Payload).SDP != offer.SDP {
		t.Fatalf("JS master on C got offer from %q", got.Sender)
	}
	master.send("sendSdpAnswer", map[string]string{"type": "answer", "sdp": answer.SDP}, "js.viewer")
	if d := jsSDP(t, viewer.next("sdpAnswer").Payload); d.SDP != answer.SDP {
		t.Fatal("JS viewer on B got a different answer")
	}
	master.send("sendIceCandidate", map[string]any{"candidate": cands[0].Candidate, "sdpMid": "0", "sdpMLineIndex": 0}, "js.viewer")
	if c := jsCandidate(t, viewer.next("iceCandidate").Payload); c.Candidate != cands[0].Candidate {
		t.Fatalf("JS viewer on B got candidate %q", c.Candidate)
	}
	viewer.send("sendIceCandidate", map[string]any{"candidate": cands[1].Candidate, "sdpMid": "0", "sdpMLineIndex": 0}, "")
	ev := master.next("iceCandidate")
	if c := jsCandidate(t, ev.Payload); c.Candidate != cands[1].Candidate || ev.Sender != "js.viewer" {
		t.Fatalf("JS master on C got candidate %q from %q", c.Candidate, ev.Sender)
	}
}
