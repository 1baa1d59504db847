// Package channel runs the control-plane steps that precede a KVS WebRTC
// session, the "Usage" steps of the official JavaScript SDK README, in one
// call:
//
//  1. DescribeSignalingChannel, by ARN or by name; CreateSignalingChannel
//     when the channel is missing and Options.CreateIfMissing is set;
//  2. GetSignalingChannelEndpoint for the role, protocols WSS and HTTPS
//     (and WEBRTC on request) (these calls: docs/protocol.md, "Control
//     plane");
//  3. GetIceServerConfig on the HTTPS endpoint (POST
//     /v1/get-ice-server-config, SigV4-signed with aws-sdk-go-v2's
//     aws/signer/v4, since the kinesisvideosignaling module is not used;
//     docs/protocol.md, "Data plane");
//  4. the region's STUN server, put first, before the TURN servers.
//
// [Resolve] does it once; a [Resolver] keeps caches as the official C SDK
// does: the ARN and endpoints for 10 hours per channel and role (in memory,
// and in a JSON file with ResolverOptions.CacheFile), the ICE servers until
// their smallest TTL minus 30 seconds, then fetched again lazily.
//
// # AWS configuration
//
// Everything comes from an aws.Config, usually from config.LoadDefaultConfig:
// region, credentials provider, and the endpoint override aws-sdk-go-v2 users
// already know: AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_KINESIS_VIDEO (or
// config.WithBaseEndpoint) point the control plane at a KVS-compatible
// service such as the local one in package localkvs. A custom CA bundle
// (AWS_CA_BUNDLE, ca_bundle, config.WithCustomCABundle) is applied by
// LoadDefaultConfig to awsCfg.HTTPClient; [HTTPClient] and [TLSConfig]
// reuse it for the HTTPS data plane and the WSS dial, and
// [Resolved.HTTPClient] carries it to the signaling client.
//
// With an endpoint override whose HTTPS endpoint is not an AWS host, no AWS
// STUN hostname is used: STUN comes from the service's own ICE config (see
// [Resolved.ICEServers]). Options.STUNURL overrides the choice.
//
// # Clock skew
//
// The Date header of every response is compared with the local clock
// (ResolverOptions.Now). When they differ by more than [MaxClockSkew]
// (5 minutes, the service's tolerance) the difference becomes the clock
// offset, as in the C SDK: GetIceServerConfig is signed with it (and a
// request refused for its signature time is retried once with it), and
// [Resolved.ClockOffset] hands it to signaling.Config.SystemClockOffset.
//
// # Handing over to the signaling client and pion
//
// [Resolved.SignalingConfig] gives the signaling.Config of the channel and
// role (endpoint, ARN, region, credentials, clock offset, the HTTP client
// with the custom CA, ws:// allowed for a local service without TLS), and
// [Resolved.WebRTCConfiguration] gives the webrtc.Configuration for the NAT
// traversal modes of the official test page ([STUNAndTURN], [TURNOnly],
// [STUNOnly], [NATTraversalDisabled]).
//
// Errors are package-level values tested with errors.Is ([ErrChannelNotFound],
// [ErrAccessDenied], ...); no error or log record holds a secret key, a
// session token or a signature.
package channel
