package signaling

import (
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// StatusResponse is the body of a STATUS_RESPONSE message: the service's
// answer to a failed message that carried a correlation id.
type StatusResponse struct {
	// CorrelationID is the id given with WithCorrelationID on the failed message.
	CorrelationID string
	// Success is false for the failures the service reports.
	Success bool
	// ErrorType is the error code, e.g. "InvalidArgumentException".
	ErrorType string
	// StatusCode is the HTTP-like status code as a string, e.g. "400".
	StatusCode string
	// Description is a human-readable explanation, when the service gives one.
	Description string
}

// handlers holds the callbacks set with the OnX methods.
type handlers struct {
	mu                 sync.RWMutex
	open               func()
	sdpOffer           func(webrtc.SessionDescription, string)
	sdpAnswer          func(webrtc.SessionDescription, string)
	iceCandidate       func(webrtc.ICECandidateInit, string)
	statusResponse     func(StatusResponse)
	goAway             func()
	reconnectICEServer func()
	reconnecting       func(int, time.Duration, error)
	closed             func()
	err                func(error)
}

// OnOpen sets the handler called each time the connection opens: after Open
// succeeds and after every successful reconnect.
func (c *Client) OnOpen(f func()) { c.h.mu.Lock(); c.h.open = f; c.h.mu.Unlock() }

// OnSDPOffer sets the handler called for each SDP offer received.
// senderClientID is the viewer's id when the client is a master, and "" when
// the offer comes from the master (the service does not name the master).
func (c *Client) OnSDPOffer(f func(offer webrtc.SessionDescription, senderClientID string)) {
	c.h.mu.Lock()
	c.h.sdpOffer = f
	c.h.mu.Unlock()
}

// OnSDPAnswer sets the handler called for each SDP answer received.
// senderClientID is "" when the answer comes from the master.
func (c *Client) OnSDPAnswer(f func(answer webrtc.SessionDescription, senderClientID string)) {
	c.h.mu.Lock()
	c.h.sdpAnswer = f
	c.h.mu.Unlock()
}

// OnICECandidate sets the handler called for each ICE candidate delivered
// (see the package documentation on early candidates). senderClientID is ""
// when the candidate comes from the master.
func (c *Client) OnICECandidate(f func(candidate webrtc.ICECandidateInit, senderClientID string)) {
	c.h.mu.Lock()
	c.h.iceCandidate = f
	c.h.mu.Unlock()
}

// OnStatusResponse sets the handler called for each STATUS_RESPONSE: the
// service reporting that a message sent with a correlation id failed.
func (c *Client) OnStatusResponse(f func(StatusResponse)) {
	c.h.mu.Lock()
	c.h.statusResponse = f
	c.h.mu.Unlock()
}

// OnGoAway sets the handler called when the service announces (GO_AWAY) that
// it will close the connection soon. Unless reconnection is disabled, the
// client reconnects by itself right after this event.
func (c *Client) OnGoAway(f func()) { c.h.mu.Lock(); c.h.goAway = f; c.h.mu.Unlock() }

// OnReconnectICEServer sets the handler called when the service announces
// (RECONNECT_ICE_SERVER) that the TURN servers in use are being retired: the
// application should fetch a new ICE server configuration. The signaling
// connection itself is kept.
func (c *Client) OnReconnectICEServer(f func()) {
	c.h.mu.Lock()
	c.h.reconnectICEServer = f
	c.h.mu.Unlock()
}

// OnReconnecting sets the handler called before each reconnect attempt:
// attempt counts from 1 since the connection was lost, delay is the backoff
// the client waits before dialing, and cause is why it reconnects (the
// connection error, [ErrGoAway], or the previous attempt's failure).
func (c *Client) OnReconnecting(f func(attempt int, delay time.Duration, cause error)) {
	c.h.mu.Lock()
	c.h.reconnecting = f
	c.h.mu.Unlock()
}

// OnClose sets the handler called once when the client becomes closed: after
// Close, or when the connection is lost for good (reconnection disabled,
// attempts exhausted, or the connection replaced). It is not called between
// reconnect attempts.
func (c *Client) OnClose(f func()) { c.h.mu.Lock(); c.h.closed = f; c.h.mu.Unlock() }

// OnError sets the handler called for errors that no method call returns:
// a connection lost for good ([ErrConnectionLost], [ErrReconnectFailed],
// [ErrReplaced]). Undecodable frames are logged, not reported here.
func (c *Client) OnError(f func(error)) { c.h.mu.Lock(); c.h.err = f; c.h.mu.Unlock() }

func (h *handlers) get() handlers {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return handlers{
		open: h.open, sdpOffer: h.sdpOffer, sdpAnswer: h.sdpAnswer, iceCandidate: h.iceCandidate,
		statusResponse: h.statusResponse, goAway: h.goAway, reconnectICEServer: h.reconnectICEServer,
		reconnecting: h.reconnecting, closed: h.closed, err: h.err,
	}
}

func (h *handlers) iceHandler() func(webrtc.ICECandidateInit, string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.iceCandidate
}

// dispatcher runs queued functions in order on one goroutine at a time. The
// goroutine starts when work is queued and exits when the queue is empty, so
// a closed client leaves nothing running.
type dispatcher struct {
	mu      sync.Mutex
	queue   []func()
	running bool
}

func (d *dispatcher) push(f func()) {
	d.mu.Lock()
	d.queue = append(d.queue, f)
	if !d.running {
		d.running = true
		go d.run()
	}
	d.mu.Unlock()
}

func (d *dispatcher) run() {
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.running = false
			d.queue = nil
			d.mu.Unlock()
			return
		}
		f := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		d.mu.Unlock()
		f()
	}
}

// The emit helpers queue an event; the handler is looked up when the event
// is delivered, so a handler set late still sees events queued earlier.

func (c *Client) emitOpen() {
	c.disp.push(func() {
		if f := c.h.get().open; f != nil {
			f()
		}
	})
}

func (c *Client) emitClose() {
	c.disp.push(func() {
		if f := c.h.get().closed; f != nil {
			f()
		}
	})
}

func (c *Client) emitError(err error) {
	c.disp.push(func() {
		if f := c.h.get().err; f != nil {
			f(err)
		}
	})
}

func (c *Client) emitGoAway() {
	c.disp.push(func() {
		if f := c.h.get().goAway; f != nil {
			f()
		}
	})
}

func (c *Client) emitReconnectICEServer() {
	c.disp.push(func() {
		if f := c.h.get().reconnectICEServer; f != nil {
			f()
		}
	})
}

func (c *Client) emitReconnecting(attempt int, delay time.Duration, cause error) {
	c.disp.push(func() {
		if f := c.h.get().reconnecting; f != nil {
			f(attempt, delay, cause)
		}
	})
}

func (c *Client) emitStatus(s StatusResponse) {
	c.disp.push(func() {
		if f := c.h.get().statusResponse; f != nil {
			f(s)
		}
	})
}

// emitSDP queues an SDP event followed by the ICE bookkeeping for its sender
// (release of buffered candidates), in the same dispatched step.
func (c *Client) emitSDP(offer bool, sd webrtc.SessionDescription, sender string) {
	c.disp.push(func() {
		hs := c.h.get()
		f := hs.sdpAnswer
		if offer {
			f = hs.sdpOffer
		}
		if f != nil {
			f(sd, sender)
		}
		c.ice.sdpDelivered(c, sender)
	})
}

func (c *Client) emitICE(cand webrtc.ICECandidateInit, sender string) {
	c.disp.push(func() { c.ice.candidateArrived(c, cand, sender) })
}
