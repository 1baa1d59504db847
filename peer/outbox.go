package peer

import (
	"context"
	"log/slog"

	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/kvswebrtc/kvswebrtc/signaling"
)

// The service drops messages sent faster than 5 SDP offers/answers and 20
// ICE candidates a second per connection (docs/protocol.md, "Limits"). A master
// answering 10 viewers at once would pass both, so its messages are paced
// a little under those rates.
const (
	sdpRate   = 4
	sdpBurst  = 4
	iceRate   = 16
	iceBurst  = 16
	outboxLen = 1024
)

type outMsg struct {
	sdp       *webrtc.SessionDescription
	cand      webrtc.ICECandidateInit
	recipient string
}

// outbox sends a master's answers and candidates in order, paced under the
// service's rate limits, on one goroutine.
type outbox struct {
	sc       *signaling.Client
	log      *slog.Logger
	ch       chan outMsg
	sdp, ice *rate.Limiter
}

func newOutbox(sc *signaling.Client, log *slog.Logger) *outbox {
	return &outbox{sc: sc, log: log, ch: make(chan outMsg, outboxLen),
		sdp: rate.NewLimiter(sdpRate, sdpBurst), ice: rate.NewLimiter(iceRate, iceBurst)}
}

// put queues m; it drops m (and logs it) when the queue is full.
func (o *outbox) put(m outMsg) {
	select {
	case o.ch <- m:
	default:
		o.log.Warn("peer: signaling send queue full; message dropped", "recipient", m.recipient)
	}
}

// run sends queued messages until ctx is done.
func (o *outbox) run(ctx context.Context) {
	for {
		var m outMsg
		select {
		case <-ctx.Done():
			return
		case m = <-o.ch:
		}
		opt := signaling.WithRecipient(m.recipient)
		if m.sdp != nil {
			if o.sdp.Wait(ctx) != nil {
				return
			}
			var err error
			if m.sdp.Type == webrtc.SDPTypeAnswer {
				err = o.sc.SendSDPAnswer(*m.sdp, opt)
			} else {
				err = o.sc.SendSDPOffer(*m.sdp, opt)
			}
			if err != nil {
				o.log.Warn("peer: sending an SDP failed", "recipient", m.recipient, "err", err)
			}
			continue
		}
		if o.ice.Wait(ctx) != nil {
			return
		}
		if err := o.sc.SendICECandidate(m.cand, opt); err != nil {
			o.log.Debug("peer: sending a candidate failed", "recipient", m.recipient, "err", err)
		}
	}
}
