// Package tcpproxy is a fault injector for the project's tests: a TCP proxy
// on 127.0.0.1 that forwards to a target and can drop every connection it
// carries (a network cut) or refuse new ones (a network that stays down).
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
	conns    []net.Conn
}

// Start listens on 127.0.0.1 and forwards each connection to target until
// the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.Cut() })
	go p.serve()
	return p
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
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(u, c); u.Close() }()
		go func() { _, _ = io.Copy(c, u); c.Close() }()
	}
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Cut drops every connection the proxy carries.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Refuse makes the proxy close new connections at once (true) or forward
// them again (false).
func (p *Proxy) Refuse(on bool) { p.refusing.Store(on) }
