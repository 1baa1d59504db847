// Package backoff computes the reconnect and re-offer delays of the client
// packages: exponential backoff with full jitter, as the official SDKs use.
package backoff

import (
	"math/rand/v2"
	"time"
)

// FullJitter returns a delay drawn uniformly from [0, min(maxDelay,
// base*2^attempt)]. attempt counts from 0; a negative attempt counts as 0.
// A base or maxDelay that is not positive gives 0.
func FullJitter(base, maxDelay time.Duration, attempt int) time.Duration {
	c := Ceiling(base, maxDelay, attempt)
	if c <= 0 {
		return 0
	}
	return rand.N(c + 1)
}

// Ceiling returns min(maxDelay, base*2^attempt), without overflow.
func Ceiling(base, maxDelay time.Duration, attempt int) time.Duration {
	if base <= 0 || maxDelay <= 0 {
		return 0
	}
	if attempt < 0 {
		attempt = 0
	}
	c := base
	for i := 0; i < attempt && c < maxDelay; i++ {
		c *= 2
	}
	return min(c, maxDelay)
}
