package localkvs

import (
	"context"
	"net/http"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// defaultAlexaTimeout is how long send-alexa-offer-to-master waits for the answer.
const defaultAlexaTimeout = 5 * time.Second

// iceRequest is a GetIceServerConfig request.
type iceRequest struct {
	ChannelARN string
	ClientID   string
	Username   string
}

// iceServer is one entry of IceServerList.
type iceServer struct {
	Uris     []string `json:"Uris"`
	Username string   `json:"Username,omitempty"`
	Password string   `json:"Password,omitempty"`
	TTL      int      `json:"Ttl,omitempty"`
}

func (s *Server) apiICEConfig(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct{ ChannelARN, ClientId, Service, Username string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ChannelARN", in.ChannelARN); err != nil {
		return nil, err
	}
	if in.Service != "" && in.Service != "TURN" {
		return nil, invalidArg("Service %q is not supported; use TURN", in.Service)
	}
	if in.ClientId != "" {
		if err := validClientID("ClientId", in.ClientId); err != nil {
			return nil, err
		}
	}
	if _, ok := s.store.get("", in.ChannelARN); !ok {
		return nil, noChannel(in.ChannelARN)
	}
	rm := s.room(in.ChannelARN)
	if !rm.allowICEConfig() {
		return nil, limitExceeded(codeClientLimit, "GetIceServerConfig is limited to %g calls per second per channel", s.limits.ICEConfigPerSecond)
	}
	list, err := s.iceServers(ctx, iceRequest{ChannelARN: in.ChannelARN, ClientID: in.ClientId, Username: in.Username})
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []iceServer{}
	}
	return map[string]any{"IceServerList": list}, nil
}

// apiAlexaOffer is POST /v1/send-alexa-offer-to-master: it hands the offer to
// the master as an SDP_OFFER from SenderClientId and waits for the answer.
func (s *Server) apiAlexaOffer(ctx context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct{ ChannelARN, SenderClientId, MessagePayload string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validARN("ChannelARN", in.ChannelARN); err != nil {
		return nil, err
	}
	if err := validClientID("SenderClientId", in.SenderClientId); err != nil {
		return nil, err
	}
	if in.MessagePayload == "" {
		return nil, invalidArg("MessagePayload is required")
	}
	if len(in.MessagePayload) > s.limits.MaxPayload {
		return nil, invalidArg("MessagePayload is %d bytes, more than the maximum of %d", len(in.MessagePayload), s.limits.MaxPayload)
	}
	ch, ok := s.store.get("", in.ChannelARN)
	if !ok {
		return nil, noChannel(in.ChannelARN)
	}
	rm := s.roomFor(ch)
	frame := mustMarshal(wire.ServiceMessage{MessageType: wire.SDPOffer, MessagePayload: in.MessagePayload, SenderClientID: in.SenderClientId})
	answer := make(chan string, 1)
	rm.mu.Lock()
	m := rm.master
	if m == nil && s.remote != nil { // the master may be on another node: cluster_route.go
		rm.mu.Unlock()
		a, err := s.remote.alexaOffer(ctx, rm, in.SenderClientId, in.MessagePayload)
		if err != nil {
			return nil, err
		}
		return map[string]string{"Answer": a}, nil
	}
	if m == nil {
		rm.mu.Unlock()
		return nil, notFound("no master is connected to channel %q", in.ChannelARN)
	}
	rm.waiters[in.SenderClientId] = answer
	rm.mu.Unlock()
	m.send(frame) // may write to the socket: outside the lock
	defer func() {
		rm.mu.Lock()
		if rm.waiters[in.SenderClientId] == answer {
			delete(rm.waiters, in.SenderClientId)
		}
		rm.mu.Unlock()
	}()
	t := time.NewTimer(s.alexaTimeout)
	defer t.Stop()
	select {
	case a := <-answer:
		return map[string]string{"Answer": a}, nil
	case <-t.C:
		return nil, newAPIError(http.StatusGatewayTimeout, "TimeoutException", nil, "the master sent no SDP_ANSWER within %s", s.alexaTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

var reconnectFrame = mustMarshal(wire.ServiceMessage{MessageType: wire.ReconnectICEServer})

// ReconnectICEServer sends RECONNECT_ICE_SERVER to every connection of the
// channel (its master and viewers), as the real service does when the TURN
// servers in use are being retired: clients should fetch the ICE server
// configuration again. Credentials already handed out stay valid until they
// expire. Errors wrap ErrInvalidArgument (a malformed ARN), ErrNotFound or
// ErrServerClosed.
func (s *Server) ReconnectICEServer(ctx context.Context, channelARN string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.reconnectICE(channelARN)
	return err
}

func (s *Server) reconnectICE(arn string) (int, error) {
	if s.closed.Load() {
		return 0, errShuttingDown
	}
	if err := validARN("ChannelARN", arn); err != nil {
		return 0, err
	}
	if _, ok := s.store.get("", arn); !ok {
		return 0, noChannel(arn)
	}
	others := 0
	if s.remote != nil {
		others = s.remote.reconnectICE(arn) // the channel's clients on the other nodes
	}
	rm := s.existingRoom(arn)
	if rm == nil {
		return others, nil
	}
	conns := rm.connections()
	for _, c := range conns {
		c.send(reconnectFrame)
	}
	s.log.Debug("localkvs: RECONNECT_ICE_SERVER sent", "channel", arn, "connections", len(conns))
	return len(conns) + others, nil
}

// apiReconnectICE is POST /_admin/reconnect-ice-server {"ChannelARN": ...}:
// ReconnectICEServer over HTTP, SigV4-authenticated like every API call. It
// answers {"ChannelARN": ..., "Connections": n}.
func (s *Server) apiReconnectICE(_ context.Context, _ *http.Request, body []byte) (any, error) {
	var in struct{ ChannelARN string }
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	n, err := s.reconnectICE(in.ChannelARN)
	if err != nil {
		return nil, err
	}
	return map[string]any{"ChannelARN": in.ChannelARN, "Connections": n}, nil
}
