package localkvs

import "golang.org/x/time/rate"

// newLimiter returns a token bucket of perSecond events per second holding
// one second's worth of burst (at least one event), full at the start; a
// negative perSecond means no limit. The service limits (connects and
// GetIceServerConfig calls per channel, SDP and ICE messages per
// connection) and the TURN relay bandwidth (in bytes) use it; a
// rate.Limiter is safe for concurrent use, so it needs no lock of its own.
func newLimiter(perSecond float64) *rate.Limiter {
	if perSecond < 0 {
		return rate.NewLimiter(rate.Inf, 0)
	}
	return rate.NewLimiter(rate.Limit(perSecond), max(1, int(perSecond)))
}
