// Package barerelay is the floor of the signaling load benchmark: the least
// a WebSocket relay must do to carry KVS-shaped signaling frames between a
// master and its viewers, with nothing else.
//
// A connection names its channel and role in the query exactly as a KVS
// client does (X-Amz-ChannelARN, and X-Amz-ClientId for a viewer), but no
// signature is checked, no limit is enforced and no frame is decoded as
// JSON: the relay finds "action", "messagePayload" and (from the master)
// "recipientClientId" by byte search, writes the frame the real service would
// send ({"messageType", "messagePayload", "senderClientId"}) and writes it to
// the recipient directly from the sender's read goroutine (no queue, no
// writer goroutine). A frame for an absent recipient is dropped.
//
// It exists so that bench/relay/loadgen can drive `kvswebrtc serve` and this
// relay with the same load and compare relay latencies.
package barerelay
