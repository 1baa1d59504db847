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
//   - an admin call, POST /_admin/reconnect-ice-server {"ChannelARN": ...}
//     (SigV4-signed like the rest), that sends RECONNECT_ICE_SERVER to the
//     channel's connections, as [Server.ReconnectICEServer] does;
//   - the signaling WebSocket: GET with a SigV4-presigned query
//     (X-Amz-ChannelARN, and X-Amz-ClientId for a viewer), relaying SDP
//     offers, answers and ICE candidates between the master and its viewers.
//
// [Server.AWSConfig] is an aws.Config for aws-sdk-go-v2 pointed at the
// server. By hand: point aws-sdk-go-v2 at [Server.URL] (BaseEndpoint, or
// AWS_ENDPOINT_URL) and sign with [DevAccessKeyID] / [DevSecretAccessKey]
// (or the pairs in Config.Credentials). With Config.TLS the server makes a
// local CA; trust it with [Server.CertPool] or the ca.pem file in DataDir.
//
// # Behaviour and limits
//
// The service enforces the limits of the real one (docs/protocol.md, "Limits"),
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
// frames fast enough (its send queue of 256 frames fills, or a frame waits a
// second for room in its socket) is disconnected rather than allowed to
// stall the channel; while it is being written to, messages to the rest of
// the channel keep flowing.
//
// # TURN and STUN
//
// Beside the HTTP port, the server runs an embedded TURN server (pion/turn)
// on the same IP, on one UDP port and, with the same port number when it is
// free, one TCP port ([TURNConfig]). It also answers STUN binding requests,
// so it doubles as the STUN server: a client that lists no stun: URL can use
// stun:IP:PORT of the TURN UDP URI. GetIceServerConfig returns it as one
// ICE server, in the shape of the real service:
//
//	{"IceServerList":[{"Uris":["turn:127.0.0.1:PORT?transport=udp","turn:127.0.0.1:PORT?transport=tcp"],
//	  "Username":"<expiry unix seconds>:<channel key>","Password":"...","Ttl":300}]}
//
// (the real service lists two servers with turn:/turns: URIs on port 443;
// there is no TURN over TLS here, so no turns: URI: docs/protocol.md,
// "Differences from KVS"). The credentials follow
// the TURN REST-API scheme: the channel key is a hash of the channel ARN,
// the password an HMAC-SHA1 of the username under a secret drawn at random
// when the server starts: they are per channel, do not outlive the process,
// and are checked without keeping any per-credential state. An Allocate with
// credentials past their expiry (TURNConfig.TTL, 300 s by default, also
// the Ttl answered) or with a wrong password is refused (401); an
// allocation made in time is refreshed for as long as its client keeps it,
// as with the real service. Each channel may hold TURNConfig.MaxAllocations
// allocations (50) at once; the next Allocate is refused with 486
// (Allocation Quota Reached). An allocation relays at most
// TURNConfig.Bandwidth (5 Mbps each way, the real service's cap): UDP
// packets past it are dropped, as on a saturated link, and TCP relays
// (RFC 6062 allocations) are paced to it. Relayed addresses are on the same
// IP (TURNConfig.RelayAddress changes it).
//
// The relays reach public peers and the relayed addresses of the server's
// own allocations (where two relay-only peers meet), and nothing else: a
// permission, a ChannelBind or a TCP Connect for a loopback, private,
// link-local, unspecified or multicast peer is refused (403), so TURN
// credentials are no way into the services the server's host can reach
// (docs/security.md). TURNConfig.AllowLoopbackPeers lifts this for
// loopback peers, which running every peer on one machine needs (the demo,
// tests), and TURNConfig.AllowedPeers for named networks (a LAN); the
// service's own HTTP and TURN ports are never relayed to.
//
// [Server.ReconnectICEServer] (or the admin call) sends RECONNECT_ICE_SERVER
// to every connection of a channel, so that clients' handling of it (fetch
// the ICE configuration again, restart ICE) can be tested; credentials
// already issued stay valid until they expire.
//
// Deleting a channel closes its connections. [Server.Shutdown] sends GO_AWAY
// to every connection, then closes them; it and [Server.Close] also stop the
// TURN server, ending its allocations.
//
// Channels and tags persist in a bbolt file in Config.DataDir; with an empty
// DataDir they live in memory only.
//
// # Several nodes, one service
//
// With [ClusterConfig] (Config.Cluster) the server is one node of a cluster
// on NATS JetStream: each node embeds a NATS server (Name, Listen, Routes)
// or dials an existing NATS system (NATSURL). Channels, tags, streams and
// media storage configurations live in a replicated key-value bucket
// (create-if-absent, compare-revision updates and deletes); the limits of
// a channel (one master, MaxViewers, ConnectsPerSecond, a ClientId's
// replacement) are decided across the nodes by compare-and-set of a roster
// per channel; messages between a master and viewers on different nodes go
// over NATS subjects, and those for a recipient connected nowhere are kept
// cluster-wide for the channel's MessageTtlSeconds. Every node runs its TURN
// server with credentials signed by a shared secret, so any node accepts
// what another handed out. A node that dies loses only its connections:
// their clients connect again to another node. [Server.WaitReady] waits
// until a node can serve (JetStream needs a quorum). docs/cluster.md
// describes it all, with a 3-node setup.
//
// # Operations
//
// GET /healthz, GET /readyz and GET /metrics (Prometheus: connections by
// role, messages routed local and remote, refusals by reason, signature
// failures, TURN allocations, store latency) are served on the service's
// port, single server or cluster node, without a signature.
//
// # AWS IoT credentials provider
//
// With Config.IoT.Enabled the server also emulates the AWS IoT credentials
// provider that KVS cameras get temporary credentials from: on a port of its
// own ([Server.IoTCredentialEndpoint]) with mutual TLS, GET
// /role-aliases/<alias>/credentials trades a device certificate signed by
// the server's device CA ([Server.IssueIoTDeviceCertificate] makes one) for
// credentials that the rest of the service accepts, with their session
// token, until they expire (docs/protocol.md, "Differences from KVS").
package localkvs
