// Package peer runs real WebRTC sessions over Amazon Kinesis Video Streams
// signaling with pion/webrtc v4: a [Master] that serves up to 10 viewers at
// once and a [Viewer], the Go counterparts of the master and viewer of the
// official SDKs' sample applications.
//
// # Getting connected
//
// Both are built from a [ChannelConfig]: either a channel already resolved
// by package channel, or an aws.Config and a channel name, which
// [NewMaster] and [NewViewer] resolve (describe or create, endpoints, ICE
// servers) before they make the signaling client (package signaling).
// Start then connects and, for a viewer, sends the offer:
//
//	m, err := peer.NewMaster(ctx, peer.MasterConfig{
//		ChannelConfig: peer.ChannelConfig{AWS: awsCfg, Channel: "front-door", CreateIfMissing: true},
//		Video:         media.DefaultVideo(media.Options{Loop: true}),
//	})
//	err = m.Start(ctx)
//
//	v, err := peer.NewViewer(ctx, peer.ViewerConfig{
//		ChannelConfig: peer.ChannelConfig{AWS: awsCfg, Channel: "front-door"},
//		VideoSinks:    []media.Sink{recorder},
//	})
//	err = v.Start(ctx)
//	ttff, err := v.WaitFirstFrame(ctx)
//
// ChannelConfig.NAT picks the ICE servers (channel.STUNAndTURN,
// channel.TURNOnly, ...). [Settings] hold pion's rarer knobs; the default
// includes loopback host candidates and leaves out mDNS, so that peers on
// one machine connect at once.
//
// # Master
//
// The master answers each viewer's offer with one PeerConnection per
// viewer client id. A new offer from the same id replaces the session; an
// offer past MasterConfig.MaxViewers is refused. Media sources are read
// once, in real time (media.Broadcaster), and each sample goes to every
// connected viewer. With fast start (the default) the master keeps the
// video since the last key frame and sends it at once to a viewer that
// joins, so its first frame decodes without waiting for the next key frame.
// Answers and candidates are sent in order, paced under the service's
// limits of 5 SDP and 20 ICE messages a second per connection
// (docs/protocol.md, "Limits").
//
// # Viewer
//
// The viewer offers to receive video and audio (and to send its own
// media, if given), with a data channel, and trickles its candidates (or
// sends them all in the offer with ViewerConfig.NonTrickle). It reads the
// received tracks itself: frames go to the configured sinks and to
// OnFrame, from the first key frame on, and the first video key frame ends
// the time to first frame.
//
// # Reconnects
//
// The signaling client reconnects by itself. On top of that, a viewer
// whose signaling connection comes back while its peer connection is not
// connected makes a new peer connection and offers again, and on
// RECONNECT_ICE_SERVER it fetches the ICE servers again and does the
// same; the master keeps connected sessions across signaling reconnects
// and fetches new ICE servers on RECONNECT_ICE_SERVER.
//
// A viewer also recovers from a lost peer connection while signaling
// stays up (the master restarted, the network path changed): when its
// peer connection goes failed (pion's ICE gave up after
// Settings.ICEDisconnectedTimeout plus ICEFailedTimeout without traffic)
// or is closed by the master, or when an offer gets no answer within
// ViewerConfig.ReofferAnswerTimeout, it offers again with a new peer
// connection after an exponential backoff with full jitter (500 ms
// doubling to 10 s by default, from the start again after a connection),
// so an absent master sees one offer per step, and the service keeps only
// the newest for it (docs/protocol.md, "Limits"). One renegotiation runs at a time, whatever asked for
// it. ViewerConfig.DisableAutoReoffer turns this off; Viewer.OnReoffer
// reports every re-offer and its reason, and ViewerStats.Reoffers counts
// them.
//
// # Trickle ICE
//
// Local candidates are sent once the offer (viewer) or answer (master) has
// gone, each to its peer (the master names the viewer as recipient).
// Remote candidates that arrive before the remote description is applied
// are kept and applied after it (docs/protocol.md, "Frames", on early
// candidates).
//
// # Statistics
//
// [Viewer.Stats] and [Master.Stats] give, per session, the signaling step
// times, offer-to-answer, ICE and connection times, the time to first frame
// (viewer), frames, packets, bytes and losses received (pion's inbound-rtp
// stats), media sent, data channel messages and the selected candidate
// pair; their String methods format them for a terminal.
package peer
