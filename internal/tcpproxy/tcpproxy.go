// Package tcpproxy is a fault injector for the project's tests and
// benchmarks: a TCP proxy on 127.0.0.1 that forwards to a target and can
// drop every connection it carries (a network cut) or refuse new ones (a
// network that stays down).
package tcpproxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP connections to its target.
type Proxy struct {
	l        net.Listener
	target   string
	refusing atomic.Bool
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// Start listens on 127.0.0.1 and forwards each connection to target until
// the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// New listens on 127.0.0.1 and forwards each connection to target until
// Close (for programs; tests use Start).
func New(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Close stops listening and drops every connection.
func (p *Proxy) Close() {
	p.l.Close()
	p.Cut()
}

func (p *Proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if p.refusing.Load() {
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		var done sync.WaitGroup
		done.Add(2)
		go func() { _, _ = io.Copy(u, c); u.Close(); done.Done() }()
		go func() { _, _ = io.Copy(c, u); c.Close(); done.Done() }()
		go func() { // forget the pair once both directions ended
			done.Wait()
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, u)
			p.mu.Unlock()
		}()
	}
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Cut drops every connection the proxy carries.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// Refuse makes the proxy close new connections at once (true) or forward
// them again (false).
func (p *Proxy) Refuse(on bool) { p.refusing.Store(on) }
