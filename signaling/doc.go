// Package signaling is a client for the Amazon Kinesis Video Streams WebRTC
// signaling service: the Go counterpart of the SignalingClient of the
// official JavaScript SDK (amazon-kinesis-video-streams-webrtc 2.9.0), plus
// automatic reconnection.
//
// A [Client] connects to one signaling channel as the master or as a viewer
// over a SigV4-presigned WebSocket (see package sigv4), sends SDP offers,
// answers and ICE candidates (pion/webrtc types), and delivers what the
// service sends through handlers set with OnX methods, pion style:
//
//	c, err := signaling.New(signaling.Config{
//		Role:            signaling.RoleViewer,
//		ClientID:        "viewer-1",
//		ChannelARN:      arn,
//		ChannelEndpoint: wssEndpoint, // from GetSignalingChannelEndpoint
//		Region:          "us-west-2",
//		Credentials:     awsCfg.Credentials,
//	})
//	c.OnSDPAnswer(func(answer webrtc.SessionDescription, _ string) { pc.SetRemoteDescription(answer) })
//	c.OnICECandidate(func(cand webrtc.ICECandidateInit, _ string) { pc.AddICECandidate(cand) })
//	err = c.Open(ctx)
//	err = c.SendSDPOffer(*pc.LocalDescription())
//
// # Wire format
//
// Frames (docs/protocol.md, "Frames") are exactly those of the JS SDK: {"action", "messagePayload",
// "recipientClientId", "correlationId"} with camelCase keys, the last two
// omitted when empty, and the payload the standard base64 of the JSON of the
// RTCSessionDescription ({"type","sdp"}) or RTCIceCandidateInit
// ({"candidate","sdpMid","sdpMLineIndex","usernameFragment"}). Payloads over
// 10240 bytes of base64 are refused before sending ([ErrPayloadTooLarge];
// docs/protocol.md, "Limits").
// Messages from a viewer received by the master carry the viewer's client id
// as senderClientID; messages from the master carry "" (the service does not
// name the master).
//
// # Events
//
// Events are delivered in the order the frames arrived, one at a time, on a
// single event goroutine (started when events are queued, gone when the
// queue is empty). A handler that blocks delays every later event, and the
// queue grows meanwhile: hand long work to another goroutine. Handlers may be
// set before or after Open; the handler in place when an event is delivered
// is the one called. Methods of the Client, including Close, may be called
// from handlers.
//
// Frames that cannot be decoded (not JSON, payload not base64 or not JSON,
// unknown message type) are dropped and logged at warn level on
// Config.Logger; the connection stays up and no OnError is raised, as the JS
// SDK drops them silently.
//
// # Early ICE candidates
//
// ICE candidates may arrive before the SDP they belong to. As in the JS SDK,
// candidates from a sender are buffered until that sender's SDP (an offer
// for a master, an answer for a viewer) has been delivered; they are then
// delivered right after the SDP event, in arrival order, and later ones are
// delivered directly. With Config.EarlyICECandidateBuffering they stay
// buffered after the SDP until [Client.DrainPendingICECandidates] (later
// candidates too, so order is kept). [Client.PendingICECandidates] shows
// the buffer and [Client.ResetICECandidateState] forgets a sender, for a
// renegotiation from scratch. The state is per sender ("" for the master)
// and is kept across reconnects of the signaling connection.
//
// # Reconnects
//
// Unlike the JS SDK, the client reconnects by itself (Config.DisableReconnect
// turns it off), as the C SDK does:
//
//   - When the connection drops (read error, close from the service, or a
//     ping without pong within max(PingInterval, 5 s)), the client goes to
//     StateReconnecting (sends fail with [ErrNotOpen]) and dials again with
//     exponential backoff and full jitter: before attempt n (from 0) it
//     waits a uniform random delay in [0, min(ReconnectMaxDelay,
//     ReconnectBaseDelay*2^n)], announced by OnReconnecting. Each attempt
//     presigns a new URL (current time plus SystemClockOffset, credentials
//     fetched again). HTTP 401/403 (credentials may have been refreshed),
//     404 (the channel may be recreated under the same ARN only by
//     restoring it; set MaxReconnectAttempts to bound this) and every other
//     failure are retried;
//     after MaxReconnectAttempts failures in a row (0 = unlimited) the
//     client reports [ErrReconnectFailed] to OnError and closes. A success
//     emits OnOpen again.
//   - The backoff starts from attempt 0 again only once a connection has
//     proved itself: a message (an offer, answer, candidate or
//     STATUS_RESPONSE) arrived on it, or it stayed open 5 s. A service
//     that accepts each connection and drops it at once, sends GO_AWAY at
//     once or frames too large to read is retried ever more slowly
//     (attempt n goes on counting across those connections), not in a loop.
//   - On GO_AWAY the client emits OnGoAway and reconnects at once (within
//     the backoff of attempt 0, when the connection proved itself), make
//     before break: the old connection keeps serving (sends go to it) until
//     the new one is open, then it is closed.
//   - When the service closes the connection because a newer connection
//     with the same identity took over (a second master on the channel, or a
//     viewer with the same ClientID), the client does not reconnect: it
//     reports [ErrReplaced] and closes. Otherwise two processes configured
//     alike would take turns kicking each other off forever. The takeover is
//     recognised by the close code of the service's close frame, 4001 (see
//     docs/protocol.md, "Differences from KVS"), which the local service,
//     package localkvs, sends; the close reason is not read. Real KVS does
//     not document a close code for it, so there a replaced client may
//     reconnect (with backoff) and take the channel back.
//   - Close never triggers a reconnect; OnClose is emitted once when the
//     client ends up closed, not between reconnect attempts.
//
// The first Open does not retry: it returns the error ([ErrAccessDenied] for
// HTTP 401/403, [ErrHandshake] for other refusals, [ErrDial] for network
// failures). A refused handshake (any HTTP status but 101) is a
// [*HandshakeError], which errors.As takes out of the chain: its StatusCode
// (404 for an unknown channel, 400 for too many viewers), ErrorType (the
// x-amzn-ErrorType, such as ResourceNotFoundException or
// ClientLimitExceededException, see [HandshakeError.ClientLimitExceeded])
// and Message; it matches errors.Is with ErrAccessDenied or ErrHandshake as
// above:
//
//	var he *signaling.HandshakeError
//	if errors.As(err, &he) && he.StatusCode == http.StatusNotFound {
//		// the channel is gone: resolve it again
//	}
//
// # Secrets
//
// The presigned URL carries a signature and maybe a session token: it is
// never logged nor put in an error. Logs name the endpoint and the channel.
package signaling
