package localkvs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// The cluster tests run three localkvs servers in this process, each with
// an embedded NATS server; the three NATS servers form a JetStream cluster
// over routes on fixed loopback ports, outside Linux's ephemeral range
// (32768-60999) so that no outgoing connection holds them. Each test
// function has its own port block.
const (
	clusterPortsMain  = 14601 // TestCluster
	clusterPortsFault = 14611 // TestClusterNodeFailure
	clusterReady      = 90 * time.Second
)

// testCluster is three nodes of one cluster.
type testCluster struct {
	t     testing.TB
	cfgs  []localkvs.Config
	nodes []*localkvs.Server
}

func clusterNodeConfig(name string, base, i int, storeDir string, limits localkvs.Limits) localkvs.Config {
	var routes []string
	for j := 0; j < 3; j++ {
		routes = append(routes, fmt.Sprintf("127.0.0.1:%d", base+j))
	}
	var logger *slog.Logger
	if os.Getenv("KVS_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)
	}
	return localkvs.Config{
		Logger: logger,
		Limits: limits,
		TURN:   localkvs.TURNConfig{AllowLoopbackPeers: true},
		Cluster: localkvs.ClusterConfig{
			Name:     name,
			Listen:   fmt.Sprintf("127.0.0.1:%d", base+i),
			Routes:   routes,
			NodeName: "node-" + string(rune('a'+i)),
			StoreDir: storeDir,
		},
	}
}

// startCluster starts three nodes on the port block base and waits until
// each is ready and sees the other two.
func startCluster(t testing.TB, name string, base int, limits localkvs.Limits) *testCluster {
	t.Helper()
	localkvs.SetClusterTiming(250*time.Millisecond, 2*time.Second)
	tc := &testCluster{t: t}
	for i := 0; i < 3; i++ {
		tc.cfgs = append(tc.cfgs, clusterNodeConfig(name, base, i, t.TempDir(), limits))
	}
	tc.nodes = make([]*localkvs.Server, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range tc.cfgs {
		wg.Add(1)
		go func() { // together: the first node's JetStream waits for a quorum
			defer wg.Done()
			tc.nodes[i], errs[i] = localkvs.Start(tc.cfgs[i], "127.0.0.1:0")
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: Start: %v", i, err)
		}
	}
	t.Cleanup(func() {
		for _, n := range tc.nodes {
			if n != nil {
				n.Close()
			}
		}
	})
	for i := range tc.nodes {
		tc.waitReady(i)
	}
	return tc
}

// waitReady waits until node i is ready and sees three nodes alive.
func (tc *testCluster) waitReady(i int) {
	tc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterReady)
	defer cancel()
	if err := tc.nodes[i].WaitReady(ctx); err != nil {
		tc.t.Fatalf("node %d not ready: %v", i, err)
	}
	for {
		if n := scrape(tc.t, tc.nodes[i], "kvswebrtc_cluster_nodes"); n == 3 {
			return
		}
		if ctx.Err() != nil {
			tc.t.Fatalf("node %d does not see the three nodes", i)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrape returns the value of an unlabelled (or the sum of a labelled)
// metric on srv's /metrics.
func scrape(t testing.TB, srv *localkvs.Server, name string) float64 {
	t.Helper()
	resp, err := http.Get(srv.URL() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			var v float64
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
			sum += v
		}
	}
	return sum
}

// recvType reads frames until one of type typ, failing on anything else.
func recvType(t *testing.T, c *websocket.Conn, typ string) wire.ServiceMessage {
	t.Helper()
	m := recv(t, c)
	if m.MessageType != typ {
		t.Fatalf("got %s (%+v), want %s", m.MessageType, m, typ)
	}
	return m
}

// TestCluster runs the cluster scenarios on one three-node cluster.
func TestCluster(t *testing.T) {
	tc := startCluster(t, "kvs-test", clusterPortsMain, fastLimits())
	t.Run("Relay", func(t *testing.T) { testClusterRelay(t, tc) })
	t.Run("Store", func(t *testing.T) { testClusterStore(t, tc) })
	t.Run("ViewerLimit", func(t *testing.T) { testClusterViewerLimit(t, tc) })
	t.Run("MasterRace", func(t *testing.T) { testClusterMasterRace(t, tc) })
	t.Run("SameClientID", func(t *testing.T) { testClusterSameClientID(t, tc) })
	t.Run("Pending", func(t *testing.T) { testClusterPending(t, tc) })
	t.Run("DeleteChannel", func(t *testing.T) { testClusterDeleteChannel(t, tc) })
	t.Run("StatusResponse", func(t *testing.T) { testClusterStatusResponse(t, tc) })
	t.Run("Alexa", func(t *testing.T) { testClusterAlexa(t, tc) })
	t.Run("TURN", func(t *testing.T) { testClusterTURN(t, tc) })
	t.Run("Ops", func(t *testing.T) { testClusterOps(t, tc) })
	t.Run("StalePlaces", func(t *testing.T) { testClusterStalePlaces(t, tc) })
}

// Places a node holds for connections it does not have (a leave that
// failed) count until its sweep frees them.
func testClusterStalePlaces(t *testing.T, tc *testCluster) {
	arn := mustCreate(t, tc.nodes[0], "cluster.stale")
	if err := localkvs.HoldStalePlaces(tc.nodes[1], arn, 10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the rosters' watch
	refused(t, tc.nodes[2], presign(t, tc.nodes[2], arn, "late", time.Now(), localkvs.DevSecretAccessKey), 400, "ClientLimitExceededException")
	localkvs.SweepRosters(tc.nodes[1])
	dial(t, tc.nodes[2], arn, "late")
}

// A master on node A and viewers on B and C exchange offers, answers and
// candidates in both directions, in order; names hold dots.
func testClusterRelay(t *testing.T, tc *testCluster) {
	a, b, c := tc.nodes[0], tc.nodes[1], tc.nodes[2]
	arn := mustCreate(t, a, "cluster.relay.channel")
	m := dial(t, a, arn, "")
	views := map[string]*websocket.Conn{"viewer.on.b": dial(t, b, arn, "viewer.on.b"), "viewer.on.c": dial(t, c, arn, "viewer.on.c")}
	for id, v := range views {
		offer := payload(t, map[string]string{"type": "offer", "sdp": "v=0 " + id})
		send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: offer})
		got := recvType(t, m, wire.SDPOffer)
		if got.SenderClientID != id || got.MessagePayload != offer {
			t.Fatalf("master got %+v, want the offer of %s", got, id)
		}
		answer := payload(t, map[string]string{"type": "answer", "sdp": "v=0 for " + id})
		send(t, m, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: answer, RecipientClientID: id})
		if got := recvType(t, v, wire.SDPAnswer); got.MessagePayload != answer || got.SenderClientID != "" {
			t.Fatalf("%s got %+v, want the answer without a sender", id, got)
		}
	}
	// Numbered candidates both ways, interleaved: each direction in order.
	const n = 50
	for i := 0; i < n; i++ {
		for id, v := range views {
			send(t, v, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: payload(t, map[string]any{"candidate": fmt.Sprintf("from %s %d", id, i)})})
			send(t, m, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: payload(t, map[string]any{"candidate": fmt.Sprintf("to %s %d", id, i)}), RecipientClientID: id})
		}
	}
	next := map[string]int{}
	for k := 0; k < 2*n; k++ {
		got := recvType(t, m, wire.ICECandidate)
		var cand struct{ Candidate string }
		wire.DecodePayload(got.MessagePayload, &cand)
		if want := fmt.Sprintf("from %s %d", got.SenderClientID, next[got.SenderClientID]); cand.Candidate != want {
			t.Fatalf("master got %q from %s, want %q", cand.Candidate, got.SenderClientID, want)
		}
		next[got.SenderClientID]++
	}
	for id, v := range views {
		for i := 0; i < n; i++ {
			got := recvType(t, v, wire.ICECandidate)
			var cand struct{ Candidate string }
			wire.DecodePayload(got.MessagePayload, &cand)
			if want := fmt.Sprintf("to %s %d", id, i); cand.Candidate != want {
				t.Fatalf("%s got %q, want %q", id, cand.Candidate, want)
			}
		}
	}
	if scrape(t, b, `kvswebrtc_messages_routed_total{path="remote"}`) == 0 {
		t.Error("node B counted no message routed remote")
	}
}

// Channels created on one node are seen, updated and deleted on the
// others; CurrentVersion and the create race hold across nodes.
func testClusterStore(t *testing.T, tc *testCluster) {
	ctx := context.Background()
	a, b, c := devClient(tc.nodes[0]), devClient(tc.nodes[1]), devClient(tc.nodes[2])
	out, err := a.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{
		ChannelName: aws.String("cluster.store.channel"),
		Tags:        []types.Tag{{Key: aws.String("team"), Value: aws.String("video")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ChannelARN)
	d, err := b.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: out.ChannelARN})
	if err != nil {
		t.Fatalf("describe on B: %v", err)
	}
	if aws.ToString(d.ChannelInfo.ChannelName) != "cluster.store.channel" {
		t.Fatalf("B describes %+v", d.ChannelInfo)
	}
	tags, err := c.ListTagsForResource(ctx, &kinesisvideo.ListTagsForResourceInput{ResourceARN: out.ChannelARN})
	if err != nil || tags.Tags["team"] != "video" {
		t.Fatalf("tags on C: %v %v", tags, err)
	}
	old := d.ChannelInfo.Version
	if _, err := b.UpdateSignalingChannel(ctx, &kinesisvideo.UpdateSignalingChannelInput{ChannelARN: out.ChannelARN, CurrentVersion: old,
		SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(30)}}); err != nil {
		t.Fatalf("update on B: %v", err)
	}
	_, err = c.UpdateSignalingChannel(ctx, &kinesisvideo.UpdateSignalingChannelInput{ChannelARN: out.ChannelARN, CurrentVersion: old})
	if !isCode(err, "VersionMismatchException") {
		t.Fatalf("update with the old version on C: %v, want VersionMismatchException", err)
	}
	_, err = c.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: out.ChannelARN, CurrentVersion: old})
	if !isCode(err, "VersionMismatchException") {
		t.Fatalf("delete with the old version on C: %v, want VersionMismatchException", err)
	}
	d, _ = a.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: out.ChannelARN})
	if got := aws.ToInt32(d.ChannelInfo.SingleMasterConfiguration.MessageTtlSeconds); got != 30 {
		t.Fatalf("A sees MessageTtlSeconds %d, want 30", got)
	}
	list, err := c.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{
		ChannelNameCondition: &types.ChannelNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: aws.String("cluster.store.")}})
	if err != nil || len(list.ChannelInfoList) != 1 {
		t.Fatalf("list on C: %v %v", list, err)
	}
	if _, err := c.DeleteSignalingChannel(ctx, &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: out.ChannelARN, CurrentVersion: d.ChannelInfo.Version}); err != nil {
		t.Fatalf("delete on C: %v", err)
	}
	if _, err := a.DescribeSignalingChannel(ctx, &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)}); !isCode(err, "ResourceNotFoundException") {
		t.Fatalf("describe on A after the delete: %v", err)
	}

	// The same name created on all three nodes at once: one wins.
	var wins, inUse atomic.Int32
	var wg sync.WaitGroup
	for _, cl := range []*kinesisvideo.Client{a, b, c} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := cl.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("cluster.store.race")})
			switch {
			case err == nil:
				wins.Add(1)
			case isCode(err, "ResourceInUseException"):
				inUse.Add(1)
			default:
				t.Errorf("create: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || inUse.Load() != 2 {
		t.Fatalf("%d creates won and %d were ResourceInUseException, want 1 and 2", wins.Load(), inUse.Load())
	}
}

// Eleven viewers dialled at once across the three nodes: exactly one is refused.
func testClusterViewerLimit(t *testing.T, tc *testCluster) {
	arn := mustCreate(t, tc.nodes[0], "cluster.viewer.limit")
	var ok, refusedN atomic.Int32
	var wg sync.WaitGroup
	conns := make(chan *websocket.Conn, 11)
	for i := 0; i < 11; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := tc.nodes[i%3]
			c, resp, err := dialErr(srv, presign(t, srv, arn, fmt.Sprintf("viewer-%d", i), time.Now(), localkvs.DevSecretAccessKey))
			switch {
			case err == nil:
				ok.Add(1)
				conns <- c
			case resp != nil && resp.StatusCode == 400 && resp.Header.Get("X-Amzn-ErrorType") == "ClientLimitExceededException":
				refusedN.Add(1)
			default:
				t.Errorf("viewer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(conns)
	for c := range conns {
		c.CloseNow()
	}
	if ok.Load() != 10 || refusedN.Load() != 1 {
		t.Fatalf("%d viewers connected and %d refused, want 10 and 1", ok.Load(), refusedN.Load())
	}
	if scrape(t, tc.nodes[0], `kvswebrtc_refusals_total{reason="viewers"}`)+scrape(t, tc.nodes[1], `kvswebrtc_refusals_total{reason="viewers"}`)+
		scrape(t, tc.nodes[2], `kvswebrtc_refusals_total{reason="viewers"}`) != 1 {
		t.Error("the refusal is not counted once as reason viewers")
	}
}

// reader reads a connection in the background: its frames, then how it closed.
type reader struct {
	frames chan wire.ServiceMessage
	closed chan websocket.StatusCode
}

func readAsync(c *websocket.Conn) *reader {
	r := &reader{frames: make(chan wire.ServiceMessage, 256), closed: make(chan websocket.StatusCode, 1)}
	go func() {
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				r.closed <- websocket.CloseStatus(err)
				return
			}
			var m wire.ServiceMessage
			json.Unmarshal(b, &m)
			r.frames <- m
		}
	}()
	return r
}

// next returns the next frame, which must be of type typ unless typ is "".
func (r *reader) next(t *testing.T, typ string) wire.ServiceMessage {
	t.Helper()
	select {
	case m := <-r.frames:
		if typ != "" && m.MessageType != typ {
			t.Fatalf("got %s (%+v), want %s", m.MessageType, m, typ)
		}
		return m
	case code := <-r.closed:
		t.Fatalf("closed (%d) while waiting for %s", code, typ)
	case <-time.After(waitTimeout):
		t.Fatalf("no %s within %s", typ, waitTimeout)
	}
	return wire.ServiceMessage{}
}

// Two masters racing on A and C: one survives.
func testClusterMasterRace(t *testing.T, tc *testCluster) {
	for round := 0; round < 3; round++ {
		arn := mustCreate(t, tc.nodes[0], fmt.Sprintf("cluster.master.race.%d", round))
		var wg sync.WaitGroup
		conns := make([]*websocket.Conn, 2)
		for i, srv := range []*localkvs.Server{tc.nodes[0], tc.nodes[2]} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, _, err := dialErr(srv, presign(t, srv, arn, "", time.Now(), localkvs.DevSecretAccessKey))
				if err == nil {
					t.Cleanup(func() { c.CloseNow() })
					conns[i] = c
				}
			}()
		}
		wg.Wait()
		var readers []*reader
		replaced := 0
		for _, c := range conns {
			if c == nil {
				replaced++ // refused: the other was admitted later
				continue
			}
			readers = append(readers, readAsync(c))
		}
		if replaced == 0 && len(readers) == 2 { // both admitted: the older is closed once its node sees the newer
			select {
			case code := <-readers[0].closed:
				if code != wire.CloseReplaced {
					t.Fatalf("a master closed with %d, want %d", code, wire.CloseReplaced)
				}
				readers = readers[1:]
			case code := <-readers[1].closed:
				if code != wire.CloseReplaced {
					t.Fatalf("a master closed with %d, want %d", code, wire.CloseReplaced)
				}
				readers = readers[:1]
			case <-time.After(waitTimeout):
				t.Fatalf("round %d: both masters still connected", round)
			}
			replaced++
		}
		alive := readers
		if replaced != 1 || len(alive) != 1 {
			t.Fatalf("round %d: %d masters replaced and %d alive, want 1 and 1", round, replaced, len(alive))
		}
		select {
		case code := <-alive[0].closed:
			t.Fatalf("round %d: the surviving master was closed too (%d)", round, code)
		case <-time.After(300 * time.Millisecond):
		}
		// The survivor gets a viewer's offer from the third node.
		v := dial(t, tc.nodes[1], arn, "viewer")
		send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: payload(t, map[string]string{"type": "offer"})})
		if got := alive[0].next(t, wire.SDPOffer); got.SenderClientID != "viewer" {
			t.Fatalf("survivor got %+v", got)
		}
	}
}

// The same ClientId on B, then on C: B's connection is closed (4001) and C's relays.
func testClusterSameClientID(t *testing.T, tc *testCluster) {
	arn := mustCreate(t, tc.nodes[0], "cluster.same.client")
	m := dial(t, tc.nodes[0], arn, "")
	onB := dial(t, tc.nodes[1], arn, "viewer.same")
	closedB := closedAsync(onB)
	onC := dial(t, tc.nodes[2], arn, "viewer.same")
	if r := awaitClosed(t, closedB); r.code != wire.CloseReplaced {
		t.Fatalf("B's connection closed with %d, want %d", r.code, wire.CloseReplaced)
	}
	send(t, m, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: payload(t, map[string]string{"type": "answer"}), RecipientClientID: "viewer.same"})
	recvType(t, onC, wire.SDPAnswer)
	send(t, onC, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: payload(t, map[string]string{"candidate": "c"})})
	if got := recvType(t, m, wire.ICECandidate); got.SenderClientID != "viewer.same" {
		t.Fatalf("master got %+v", got)
	}
}

// Messages for a recipient connected nowhere are kept cluster-wide: a
// newer offer replaces an older one, and they expire after the TTL.
func testClusterPending(t *testing.T, tc *testCluster) {
	arn := mustCreate(t, tc.nodes[0], "cluster.pending")
	m := dial(t, tc.nodes[0], arn, "")
	for i := 0; i < 3; i++ {
		send(t, m, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: payload(t, map[string]any{"candidate": fmt.Sprint(i)}), RecipientClientID: "late.viewer"})
	}
	// A viewer sends offers to a master that is not there yet.
	arn2 := mustCreate(t, tc.nodes[0], "cluster.pending.two")
	v := dial(t, tc.nodes[1], arn2, "early.viewer")
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: payload(t, map[string]string{"sdp": "old"})})
	send(t, v, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: payload(t, map[string]string{"sdp": "new"})})
	send(t, v, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: payload(t, map[string]string{"candidate": "after"})})
	time.Sleep(300 * time.Millisecond) // kept before the recipients connect (what is kept later is delivered too)

	late := dial(t, tc.nodes[2], arn, "late.viewer")
	for i := 0; i < 3; i++ {
		got := recvType(t, late, wire.ICECandidate)
		var cand struct{ Candidate string }
		wire.DecodePayload(got.MessagePayload, &cand)
		if cand.Candidate != fmt.Sprint(i) {
			t.Fatalf("kept candidate %d is %q", i, cand.Candidate)
		}
	}
	m2 := dial(t, tc.nodes[2], arn2, "")
	got := recvType(t, m2, wire.SDPOffer)
	var sdp struct{ SDP string }
	wire.DecodePayload(got.MessagePayload, &sdp)
	if sdp.SDP != "new" || got.SenderClientID != "early.viewer" {
		t.Fatalf("master got %+v (%q), want only the newer offer", got, sdp.SDP)
	}
	recvType(t, m2, wire.ICECandidate)

	// The TTL: 5 s, the shortest; what was kept for longer is gone.
	c := devClient(tc.nodes[1])
	ctx := context.Background()
	out, err := c.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String("cluster.pending.ttl"),
		SingleMasterConfiguration: &types.SingleMasterConfiguration{MessageTtlSeconds: aws.Int32(5)}})
	if err != nil {
		t.Fatal(err)
	}
	m3 := dial(t, tc.nodes[1], aws.ToString(out.ChannelARN), "")
	send(t, m3, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: payload(t, map[string]string{"candidate": "expired"}), RecipientClientID: "slow"})
	time.Sleep(6 * time.Second)
	send(t, m3, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: payload(t, map[string]string{"candidate": "fresh"}), RecipientClientID: "slow"})
	time.Sleep(300 * time.Millisecond)
	slow := dial(t, tc.nodes[0], aws.ToString(out.ChannelARN), "slow")
	got = recvType(t, slow, wire.ICECandidate)
	var cand struct{ Candidate string }
	wire.DecodePayload(got.MessagePayload, &cand)
	if cand.Candidate != "fresh" {
		t.Fatalf("got %q, want only the fresh candidate", cand.Candidate)
	}
}

// Deleting a channel on one node closes its connections on the others.
func testClusterDeleteChannel(t *testing.T, tc *testCluster) {
	arn := mustCreate(t, tc.nodes[0], "cluster.delete")
	v := dial(t, tc.nodes[1], arn, "v")
	m := dial(t, tc.nodes[2], arn, "")
	cv, cm := closedAsync(v), closedAsync(m)
	if _, err := devClient(tc.nodes[0]).DeleteSignalingChannel(context.Background(), &kinesisvideo.DeleteSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan closed{cv, cm} {
		if r := awaitClosed(t, ch); r.code != websocket.StatusNormalClosure {
			t.Fatalf("closed with %d, want 1000", r.code)
		}
	}
	refused(t, tc.nodes[2], presign(t, tc.nodes[2], arn, "", time.Now(), localkvs.DevSecretAccessKey), 404, "ResourceNotFoundException")
}

// STATUS_RESPONSE as on one node: the sender's node answers.
func testClusterStatusResponse(t *testing.T, tc *testCluster) {
	arn := mustCreate(t, tc.nodes[0], "cluster.status")
	m := dial(t, tc.nodes[0], arn, "")
	send(t, m, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: "x", CorrelationID: "no-recipient"})
	expectStatus(t, m, "no-recipient", "InvalidArgumentException")
	v := dial(t, tc.nodes[1], arn, "v")
	send(t, v, wire.ClientMessage{Action: "NOPE", MessagePayload: "x", CorrelationID: "bad-action"})
	expectStatus(t, v, "bad-action", "InvalidArgumentException")
}

// send-alexa-offer-to-master on one node reaches the master on another.
func testClusterAlexa(t *testing.T, tc *testCluster) {
	arn := mustCreate(t, tc.nodes[0], "cluster.alexa")
	m := dial(t, tc.nodes[0], arn, "")
	type result struct {
		status int
		body   []byte
	}
	done := make(chan result, 1)
	go func() {
		status, _, body := signedPost(t, tc.nodes[2], "/v1/send-alexa-offer-to-master",
			map[string]string{"ChannelARN": arn, "SenderClientId": "alexa.device", "MessagePayload": "b2ZmZXI="}, localkvs.DevSecretAccessKey)
		done <- result{status, body}
	}()
	got := recvType(t, m, wire.SDPOffer)
	if got.SenderClientID != "alexa.device" || got.MessagePayload != "b2ZmZXI=" {
		t.Fatalf("master got %+v", got)
	}
	send(t, m, wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: "YW5zd2Vy", RecipientClientID: "alexa.device"})
	r := <-done
	var out struct{ Answer string }
	json.Unmarshal(r.body, &out)
	if r.status != 200 || out.Answer != "YW5zd2Vy" {
		t.Fatalf("send-alexa-offer-to-master: %d %s", r.status, r.body)
	}
}

// GetIceServerConfig on one node hands out credentials every node's TURN
// server accepts; it lists a second node's server.
func testClusterTURN(t *testing.T, tc *testCluster) {
	arn := mustCreate(t, tc.nodes[0], "cluster.turn")
	status, _, body := signedPost(t, tc.nodes[0], "/v1/get-ice-server-config", map[string]string{"ChannelARN": arn}, localkvs.DevSecretAccessKey)
	if status != 200 {
		t.Fatalf("GetIceServerConfig: %d %s", status, body)
	}
	var out struct {
		IceServerList []struct {
			Uris               []string
			Username, Password string
		}
	}
	json.Unmarshal(body, &out)
	if len(out.IceServerList) != 2 {
		t.Fatalf("IceServerList %s: want this node's server and another's", body)
	}
	s := out.IceServerList[0]
	allocate := func(server, user, pass string) error {
		c, _ := turnClient(t, server, user, pass)
		relay, err := c.Allocate()
		if err == nil {
			relay.Close()
		}
		return err
	}
	for i, srv := range tc.nodes {
		addr := srv.TURNAddr().String()
		if err := allocate(addr, s.Username, s.Password); err != nil {
			t.Errorf("allocation on node %d (%s) with node A's credentials: %v", i, addr, err)
		}
		if err := allocate(addr, s.Username, s.Password+"x"); err == nil {
			t.Errorf("node %d allocated with a wrong password", i)
		}
	}
	if got := scrape(t, tc.nodes[1], "kvswebrtc_turn_allocations"); got < 0 {
		t.Fatal(got)
	}
}

// /healthz, /readyz and /metrics.
func testClusterOps(t *testing.T, tc *testCluster) {
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(tc.nodes[1].URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
	}
	for _, name := range []string{"kvswebrtc_connections", "kvswebrtc_messages_routed_total", "kvswebrtc_refusals_total",
		"kvswebrtc_signature_failures_total", "kvswebrtc_turn_allocations", "kvswebrtc_store_operation_seconds_count"} {
		resp, err := http.Get(tc.nodes[0].URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), name) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	// A bad signature is counted.
	before := scrape(t, tc.nodes[0], "kvswebrtc_signature_failures_total")
	signedPost(t, tc.nodes[0], "/describeSignalingChannel", map[string]string{"ChannelName": "x"}, "wrong-secret")
	if scrape(t, tc.nodes[0], "kvswebrtc_signature_failures_total") != before+1 {
		t.Error("a bad signature was not counted")
	}
}

// candidateNo returns the number of a numbered ICE candidate ("n 17").
func candidateNo(t *testing.T, m wire.ServiceMessage) int {
	t.Helper()
	var cand struct{ Candidate string }
	if err := wire.DecodePayload(m.MessagePayload, &cand); err != nil {
		t.Fatal(err)
	}
	var n int
	if _, err := fmt.Sscanf(cand.Candidate, "n %d", &n); err != nil {
		t.Fatalf("candidate %q is not numbered", cand.Candidate)
	}
	return n
}

func numbered(t *testing.T, n int) string {
	return payload(t, map[string]any{"candidate": fmt.Sprintf("n %d", n), "sdpMid": "0", "sdpMLineIndex": 0})
}

// TestClusterNodeFailure: the connect rate holds across nodes; then node
// B is killed while its viewer exchanges numbered candidates with the
// master on A; the viewer reconnects to C and every candidate sent after
// it is connected again arrives, in order, both ways; the channels made
// before are all there; B restarts and rejoins.
func TestClusterNodeFailure(t *testing.T) {
	limits := fastLimits()
	limits.ConnectsPerSecond = 0 // the real 3 per second per channel
	tc := startCluster(t, "kvs-fault", clusterPortsFault, limits)
	a, c := tc.nodes[0], tc.nodes[2]

	// Four connects at once on three nodes: three pass, one is refused
	// (unless the four took more than a third of a second, when the
	// bucket's refill lets one more through: a slow machine).
	rateARN := mustCreate(t, a, "fault.rate")
	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := tc.nodes[i%3]
			conn, resp, err := dialErr(srv, presign(t, srv, rateARN, fmt.Sprintf("v%d", i), time.Now(), localkvs.DevSecretAccessKey))
			switch {
			case err == nil:
				ok.Add(1)
				conn.CloseNow()
			case resp != nil && resp.Header.Get("X-Amzn-ErrorType") == "ClientLimitExceededException":
				limited.Add(1)
			default:
				t.Errorf("connect %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	most := 3 + int(3*time.Since(t0).Seconds()) // the burst, and what refilled meanwhile
	if n := int(ok.Load()); n < 3 || n > most || n+int(limited.Load()) != 4 {
		t.Fatalf("%d connects passed and %d were limited in %s, want 3 to %d passed, the rest limited", n, limited.Load(), time.Since(t0), most)
	}

	// Channels made on every node before the kill.
	var made []string
	for i := 0; i < 12; i++ {
		made = append(made, mustCreate(t, tc.nodes[i%3], fmt.Sprintf("fault.kept.%02d", i)))
	}

	arn := mustCreate(t, a, "fault.channel")
	mconn := dial(t, a, arn, "")
	master := readAsync(mconn)
	viewer := dial(t, tc.nodes[1], arn, "viewer.of.b")
	vr := readAsync(viewer)

	// The master sends a numbered candidate every 10 ms; the viewer too.
	var next atomic.Int64 // the master's next number
	stop := make(chan struct{})
	var mu sync.Mutex
	mwrite := func(m wire.ClientMessage) error {
		mu.Lock()
		defer mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		b, _ := json.Marshal(m)
		return mconn.Write(ctx, websocket.MessageText, b)
	}
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				n := next.Add(1) - 1
				if err := mwrite(wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: numbered(t, int(n)), RecipientClientID: "viewer.of.b"}); err != nil {
					return
				}
			}
		}
	}()
	stopSending := sync.OnceFunc(func() { close(stop) })
	defer stopSending()
	// Before the kill: the viewer gets the master's candidates.
	for i := 0; i < 5; i++ {
		vr.next(t, wire.ICECandidate)
	}
	send(t, viewer, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: numbered(t, 0)})
	if n := candidateNo(t, master.next(t, wire.ICECandidate)); n != 0 {
		t.Fatalf("master got %d", n)
	}

	killed := time.Now()
	localkvs.Crash(tc.nodes[1])
	select {
	case <-vr.closed:
	case <-time.After(waitTimeout):
		t.Fatal("the viewer's connection to B did not drop")
	}
	// The viewer connects again, to C, as a client with a list of
	// endpoints would (retrying while the cluster elects new leaders).
	var again *websocket.Conn
	for again == nil {
		conn, resp, err := dialErr(c, presign(t, c, arn, "viewer.of.b", time.Now(), localkvs.DevSecretAccessKey))
		if err == nil {
			again = conn
			break
		}
		if time.Since(killed) > 20*time.Second {
			t.Fatalf("the viewer could not connect to C: %v (%v)", err, resp)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() { again.CloseNow() })
	t.Logf("viewer connected again to C %s after the kill", time.Since(killed).Round(time.Millisecond))
	var2 := readAsync(again)
	// Say hello: the master knows the viewer is back when this arrives.
	send(t, again, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: payload(t, map[string]string{"type": "offer", "sdp": "again"})})
	var from int64
	for {
		m := master.next(t, "")
		if m.MessageType == wire.SDPOffer {
			from = next.Load() // every candidate numbered from here on must arrive
			break
		}
	}
	// The viewer's candidates after the reconnect reach the master in order.
	for i := 1; i <= 30; i++ {
		send(t, again, wire.ClientMessage{Action: wire.ICECandidate, MessagePayload: numbered(t, 1000+i)})
	}
	for want := 1001; want <= 1030; {
		m := master.next(t, "")
		if m.MessageType != wire.ICECandidate {
			continue
		}
		if n := candidateNo(t, m); n != want {
			t.Fatalf("master got candidate %d, want %d", n, want)
		}
		want++
	}
	// The master's candidates from `from` on reach the viewer, in order.
	want := int(from)
	deadline := time.Now().Add(waitTimeout)
	for want < int(from)+100 {
		if time.Now().After(deadline) {
			t.Fatalf("viewer got the master's candidates up to %d, want up to %d", want-1, from+99)
		}
		m := var2.next(t, "")
		if m.MessageType != wire.ICECandidate {
			continue
		}
		n := candidateNo(t, m)
		if n < int(from) {
			continue // sent before the viewer was back: kept or lost, not checked
		}
		if n != want {
			t.Fatalf("viewer got candidate %d, want %d (first counted: %d)", n, want, from)
		}
		want++
	}

	// The channels made before the kill are all there, on A and on C.
	for _, srv := range []*localkvs.Server{a, c} {
		for _, arn := range made {
			if _, err := devClient(srv).DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
				t.Fatalf("%s after the kill: %v", arn, err)
			}
		}
	}

	// B restarts on its data and rejoins.
	restarted, err := localkvs.Start(tc.cfgs[1], "127.0.0.1:0")
	if err != nil {
		t.Fatalf("restarting B: %v", err)
	}
	tc.nodes[1] = restarted
	tc.waitReady(1)
	for _, i := range []int{0, 2} {
		tc.waitReady(i)
	}
	v3 := dial(t, restarted, arn, "viewer.on.new.b")
	send(t, v3, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: payload(t, map[string]string{"type": "offer", "sdp": "b is back"})})
	for {
		m := master.next(t, "")
		if m.MessageType == wire.SDPOffer && m.SenderClientID == "viewer.on.new.b" {
			break
		}
	}
	if err := mwrite(wire.ClientMessage{Action: wire.SDPAnswer, MessagePayload: payload(t, map[string]string{"type": "answer"}), RecipientClientID: "viewer.on.new.b"}); err != nil {
		t.Fatal(err)
	}
	recvType(t, v3, wire.SDPAnswer)
	for _, arn := range made {
		if _, err := devClient(restarted).DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelARN: aws.String(arn)}); err != nil {
			t.Fatalf("%s on the restarted B: %v", arn, err)
		}
	}

	// A stops gracefully, as on one node: GO_AWAY, then 1001; the master
	// connects again to C and the viewer on B reaches it there, even
	// while B's views of the buckets trail them (as on a loaded machine,
	// where this failed now and then): B has seen neither A's entry
	// deleted nor the roster naming the master on C when the offer
	// arrives, and must not send it to A, which is gone.
	stopSending()
	localkvs.DelayWatches(restarted, 500*time.Millisecond)
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown of A: %v", err)
	}
	var code websocket.StatusCode
	select {
	case code = <-master.closed: // the reader queued every frame before it
	case <-time.After(waitTimeout):
		t.Fatal("A did not close the master")
	}
	sawGoAway := false
	for len(master.frames) > 0 {
		sawGoAway = sawGoAway || (<-master.frames).MessageType == wire.GoAway
	}
	if !sawGoAway || code != websocket.StatusGoingAway {
		t.Fatalf("A closed the master with %d, GO_AWAY first: %v; want 1001 after GO_AWAY", code, sawGoAway)
	}
	m2 := dial(t, c, arn, "")
	send(t, v3, wire.ClientMessage{Action: wire.SDPOffer, MessagePayload: payload(t, map[string]string{"type": "offer", "sdp": "after A left"})})
	for {
		m := recv(t, m2)
		if m.MessageType == wire.SDPOffer && m.SenderClientID == "viewer.on.new.b" {
			break
		}
	}
}
