package backoff

import (
	"fmt"
	"testing"
	"time"
)

// TestFullJitter: the delay of attempt n is uniform in
// [0, min(max, base*2^n)]: never above the ceiling, spread over it.
func TestFullJitter(t *testing.T) {
	base, maxDelay := 100*time.Millisecond, 10*time.Second
	for attempt, ceiling := range []time.Duration{
		100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 10 * time.Second, 10 * time.Second,
	} {
		var lo, hi time.Duration = ceiling, 0
		for range 2000 {
			d := FullJitter(base, maxDelay, attempt)
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", attempt, d, ceiling)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		// 2000 uniform draws: the extremes are within 1% of the ends with
		// probability 1 - 2*0.99^2000 (about 1 - 4e-9).
		if lo > ceiling/100 || hi < ceiling-ceiling/100 {
			t.Fatalf("attempt %d: delays span [%v, %v], not the full [0, %v]", attempt, lo, hi, ceiling)
		}
	}
	// Huge attempt numbers do not overflow.
	for _, attempt := range []int{62, 63, 64, 1000} {
		if d := FullJitter(base, maxDelay, attempt); d < 0 || d > maxDelay {
			t.Fatalf("attempt %d: delay %v", attempt, d)
		}
	}
	if d := FullJitter(0, 0, 3); d != 0 {
		t.Fatalf("zero delays: %v", d)
	}
}

func ExampleCeiling() {
	for attempt := range 5 {
		fmt.Println(Ceiling(100*time.Millisecond, time.Second, attempt))
	}
	// Output:
	// 100ms
	// 200ms
	// 400ms
	// 800ms
	// 1s
}
