package peer

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/media"
)

// link is one peer connection and its negotiation: the part that a
// Master's session with a viewer and a Viewer's session with the master
// share. It keeps the local candidates until the local description has
// gone and the remote ones until the remote description is applied (the
// trickle ICE of the package doc), times the steps of the session, holds
// the tracks of the media it sends and the data channel it sends on.
type link struct {
	pc     *webrtc.PeerConnection
	guard  pcGuard
	log    *slog.Logger
	peerID string     // the viewer's client id on the master's side; "" on the viewer's
	vt, at *sendTrack // own media tracks; nil without the source

	sendCandidate      func(webrtc.ICECandidateInit) // a local candidate to the remote peer
	dataSent, dataRecv *atomic.Uint64

	// mu guards the fields below, and the state of the session that
	// embeds the link.
	mu            sync.Mutex
	started       time.Time     // the offer was sent (viewer) or received (master)
	local         candidateGate // open once the local description has gone
	remote        candidateGate // open once the remote description is applied
	dc            *webrtc.DataChannel
	offerToAnswer time.Duration
	iceConnect    time.Duration
	connect       time.Duration
}

// candidateGate keeps ICE candidates until its description is through,
// then lets them pass.
type candidateGate struct {
	open bool
	held []webrtc.ICECandidateInit
}

// pass tells whether c may go now; if not, the gate keeps it.
func (g *candidateGate) pass(c webrtc.ICECandidateInit) bool {
	if !g.open {
		g.held = append(g.held, c)
	}
	return g.open
}

// release opens the gate and returns the candidates it kept.
func (g *candidateGate) release() []webrtc.ICECandidateInit {
	held := g.held
	g.open, g.held = true, nil
	return held
}

// linkConfig says how to open a link.
type linkConfig struct {
	api    *webrtc.API
	config webrtc.Configuration
	log    *slog.Logger
	peerID string // see link.peerID

	// video and audio are the own media, sent on tracks of streamID. With
	// recvVideo (recvAudio) the transceiver of a source receives as well
	// (sendrecv), else it is sendonly. The offerer (offer) also adds a
	// recvonly transceiver for a kind it receives but does not send; the
	// answerer gets those from the offer.
	video, audio         media.Source
	streamID             string
	recvVideo, recvAudio bool
	offer                bool

	noTrickle          bool // local candidates are not sent (they are in the description)
	sendCandidate      func(webrtc.ICECandidateInit)
	dataSent, dataRecv *atomic.Uint64
	started            time.Time // zero: set by markStarted

	t       *tracker // runs the RTCP readers
	onState func(webrtc.PeerConnectionState)
}

// open makes the peer connection with its tracks and transceivers. On
// failure nothing is left open.
func (l *link) open(c linkConfig) error {
	pc, err := c.api.NewPeerConnection(c.config)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPeerConnection, err)
	}
	l.pc, l.log, l.peerID = pc, c.log, c.peerID
	l.sendCandidate, l.dataSent, l.dataRecv = c.sendCandidate, c.dataSent, c.dataRecv
	l.started = c.started
	for _, k := range []struct {
		kind webrtc.RTPCodecType
		src  media.Source
		recv bool
		dst  **sendTrack
	}{{webrtc.RTPCodecTypeVideo, c.video, c.recvVideo, &l.vt}, {webrtc.RTPCodecTypeAudio, c.audio, c.recvAudio, &l.at}} {
		switch {
		case k.src != nil:
			track, err := webrtc.NewTrackLocalStaticSample(k.src.Codec(), k.kind.String(), c.streamID)
			if err != nil {
				_ = pc.Close()
				return fmt.Errorf("%w: %s track: %w", ErrPeerConnection, k.kind, err)
			}
			dir := webrtc.RTPTransceiverDirectionSendrecv
			if !k.recv {
				dir = webrtc.RTPTransceiverDirectionSendonly
			}
			tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: dir})
			if err != nil {
				_ = pc.Close()
				return fmt.Errorf("%w: adding the %s track: %w", ErrPeerConnection, k.kind, err)
			}
			*k.dst = &sendTrack{TrackLocalStaticSample: track}
			sender := tr.Sender()
			c.t.goRun(func() { drainRTCP(sender) })
		case k.recv && c.offer:
			if _, err := pc.AddTransceiverFromKind(k.kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				_ = pc.Close()
				return fmt.Errorf("%w: adding a %s transceiver: %w", ErrPeerConnection, k.kind, err)
			}
		}
	}
	if !c.noTrickle {
		pc.OnICECandidate(l.localCandidate)
	}
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		if st == webrtc.ICEConnectionStateConnected {
			l.mark(&l.iceConnect)
		}
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			l.mark(&l.connect)
		}
		c.onState(st)
	})
	return nil
}

// mark sets *d, a timing of l, to the time since the session started,
// once.
func (l *link) mark(d *time.Duration) {
	l.mu.Lock()
	if *d == 0 && !l.started.IsZero() {
		*d = time.Since(l.started)
	}
	l.mu.Unlock()
}

// markStarted starts the session's clock now.
func (l *link) markStarted() {
	l.mu.Lock()
	l.started = time.Now()
	l.mu.Unlock()
}

// markAnswered measures offer-to-answer: for the viewer the answer has
// come, for the master it has been queued.
func (l *link) markAnswered() { l.mark(&l.offerToAnswer) }

// connectTime returns the time from the start to connected (zero before).
func (l *link) connectTime() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connect
}

// answered tells whether the remote description is applied.
func (l *link) answered() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remote.open
}

// localCandidate sends a gathered candidate to the remote peer, or keeps
// it until the local description has gone.
func (l *link) localCandidate(c *webrtc.ICECandidate) {
	if c == nil {
		return // gathering complete
	}
	init := c.ToJSON()
	l.mu.Lock()
	now := l.local.pass(init)
	l.mu.Unlock()
	if now {
		l.sendCandidate(init)
	}
}

// localDescriptionSent sends the candidates kept until now; the next ones
// go as they come.
func (l *link) localDescriptionSent() {
	l.mu.Lock()
	held := l.local.release()
	l.mu.Unlock()
	for _, c := range held {
		l.sendCandidate(c)
	}
}

// setRemoteDescription applies the remote peer's offer or answer, then
// the candidates kept until it. The error is pion's.
func (l *link) setRemoteDescription(sd webrtc.SessionDescription) error {
	if err := l.pc.SetRemoteDescription(sd); err != nil {
		return err
	}
	l.mu.Lock()
	held := l.remote.release()
	l.mu.Unlock()
	for _, c := range held {
		l.addICECandidate(c)
	}
	return nil
}

// remoteCandidate applies a candidate of the remote peer, or keeps it
// until the remote description is applied.
func (l *link) remoteCandidate(c webrtc.ICECandidateInit) {
	l.mu.Lock()
	now := l.remote.pass(c)
	l.mu.Unlock()
	if now {
		l.addICECandidate(c)
	}
}

func (l *link) addICECandidate(c webrtc.ICECandidateInit) {
	if err := l.pc.AddICECandidate(c); err != nil {
		l.log.Debug("peer: remote candidate refused", "err", err)
	}
}

// useDataChannel makes dc the data channel that send uses, unless there
// is one already, and passes its messages to onMessage.
func (l *link) useDataChannel(dc *webrtc.DataChannel, onMessage func(webrtc.DataChannelMessage)) {
	l.mu.Lock()
	if l.dc == nil {
		l.dc = dc
	}
	l.mu.Unlock()
	l.receiveData(dc, onMessage)
}

// receiveData counts the messages of dc and passes them to onMessage.
func (l *link) receiveData(dc *webrtc.DataChannel, onMessage func(webrtc.DataChannelMessage)) {
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		l.dataRecv.Add(1)
		onMessage(msg)
	})
}

// send sends a message with f on the data channel. It returns
// ErrNoDataChannel when the channel is not open (yet).
func (l *link) send(f func(*webrtc.DataChannel) error) error {
	l.mu.Lock()
	dc := l.dc
	l.mu.Unlock()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		if l.peerID != "" {
			return fmt.Errorf("%w: viewer %q", ErrNoDataChannel, l.peerID)
		}
		return ErrNoDataChannel
	}
	if err := f(dc); err != nil {
		if l.peerID != "" {
			return fmt.Errorf("%w: data channel send to %q: %w", ErrPeerConnection, l.peerID, err)
		}
		return fmt.Errorf("%w: data channel send: %w", ErrPeerConnection, err)
	}
	l.dataSent.Add(1)
	return nil
}

// attach adds the link's tracks to the media sent; detach takes them out.
func (l *link) attach(o outMedia) { o.add(l.vt, l.at) }
func (l *link) detach(o outMedia) { o.remove(l.vt, l.at) }

// close closes the peer connection, after any Stats under way.
func (l *link) close() error { return l.guard.close(l.pc) }

// stats fills st with the link's timings, the media and data messages
// sent and received, and pion's counters and candidate pair.
func (l *link) stats(st *SessionStats) {
	l.mu.Lock()
	st.Started = l.started
	st.OfferToAnswer, st.ICEConnect, st.Connect = l.offerToAnswer, l.iceConnect, l.connect
	l.mu.Unlock()
	st.FramesSent, st.BytesSent = sent(l.vt, l.at)
	st.DataMessagesSent, st.DataMessagesReceived = l.dataSent.Load(), l.dataRecv.Load()
	collectPC(l.pc, &l.guard, st)
}

// drainRTCP reads a sender's RTCP so that the interceptors (NACK, reports)
// see it, until the sender stops.
func drainRTCP(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := sender.Read(buf); err != nil {
			return
		}
	}
}

// drainRTP reads and drops a track nobody wants.
func drainRTP(track *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := track.Read(buf); err != nil {
			return
		}
	}
}
