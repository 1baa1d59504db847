// Package wire holds the JSON frames of the KVS signaling WebSocket
// (docs/protocol.md), shared by the client (package signaling) and the
// local service (package localkvs), which must not import each other.
package wire
