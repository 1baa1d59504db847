// Command soak is the fault soak of issue 13: many channels, each a master
// and viewers exchanging signaling messages through a real `kvswebrtc
// serve`, while the harness kills and restarts serve (kill -9, same data
// dir), drops every TCP connection through a fault proxy (internal/tcpproxy)
// and lets the service send GO_AWAY (serve --max-duration). It reports the
// messages sent and received around each fault, and how many of those sent
// to a connected recipient were lost (the goal: none), the reconnect times
// (p50, p99; goal: p99 under 2 s after a restart) and the memory and file
// descriptors of the service and of the clients at the start and the end
// (goal: under 10% growth).
//
//	go run ./bench/soak                 # the full run: 100 channels, 1 master + 3 viewers each, 10 minutes
//	go run ./bench/soak -short          # the CI run: 20 channels, 75 s, faults every 25 s
//	go run ./bench/soak -json out.json  # also write the figures as JSON
//
// It builds the CLI itself (or takes -bin). The process exits 1 when a
// message sent to a connected recipient was lost or a client did not
// reconnect, and, with -goals (the default for the full run), when a goal
// above is missed. See bench/README.md for the figures.
package main
