package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/coder/websocket"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// The recovery run of -cluster N -kill (cluster.go starts the nodes):
// fresh channels, node 2 killed, the times its viewers took to connect
// again and the messages lost meanwhile.

// recoveryConfig is one recovery run.
type recoveryConfig struct {
	endpoints []string // control-plane URLs of the nodes
	region    string
	channels  int
	viewers   int
	rate      float64 // per viewer
	before    time.Duration
	after     time.Duration
	kill      func(node int) error
	log       io.Writer
}

// recoveryResult is what a recovery run measured. A message counts for
// "online" when its recipient was connected when it was sent and neither
// its sender's connection nor its recipient's dropped in the second after;
// the others are counted apart: in flight on a connection that dropped
// (the killed node's, or one cut on a starved machine), or sent while the
// recipient was connecting again (kept by the cluster for it, or not).
type recoveryResult struct {
	Clients         int           // connections of the killed node
	Reconnected     int           // of those, connected again within the run
	ReconnectP50    time.Duration // from the kill to connected again
	ReconnectMax    time.Duration
	Sent            int // numbered messages sent, both ways
	OnlineSent      int
	OnlineLost      int
	InFlightLost    int // sent less than a second before a drop of its sender's or recipient's connection, not received
	OfflineSent     int // sent while the recipient was connecting again
	OfflineReceived int // of those, received after it connected again (kept for it)
	Duplicates      int
	Reordered       int // online messages received after a later one of the same sender
}

func (r *recoveryResult) report(w io.Writer) {
	fmt.Fprintf(w, "--- recovery after a node kill\n")
	fmt.Fprintf(w, "clients of the killed node: %d, connected again %d: p50 %s, max %s after the kill\n",
		r.Clients, r.Reconnected, ms(r.ReconnectP50), ms(r.ReconnectMax))
	fmt.Fprintf(w, "messages:          %d sent; to online recipients %d, lost %d (reordered %d); in flight on a connection that dropped lost %d; sent while the recipient reconnected %d, delivered later %d; duplicates %d\n",
		r.Sent, r.OnlineSent, r.OnlineLost, r.Reordered, r.InFlightLost, r.OfflineSent, r.OfflineReceived, r.Duplicates)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func unb64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }

// recPeer is a client of the recovery run.
type recPeer struct {
	ch     int
	id     string // "" for the master
	node   int    // the node it is connected to
	mu     sync.Mutex
	ws     *websocket.Conn
	online atomic.Bool
	drops  []drop // its connection's drops, each with when it was connected again
	gen    int    // connections so far
	killed bool   // connected to the killed node when it was killed
}

// drop is a connection lost at down and made again at up (zero: never).
type drop struct{ down, up time.Time }

// downAt reports whether p was not connected at t.
func (p *recPeer) downAt(t time.Time) bool {
	for _, d := range p.drops {
		if !t.Before(d.down) && (d.up.IsZero() || t.Before(d.up)) {
			return true
		}
	}
	return false
}

// dropsSoonAfter reports whether p's connection dropped within a second after t.
func (p *recPeer) dropsSoonAfter(t time.Time) bool {
	for _, d := range p.drops {
		if d.down.After(t) && d.down.Sub(t) < time.Second {
			return true
		}
	}
	return false
}

// recMsg is one numbered message: from a viewer to its master (echo
// false) or the master's echo back.
type recMsg struct {
	sentAt   time.Time
	viewer   *recPeer
	echo     bool
	gen      int // the recipient's connection when sent (-1: not connected)
	received int
	recvAt   time.Time
}

// runRecovery runs the recovery measurement on the nodes of rc.
func runRecovery(ctx context.Context, rc recoveryConfig) (*recoveryResult, error) {
	const killed = 1 // node 2
	if float64(rc.viewers)*rc.rate > 20 {
		return nil, fmt.Errorf("%d viewers x %g candidates/s: a master would echo more than the 20 ICE candidates per second a connection may send", rc.viewers, rc.rate)
	}
	if len(rc.endpoints) < 3 {
		return nil, errors.New("the recovery run needs 3 nodes or more (the masters', the killed one's, another)")
	}
	kv := kvsClient(rc.endpoints[0], rc.region)
	run := time.Now().UnixMilli()
	arns := make([]string, rc.channels)
	for i := range arns {
		out, err := kv.CreateSignalingChannel(ctx, &kinesisvideo.CreateSignalingChannelInput{ChannelName: aws.String(fmt.Sprintf("recovery-%d-%d", run, i))})
		if err != nil {
			return nil, fmt.Errorf("CreateSignalingChannel: %w", err)
		}
		arns[i] = aws.ToString(out.ChannelARN)
	}
	signer, err := sigv4.New(rc.region, sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""), sigv4.AllowInsecureEndpoint())
	if err != nil {
		return nil, err
	}
	dial := func(p *recPeer, node int) (*websocket.Conn, error) {
		q := map[string]string{sigv4.ParamChannelARN: arns[p.ch]}
		if p.id != "" {
			q[sigv4.ParamClientID] = p.id
		}
		u, err := signer.PresignURL(ctx, wssOf(rc.endpoints[node]), q, time.Now())
		if err != nil {
			return nil, err
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
		if err == nil {
			ws.SetReadLimit(1 << 20)
		}
		return ws, err
	}

	var mu sync.Mutex // guards msgs
	var msgs []*recMsg
	byKey := map[string]*recMsg{} // "<viewer>|<ch>|<n>|<echo>"
	key := func(v *recPeer, n int, echo bool) string {
		return v.id + "|" + strconv.Itoa(v.ch) + "|" + strconv.Itoa(n) + "|" + strconv.FormatBool(echo)
	}
	record := func(v *recPeer, n int, echo bool, gen int) {
		m := &recMsg{sentAt: time.Now(), viewer: v, echo: echo, gen: gen}
		mu.Lock()
		msgs = append(msgs, m)
		byKey[key(v, n, echo)] = m
		mu.Unlock()
	}
	received := func(v *recPeer, n int, echo bool) {
		mu.Lock()
		if m := byKey[key(v, n, echo)]; m != nil {
			m.received++
			if m.received == 1 {
				m.recvAt = time.Now()
			}
		}
		mu.Unlock()
	}
	stopping := atomic.Bool{}
	var wg sync.WaitGroup
	masters := make([]*recPeer, rc.channels)
	viewers := map[string]*recPeer{} // "<ch>|<id>"
	var all []*recPeer
	write := func(p *recPeer, b []byte) error {
		p.mu.Lock()
		ws := p.ws
		p.mu.Unlock()
		if ws == nil {
			return errors.New("not connected")
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return ws.Write(wctx, websocket.MessageText, b)
	}
	frame := func(n int, recipient string) []byte {
		payload := fmt.Sprintf(`{"candidate":"n %d","sdpMid":"0","sdpMLineIndex":0}`, n)
		m := map[string]string{"action": actionICE, "messagePayload": b64(payload)}
		if recipient != "" {
			m["recipientClientId"] = recipient
		}
		b, _ := json.Marshal(m)
		return b
	}
	// readLoop reads p's frames; a viewer whose connection drops connects
	// again to the next node (the killed one refuses), as a client with a
	// list of endpoints does.
	var readLoop func(p *recPeer)
	readLoop = func(p *recPeer) {
		defer wg.Done()
		for {
			p.mu.Lock()
			ws := p.ws
			p.mu.Unlock()
			_, data, err := ws.Read(ctx)
			if err != nil {
				if stopping.Load() {
					return
				}
				p.online.Store(false)
				p.mu.Lock()
				p.drops = append(p.drops, drop{down: time.Now()})
				p.mu.Unlock()
				// A viewer tries the next node; a master (cut, say, as too
				// slow on a starved machine) connects again to node 1.
				node := p.node
				for !stopping.Load() {
					if p.id != "" {
						if node = (node + 1) % len(rc.endpoints); node == 0 && len(rc.endpoints) > 2 {
							continue // keep node 1 for the masters, as the load does
						}
					}
					ws2, err := dial(p, node)
					if err != nil {
						time.Sleep(20 * time.Millisecond)
						continue
					}
					p.mu.Lock()
					p.ws, p.node = ws2, node
					p.drops[len(p.drops)-1].up = time.Now()
					p.gen++
					p.mu.Unlock()
					p.online.Store(true)
					break
				}
				continue
			}
			var f struct {
				MessageType, MessagePayload, SenderClientID string
			}
			if json.Unmarshal(data, &f) != nil || f.MessageType != actionICE {
				continue
			}
			var c struct{ Candidate string }
			raw, _ := unb64(f.MessagePayload)
			json.Unmarshal(raw, &c)
			var n int
			if _, err := fmt.Sscanf(c.Candidate, "n %d", &n); err != nil {
				continue
			}
			if p.id == "" { // the master: note it, echo it
				v := viewers[strconv.Itoa(p.ch)+"|"+f.SenderClientID]
				if v == nil {
					continue
				}
				received(v, n, false)
				gen := -1
				if v.online.Load() {
					v.mu.Lock()
					gen = v.gen
					v.mu.Unlock()
				}
				record(v, n, true, gen)
				if err := write(p, frame(n, v.id)); err != nil && !stopping.Load() {
					fmt.Fprintf(rc.log, "recovery: master write: %v\n", err)
				}
			} else {
				received(p, n, true)
			}
		}
	}
	for ch := 0; ch < rc.channels; ch++ {
		m := &recPeer{ch: ch, node: 0}
		ws, err := dial(m, 0)
		if err != nil {
			return nil, fmt.Errorf("master %d: %w", ch, err)
		}
		m.ws = ws
		m.online.Store(true)
		masters[ch] = m
		all = append(all, m)
		for k := 0; k < rc.viewers; k++ {
			node := 1 + (k+ch)%(len(rc.endpoints)-1)
			v := &recPeer{ch: ch, id: fmt.Sprintf("viewer-%d", k), node: node}
			viewers[strconv.Itoa(ch)+"|"+v.id] = v
			all = append(all, v)
		}
	}
	// Viewers connect a round apart per channel (3 connects per second per channel).
	for k := 0; k < rc.viewers; k++ {
		if k > 0 {
			time.Sleep(400 * time.Millisecond)
		}
		for ch := 0; ch < rc.channels; ch++ {
			v := viewers[strconv.Itoa(ch)+"|"+fmt.Sprintf("viewer-%d", k)]
			ws, err := dial(v, v.node)
			if err != nil {
				return nil, fmt.Errorf("viewer %s of %d: %w", v.id, ch, err)
			}
			v.ws = ws
			v.online.Store(true)
		}
	}
	for _, p := range all {
		wg.Add(1)
		go readLoop(p)
	}
	defer func() {
		stopping.Store(true)
		for _, p := range all {
			p.mu.Lock()
			if p.ws != nil {
				p.ws.CloseNow()
			}
			p.mu.Unlock()
		}
		wg.Wait()
	}()
	// Each viewer sends numbered candidates at rc.rate, spread in time.
	var vs []*recPeer
	for _, p := range all {
		if p.id != "" {
			vs = append(vs, p)
		}
	}
	start := time.Now()
	end := start.Add(rc.before + rc.after)
	var killAt time.Time
	var sendWG sync.WaitGroup
	for i, v := range vs {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			period := time.Duration(float64(time.Second) / rc.rate)
			time.Sleep(period * time.Duration(i) / time.Duration(len(vs)))
			t := time.NewTicker(period)
			defer t.Stop()
			for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
				<-t.C
				if !v.online.Load() {
					continue // connecting again: a client would not send meanwhile
				}
				record(v, n, false, 0)
				_ = write(v, frame(n, ""))
			}
		}()
	}
	time.Sleep(rc.before)
	for _, v := range vs {
		v.mu.Lock()
		v.killed = v.node == killed
		v.mu.Unlock()
	}
	killAt = time.Now()
	if err := rc.kill(killed); err != nil {
		return nil, fmt.Errorf("killing node %d: %w", killed+1, err)
	}
	fmt.Fprintf(rc.log, "killed node %d\n", killed+1)
	sendWG.Wait()
	time.Sleep(3 * time.Second) // drain
	stopping.Store(true)

	res := &recoveryResult{}
	var recon []time.Duration
	for _, v := range vs {
		v.mu.Lock()
		if v.killed {
			res.Clients++
			for _, d := range v.drops {
				if !d.down.Before(killAt) && !d.up.IsZero() {
					res.Reconnected++
					recon = append(recon, d.up.Sub(killAt))
					break
				}
			}
		}
		v.mu.Unlock()
	}
	slices.Sort(recon)
	if len(recon) > 0 {
		res.ReconnectP50, res.ReconnectMax = recon[len(recon)/2], recon[len(recon)-1]
	}
	for _, p := range all {
		p.mu.Lock() // the read loops are done: no more drops
	}
	defer func() {
		for _, p := range all {
			p.mu.Unlock()
		}
	}()
	mu.Lock()
	defer mu.Unlock()
	last := map[string]time.Time{} // per sender and direction: the latest receipt among online messages, for order
	for _, m := range msgs {
		res.Sent++
		if m.received > 1 {
			res.Duplicates += m.received - 1
		}
		v, mst := m.viewer, masters[m.viewer.ch]
		sender, recipient := v, mst
		if m.echo {
			sender, recipient = mst, v
		}
		switch {
		case recipient.downAt(m.sentAt) || (m.echo && m.gen < 0): // sent to a recipient connecting again
			res.OfflineSent++
			if m.received > 0 {
				res.OfflineReceived++
			}
			continue
		case sender.dropsSoonAfter(m.sentAt) || recipient.dropsSoonAfter(m.sentAt): // on a socket that died
			if m.received == 0 {
				res.InFlightLost++
			}
			continue
		}
		res.OnlineSent++
		if m.received == 0 {
			res.OnlineLost++
			if os.Getenv("LOADGEN_DEBUG") != "" { // which ones, to find out why
				fmt.Fprintf(rc.log, "lost: %s ch %d echo %v gen %d sent %s after the kill\n", v.id, v.ch, m.echo, m.gen, m.sentAt.Sub(killAt))
			}
			continue
		}
		k := v.id + "|" + strconv.Itoa(v.ch) + "|" + strconv.FormatBool(m.echo)
		if m.recvAt.Before(last[k]) {
			res.Reordered++
		}
		if m.recvAt.After(last[k]) {
			last[k] = m.recvAt
		}
	}
	return res, nil
}
