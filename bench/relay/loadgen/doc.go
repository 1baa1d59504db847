// Command loadgen is the load generator of the signaling service benchmark
// (bench/README.md, "Signaling service load").
//
// It opens -channels channels with one master and -viewers viewers each, over
// real WebSockets, against `kvswebrtc serve` (or, with -bare, against the
// bare relay of bench/relay/echo, the floor), holds them all, then relays
// signaling traffic: viewers send ICE_CANDIDATE (and every -sdp-every-th an
// SDP_OFFER) to their master, and each master answers the viewer
// (ICE_CANDIDATE, or SDP_ANSWER to an offer). -rate is the total of relayed
// messages per second, both directions together, paced by a 1 ms ticker and
// spread over the viewers channel by channel.
//
// Each payload carries its send time (monotonic, in the base64 JSON), and
// the receiver records the relay latency: from just before the sender's
// WebSocket write to just after the receiver's read, both in this process.
// Messages sent during the -warmup are not counted; those sent during
// -duration are, and the generator waits up to -drain for them to arrive.
//
// With -server "" (or "embedded") it builds the server with `go build` and
// runs it as a child process, so that the server does not share the
// generator's heap and its VmRSS and CPU time are read from /proc/<pid>.
// The serve child runs with `-data= -log-level warn` (channels in memory).
// Channels are created through the control plane with aws-sdk-go-v2's
// kinesisvideo client and the development key pair; connections are
// presigned with package sigv4 exactly as a client does.
//
// The service allows 3 connects per second per channel: the generator opens
// all masters, then viewer 1 of every channel, and so on, so that connects to
// one channel are a whole round apart, and retries a connect refused with
// ClientLimitExceededException after 400 ms (counted as a retry).
//
// It raises its soft RLIMIT_NOFILE to the hard limit; the child inherits it.
// The report gives the CPU the machine's other processes used during the
// relay, for runs on a shared machine.
//
// With -profile DIR the child is bench/relay/profserve (the same service
// with the net/http/pprof handlers on a second port) and the generator saves
// in DIR heap-held.pprof, goroutine-held.pprof and memstats-held.txt (runtime.MemStats) with every connection
// open, cpu.pprof of the relay (warm-up and window), and allocs-0.pprof and
// allocs-1.pprof before and after it (go tool pprof -sample_index=alloc_space
// -diff_base DIR/allocs-0.pprof DIR/allocs-1.pprof: what the relay allocated).
//
// Example (from the repository root):
//
//	go run ./bench/relay/loadgen -channels 1000 -viewers 9 -rate 10000 -duration 30s
//	go run ./bench/relay/loadgen -bare -channels 1000 -viewers 9 -rate 10000 -duration 30s
package main
