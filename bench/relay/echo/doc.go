// Command echo runs the bare WebSocket relay of package
// bench/relay/internal/barerelay: the floor that the signaling load benchmark
// (bench/relay/loadgen -bare) compares `kvswebrtc serve` with.
//
// Usage:
//
//	go build -o /tmp/echo ./bench/relay/echo
//	/tmp/echo -addr 127.0.0.1:0
//
// It prints "listening on ws://HOST:PORT" on its first line of standard
// output once it accepts connections, and serves until SIGINT or SIGTERM.
// Clients connect to ws://HOST:PORT/?X-Amz-ChannelARN=NAME (the master) or
// ...&X-Amz-ClientId=ID (a viewer), with no signature.
package main
