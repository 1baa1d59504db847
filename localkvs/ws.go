package localkvs

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// httpRefuse writes an error before the WebSocket upgrade. err is an
// apiError (what the checks on the upgrade return).
func (s *Server) httpRefuse(w http.ResponseWriter, r *http.Request, err error) {
	ae, ok := asAPIError(err)
	if !ok {
		s.log.Warn("localkvs: WebSocket upgrade failed", "err", err, "remote", r.RemoteAddr)
		ae = errInternal
	}
	s.logRefusal(r, "localkvs: WebSocket refused", "status", ae.status, "code", ae.code, "msg", ae.msg)
	s.metrics.refusedConnect(ae)
	refuse(w, ae) // and close: a refused client holds no keep-alive connection
}

// serveWebSocket authenticates and upgrades a signaling connection, then
// runs its read loop until it closes.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.httpRefuse(w, r, invalidArg("GET is for the signaling WebSocket: send a WebSocket upgrade with a presigned query; API calls are POSTs"))
		return
	}
	q := r.URL.Query()
	arn := q.Get(sigv4.ParamChannelARN)
	if arn == "" {
		s.httpRefuse(w, r, invalidArg("X-Amz-ChannelARN is required"))
		return
	}
	signer, err := s.verifier.VerifyPresignedRequest(r)
	if err != nil {
		s.httpRefuse(w, r, accessDenied(err))
		return
	}
	if err := s.checkSession(signer, "signaling WebSocket"); err != nil {
		s.httpRefuse(w, r, err)
		return
	}
	if err := validARN("X-Amz-ChannelARN", arn); err != nil {
		s.httpRefuse(w, r, err)
		return
	}
	ch, ok := s.store.get("", arn)
	if !ok {
		s.httpRefuse(w, r, noChannel(arn))
		return
	}
	ids, isViewer := q[sigv4.ParamClientID]
	id := ""
	if isViewer {
		id = ids[0]
		if err := validClientID(sigv4.ParamClientID, id); err != nil {
			s.httpRefuse(w, r, err)
			return
		}
	}
	rm := s.roomFor(ch)
	seq, err := rm.admit(id, isViewer)
	if err != nil {
		s.httpRefuse(w, r, err)
		return
	}
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		if isViewer {
			rm.release(id)
		}
		s.httpRefuse(w, r, errShuttingDown)
		return
	}
	s.conns.Add(1)
	s.mu.Unlock()
	defer s.conns.Done()

	// Register before the upgrade completes, so that once the client sees
	// the 101 it is reachable: frames for it queue until it goes live.
	c := &wsConn{
		s: s, rm: rm, id: id, master: !isViewer, seq: seq,
		done: make(chan struct{}),
		sdp:  newLimiter(s.limits.SDPPerSecond),
		ice:  newLimiter(s.limits.ICEPerSecond),
	}
	c.lastActive.Store(s.clock.Now().UnixNano())
	old, ok := rm.register(c)
	if !ok {
		s.httpRefuse(w, r, newAPIError(http.StatusConflict, codeInUse, ErrResourceInUse,
			"a newer connection with the same role and ClientId took this place, or the channel was deleted"))
		return
	}
	if old != nil {
		s.log.Debug("localkvs: connection replaced", "channel", arn, "role", c.role(), "clientId", id)
		old.close(wire.CloseReplaced, "replaced by a newer connection with the same role and ClientId")
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true, // ServeHTTP checked the Origin (Server.cors): loopback pages and AllowedOrigins connect
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		c.close(closeNormal, "upgrade failed")
		rm.unregister(c)
		s.log.Info("localkvs: WebSocket upgrade failed", "err", err)
		return
	}
	ws.SetReadLimit(int64(s.limits.MaxPayload)*2 + 64<<10)
	if _, still := s.store.get("", arn); !still {
		c.close(closeNormal, "signaling channel deleted")
	}
	if s.closed.Load() {
		if s.graceful.Load() { // Shutdown sends GO_AWAY; Close sends none
			c.goAway()
		}
		c.close(closeGoingAway, "server shutting down")
	}
	s.log.Debug("localkvs: connected", "channel", arn, "role", c.role(), "clientId", id, "remote", r.RemoteAddr)

	c.goLive(ws)
	c.startTimers()
	c.readLoop()
	c.close(closeNormal, "")
	<-c.done
	rm.unregister(c)
	s.log.Debug("localkvs: disconnected", "channel", arn, "role", c.role(), "clientId", id, "reason", c.closeWhy)
}

// readBufs holds the buffers client frames are read into. A frame is
// handled before its buffer goes back (handle keeps nothing of it), so an
// idle connection holds no read buffer of its own.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledRead is the largest read buffer put back in readBufs.
const maxPooledRead = 64 << 10

func (c *wsConn) readLoop() {
	ctx := context.Background()
	for {
		typ, r, err := c.ws.Reader(ctx)
		if err != nil {
			return
		}
		bp := readBufs.Get().(*[]byte)
		data, err := readAll(r, (*bp)[:0])
		if err != nil {
			return
		}
		c.lastActive.Store(c.s.clock.Now().UnixNano())
		switch {
		case typ != websocket.MessageText:
			c.dropped(true, "localkvs: binary frame dropped")
		case !utf8.Valid(data): // RFC 6455, section 8.1
			c.dropped(false, "localkvs: text frame is not UTF-8; closing with 1007")
			c.close(closeInvalidData, "text frame is not valid UTF-8")
		default:
			c.handle(data)
		}
		if cap(data) <= maxPooledRead {
			*bp = data
			readBufs.Put(bp)
		}
	}
}

// readAll is io.ReadAll appending to b.
func readAll(r io.Reader, b []byte) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return b, err
		}
	}
}

// handle validates, rate-limits and routes one client frame, decoding it
// once. data is only valid during the call (readLoop reuses it).
func (c *wsConn) handle(data []byte) {
	sender := ""
	if !c.master {
		sender = c.id // the service adds the viewer's id to what it forwards; the master has none
	}
	var m wire.ClientMessage
	frame, err := decodeRelay(data, &m, sender) // and, almost always, the frame to forward
	if err != nil {
		c.dropped(true, "localkvs: malformed frame dropped", "err", err)
		return
	}
	if m.CorrelationID != "" && !wire.ValidName(m.CorrelationID) {
		c.dropped(true, "localkvs: frame with invalid correlationId dropped")
		return
	}
	now := c.s.clock.Now()
	var b *rate.Limiter
	switch m.Action {
	case wire.SDPOffer, wire.SDPAnswer:
		b = c.sdp
	case wire.ICECandidate:
		b = c.ice
	default:
		c.fail(&m, codeInvalidArgument, fmt.Sprintf("action %q is not one of SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE", m.Action))
		return
	}
	if m.MessagePayload == "" {
		c.fail(&m, codeInvalidArgument, "messagePayload is required")
		return
	}
	if len(m.MessagePayload) > c.s.limits.MaxPayload {
		c.fail(&m, codeInvalidArgument, fmt.Sprintf("messagePayload is %d bytes, more than the maximum of %d", len(m.MessagePayload), c.s.limits.MaxPayload))
		return
	}
	toMedia := c.master && m.RecipientClientID == "" && c.s.media.hasSession(c.rm.arn) // for the media server: mediaserver.go
	if c.master && !toMedia {
		if m.RecipientClientID == "" {
			c.fail(&m, codeInvalidArgument, "recipientClientId is required in a message from the master")
			return
		}
		if !wire.ValidName(m.RecipientClientID) {
			c.fail(&m, codeInvalidArgument, "recipientClientId: want "+wire.NameRule)
			return
		}
	}
	if !b.AllowN(now, 1) {
		c.fail(&m, codeClientLimit, "message rate limit exceeded for "+m.Action)
		return
	}
	if toMedia {
		c.s.media.fromMaster(c.rm.arn, m.Action, m.MessagePayload)
		return
	}
	if !c.master && c.s.media.fromViewer(c.rm.arn, c.id, m.Action, m.MessagePayload) {
		return // a viewer of the storage session (JoinStorageSessionAsViewer): mediaviewers.go
	}
	if frame == nil { // json.Marshal of wire.ServiceMessage{m.Action, m.MessagePayload, sender}
		frame = appendServiceMessage(nil, m.Action, m.MessagePayload, sender)
	}
	if c.master {
		if c.s.log.Enabled(context.Background(), -4) {
			c.s.log.Debug("localkvs: route master->viewer", "channel", c.rm.arn, "action", m.Action, "to", m.RecipientClientID)
		}
		if !c.rm.routeToViewer(m.RecipientClientID, m.Action, m.MessagePayload, frame) {
			c.fail(&m, codeClientLimit, errPendingFull)
		}
	} else {
		if c.s.log.Enabled(context.Background(), -4) {
			c.s.log.Debug("localkvs: route viewer->master", "channel", c.rm.arn, "action", m.Action, "from", c.id)
		}
		if !c.rm.routeToMaster(c, m.Action, frame) {
			c.fail(&m, codeClientLimit, errPendingFull)
		}
	}
}

// fail answers a failed message with STATUS_RESPONSE when it carried a
// correlationId, and otherwise only logs it (docs/protocol.md, "Frames").
func (c *wsConn) fail(m *wire.ClientMessage, code, desc string) {
	c.s.metrics.refusedMessage(code)
	if m.CorrelationID == "" {
		c.dropped(code == codeInvalidArgument, "localkvs: message dropped", "code", code, "why", desc)
		return
	}
	c.send(mustMarshal(wire.ServiceMessage{
		MessageType: wire.StatusResponse,
		StatusResponse: &wire.Status{
			CorrelationID: m.CorrelationID,
			Success:       false,
			ErrorType:     code,
			StatusCode:    "400",
			Description:   desc,
		},
	}))
}
