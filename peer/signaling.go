package peer

import "github.com/kvswebrtc/kvswebrtc/signaling"

// SignalingView is the part of a Master's or a Viewer's signaling client
// that is safe to use beside them: its identity and state, and the
// events they do not handle themselves. It cannot replace the handlers
// they set on the client (offers, answers, candidates, open, reconnects,
// RECONNECT_ICE_SERVER, errors) nor send on it: the negotiation is
// theirs. Get one from Master.Signaling or Viewer.Signaling.
type SignalingView struct {
	c *signaling.Client
}

// Role returns the client's role on the channel.
func (s SignalingView) Role() signaling.Role { return s.c.Role() }

// ClientID returns the client id the client connects with ("" for a
// master).
func (s SignalingView) ClientID() string { return s.c.ClientID() }

// State returns the state of the signaling connection.
func (s SignalingView) State() signaling.State { return s.c.State() }

// OnGoAway sets the handler called when the service announces (GO_AWAY)
// that it will close the connection soon; the client reconnects by
// itself (see signaling.Client.OnGoAway).
func (s SignalingView) OnGoAway(f func()) { s.c.OnGoAway(f) }

// OnStatusResponse sets the handler called for each STATUS_RESPONSE of
// the service (see signaling.Client.OnStatusResponse).
func (s SignalingView) OnStatusResponse(f func(signaling.StatusResponse)) { s.c.OnStatusResponse(f) }

// OnClose sets the handler called once when the client becomes closed:
// after Close of the Master or Viewer, or when the connection is lost for
// good (see signaling.Client.OnClose).
func (s SignalingView) OnClose(f func()) { s.c.OnClose(f) }
