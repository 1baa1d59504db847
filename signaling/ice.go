package signaling

import (
	"slices"
	"sync"

	"github.com/pion/webrtc/v4"
)

// iceBuffer holds ICE candidates that arrived before their sender's SDP,
// per sender (the JS SDK's pendingIceCandidatesByClientId and
// hasReceivedRemoteSDPByClientId). The key is the sender's client id, ""
// for the master (the JS SDK uses the key "MASTER" for the same thing).
//
// It is only mutated from the dispatcher goroutine, except by
// ResetICECandidateState; the mutex makes the inspection methods safe from
// any goroutine.
type iceBuffer struct {
	mu      sync.Mutex
	early   bool // Config.EarlyICECandidateBuffering
	senders map[string]*senderICE
}

type senderICE struct {
	sdpReceived bool // an offer/answer from this sender was delivered
	released    bool // early mode: drained after the SDP; deliver directly
	pending     []webrtc.ICECandidateInit
}

func (b *iceBuffer) sender(id string) *senderICE {
	if b.senders == nil {
		b.senders = make(map[string]*senderICE)
	}
	s := b.senders[id]
	if s == nil {
		s = &senderICE{}
		b.senders[id] = s
	}
	return s
}

// candidateArrived runs on the dispatcher: deliver the candidate or buffer it.
func (b *iceBuffer) candidateArrived(c *Client, cand webrtc.ICECandidateInit, sender string) {
	b.mu.Lock()
	s := b.sender(sender)
	deliver := s.sdpReceived && (!b.early || s.released)
	if !deliver {
		s.pending = append(s.pending, cand)
	}
	b.mu.Unlock()
	if deliver {
		deliverICE(c, cand, sender)
	} else {
		c.log.Debug("signaling: buffering ICE candidate until the sender's SDP", "sender", sender)
	}
}

// sdpDelivered runs on the dispatcher right after the SDP handler returned.
func (b *iceBuffer) sdpDelivered(c *Client, sender string) {
	b.mu.Lock()
	s := b.sender(sender)
	s.sdpReceived = true
	var release []webrtc.ICECandidateInit
	if !b.early {
		release, s.pending = s.pending, nil
	}
	b.mu.Unlock()
	for _, cand := range release {
		deliverICE(c, cand, sender)
	}
}

// drain runs on the dispatcher: deliver what is buffered and, when the SDP
// was already delivered, deliver later candidates directly.
func (b *iceBuffer) drain(c *Client, sender string) {
	b.mu.Lock()
	s := b.sender(sender)
	release := s.pending
	s.pending = nil
	if s.sdpReceived {
		s.released = true
	}
	b.mu.Unlock()
	for _, cand := range release {
		deliverICE(c, cand, sender)
	}
}

func (b *iceBuffer) pendingOf(sender string) []webrtc.ICECandidateInit {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.senders[sender]; s != nil {
		return slices.Clone(s.pending)
	}
	return nil
}

func (b *iceBuffer) reset(sender string) {
	b.mu.Lock()
	delete(b.senders, sender)
	b.mu.Unlock()
}

func deliverICE(c *Client, cand webrtc.ICECandidateInit, sender string) {
	if f := c.h.iceHandler(); f != nil {
		f(cand, sender)
	}
}

// PendingICECandidates returns a copy of the ICE candidates from
// senderClientID that are buffered, waiting for that sender's SDP (or, with
// Config.EarlyICECandidateBuffering, for DrainPendingICECandidates). Use ""
// for the master. Candidates still in the event queue are not counted.
func (c *Client) PendingICECandidates(senderClientID string) []webrtc.ICECandidateInit {
	return c.ice.pendingOf(senderClientID)
}

// DrainPendingICECandidates releases the ICE candidates buffered for
// senderClientID ("" for the master) through OnICECandidate, in arrival
// order. It is meant for Config.EarlyICECandidateBuffering: call it once the
// remote description from that sender is set and the candidate handler is
// ready. If the sender's SDP was already delivered, later candidates from it
// are then delivered directly; otherwise they keep being buffered until its
// SDP arrives (and, in early mode, until the next drain).
//
// The release is queued on the event goroutine, behind the events already
// queued: it happens after DrainPendingICECandidates returns (right after the
// current handler when called from one), never concurrently with another
// event. Candidates from that sender already queued are buffered first, so
// the order is kept.
func (c *Client) DrainPendingICECandidates(senderClientID string) {
	c.disp.push(func() { c.ice.drain(c, senderClientID) })
}

// ResetICECandidateState forgets everything about senderClientID ("" for
// the master): its buffered candidates are dropped and its SDP is considered
// not received, so its next candidates are buffered until its next SDP. Call
// it before renegotiating with a peer from scratch (a new peer connection
// for the same client id), as the JS SDK's resetIceCandidateState. It takes
// effect immediately.
//
// A second SDP from the same sender without a reset does not buffer again:
// the sender's candidates keep being delivered directly, as in the JS SDK.
func (c *Client) ResetICECandidateState(senderClientID string) {
	c.ice.reset(senderClientID)
}
