package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profiler saves profiles of a profserve child (-profile DIR): the heap
// and goroutines with every connection held, the CPU and the allocations
// of the relay (warm-up and measured window together).
type profiler struct {
	base string // http://HOST:PORT/debug/pprof/
	dir  string
	log  io.Writer
	cpu  chan error
}

// save writes the profile at path (relative to base) to file in dir.
func (p *profiler) save(ctx context.Context, path, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// held saves the profiles of the idle connections.
func (p *profiler) held(ctx context.Context) {
	for _, q := range [][2]string{
		{"heap?gc=1", "heap-held.pprof"},
		{"goroutine", "goroutine-held.pprof"},
		{"heap?gc=1", "allocs-0.pprof"},
		{"heap?debug=1", "memstats-held.txt"}, // ends with runtime.MemStats: heap, stacks, GC
	} {
		if err := p.save(ctx, q[0], q[1]); err != nil {
			fmt.Fprintf(p.log, "profile %s: %v\n", q[1], err)
		}
	}
}

// startCPU starts a CPU profile of d in the background.
func (p *profiler) startCPU(ctx context.Context, d time.Duration) {
	p.cpu = make(chan error, 1)
	go func() {
		p.cpu <- p.save(ctx, fmt.Sprintf("profile?seconds=%d", int(d.Round(time.Second)/time.Second)), "cpu.pprof")
	}()
}

// relayed waits for the CPU profile and saves the allocations since held
// (compare with: go tool pprof -sample_index=alloc_space -diff_base
// allocs-0.pprof allocs-1.pprof). Both are heap profiles taken after a
// forced GC: the allocation counts of a profile are as of the last GC.
func (p *profiler) relayed(ctx context.Context) {
	if err := <-p.cpu; err != nil {
		fmt.Fprintf(p.log, "profile cpu.pprof: %v\n", err)
	}
	if err := p.save(ctx, "heap?gc=1", "allocs-1.pprof"); err != nil {
		fmt.Fprintf(p.log, "profile allocs-1.pprof: %v\n", err)
	}
	fmt.Fprintf(p.log, "profiles in %s\n", p.dir)
}
