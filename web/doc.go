// Package web is the browser test page of kvswebrtc and its backend: the
// counterpart of the WebRTC test page of the official JavaScript SDK
// (amazon-kinesis-video-streams-webrtc), embedded in the binary.
//
// # The page
//
// The page is plain HTML, CSS and JavaScript ES modules embedded with
// go:embed: no build step, no CDN, it works offline. It runs as master or
// viewer on a signaling channel, with the choices of the official page (send
// video, send audio, open a data channel, 1280x720 or 640x480, NAT traversal
// STUN+TURN, TURN only, STUN only or disabled, trickle ICE on or off), a log
// panel with levels, one labelled video per connected viewer on the master
// (up to 10, each answered with its own RTCPeerConnection), and a data
// channel text box (the master sends to every viewer). Beyond the official
// page it draws a live chart of bitrate, frames per second, packets lost and
// round-trip time from getStats, shows a timeline of the connection steps
// with their times, and copies diagnostics (secrets redacted).
//
// Every field is kept in localStorage (the client id in sessionStorage, so
// each tab has its own) and can be preset by a URL query parameter of the
// field's name; view=master or view=viewer starts at once:
//
//	http://localhost:3001/?view=viewer&channelName=demo&clientId=v1
//
// The fields are channelName, clientId, sendVideo, sendAudio,
// openDataChannel, resolution (1280x720, 640x480), natTraversal (stunTurn,
// turnOnly, stunOnly, disabled), trickleIce, candidateFilter (all, or
// loopback: only 127.0.0.0/8 and ::1 candidates are signaled, for tests on
// one machine) and logLevel.
//
// The browser speaks KVS signaling itself (static/js/signaling.js): the
// frames of docs/protocol.md ("Frames") over the browser's WebSocket, early ICE
// candidates held per sender until that sender's SDP, GO_AWAY and
// RECONNECT_ICE_SERVER answered by reconnecting with a freshly signed URL,
// and sends paced under the service's rates (5 SDP and 20 ICE messages per
// second). Chrome's offer is trimmed to VP8, H.264 and Opus so that an offer
// without trickle ICE stays under the 10 KB payload limit.
//
// For tests the page exposes window.kvsTest: state ("idle", "connecting",
// "signaling", "connected", "stopped", "error"), timeline (steps with their
// times), lastDataMessage, dataMessages, dataChannelsOpen, stats,
// framesDecoded(), videoWidth(), remoteViewers(), descriptions() (each
// peer connection's local and remote SDP), hasStep(name),
// sendData(text), start(role), stop() and diagnostics(). Elements have
// stable ids: the master's view of viewer X is #remote-view-X with the video
// #remote-video-X; the viewer's view of the master is #remote-video.
//
// # The backend
//
// A [Server] holds the AWS credentials, as the "Managing Credentials"
// section of the official SDK's README recommends: the browser asks it for a
// presigned WebSocket URL and the ICE servers of a channel and role (POST
// /api/connect) and never sees a key. The control-plane steps (describe or
// create the channel, its endpoints, its ICE servers) go through a
// channel.Resolver with its caches; the URL is presigned with package sigv4.
//
// [StartLocal] runs an embedded KVS-compatible service (package localkvs)
// on 127.0.0.1 and gives the aws.Config that reaches it, for a page that
// needs no AWS account.
//
// Anyone who can reach the server can have URLs signed with its
// credentials: serve it on localhost (the default of `kvswebrtc web`) or
// behind your own authentication. POST requests from another origin are
// refused.
package web
