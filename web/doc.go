// Package web is the browser test page of kvswebrtc and its backend: the
// counterpart of the WebRTC test page of the official JavaScript SDK
// (amazon-kinesis-video-streams-webrtc 2.9.0, [SDKVersion]), embedded in the
// binary, with a viewer for the recordings of WebRTC ingestion.
//
// # The page
//
// The page is plain HTML, CSS and JavaScript ES modules embedded with
// go:embed: no build step, no CDN, it works offline. It has what the
// official 2.9.0 page has:
//
//   - KVS endpoint: the region (set by the backend; changeable when
//     [Config.AllowRegionChange], kvswebrtc web --allow-region-change),
//     legacy or dual-stack endpoints, FIPS, an endpoint override (when
//     [Config.AllowEndpointOverride], --allow-endpoint-override); the
//     heading shows this module's version and the SDK version matched;
//   - the signaling channel (Create Channel), the client id (hidden for a
//     master), send video, send audio (both on by default), data channel,
//     1280x720 or 640x480, receive multi-track (a viewer offers 4 video
//     and 1 audio transceivers and shows each video it gets);
//   - WebRTC ingestion and storage: stream name and retention, Create
//     Stream, Update and Describe media storage configuration, List
//     storage channels, ingestion mode off/on/auto (auto asks
//     DescribeMediaStorageConfiguration), JoinStorageSession and
//     JoinStorageSessionAsViewer buttons for joining by hand, with the
//     official page's rules (the master sends video and audio, no data
//     channel to the media server, a viewer sends no video; a join that
//     brings no offer is retried 6 s plus jitter apart, 5 times);
//   - NAT traversal STUN+TURN, TURN only, STUN only or disabled, trickle
//     ICE, reopening signaling after it closes;
//   - Advanced: the 12 candidate filters (send and accept host, srflx,
//     relay, prflx, UDP, TCP), the TURN URL filters (turn: UDP and TCP,
//     turns: UDP and TCP, one set of servers only), a codec filter per
//     mimeType with reset (VP8, H.264, H.265 when the browser has it, RTX
//     and Opus by default);
//   - the master's video per viewer (the videos share the panel's width),
//     the viewer's renegotiation buttons (toggle sending video or audio,
//     pause and resume incoming video or audio, over the same peer
//     connection), a data channel message to every viewer or to one;
//   - the viewer's quality metrics (decoded fps, frames dropped, video and
//     audio bitrates, round-trip time, jitter; now and averaged), and the
//     profiling timeline of both sides: with it on, the master sends each
//     viewer its step times over the data channel ({"type":"kvsProfile",
//     "master":{"steps":[{step, at}]}}) and the viewer draws them beside
//     its own;
//   - a log panel with levels, copy log, copy diagnostics (secrets
//     redacted).
//
// Beyond it: a live chart of bitrate, frames per second, packets lost and
// round-trip time from getStats (its time axis fills from the left), a
// timeline of the connection steps, and the recordings viewer: pick a
// stream, HLS or DASH, live, live replay or on demand, fragmented MP4 or
// MPEG-TS, and play it natively where the browser plays HLS, else through
// the page's own small Media Source Extensions loader (static/js/player.js);
// Download clip saves GetClip's MP4 of the range. An offer or answer over
// the 10 KB payload limit is compacted (no header extensions in inactive
// media sections, only the essential ones in multi-track extras).
//
// Every field is kept in localStorage (the client id in sessionStorage, so
// each tab has its own) and can be preset by a URL query parameter of the
// field's id; view=master or view=viewer starts at once:
//
//	http://localhost:3001/?view=viewer&channelName=demo&clientId=v1
//
// The fields are region, endpointType (legacy, dualStack), useFips,
// endpoint, channelName, clientId, sendVideo, sendAudio, openDataChannel,
// receiveMultiTrack, resolution (1280x720, 640x480), streamName,
// retentionHours, ingestMode (off, on, auto), showJoinStorageSession,
// showJoinStorageSessionAsViewer, natTraversal (stunTurn, turnOnly,
// stunOnly, disabled), trickleIce, signalingReconnect, profilingTimeline,
// logLevel, sendHost, acceptHost, sendSrflx, acceptSrflx, sendRelay,
// acceptRelay, sendPrflx, acceptPrflx, sendUdp, acceptUdp, sendTcp,
// acceptTcp, candidateFilter (all, or loopback: only 127.0.0.0/8 and ::1
// candidates, for tests on one machine), turnUdp, turnTcp, turnsUdp,
// turnsTcp, turnOneSet, codecFilter, codecs (comma-separated mimeTypes,
// empty for the defaults), playbackProtocol (hls, dash), playbackMode
// (LIVE, LIVE_REPLAY, ON_DEMAND), containerFormat (FRAGMENTED_MP4,
// MPEG_TS) and playbackPlayer (auto, mse, native).
//
// The browser speaks KVS signaling itself (static/js/signaling.js): the
// frames of docs/protocol.md ("Frames") over the browser's WebSocket, early ICE
// candidates held per sender until that sender's SDP, GO_AWAY and
// RECONNECT_ICE_SERVER answered by reconnecting with a freshly signed URL,
// and sends paced under the service's rates (5 SDP and 20 ICE messages per
// second). In ingestion mode the master answers the media server's offer
// (no sender id) with messages that name no recipient.
//
// For tests the page exposes window.kvsTest: state ("idle", "connecting",
// "signaling", "connected", "stopped", "error"), role, timeline (steps
// with their times), lastDataMessage, dataMessages, dataChannelsOpen,
// stats, quality, qualityAverages, profile, storage (the last storage
// button's result), ingestion (its events), player (the recordings
// player: how, state, segments, playlists), chart, clip, framesDecoded(),
// playbackFrames(), videoWidth(), remoteViewers(), descriptions() (each
// peer connection's local and remote SDP), sent() (the SDPs and
// candidates signaled, after the filters), iceServers() (after the TURN
// filters), clientIdVisible(), hasStep(name), sendData(text, to),
// toggleSend(kind), togglePause(kind), sending(kind), paused(kind),
// start(role), stop() and diagnostics(). Elements have stable ids: the
// master's view of viewer X is #remote-view-X with the video
// #remote-video-X (the media server's is #remote-view-media-server); the
// viewer's view of the master is #remote-video, a multi-track master's
// further videos #remote-video-track-N; the recording plays in
// #playback-video.
//
// # The backend
//
// A [Server] holds the AWS credentials, as the "Managing Credentials"
// section of the official SDK's README recommends: the browser asks it for a
// presigned WebSocket URL and the ICE servers of a channel and role (POST
// /api/connect) and never sees a key. The control-plane steps (describe or
// create the channel, its endpoints, its ICE servers) go through a
// channel.Resolver with its caches; the URL is presigned with package sigv4.
// The storage buttons and the recordings viewer call the backend too, which
// makes the AWS calls (kinesisvideo for streams and media storage, channel
// for JoinStorageSession, archive for the session URLs and GetClip); the
// page gets their answers and the session URLs, whose token is their only
// credential.
//
// [StartLocal] runs an embedded KVS-compatible service (package localkvs)
// on 127.0.0.1 and gives the aws.Config that reaches it, for a page that
// needs no AWS account; its media server records and its data plane serves
// HLS, DASH and GetClip.
//
// Anyone who can reach the server can have URLs signed with its
// credentials: serve it on localhost (the default of `kvswebrtc web`) or
// behind your own authentication. POST requests from another origin are
// refused.
package web
