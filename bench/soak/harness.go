package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/signaling"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// client is one signaling client of the soak and what happened to it.
type client struct {
	name   string // "m012" or "v012-1"
	master bool
	ch     int
	peers  []*client // a master's viewers, a viewer's master
	sc     *signaling.Client
	seq    atomic.Int64

	mu        sync.Mutex
	open      bool
	lostAt    time.Time // when the current outage began; zero when open
	lostCause string
	changes   []time.Time
}

// changed records a change of connection (lost, or open again) at t.
func (c *client) changed(t time.Time) {
	c.changes = append(c.changes, t)
	if len(c.changes) > 64 {
		c.changes = c.changes[len(c.changes)-64:]
	}
}

// steady reports whether c's connection did not change in [from, to] and
// c was open at from.
func (c *client) steady(from, to time.Time, openAtFrom bool) bool {
	if !openAtFrom {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.changes {
		if !t.Before(from) && !t.After(to) {
			return false
		}
	}
	return true
}

// inFlight is a message sent and not finalized yet.
type inFlight struct {
	at           time.Time
	from, to     *client
	recipientUp  bool // the recipient was open when it was sent
	received     bool
	latency      time.Duration
	serviceEpoch int64
}

// harness runs the clients and counts their messages.
type harness struct {
	o         options
	endpoint  string
	startTime time.Time
	clients   []*client

	serviceEpoch atomic.Int64 // restarts so far

	fmu    sync.Mutex
	faults []fault

	mu       sync.Mutex
	inflight map[string]*inFlight
	periods  map[int]*periodStats
	late     int // received after their message was finalized, or unknown
	dups     int
	latency  histogram // of the messages received

	rmu        sync.Mutex
	reconnects map[string]*histogram // by cause
	refusals   atomic.Int64          // failed reconnect dials (e.g. ClientLimitExceeded)
}

type fault struct {
	kind string
	at   time.Time
}

// periodStats are the message counts of one restart period.
type periodStats struct {
	Period                 int
	Sent, Received         int
	Eligible, EligibleLost int
	OtherLost              int
}

func newHarness(o options, endpoint string) *harness {
	return &harness{o: o, endpoint: endpoint, inflight: map[string]*inFlight{}, periods: map[int]*periodStats{},
		reconnects: map[string]*histogram{}}
}

func (h *harness) fault(kind string) {
	now := time.Now()
	if kind == "restart" {
		h.serviceEpoch.Add(1)
	}
	h.fmu.Lock()
	h.faults = append(h.faults, fault{kind, now})
	h.fmu.Unlock()
}

// causeOf classifies an outage that began at t with err: GO_AWAY, the
// fault just before it (a restart or a drop, within 2 s), or other.
func (h *harness) causeOf(t time.Time, err error) string {
	if errors.Is(err, signaling.ErrGoAway) {
		return "go_away"
	}
	h.fmu.Lock()
	defer h.fmu.Unlock()
	for i := len(h.faults) - 1; i >= 0; i-- {
		if d := t.Sub(h.faults[i].at); d >= 0 && d < 2*time.Second {
			return h.faults[i].kind
		}
	}
	return "other"
}

// restartBetween reports whether serve was restarted in [from, to].
func (h *harness) restartBetween(from, to time.Time) bool {
	h.fmu.Lock()
	defer h.fmu.Unlock()
	for _, f := range h.faults {
		if f.kind == "restart" && !f.at.Before(from) && !f.at.After(to) {
			return true
		}
	}
	return false
}

func (h *harness) connect(arns []string) error {
	for i, arn := range arns {
		m := &client{name: fmt.Sprintf("m%03d", i), master: true, ch: i}
		h.clients = append(h.clients, m)
		for j := 0; j < h.o.viewers; j++ {
			v := &client{name: fmt.Sprintf("v%03d-%d", i, j), ch: i, peers: []*client{m}}
			m.peers = append(m.peers, v)
			h.clients = append(h.clients, v)
		}
		for _, c := range append([]*client{m}, m.peers...) {
			if err := h.newClient(c, arn); err != nil {
				return err
			}
		}
	}
	// Connects are limited to 3 a second per channel: open the channels'
	// clients a quarter of a second apart, all channels at once.
	var wg sync.WaitGroup
	errs := make(chan error, len(h.clients))
	for i := 0; i < 1+h.o.viewers; i++ {
		for _, c := range h.clients {
			if c.master != (i == 0) || (!c.master && c.name[len(c.name)-1]-'0' != byte(i-1)) {
				continue
			}
			wg.Add(1)
			go func(c *client) {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := c.sc.Open(ctx); err != nil {
					errs <- fmt.Errorf("%s: %w", c.name, err)
				}
			}(c)
		}
		time.Sleep(400 * time.Millisecond)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func (h *harness) newClient(c *client, arn string) error {
	cfg := signaling.Config{
		ChannelARN:            arn,
		ChannelEndpoint:       h.endpoint,
		Region:                localkvs.DefaultRegion,
		Role:                  signaling.RoleViewer,
		ClientID:              c.name,
		Credentials:           sigv4.StaticCredentials(localkvs.DevAccessKeyID, localkvs.DevSecretAccessKey, ""),
		AllowInsecureEndpoint: true,
		Logger:                slog.New(slog.DiscardHandler),
	}
	if c.master {
		cfg.Role, cfg.ClientID = signaling.RoleMaster, ""
	}
	sc, err := signaling.New(cfg)
	if err != nil {
		return err
	}
	c.sc = sc
	sc.OnOpen(func() {
		now := time.Now()
		c.mu.Lock()
		lost, cause := c.lostAt, c.lostCause
		c.open, c.lostAt = true, time.Time{}
		c.changed(now)
		c.mu.Unlock()
		if !lost.IsZero() {
			h.rmu.Lock()
			for _, k := range []string{cause, "all"} {
				if h.reconnects[k] == nil {
					h.reconnects[k] = &histogram{}
				}
				h.reconnects[k].add(now.Sub(lost))
			}
			h.rmu.Unlock()
		}
	})
	sc.OnReconnecting(func(attempt int, _ time.Duration, cause error) {
		now := time.Now()
		c.mu.Lock()
		if c.lostAt.IsZero() {
			c.lostAt, c.lostCause = now, h.causeOf(now, cause)
			c.changed(now)
		}
		c.open = false
		c.mu.Unlock()
		if attempt > 1 {
			h.refusals.Add(1)
		}
	})
	deliver := func(sd webrtc.SessionDescription, sender string) { h.received(c, sd.SDP) }
	if c.master {
		sc.OnSDPOffer(deliver)
	} else {
		sc.OnSDPAnswer(deliver)
	}
	return nil
}

// sendLoop makes every client send one message to each of its peers each
// interval, spread over the interval.
func (h *harness) sendLoop(stop <-chan struct{}) {
	t := time.NewTicker(h.o.rate / time.Duration(len(h.clients)))
	defer t.Stop()
	for i := 0; ; i = (i + 1) % len(h.clients) {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		c := h.clients[i]
		for _, p := range c.peers {
			h.send(c, p)
		}
	}
}

func (h *harness) send(from, to *client) {
	seq := from.seq.Add(1)
	key := from.name + ">" + to.name + "#" + strconv.FormatInt(seq, 10)
	to.mu.Lock()
	up := to.open
	to.mu.Unlock()
	rec := &inFlight{at: time.Now(), from: from, to: to, recipientUp: up, serviceEpoch: h.serviceEpoch.Load()}
	h.mu.Lock()
	h.inflight[key] = rec
	h.mu.Unlock()
	var err error
	if from.master {
		err = from.sc.SendSDPAnswer(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: "soak " + key}, signaling.WithRecipient(to.name))
	} else {
		err = from.sc.SendSDPOffer(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "soak " + key})
	}
	if err != nil { // not sent (signaling down): not counted
		h.mu.Lock()
		delete(h.inflight, key)
		h.mu.Unlock()
	}
}

func (h *harness) received(at *client, sdp string) {
	key, ok := strings.CutPrefix(sdp, "soak ")
	if !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	rec := h.inflight[key]
	switch {
	case rec == nil:
		h.late++
	case rec.received:
		h.dups++
	default:
		rec.received, rec.latency = true, time.Since(rec.at)
	}
}

// finalizeLoop decides, settle after each message was sent, whether it was
// eligible (sent to a recipient that was connected, and neither side nor
// the service changed connection within eligibleSpan) and lost.
func (h *harness) finalizeLoop(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.finalize(time.Now().Add(-h.o.settle))
		}
	}
}

func (h *harness) finalizeAll() { h.finalize(time.Now().Add(time.Hour)) }

func (h *harness) finalize(before time.Time) {
	h.mu.Lock()
	var done []*inFlight
	for k, r := range h.inflight {
		if r.at.Before(before) {
			done = append(done, r)
			delete(h.inflight, k)
		}
	}
	h.mu.Unlock()
	for _, r := range done {
		end := r.at.Add(h.o.eligibleSpan)
		eligible := r.from.steady(r.at, end, true) && r.to.steady(r.at, end, r.recipientUp) && !h.restartBetween(r.at.Add(-500*time.Millisecond), end)
		p := int(r.at.Sub(h.startTime) / h.o.period)
		h.mu.Lock()
		ps := h.periods[p]
		if ps == nil {
			ps = &periodStats{Period: p}
			h.periods[p] = ps
		}
		ps.Sent++
		if r.received {
			ps.Received++
			h.latency.add(r.latency)
		}
		switch {
		case eligible && !r.received:
			ps.Eligible++
			ps.EligibleLost++
		case eligible:
			ps.Eligible++
		case !r.received:
			ps.OtherLost++
		}
		h.mu.Unlock()
	}
}

// waitOpen waits until every client is open again, at most d.
func (h *harness) waitOpen(d time.Duration) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if h.notOpen() == 0 {
			return
		}
	}
}

func (h *harness) notOpen() int {
	n := 0
	for _, c := range h.clients {
		if c.sc.State() != signaling.StateOpen {
			n++
		}
	}
	return n
}

func (h *harness) close() {
	var wg sync.WaitGroup
	for _, c := range h.clients {
		wg.Add(1)
		go func(c *client) { defer wg.Done(); c.sc.Close() }(c)
	}
	wg.Wait()
}
