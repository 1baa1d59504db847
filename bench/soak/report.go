package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/kvswebrtc/kvswebrtc/bench/internal/procfs"
)

// sample is the memory and descriptors of one process.
type sample struct {
	RSSKiB     int64 `json:"rss_kib"`
	FDs        int   `json:"fds"`
	HeapKiB    int64 `json:"heap_kib,omitempty"`
	Goroutines int   `json:"goroutines,omitempty"`
}

func (s sample) String() string {
	out := fmt.Sprintf("RSS %.1f MB, %d fds", float64(s.RSSKiB)/1024, s.FDs)
	if s.HeapKiB > 0 {
		out += fmt.Sprintf(", heap %.1f MB, %d goroutines", float64(s.HeapKiB)/1024, s.Goroutines)
	}
	return out
}

func procSample(pid int) sample {
	if pid == 0 {
		return sample{}
	}
	var s sample
	s.RSSKiB, _, _ = procfs.MemKiB(pid)
	if fds, err := procfs.FDs(pid); err == nil {
		s.FDs = fds
	}
	return s
}

func selfSample() sample {
	s := procSample(os.Getpid())
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	s.HeapKiB, s.Goroutines = int64(m.HeapAlloc/1024), runtime.NumGoroutine() // live heap: sampled after a GC
	return s
}

type sideSample struct {
	Label   string `json:"label"`
	At      string `json:"at"`
	Service sample `json:"service"`
	Clients sample `json:"clients"`
}

type latency struct {
	Count int    `json:"count"`
	P50   string `json:"p50"`
	P99   string `json:"p99"`
	Max   string `json:"max"`
	p99   time.Duration
}

type report struct {
	Options           map[string]string  `json:"options"`
	Restarts          int                `json:"restarts"`
	Clients           int                `json:"clients"`
	NotOpenAtEnd      int                `json:"not_open_at_end"`
	Periods           []*periodStats     `json:"periods"`
	Sent, Received    int                `json:"-"`
	Eligible          int                `json:"eligible"`
	EligibleLost      int                `json:"eligible_lost"`
	OtherLost         int                `json:"other_lost"`
	Late              int                `json:"late_or_unknown"`
	Duplicates        int                `json:"duplicates"`
	MessageLatency    latency            `json:"message_latency"`
	Reconnects        map[string]latency `json:"reconnects"`
	FailedDials       int64              `json:"failed_reconnect_dials"`
	Memory            []sideSample       `json:"memory"`
	ServiceBeforeKill []sample           `json:"service_before_each_kill"`
}

func (o options) summary() map[string]string {
	return map[string]string{
		"channels": strconv.Itoa(o.channels), "viewers": strconv.Itoa(o.viewers), "duration": o.duration.String(),
		"restart_every": o.period.String(), "drop_at": o.dropAt.String(), "go_away_after": o.goAwayAt.String(),
		"interval": o.rate.String(),
	}
}

func (r *report) fill(h *harness, restarts int) {
	r.Restarts, r.Clients = restarts, len(h.clients)
	for _, p := range h.periods {
		r.Periods = append(r.Periods, p)
		r.Sent += p.Sent
		r.Received += p.Received
		r.Eligible += p.Eligible
		r.EligibleLost += p.EligibleLost
		r.OtherLost += p.OtherLost
	}
	sort.Slice(r.Periods, func(i, j int) bool { return r.Periods[i].Period < r.Periods[j].Period })
	r.Late, r.Duplicates = h.late, h.dups
	r.MessageLatency = h.latency.latency()
	r.Reconnects = map[string]latency{}
	for cause, hg := range h.reconnects {
		r.Reconnects[cause] = hg.latency()
	}
	r.FailedDials = h.refusals.Load()
}

func growth(a, b int64) float64 {
	if a == 0 {
		return 0
	}
	return 100 * float64(b-a) / float64(a)
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\nsoak: %s channels x (1 master + %s viewers) = %d clients, %s, kill -9 + restart every %s (%d restarts), TCP drop at %s into each period, GO_AWAY %s after each connect, a message to each peer every %s\n",
		r.Options["channels"], r.Options["viewers"], r.Clients, r.Options["duration"], r.Options["restart_every"], r.Restarts, r.Options["drop_at"], r.Options["go_away_after"], r.Options["interval"])
	fmt.Fprintf(w, "\nmessages by period (a period starts with a restart):\n  %-6s %9s %9s %9s %13s %11s\n", "period", "sent", "received", "eligible", "eligible lost", "other lost")
	for _, p := range r.Periods {
		fmt.Fprintf(w, "  %-6d %9d %9d %9d %13d %11d\n", p.Period, p.Sent, p.Received, p.Eligible, p.EligibleLost, p.OtherLost)
	}
	fmt.Fprintf(w, "  %-6s %9d %9d %9d %13d %11d\n", "all", r.Sent, r.Received, r.Eligible, r.EligibleLost, r.OtherLost)
	fmt.Fprintf(w, "  (eligible: sent to a connected recipient, and neither side nor the service reconnected within 3 s; other lost: in flight across a fault)\n")
	fmt.Fprintf(w, "  delivered late or unknown %d, duplicates %d; message latency p50 %s p99 %s\n", r.Late, r.Duplicates, r.MessageLatency.P50, r.MessageLatency.P99)
	fmt.Fprintf(w, "\nreconnect time (outage to open again):\n  %-8s %7s %8s %8s %8s\n", "cause", "count", "p50", "p99", "max")
	causes := make([]string, 0, len(r.Reconnects))
	for c := range r.Reconnects {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	for _, c := range causes {
		l := r.Reconnects[c]
		fmt.Fprintf(w, "  %-8s %7d %8s %8s %8s\n", c, l.Count, l.P50, l.P99, l.Max)
	}
	fmt.Fprintf(w, "  failed reconnect dials (refused while serve restarts, connect rate): %d; clients not open at the end: %d\n", r.FailedDials, r.NotOpenAtEnd)
	if len(r.Memory) == 2 {
		a, b := r.Memory[0], r.Memory[1]
		fmt.Fprintf(w, "\nmemory:\n  service: start (%s) %s; end (%s) %s\n", a.At, a.Service, b.At, b.Service)
		fmt.Fprintf(w, "  clients: start (%s) %s; end (%s) %s (RSS %+.1f%%, heap %+.1f%%)\n", a.At, a.Clients, b.At, b.Clients,
			growth(a.Clients.RSSKiB, b.Clients.RSSKiB), growth(a.Clients.HeapKiB, b.Clients.HeapKiB))
	}
	if len(r.ServiceBeforeKill) > 0 {
		fmt.Fprintf(w, "  service before each kill -9:")
		for _, s := range r.ServiceBeforeKill {
			fmt.Fprintf(w, " %.1f MB/%d fds", float64(s.RSSKiB)/1024, s.FDs)
		}
		fmt.Fprintln(w)
	}
}

// failures lists what failed: always a lost eligible message and a client
// not reconnected; with goals, the p99 after a restart and memory growth.
func (r *report) failures(goals bool) []string {
	var out []string
	if r.EligibleLost > 0 {
		out = append(out, fmt.Sprintf("%d messages sent to a connected recipient were lost", r.EligibleLost))
	}
	if r.NotOpenAtEnd > 0 {
		out = append(out, fmt.Sprintf("%d clients did not reconnect", r.NotOpenAtEnd))
	}
	if r.Eligible == 0 {
		out = append(out, "no message was eligible: the run measured nothing")
	}
	if !goals {
		return out
	}
	if l := r.Reconnects["restart"]; l.p99 > 2*time.Second {
		out = append(out, fmt.Sprintf("p99 reconnect after a restart %s, over 2 s", l.P99))
	}
	if len(r.Memory) == 2 {
		a, b := r.Memory[0], r.Memory[1]
		if g := growth(a.Clients.HeapKiB, b.Clients.HeapKiB); g > 10 {
			out = append(out, fmt.Sprintf("client heap grew %.1f%%", g))
		}
		if g := growth(int64(a.Clients.FDs), int64(b.Clients.FDs)); g > 10 {
			out = append(out, fmt.Sprintf("client fds grew %.1f%%", g))
		}
		if n := len(r.ServiceBeforeKill); n > 1 {
			if g := growth(r.ServiceBeforeKill[0].RSSKiB, r.ServiceBeforeKill[n-1].RSSKiB); g > 10 {
				out = append(out, fmt.Sprintf("service RSS before a kill grew %.1f%% from the first period to the last", g))
			}
		}
	}
	return out
}

// histogram counts durations in 1 ms steps up to 10 s (and one bucket past).
type histogram struct {
	n       [10001]int32
	total   int
	maximum time.Duration
}

func (h *histogram) add(d time.Duration) {
	h.n[min(int(d/time.Millisecond), len(h.n)-1)]++
	h.total++
	h.maximum = max(h.maximum, d)
}

func (h *histogram) quantile(f float64) time.Duration {
	want, seen := int(f*float64(h.total)), 0
	for i, c := range h.n {
		if seen += int(c); seen > want {
			return time.Duration(i) * time.Millisecond
		}
	}
	return h.maximum
}

func (h *histogram) latency() latency {
	if h.total == 0 {
		return latency{}
	}
	return latency{Count: h.total, P50: h.quantile(0.5).String(), P99: h.quantile(0.99).String(),
		Max: h.maximum.Round(time.Millisecond).String(), p99: h.quantile(0.99)}
}
