package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// Errors returned by the Send methods. Nothing is sent when one is returned,
// except for ErrSend.
var (
	// ErrNotOpen: the client is not open (closed, opening or reconnecting).
	ErrNotOpen = errors.New("signaling: connection to the signaling service is not open")
	// ErrRecipientForViewer: a viewer named a recipient; a viewer's messages
	// always go to the master.
	ErrRecipientForViewer = errors.New("signaling: a viewer must not name a recipient client id (messages go to the master)")
	// ErrInvalidCorrelationID: the correlation id does not match ^[a-zA-Z0-9_.-]{1,256}$.
	ErrInvalidCorrelationID = errors.New("signaling: correlation id must match ^[a-zA-Z0-9_.-]{1,256}$")
	// ErrPayloadTooLarge: the base64 message payload exceeds 10240 bytes,
	// the service's limit.
	ErrPayloadTooLarge = errors.New("signaling: message payload exceeds the service limit of 10240 bytes of base64")
	// ErrSend: writing the message to the WebSocket failed.
	ErrSend = errors.New("signaling: sending the message failed")
)

// SendOption sets an optional field of a sent message.
type SendOption func(*sendOptions)

type sendOptions struct {
	recipient   string
	correlation string
}

// WithRecipient names the client id of the viewer a master's message is for.
// A master should always name one (the JS SDK no longer enforces it, and
// neither does this client); a viewer must not.
func WithRecipient(clientID string) SendOption {
	return func(o *sendOptions) { o.recipient = clientID }
}

// WithCorrelationID attaches an id to the message: if the service fails to
// deliver it, it answers with a STATUS_RESPONSE carrying this id (see
// OnStatusResponse). The id must match ^[a-zA-Z0-9_.-]{1,256}$.
func WithCorrelationID(id string) SendOption {
	return func(o *sendOptions) { o.correlation = id }
}

// SendSDPOffer sends an SDP offer (typically a viewer to the master). The
// payload is the base64 of {"type":"offer","sdp":"..."}, as the JS SDK sends.
func (c *Client) SendSDPOffer(offer webrtc.SessionDescription, opts ...SendOption) error {
	return c.send(wire.SDPOffer, offer, opts)
}

// SendSDPAnswer sends an SDP answer (typically the master to a viewer, with
// WithRecipient).
func (c *Client) SendSDPAnswer(answer webrtc.SessionDescription, opts ...SendOption) error {
	return c.send(wire.SDPAnswer, answer, opts)
}

// SendICECandidate sends an ICE candidate. The payload is the base64 of
// {"candidate":...,"sdpMid":...,"sdpMLineIndex":...,"usernameFragment":...},
// what JSON.stringify gives for a browser's RTCIceCandidate (null where a
// field is nil).
func (c *Client) SendICECandidate(candidate webrtc.ICECandidateInit, opts ...SendOption) error {
	return c.send(wire.ICECandidate, candidate, opts)
}

func (c *Client) send(action string, payload any, opts []SendOption) error {
	var o sendOptions
	for _, opt := range opts {
		opt(&o)
	}
	if c.cfg.Role == RoleViewer && o.recipient != "" {
		return fmt.Errorf("%w: got %q", ErrRecipientForViewer, o.recipient)
	}
	if o.correlation != "" && !wire.ValidName(o.correlation) {
		return fmt.Errorf("%w: got %q", ErrInvalidCorrelationID, o.correlation)
	}
	p, err := wire.EncodePayload(payload)
	if err != nil {
		return fmt.Errorf("signaling: encoding the %s payload: %w", action, err)
	}
	if len(p) > wire.MaxPayload {
		return fmt.Errorf("%w: %s payload is %d bytes", ErrPayloadTooLarge, action, len(p))
	}
	frame, err := json.Marshal(wire.ClientMessage{
		Action: action, MessagePayload: p, RecipientClientID: o.recipient, CorrelationID: o.correlation,
	})
	if err != nil {
		return fmt.Errorf("signaling: encoding the %s frame: %w", action, err)
	}
	c.mu.Lock()
	conn, state := c.conn, c.state
	c.mu.Unlock()
	if conn == nil || state != StateOpen {
		return fmt.Errorf("%w (state %s)", ErrNotOpen, state)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.WriteTimeout)
	defer cancel()
	if err := conn.Write(ctx, websocket.MessageText, frame); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSend, action, err)
	}
	c.log.Debug("signaling: sent", "action", action, "recipient", o.recipient, "correlationId", o.correlation)
	return nil
}
