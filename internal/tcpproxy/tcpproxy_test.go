package tcpproxy_test

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/tcpproxy"
)

// echo starts a line echo server and returns its address.
func echo(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					s, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(s))
				}
			}()
		}
	}()
	return l.Addr().String()
}

func roundTrip(c net.Conn) error {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

func TestForwardCutRefuse(t *testing.T) {
	p := tcpproxy.Start(t, echo(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := roundTrip(c); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.Cut()
	if err := roundTrip(c); err == nil {
		t.Fatal("a cut connection still carried data")
	}
	p.Refuse(true)
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		if roundTrip(c2) == nil {
			t.Fatal("a refusing proxy forwarded a new connection")
		}
		c2.Close()
	}
	p.Refuse(false)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if err := roundTrip(c3); err != nil {
		t.Fatalf("after Refuse(false): %v", err)
	}
}

// A test routes a client through the proxy, then cuts the network under it.
func Example() {
	_ = func(t *testing.T, serverAddr string) {
		p := tcpproxy.Start(t, serverAddr)
		c, err := net.Dial("tcp", p.Addr()) // the client under test dials p.Addr()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		p.Refuse(true) // the network goes down...
		p.Cut()
		p.Refuse(false) // ...and comes back
	}
}
