// Package localkvs is a local service compatible with Amazon Kinesis Video
// Streams signaling, so that KVS WebRTC applications run and are tested on a
// laptop or in CI with no AWS account.
//
// One process, one port, serves what the official SDKs call:
//
//   - the control plane (CreateSignalingChannel, DescribeSignalingChannel,
//     ListSignalingChannels, UpdateSignalingChannel, DeleteSignalingChannel,
//     GetSignalingChannelEndpoint, TagResource, UntagResource,
//     ListTagsForResource) as REST-JSON with SigV4 header authentication,
//     exactly as aws-sdk-go-v2's kinesisvideo client speaks it;
//   - the HTTPS data plane: POST /v1/get-ice-server-config and
//     POST /v1/send-alexa-offer-to-master;
//   - the signaling WebSocket: GET with a SigV4-presigned query
//     (X-Amz-ChannelARN, and X-Amz-ClientId for a viewer), relaying SDP
//     offers, answers and ICE candidates between the master and its viewers.
//
// Point aws-sdk-go-v2 at [Server.URL] (BaseEndpoint, or AWS_ENDPOINT_URL)
// and sign with [DevAccessKeyID] / [DevSecretAccessKey] (or the pairs in
// Config.Credentials). With Config.TLS the server makes a local CA; trust it
// with [Server.CertPool] or the ca.pem file in DataDir.
//
// # Behaviour and limits
//
// The service enforces the limits of the real one (PROTOCOL.md section 5),
// each settable in [Limits]:
//
//   - one master per channel: a new master connection replaces the old one,
//     which is closed; likewise a viewer reconnecting with a connected ClientId;
//   - MaxViewers viewers per channel: the next viewer's upgrade is refused
//     with HTTP 400 and x-amzn-ErrorType ClientLimitExceededException, before
//     the WebSocket opens (the real service also fails the connect itself);
//   - ConnectsPerSecond connects per channel: over it, the upgrade is refused
//     the same way;
//   - SDPPerSecond and ICEPerSecond messages per connection, MaxPayload bytes of
//     base64 payload: a message over a limit is dropped, and answered with a
//     STATUS_RESPONSE when it carried a correlationId;
//   - IdleTimeout: a connection that sent no message for that long is
//     closed. Only data frames count: WebSocket pings keep NAT and proxies
//     alive but do not reset the idle timer, as with the real service, which
//     counts messages;
//   - MaxConnectionDuration: GO_AWAY is sent GoAwayLead before the cut;
//   - a message to an offline recipient (the master, or a viewer by ClientId)
//     is kept for the channel's MessageTtlSeconds and delivered when it
//     connects; a newer SDP_OFFER from the same sender replaces a pending one.
//
// A viewer's recipientClientId is ignored (the C SDK's viewer sends one);
// the master must name its recipient. Frames that are not JSON are logged
// and dropped; the connection stays up. A client that does not read its
// frames fast enough (its send queue of 256 frames fills) is disconnected
// rather than allowed to stall the channel.
//
// Deleting a channel closes its connections. [Server.Shutdown] sends GO_AWAY
// to every connection, then closes them.
//
// Channels and tags persist in a bbolt file in Config.DataDir; with an empty
// DataDir they live in memory only.
package localkvs
