package peer

import (
	"sync"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/webrtc/v4"
)

// The RTP counters of Stats come from pion's stats interceptor, but not
// through PeerConnection.GetStats. GetStats reads a field that
// PeerConnection.Close clears with no lock held, and pion closes a peer
// connection by itself when the remote's DTLS close_notify or SCTP ABORT
// arrives: a Stats call at that moment raced with pion's own Close (the
// race detector caught it in CI). So newAPI registers the interceptors
// webrtc.RegisterDefaultInterceptors would, with a stats interceptor of
// ours in place of pion's; its getters are kept here by peer connection
// id and forgotten when the peer connection's interceptors close, the last
// step of PeerConnection.Close.

// rtpStats maps PeerConnection.ID to the stats.Getter of its interceptor.
var rtpStats sync.Map

// registerInterceptors registers on reg what
// webrtc.RegisterDefaultInterceptors registers (NACK generator and
// responder, RTCP reports, the simulcast header extensions, RTP stats,
// TWCC), the stats interceptor being ours.
func registerInterceptors(m *webrtc.MediaEngine, reg *interceptor.Registry, nackOpts ...nack.ResponderOption) error {
	if err := webrtc.ConfigureNackWithOptions(m, reg, nil, nackOpts...); err != nil {
		return err
	}
	if err := webrtc.ConfigureRTCPReportsWithOptions(reg, nil); err != nil {
		return err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return err
	}
	f, err := stats.NewInterceptor()
	if err != nil {
		return err
	}
	f.OnNewPeerConnection(func(id string, g stats.Getter) { rtpStats.Store(id, g) })
	reg.Add(statsFactory{f})
	return webrtc.ConfigureTWCCSenderWithOptions(m, reg)
}

// statsFactory makes pion's stats interceptor, one per peer connection,
// wrapped so that its Close forgets the peer connection's getter.
type statsFactory struct{ *stats.InterceptorFactory }

// NewInterceptor implements interceptor.Factory.
func (f statsFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	i, err := f.InterceptorFactory.NewInterceptor(id)
	if err != nil {
		return nil, err
	}
	return forgetStats{i, id}, nil
}

type forgetStats struct {
	interceptor.Interceptor
	id string
}

func (i forgetStats) Close() error {
	rtpStats.Delete(i.id)
	return i.Interceptor.Close()
}

// inboundRTP returns the counters of each track pc receives, from the
// stats interceptor of registerInterceptors; ok is false for a peer
// connection of an API built elsewhere (Settings.API).
func inboundRTP(pc *webrtc.PeerConnection) (streams []RTPStreamStats, ok bool) {
	v, ok := rtpStats.Load(pc.ID())
	if !ok {
		return nil, false
	}
	g := v.(stats.Getter)
	for _, r := range pc.GetReceivers() {
		for _, t := range r.Tracks() {
			s := g.Get(uint32(t.SSRC()))
			if s == nil {
				continue
			}
			in := s.InboundRTPStreamStats
			streams = append(streams, RTPStreamStats{Kind: t.Kind().String(), Packets: in.PacketsReceived,
				Bytes: in.BytesReceived, Lost: in.PacketsLost, NACKs: in.NACKCount, PLIs: in.PLICount,
				JitterMS: in.Jitter * 1000})
		}
	}
	return streams, true
}
