package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/backoff"
	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// Errors returned by the client's methods or passed to OnError and
// OnReconnecting.
var (
	// ErrAlreadyOpen: Open was called while the client is opening, open or
	// reconnecting.
	ErrAlreadyOpen = errors.New("signaling: client is already open or opening")
	// ErrClosed: Close was called while Open was in progress.
	ErrClosed = errors.New("signaling: client was closed")
	// ErrSigning: the URL could not be presigned (credentials, endpoint).
	ErrSigning = errors.New("signaling: presigning the connection URL failed")
	// ErrAccessDenied: the service refused the connection with HTTP 401 or
	// 403 (bad credentials, clock skew, no permission). The error is a
	// *HandshakeError (errors.As) with the status and error type.
	ErrAccessDenied = errors.New("signaling: access denied")
	// ErrHandshake: the service answered the WebSocket handshake with an
	// HTTP status other than 101, 401 or 403 (e.g. 404 for an unknown
	// channel, 400 for too many viewers). The error is a *HandshakeError
	// (errors.As) with the status and error type.
	ErrHandshake = errors.New("signaling: WebSocket handshake refused")
	// ErrDial: the connection could not be made (network, TLS, timeout).
	ErrDial = errors.New("signaling: cannot connect")
	// ErrGoAway is the cause passed to OnReconnecting when the service sent
	// GO_AWAY.
	ErrGoAway = errors.New("signaling: service sent GO_AWAY")
	// ErrPingFailed: a WebSocket ping got no pong in time.
	ErrPingFailed = errors.New("signaling: ping failed")
	// ErrConnectionLost is passed to OnError when the connection dropped and
	// reconnection is disabled.
	ErrConnectionLost = errors.New("signaling: connection lost")
	// ErrReconnectFailed is passed to OnError when MaxReconnectAttempts
	// attempts failed in a row.
	ErrReconnectFailed = errors.New("signaling: reconnect attempts exhausted")
	// ErrReplaced is passed to OnError when the service closed the connection
	// because another connection with the same identity (a new master, or a
	// viewer with the same ClientID) took it over, which it says with close
	// code 4001; the client does not reconnect, so that two processes do not
	// take turns kicking each other.
	ErrReplaced = errors.New("signaling: connection replaced by a newer connection with the same identity")
)

// State is the connection state of a [Client].
type State int

// Connection states.
const (
	StateClosed       State = iota // not connected: before Open, after Close or a loss given up on
	StateOpening                   // Open is dialing
	StateOpen                      // connected: sends go out
	StateReconnecting              // the connection dropped; the client is dialing again (sends fail)
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpening:
		return "opening"
	case StateOpen:
		return "open"
	case StateReconnecting:
		return "reconnecting"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// readLimit is the largest frame accepted from the service; its frames are
// at most a 10 KiB payload plus a few fields.
const readLimit = 1 << 18

// Client is a KVS signaling client: it connects to a signaling channel as the
// master or a viewer, sends SDP offers, answers and ICE candidates, and
// delivers what the service sends through the OnX handlers. It is safe for
// concurrent use. See the package documentation for events and reconnects.
type Client struct {
	cfg    Config
	signer RequestSigner
	log    *slog.Logger

	h    handlers
	disp dispatcher
	ice  iceBuffer

	mu     sync.Mutex
	state  State
	conn   *websocket.Conn // current connection; nil unless open (or open during a GO_AWAY handover)
	cancel context.CancelFunc
	done   chan struct{} // closed when the Open/run-loop of the current session has ended

	bg sync.WaitGroup // background closes of retired connections
}

// New validates cfg and returns a closed client; call Open to connect.
// Validation errors wrap one of the ErrX values of this package that names
// the field and the rule.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, log: cfg.Logger, signer: cfg.RequestSigner}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("channel", cfg.ChannelARN, "role", string(cfg.Role))
	if cfg.ClientID != "" {
		c.log = c.log.With("clientId", cfg.ClientID)
	}
	if c.signer == nil {
		opts := []sigv4.Option{sigv4.WithService(cfg.Service)}
		if cfg.AllowInsecureEndpoint {
			opts = append(opts, sigv4.AllowInsecureEndpoint())
		}
		p, err := sigv4.New(cfg.Region, cfg.Credentials, opts...)
		if err != nil {
			return nil, fmt.Errorf("signaling: %w", err)
		}
		c.signer = p
	}
	c.ice.early = cfg.EarlyICECandidateBuffering
	return c, nil
}

// Role returns the client's role.
func (c *Client) Role() Role { return c.cfg.Role }

// ClientID returns the client id ("" for a master).
func (c *Client) ClientID() string { return c.cfg.ClientID }

// State returns the current connection state.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Open connects to the signaling channel and returns once the WebSocket is
// open (OnOpen is then queued) or the attempt failed. ctx bounds the
// attempt, together with Config.DialTimeout; it does not bound the
// connection's life, which lasts until Close.
//
// Open returns ErrAlreadyOpen if the client is opening, open, reconnecting
// or still closing. An HTTP 401/403 from the service is returned as
// ErrAccessDenied (no retry here: reconnects retry, Open does not); other
// refusals as ErrHandshake, both as a *HandshakeError; network failures as
// ErrDial. A closed client may be opened again.
func (c *Client) Open(ctx context.Context) error {
	c.mu.Lock()
	if c.state != StateClosed || c.done != nil { // open, opening, or still closing
		c.mu.Unlock()
		return ErrAlreadyOpen
	}
	sctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.state, c.cancel, c.done = StateOpening, cancel, done
	c.mu.Unlock()

	dctx, stop := context.WithCancel(ctx)
	unlink := context.AfterFunc(sctx, stop)
	conn, err := c.dial(dctx)
	unlink()
	stop()

	c.mu.Lock()
	if c.state != StateOpening || sctx.Err() != nil { // Close was called meanwhile; it waits for done
		c.mu.Unlock()
		if conn != nil {
			_ = conn.CloseNow()
		}
		close(done)
		return ErrClosed
	}
	if err != nil {
		c.state, c.cancel, c.done = StateClosed, nil, nil
		c.mu.Unlock()
		cancel()
		close(done)
		c.log.Warn("signaling: open failed", "endpoint", c.cfg.ChannelEndpoint, "err", err)
		return err
	}
	c.state, c.conn = StateOpen, conn
	c.mu.Unlock()
	c.log.Info("signaling: connected", "endpoint", c.cfg.ChannelEndpoint)
	c.emitOpen()
	go c.run(sctx, conn, done)
	return nil
}

// Close closes the connection (or stops an Open or reconnect in progress)
// and queues OnClose. It is a no-op when the client is already closed, and
// never triggers a reconnect. It waits for the client's connection
// goroutines to end but not for queued events, so it may be called from a
// handler.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.state == StateClosed {
		c.mu.Unlock()
		return nil
	}
	cancel, done, conn := c.cancel, c.done, c.conn
	// c.done stays set until the end so that Open refuses while closing.
	c.state, c.conn = StateClosed, nil
	c.mu.Unlock()

	if conn != nil {
		// Close handshake first: cancelling the reader's context would cut
		// the connection without a close frame.
		closeGracefully(conn, cancel)
	}
	cancel()
	<-done
	c.bg.Wait()
	c.mu.Lock()
	if c.done == done {
		c.cancel, c.done = nil, nil
	}
	c.mu.Unlock()
	c.log.Info("signaling: closed")
	c.emitClose()
	return nil
}

// session is one WebSocket connection with its reader and pinger.
type session struct {
	conn   *websocket.Conn
	ended  chan error    // the first terminal error; cap 1
	goAway chan struct{} // GO_AWAY received; cap 1
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	opened time.Time
	proven atomic.Bool // a message (SDP, candidate, status) arrived on it
}

// provenAfter is how long a connection must stay open to have proved
// itself when no message arrived on it: the reconnect backoff starts again
// only after a connection proved itself, so that a service that accepts
// connections and drops them at once (or sends GO_AWAY at once, or frames
// too large to read) is retried ever more slowly, not in a loop.
const provenAfter = 5 * time.Second

// provedItself reports whether s stayed open long enough, or carried a
// message.
func (s *session) provedItself() bool {
	return s.proven.Load() || time.Since(s.opened) >= provenAfter
}

func (s *session) fail(err error) {
	s.once.Do(func() { s.ended <- err })
}

// start runs the reader and the pinger of conn.
func (c *Client) start(ctx context.Context, conn *websocket.Conn) *session {
	ctx, cancel := context.WithCancel(ctx)
	s := &session{conn: conn, ended: make(chan error, 1), goAway: make(chan struct{}, 1), cancel: cancel, opened: time.Now()}
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for {
			typ, data, err := conn.Read(ctx)
			if err != nil {
				s.fail(err)
				return
			}
			if typ != websocket.MessageText {
				c.log.Warn("signaling: dropping binary frame", "bytes", len(data))
				continue
			}
			c.handleFrame(s, data)
		}
	}()
	go func() {
		defer s.wg.Done()
		interval := c.cfg.PingInterval
		timeout := max(interval, 5*time.Second)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(ctx, timeout)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.fail(fmt.Errorf("%w: %w", ErrPingFailed, err))
				_ = conn.CloseNow()
				return
			}
		}
	}()
	return s
}

// stop ends s's goroutines and closes its connection.
func (s *session) stop() {
	s.cancel()
	_ = s.conn.CloseNow()
	s.wg.Wait()
}

// retire closes s in the background with a close handshake.
func (c *Client) retire(s *session) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		closeGracefully(s.conn, s.cancel)
		s.stop()
	}()
}

// closeHandshakeTimeout bounds how long a close waits for the service's
// close frame before cutting the connection.
const closeHandshakeTimeout = 2 * time.Second

// closeGracefully runs the close handshake on conn, waiting at most
// closeHandshakeTimeout; then cut calls end the connection's reader, which
// closes the connection if the service never answered.
func closeGracefully(conn *websocket.Conn, cut context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		_ = conn.Close(websocket.StatusNormalClosure, "")
		close(done)
	}()
	t := time.NewTimer(closeHandshakeTimeout)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	cut()
	_ = conn.CloseNow()
	<-done
}

// run watches the open connection and reconnects until Close or give-up.
// streak counts the connections in a row that ended before they proved
// themselves: the backoff of the next reconnect starts there.
func (c *Client) run(ctx context.Context, conn *websocket.Conn, done chan struct{}) {
	defer close(done)
	cur := c.start(ctx, conn)
	streak := 0
	for {
		var cause error
		goAway := false
		select {
		case <-ctx.Done():
			cur.stop()
			return
		case cause = <-cur.ended:
		case <-cur.goAway:
			goAway, cause = true, ErrGoAway
		}
		if ctx.Err() != nil || c.State() == StateClosed { // Close is closing cur
			cur.stop()
			return
		}
		if goAway && c.cfg.DisableReconnect {
			// Nothing to do but wait for the service to cut the connection.
			select {
			case <-ctx.Done():
				cur.stop()
				return
			case cause = <-cur.ended:
			}
			if ctx.Err() != nil || c.State() == StateClosed {
				cur.stop()
				return
			}
			goAway = false
		}
		if !goAway {
			c.log.Warn("signaling: connection lost", "endpoint", c.cfg.ChannelEndpoint, "err", cause)
			cur.stop()
			var final error
			switch {
			case isReplaced(cause):
				final = fmt.Errorf("%w: %w", ErrReplaced, cause)
			case c.cfg.DisableReconnect:
				final = fmt.Errorf("%w: %w", ErrConnectionLost, cause)
			}
			if final != nil {
				c.giveUp(ctx, final)
				return
			}
			c.mu.Lock()
			if c.state != StateClosed {
				c.state, c.conn = StateReconnecting, nil
			}
			c.mu.Unlock()
		} else {
			// Make before break: the old connection keeps working (sends go
			// to it, frames from it are delivered) until the new one is up.
			c.log.Info("signaling: GO_AWAY received; reconnecting", "endpoint", c.cfg.ChannelEndpoint)
		}

		if cur.provedItself() {
			streak = 0
		} else {
			streak++
		}
		next, err := c.reconnect(ctx, cause, streak-1)
		if err != nil {
			if goAway {
				cur.stop()
			}
			if ctx.Err() != nil {
				return
			}
			c.giveUp(ctx, err)
			return
		}
		c.mu.Lock()
		if c.state == StateClosed || ctx.Err() != nil {
			c.mu.Unlock()
			_ = next.CloseNow()
			if goAway {
				cur.stop()
			}
			return
		}
		c.state, c.conn = StateOpen, next
		c.mu.Unlock()
		if goAway {
			c.retire(cur)
		}
		cur = c.start(ctx, next)
		c.log.Info("signaling: reconnected", "endpoint", c.cfg.ChannelEndpoint)
		c.emitOpen()
	}
}

// giveUp moves the client to closed after a loss it will not recover from.
func (c *Client) giveUp(ctx context.Context, err error) {
	c.mu.Lock()
	if c.state == StateClosed || ctx.Err() != nil { // Close is handling it
		c.mu.Unlock()
		return
	}
	cancel := c.cancel
	c.state, c.conn, c.cancel, c.done = StateClosed, nil, nil, nil
	c.mu.Unlock()
	cancel()
	c.log.Warn("signaling: giving up", "err", err)
	c.emitError(err)
	c.emitClose()
}

// reconnect dials with backoff until success, ctx ends, or the attempts run
// out. unproven is how many connections before this one ended without
// proving themselves (0 or more; -1 after one that did): the backoff and
// the attempt numbers go on from there. MaxReconnectAttempts counts the
// dials that fail.
func (c *Client) reconnect(ctx context.Context, cause error, unproven int) (*websocket.Conn, error) {
	for failed, attempt := 0, max(unproven, 0); ; failed, attempt = failed+1, attempt+1 {
		if c.cfg.MaxReconnectAttempts > 0 && failed >= c.cfg.MaxReconnectAttempts {
			return nil, fmt.Errorf("%w (%d attempts): %w", ErrReconnectFailed, failed, cause)
		}
		delay := backoff.FullJitter(c.cfg.ReconnectBaseDelay, c.cfg.ReconnectMaxDelay, attempt)
		c.log.Info("signaling: reconnecting", "attempt", attempt+1, "delay", delay, "cause", cause)
		c.emitReconnecting(attempt+1, delay, cause)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		conn, err := c.dial(ctx)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.log.Warn("signaling: reconnect attempt failed", "attempt", attempt+1, "err", err)
		cause = err
	}
}

// dial presigns a fresh URL (fresh time and credentials) and connects.
func (c *Client) dial(ctx context.Context) (*websocket.Conn, error) {
	query := map[string]string{sigv4.ParamChannelARN: c.cfg.ChannelARN}
	if c.cfg.Role == RoleViewer {
		query[sigv4.ParamClientID] = c.cfg.ClientID
	}
	signed, err := c.signer.PresignURL(ctx, c.cfg.ChannelEndpoint, query, time.Now().Add(c.cfg.SystemClockOffset))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSigning, err)
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	c.log.Debug("signaling: dialing", "endpoint", c.cfg.ChannelEndpoint)
	conn, resp, err := websocket.Dial(dctx, signed, &websocket.DialOptions{HTTPClient: c.cfg.HTTPClient})
	if err != nil {
		return nil, dialError(err, resp, signed)
	}
	conn.SetReadLimit(readLimit)
	return conn, nil
}

// handleFrame decodes one text frame from the service and queues its event.
// Frames that cannot be decoded are logged and dropped.
func (c *Client) handleFrame(s *session, data []byte) {
	var m wire.ServiceMessage
	if err := json.Unmarshal(data, &m); err != nil {
		c.log.Warn("signaling: dropping frame that is not JSON", "bytes", len(data), "err", err)
		return
	}
	sender := m.SenderClientID
	switch m.MessageType {
	case wire.SDPOffer, wire.SDPAnswer:
		var sd webrtc.SessionDescription
		if err := wire.DecodePayload(m.MessagePayload, &sd); err != nil {
			c.log.Warn("signaling: dropping message with an undecodable payload", "messageType", m.MessageType, "sender", sender, "err", err)
			return
		}
		c.log.Debug("signaling: received", "messageType", m.MessageType, "sender", sender)
		s.proven.Store(true)
		c.emitSDP(m.MessageType == wire.SDPOffer, sd, sender)
	case wire.ICECandidate:
		var cand webrtc.ICECandidateInit
		if err := wire.DecodePayload(m.MessagePayload, &cand); err != nil {
			c.log.Warn("signaling: dropping message with an undecodable payload", "messageType", m.MessageType, "sender", sender, "err", err)
			return
		}
		c.log.Debug("signaling: received", "messageType", m.MessageType, "sender", sender)
		s.proven.Store(true)
		c.emitICE(cand, sender)
	case wire.StatusResponse:
		if m.StatusResponse == nil {
			c.log.Warn("signaling: dropping STATUS_RESPONSE without a statusResponse")
			return
		}
		st := m.StatusResponse
		s.proven.Store(true)
		c.log.Debug("signaling: received", "messageType", m.MessageType, "correlationId", st.CorrelationID, "errorType", st.ErrorType)
		c.emitStatus(StatusResponse{
			CorrelationID: st.CorrelationID, Success: st.Success, ErrorType: st.ErrorType,
			StatusCode: st.StatusCode, Description: st.Description,
		})
	case wire.GoAway:
		c.log.Debug("signaling: received", "messageType", m.MessageType)
		c.emitGoAway()
		select {
		case s.goAway <- struct{}{}:
		default:
		}
	case wire.ReconnectICEServer:
		c.log.Debug("signaling: received", "messageType", m.MessageType)
		c.emitReconnectICEServer()
	default:
		c.log.Warn("signaling: dropping message of unknown type", "messageType", m.MessageType)
	}
}
