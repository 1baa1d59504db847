package localkvs

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// The media server: what JoinStorageSession starts (docs/protocol.md,
// "Streams and storage"). Like the real one it is a WebRTC peer that joins
// the channel through the signaling hub: it sends the master an SDP_OFFER
// with no sender client id (to receive H.264 video and Opus audio, no data
// channel), trickles its ICE candidates the same way, takes the master's
// answer and candidates (the master's messages with no recipient client
// id), uses the service's own STUN/TURN server, and records what it
// receives as fragments of the channel's stream (recorder.go). One storage
// session per channel: a new join replaces the running one.

// storageConnectTimeout is how long a storage session waits for its peer
// connection to connect before it gives up (the master joins again).
const storageConnectTimeout = 30 * time.Second

// mediaServer holds the storage sessions of the server.
type mediaServer struct {
	s     *Server
	store *mediaStore

	apiOnce sync.Once
	api     *webrtc.API
	apiErr  error

	mu       sync.Mutex
	sessions map[string]*storageSession // channel ARN ->
	seq      uint64
	closed   bool
	done     chan struct{} // closed when the server stops: ends GetMedia streams
	wg       sync.WaitGroup

	viewerJoins atomic.Int64 // JoinStorageSessionAsViewer calls admitted, ever (mediaviewers.go)
}

func newMediaServer(s *Server, store *mediaStore) *mediaServer {
	return &mediaServer{s: s, store: store, sessions: map[string]*storageSession{}, done: make(chan struct{})}
}

// webrtcAPI is the pion API of the media server's peers: H.264 and Opus
// only (so the offer names just what KVS records), the default
// interceptors (NACK, RTCP reports), loopback host candidates included and
// mDNS off, so that peers on the same machine connect at once.
func (ms *mediaServer) webrtcAPI() (*webrtc.API, error) {
	ms.apiOnce.Do(func() {
		m := &webrtc.MediaEngine{}
		fb := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
		pt := webrtc.PayloadType(102)
		for _, fmtp := range []string{
			"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
			"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
			"level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032",
		} {
			c := webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: fb},
				PayloadType:        pt,
			}
			if ms.apiErr = m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); ms.apiErr != nil {
				return
			}
			pt++
		}
		ms.apiErr = m.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
			PayloadType:        111,
		}, webrtc.RTPCodecTypeAudio)
		if ms.apiErr != nil {
			return
		}
		reg := &interceptor.Registry{}
		if ms.apiErr = webrtc.RegisterDefaultInterceptors(m, reg); ms.apiErr != nil {
			return
		}
		var se webrtc.SettingEngine
		se.SetIncludeLoopbackCandidate(true)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
		se.LoggerFactory = pionLogFactory{ms.s.log}
		ms.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	})
	return ms.api, ms.apiErr
}

// storageSession is the media server's peer connection with a channel's
// master, and the recording of what it sends.
type storageSession struct {
	ms        *mediaServer
	id        uint64
	channel   string
	stream    *streamRec
	pc        *webrtc.PeerConnection
	rec       *recorder
	joined    time.Time
	connected atomic.Bool

	fwdVideo, fwdAudio *webrtc.TrackLocalStaticRTP // the master's media, to the viewers (mediaviewers.go)

	mu          sync.Mutex
	local       heldCandidates // the media server's: until the offer is sent
	remote      heldCandidates // the master's: until its answer is set
	closed      bool
	closeReason string
	timer       *time.Timer
	viewers     map[string]*sessionViewer // JoinStorageSessionAsViewer: client id ->
}

// heldCandidates are the ICE candidates of one side of a storage session
// held until they can go: the media server's until its offer is sent,
// the master's until its answer is set. ss.mu guards them.
type heldCandidates struct {
	open bool // they go at once
	held []webrtc.ICECandidateInit
}

// holdLocked keeps c and reports true, unless h is open.
func (h *heldCandidates) holdLocked(c webrtc.ICECandidateInit) bool {
	if h.open {
		return false
	}
	h.held = append(h.held, c)
	return true
}

// openLocked opens h and returns the candidates it held, to send now.
func (h *heldCandidates) openLocked() []webrtc.ICECandidateInit {
	h.open = true
	held := h.held
	h.held = nil
	return held
}

// join starts a storage session on channel, recording to stream, and
// sends the master the offer. It replaces the channel's running session.
func (ms *mediaServer) join(channel string, stream *streamRec) error {
	api, err := ms.webrtcAPI()
	if err != nil {
		return fmt.Errorf("localkvs: media server: %w", err)
	}
	ss := &storageSession{ms: ms, channel: channel, stream: stream, joined: time.Now()}
	if err := ss.prepare(api); err != nil { // before it is visible: pc and rec are set once
		if ss.pc != nil {
			_ = ss.pc.Close()
		}
		return fmt.Errorf("localkvs: media server: %w", err)
	}
	ms.mu.Lock()
	if ms.closed {
		ms.mu.Unlock()
		_ = ss.pc.Close()
		return errShuttingDown
	}
	ms.seq++
	ss.id = ms.seq
	old := ms.sessions[channel]
	ms.sessions[channel] = ss
	ms.wg.Add(1)
	ms.mu.Unlock()
	if old != nil {
		old.close("replaced by a newer JoinStorageSession")
	}
	if err := ss.offer(); err != nil {
		ss.close("could not start: " + err.Error())
		return fmt.Errorf("localkvs: media server: %w", err)
	}
	return nil
}

// iceServers are the media server's ICE servers: the embedded TURN server
// with credentials for the channel, and its STUN address.
func (ms *mediaServer) iceServers(channel string) []webrtc.ICEServer {
	t := ms.s.turn.Load()
	if t == nil {
		return nil
	}
	user, pass := t.credentials(channel, t.now().Add(t.ttl))
	var stun []string
	for _, u := range t.uris() {
		if hp, q, _ := strings.Cut(strings.TrimPrefix(u, "turn:"), "?"); strings.Contains(q, "udp") {
			stun = append(stun, "stun:"+hp)
		}
	}
	return []webrtc.ICEServer{{URLs: stun}, {URLs: t.uris(), Username: user, Credential: pass, CredentialType: webrtc.ICECredentialTypePassword}}
}

// prepare makes the peer connection, its transceivers and handlers, and
// the recorder.
func (ss *storageSession) prepare(api *webrtc.API) error {
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: ss.ms.iceServers(ss.channel)})
	if err != nil {
		return err
	}
	ss.pc = pc
	ss.rec = newRecorder(ss.ms, ss.stream, ss.joined)
	ss.viewers = map[string]*sessionViewer{}
	if ss.fwdVideo, ss.fwdAudio, err = forwardTracks(); err != nil {
		return err
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return err
		}
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		ss.mu.Lock()
		held := ss.local.holdLocked(init)
		ss.mu.Unlock()
		if !held {
			ss.send(wire.ICECandidate, init)
		}
	})
	pc.OnTrack(func(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		ss.ms.s.log.Debug("localkvs: media server receiving", "channel", ss.channel, "codec", track.Codec().MimeType)
		go drainReceiverRTCP(recv)
		if track.Kind() == webrtc.RTPCodecTypeVideo {
			ssrc := uint32(track.SSRC())
			ss.rec.setKeyFrameRequester(func() {
				_ = pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}) // a closed connection: nothing to ask
			})
		}
		ss.rec.consume(track, ss.forward(track.Kind()))
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		ss.ms.s.log.Debug("localkvs: storage session state", "channel", ss.channel, "state", st.String())
		switch st {
		case webrtc.PeerConnectionStateConnected:
			ss.connected.Store(true)
			ss.ms.s.log.Info("localkvs: storage session connected", "channel", ss.channel, "stream", ss.stream.Name, "after", time.Since(ss.joined))
		case webrtc.PeerConnectionStateFailed:
			go ss.close("the peer connection failed")
		case webrtc.PeerConnectionStateClosed:
			go ss.close("the peer connection closed")
		}
	})
	return nil
}

// offer sends the master the offer, then the candidates gathered meanwhile.
func (ss *storageSession) offer() error {
	pc := ss.pc
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	ss.mu.Lock()
	ss.timer = time.AfterFunc(storageConnectTimeout, func() {
		if !ss.connected.Load() {
			ss.close("not connected within " + storageConnectTimeout.String())
		}
	})
	ss.mu.Unlock()
	ss.send(wire.SDPOffer, offer)
	ss.mu.Lock()
	held := ss.local.openLocked()
	ss.mu.Unlock()
	for _, c := range held {
		ss.send(wire.ICECandidate, c)
	}
	return nil
}

// send sends the master a message from the media server: no sender
// client id, as KVS sends it. With no master connected it is kept for
// the channel's MessageTtlSeconds, like any message to the master.
func (ss *storageSession) send(action string, payload any) {
	p, err := wire.EncodePayload(payload)
	if err != nil {
		return
	}
	frame := mustMarshal(wire.ServiceMessage{MessageType: action, MessagePayload: p})
	ss.ms.s.room(ss.channel).fromService(action, frame)
}

// fromService delivers a frame of the service's own (the media server's)
// to the master, or keeps it for the master as a viewer's would be kept.
func (rm *room) fromService(action string, frame []byte) {
	rm.mu.Lock()
	m := rm.master
	if m == nil {
		now := rm.s.clock.Now()
		rm.toMaster = rm.keepLocked(rm.toMaster, pending{frame, action, "", now.Add(rm.ttl)}, now)
	}
	rm.mu.Unlock()
	if m != nil {
		m.send(frame) // may write to the socket: outside the lock
	}
}

// hasSession reports whether channel has a storage session: then the
// master's messages without a recipient client id are for it.
func (ms *mediaServer) hasSession(channel string) bool {
	return ms.session(channel) != nil
}

// session returns the storage session of channel, or nil.
func (ms *mediaServer) session(channel string) *storageSession {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.sessions[channel]
}

// fromMaster hands the media server a message the channel's master sent
// with no recipient client id: its answer or one of its candidates.
func (ms *mediaServer) fromMaster(channel, action, payload string) {
	ss := ms.session(channel)
	if ss == nil {
		return
	}
	switch action {
	case wire.SDPAnswer:
		var sd webrtc.SessionDescription
		if err := wire.DecodePayload(payload, &sd); err != nil || sd.Type != webrtc.SDPTypeAnswer {
			ms.s.log.Info("localkvs: media server: the master's answer does not decode; dropped", "channel", channel)
			return
		}
		ss.answer(sd)
	case wire.ICECandidate:
		var c webrtc.ICECandidateInit
		if err := wire.DecodePayload(payload, &c); err != nil {
			return
		}
		ss.mu.Lock()
		held := ss.remote.holdLocked(c)
		ss.mu.Unlock()
		if !held {
			_ = ss.pc.AddICECandidate(c)
		}
	default:
		ms.s.log.Info("localkvs: media server: unexpected message from the master; dropped", "channel", channel, "action", action)
	}
}

func (ss *storageSession) answer(sd webrtc.SessionDescription) {
	ss.mu.Lock()
	if ss.remote.open || ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	if err := ss.pc.SetRemoteDescription(sd); err != nil {
		ss.ms.s.log.Info("localkvs: media server: the master's answer was refused", "channel", ss.channel, "err", err)
		go ss.close("the answer was refused: " + err.Error())
		return
	}
	ss.rec.expect(sends(sd, "video"), sends(sd, "audio"))
	ss.mu.Lock()
	held := ss.remote.openLocked()
	ss.mu.Unlock()
	for _, c := range held {
		_ = ss.pc.AddICECandidate(c)
	}
}

// close ends the session: the peer connection is closed and the fragment
// being recorded is stored. Safe to call more than once.
func (ss *storageSession) close(reason string) {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.closed = true
	ss.closeReason = reason
	if ss.timer != nil {
		ss.timer.Stop()
	}
	viewers := ss.viewers
	ss.viewers = nil
	ss.mu.Unlock()
	for _, v := range viewers {
		v.close()
	}
	ms := ss.ms
	ms.mu.Lock()
	if ms.sessions[ss.channel] == ss {
		delete(ms.sessions, ss.channel)
	}
	registered := ss.id != 0 // a session that never started is not counted in ms.wg
	ms.mu.Unlock()
	if ss.pc != nil {
		_ = ss.pc.Close()
	}
	if ss.rec != nil {
		ss.rec.finish()
	}
	ms.s.log.Info("localkvs: storage session ended", "channel", ss.channel, "stream", ss.stream.Name, "reason", reason)
	if registered {
		ms.wg.Done()
	}
}

// stop ends the storage session of channel, if any.
func (ms *mediaServer) stop(channel, reason string) {
	if ss := ms.session(channel); ss != nil {
		ss.close(reason)
	}
}

// shutdown ends every session and the GetMedia streams, and waits for the
// recordings to be stored.
func (ms *mediaServer) shutdown() {
	ms.mu.Lock()
	if ms.closed {
		ms.mu.Unlock()
		return
	}
	ms.closed = true
	close(ms.done)
	list := make([]*storageSession, 0, len(ms.sessions))
	for _, ss := range ms.sessions {
		list = append(list, ss)
	}
	ms.mu.Unlock()
	for _, ss := range list {
		ss.close("the server is shutting down")
	}
	ms.wg.Wait()
}

// sends reports whether the master's answer sends media of kind (a
// section of that kind that is sendonly or sendrecv, on a port).
func sends(answer webrtc.SessionDescription, kind string) bool {
	parsed, err := answer.Unmarshal()
	if err != nil {
		return false
	}
	for _, md := range parsed.MediaDescriptions {
		if md.MediaName.Media != kind || md.MediaName.Port.Value == 0 {
			continue
		}
		for _, a := range md.Attributes {
			if a.Key == "sendonly" || a.Key == "sendrecv" {
				return true
			}
		}
	}
	return false
}

func drainReceiverRTCP(r *webrtc.RTPReceiver) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// StorageStats are the counters of a channel's storage session, for tests
// and benchmarks ([Server.StorageStats]).
type StorageStats struct {
	// Stream is the ARN of the stream recorded to.
	Stream string
	// Connected reports whether the peer connection with the master is up.
	Connected bool
	// JoinToFirstFragment is the time from JoinStorageSession to the first
	// fragment stored; zero before.
	JoinToFirstFragment time.Duration
	// FramesReceived and BytesReceived count the frames (access units,
	// Opus packets) the media server took from the RTP it received, and
	// their bytes as received (before any container); FramesStored and
	// FrameBytesStored what went into stored fragments.
	FramesReceived, BytesReceived, FramesStored, FrameBytesStored uint64
	// FramesDropped counts frames received before the first key frame, or
	// that could not be stored.
	FramesDropped uint64
	// Fragments and BytesWritten count the fragments stored and the bytes
	// written for them (MKV data).
	Fragments, BytesWritten uint64
	// KeyFramesAsked counts the key frames asked of the master (RTCP PLI):
	// while waiting for the first, and when a fragment has run 4 s.
	KeyFramesAsked uint64
}

// StorageStats returns the counters of the storage session of a channel
// (by ARN), or false when it has none.
func (s *Server) StorageStats(channelARN string) (StorageStats, bool) {
	ss := s.media.session(channelARN)
	if ss == nil {
		return StorageStats{}, false
	}
	st := ss.rec.stats()
	st.Stream = ss.stream.ARN
	st.Connected = ss.connected.Load()
	return st, true
}

// openMedia loads the streams, the media storage configurations and the
// fragment index from the store, and makes the media server.
func (s *Server) openMedia(dataDir string) error {
	if err := s.store.openStreams(); err != nil {
		return fmt.Errorf("localkvs: reading the streams: %w", err)
	}
	fs, err := openMediaStore(s.bolt, dataDir) // the local bbolt store, on a cluster too: storeiface.go
	if err != nil {
		return err
	}
	s.media = newMediaServer(s, fs)
	return nil
}
