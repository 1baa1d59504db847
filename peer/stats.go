package peer

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// SignalingTimings are the durations of the steps before a session: the
// control-plane calls of channel.Resolve (zero when served from its cache
// or when the channel was resolved by the caller) and the opening of the
// signaling WebSocket.
type SignalingTimings struct {
	Describe  time.Duration // DescribeSignalingChannel
	Create    time.Duration // CreateSignalingChannel (zero unless the channel was created)
	Endpoint  time.Duration // GetSignalingChannelEndpoint
	ICEConfig time.Duration // GetIceServerConfig
	Connect   time.Duration // signaling WebSocket open
}

// Candidate describes one side of the selected ICE candidate pair.
type Candidate struct {
	Type     string // host, srflx, prflx or relay
	Protocol string // udp or tcp
	Address  string // IP address (or mDNS host name)
	Port     uint16 // port
}

// String returns "type protocol address:port".
func (c Candidate) String() string {
	if c.Type == "" {
		return "-"
	}
	return c.Type + " " + c.Protocol + " " + net.JoinHostPort(c.Address, strconv.Itoa(int(c.Port)))
}

// RTPStreamStats are pion's inbound-rtp counters for one received RTP
// stream (one track).
type RTPStreamStats struct {
	Kind     string  // "video" or "audio"
	Packets  uint64  // packets received
	Bytes    uint64  // payload bytes received
	Lost     int64   // packets lost (from sequence-number gaps)
	NACKs    uint32  // NACKs sent
	PLIs     uint32  // picture loss indications sent
	JitterMS float64 // interarrival jitter in milliseconds
}

// SessionStats describe one peer connection: the master's session with a
// viewer, or a viewer's session with the master.
type SessionStats struct {
	// ClientID is the viewer's client id.
	ClientID string
	// State is the peer connection state when the stats were taken.
	State webrtc.PeerConnectionState
	// Started is when the session began: for a viewer, its Start (or the
	// re-offer that made this peer connection); for the master, when the
	// viewer's offer arrived.
	Started time.Time
	// Signaling are the steps before the session (for the master, those of
	// its own start-up, shared by all sessions).
	Signaling SignalingTimings
	// OfferToAnswer is, for a viewer, from sending the offer to receiving
	// the answer; for the master, from receiving the offer to queueing the
	// answer for sending (sends are paced under the service's SDP rate).
	OfferToAnswer time.Duration
	// ICEConnect is from the offer (sent by a viewer, received by the
	// master) to ICE connected.
	ICEConnect time.Duration
	// Connect is from the offer to the peer connection connected (DTLS
	// done).
	Connect time.Duration
	// TimeToFirstFrame is, for a viewer, from Start to the first complete
	// video key frame received (zero until then). Zero for the master.
	TimeToFirstFrame time.Duration
	// Frames and Keyframes count the complete video frames the viewer
	// rebuilt; AudioFrames the audio packets. Zero for the master.
	Frames, Keyframes, AudioFrames uint64
	// Streams are pion's per-track RTP counters.
	Streams []RTPStreamStats
	// PacketsReceived, BytesReceived and PacketsLost sum the inbound
	// streams (pion's inbound-rtp stats).
	PacketsReceived, BytesReceived uint64
	PacketsLost                    int64 // see PacketsReceived
	// FramesSent and BytesSent count the media samples (video frames,
	// audio packets) and their bytes written to this peer's tracks, RTP
	// headers excluded (pion reports no outbound-rtp stats).
	FramesSent, BytesSent uint64
	// Local and Remote are the selected ICE candidate pair (zero before
	// ICE connects).
	Local, Remote Candidate
	// DataMessagesSent and DataMessagesReceived count data channel messages.
	DataMessagesSent, DataMessagesReceived uint64
}

// String formats s on a few lines for a terminal.
func (s SessionStats) String() string {
	var b strings.Builder
	ms := func(d time.Duration) string {
		if d == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	fmt.Fprintf(&b, "session %s: %s\n", s.ClientID, s.State)
	fmt.Fprintf(&b, "  signaling: describe %s, create %s, endpoint %s, ice-config %s, connect %s\n",
		ms(s.Signaling.Describe), ms(s.Signaling.Create), ms(s.Signaling.Endpoint), ms(s.Signaling.ICEConfig), ms(s.Signaling.Connect))
	// A send-only session (a master's, unless the viewer sends media) has
	// no receive side: its always-zero counters are left out, and the
	// send counters of a receive-only one.
	receives := s.PacketsReceived > 0 || len(s.Streams) > 0 || s.Frames > 0 || s.AudioFrames > 0
	sends := s.FramesSent > 0 || s.BytesSent > 0
	fmt.Fprintf(&b, "  offer-to-answer %s, ice-connected %s, connected %s", ms(s.OfferToAnswer), ms(s.ICEConnect), ms(s.Connect))
	if receives || !sends {
		fmt.Fprintf(&b, ", first-frame %s", ms(s.TimeToFirstFrame))
	}
	fmt.Fprintf(&b, "\n  candidate pair: local %s, remote %s\n", s.Local, s.Remote)
	if s.Frames > 0 || s.AudioFrames > 0 {
		fmt.Fprintf(&b, "  frames: video %d (key %d), audio %d\n", s.Frames, s.Keyframes, s.AudioFrames)
	}
	var rtp []string
	if receives {
		rtp = append(rtp, fmt.Sprintf("received %d packets %d bytes lost %d", s.PacketsReceived, s.BytesReceived, s.PacketsLost))
	}
	if sends {
		rtp = append(rtp, fmt.Sprintf("sent %d frames %d bytes", s.FramesSent, s.BytesSent))
	}
	if len(rtp) == 0 {
		rtp = append(rtp, "nothing received or sent yet")
	}
	fmt.Fprintf(&b, "  rtp: %s\n", strings.Join(rtp, "; "))
	for _, st := range s.Streams {
		fmt.Fprintf(&b, "    in %s: %d packets %d bytes lost %d nack %d pli %d jitter %.1fms\n",
			st.Kind, st.Packets, st.Bytes, st.Lost, st.NACKs, st.PLIs, st.JitterMS)
	}
	fmt.Fprintf(&b, "  data channel: sent %d, received %d messages", s.DataMessagesSent, s.DataMessagesReceived)
	return b.String()
}

// ViewerStats are a Viewer's statistics: those of its current session,
// and how often it renegotiated.
type ViewerStats struct {
	SessionStats
	// Reoffers counts the new peer connections the viewer made after the
	// first: after a lost session on a signaling reconnect, on
	// RECONNECT_ICE_SERVER, and the automatic re-offers after a failed,
	// remotely closed or unanswered session.
	Reoffers int
	// SignalingReconnects counts the signaling reconnects (OnOpen after
	// OnReconnecting).
	SignalingReconnects int
}

// String formats s on a few lines for a terminal.
func (s ViewerStats) String() string {
	return s.SessionStats.String() + fmt.Sprintf("\n  re-offers %d, signaling reconnects %d", s.Reoffers, s.SignalingReconnects)
}

// FormatMasterStats formats the stats of Master.Stats, one session after
// the other in client id order.
func FormatMasterStats(m map[string]SessionStats) string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, m[id].String())
	}
	if len(parts) == 0 {
		return "no sessions"
	}
	return strings.Join(parts, "\n")
}

// pcGuard orders the reads of Stats against our own PeerConnection.Close:
// Stats is not gathered from a peer connection that is closed or closing.
// The RTP counters are not read through PeerConnection.GetStats, which
// races with the Close pion starts by itself (rtpstats.go), except with a
// caller's own API (Settings.API).
type pcGuard struct {
	mu     sync.Mutex
	closed bool
}

// close closes pc, after any GetStats under way.
func (g *pcGuard) close(pc *webrtc.PeerConnection) error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	return pc.Close()
}

// collectPC fills the RTP counters and the selected pair of s from pc,
// unless pc is closed (its state only, then).
func collectPC(pc *webrtc.PeerConnection, g *pcGuard, s *SessionStats) {
	if pc == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	s.State = pc.ConnectionState()
	if g.closed || s.State == webrtc.PeerConnectionStateClosed {
		s.State = webrtc.PeerConnectionStateClosed
		return
	}
	streams, ok := inboundRTP(pc)
	if !ok { // a caller's own API (Settings.API): pion's report
		for _, v := range pc.GetStats() {
			if st, ok := v.(webrtc.InboundRTPStreamStats); ok {
				streams = append(streams, RTPStreamStats{Kind: st.Kind, Packets: uint64(st.PacketsReceived),
					Bytes: st.BytesReceived, Lost: int64(st.PacketsLost), NACKs: st.NACKCount, PLIs: st.PLICount,
					JitterMS: st.Jitter * 1000})
			}
		}
	}
	sort.Slice(streams, func(i, j int) bool { return streams[i].Kind > streams[j].Kind }) // video before audio
	s.Streams = streams
	for _, st := range streams {
		s.PacketsReceived += st.Packets
		s.BytesReceived += st.Bytes
		s.PacketsLost += st.Lost
	}
	// pion's GetSelectedCandidatePair reads a field (the gatherer) that
	// ICETransport.Start writes with no lock in common: ask only once the
	// transport has left "new", which Start's agent reports (an atomic
	// store) after that write.
	if it := iceTransport(pc); it != nil && it.State() != webrtc.ICETransportStateNew {
		if pair, err := it.GetSelectedCandidatePair(); err == nil && pair != nil {
			s.Local, s.Remote = candidate(pair.Local), candidate(pair.Remote)
		}
	}
}

func candidate(c *webrtc.ICECandidate) Candidate {
	if c == nil {
		return Candidate{}
	}
	return Candidate{Type: c.Typ.String(), Protocol: c.Protocol.String(), Address: c.Address, Port: c.Port}
}

// iceTransport finds the ICE transport of pc (BUNDLE: there is one).
func iceTransport(pc *webrtc.PeerConnection) *webrtc.ICETransport {
	if sctp := pc.SCTP(); sctp != nil {
		if dt := sctp.Transport(); dt != nil {
			return dt.ICETransport()
		}
	}
	for _, tr := range pc.GetTransceivers() {
		if s := tr.Sender(); s != nil && s.Transport() != nil {
			return s.Transport().ICETransport()
		}
		if r := tr.Receiver(); r != nil && r.Transport() != nil {
			return r.Transport().ICETransport()
		}
	}
	return nil
}
