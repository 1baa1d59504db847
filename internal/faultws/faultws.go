// Package faultws is a broken signaling service for the project's tests: a
// WebSocket server on 127.0.0.1 that accepts every upgrade (no signature
// check) and then misbehaves as a Mode says, so that the clients' handling
// of a service that keeps failing them can be tested (issue 13, defect 5).
package faultws

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Mode is how the server treats each connection once it is open.
type Mode struct {
	// CloseAfter closes each connection this long after it opened (0: at
	// once), with 1000, unless GoAwayEvery or HugeFrame is set.
	CloseAfter time.Duration
	// GoAwayEvery sends GO_AWAY this often and keeps the connection.
	GoAwayEvery time.Duration
	// HugeFrame sends one text frame of this many bytes after opening.
	HugeFrame int
	// Message, when set, is sent as a text frame right after opening
	// (before CloseAfter runs out).
	Message string
}

// Server is the broken service.
type Server struct {
	hs    *httptest.Server
	mode  Mode
	opens atomic.Int64
}

// Start starts a server in mode until the test ends.
func Start(t testing.TB, mode Mode) *Server {
	t.Helper()
	s := New(mode)
	t.Cleanup(s.Close)
	return s
}

// New starts a server in mode; Close stops it.
func New(mode Mode) *Server {
	s := &Server{mode: mode}
	s.hs = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Close stops the server and closes its connections.
func (s *Server) Close() { s.hs.Close() }

// Endpoint is the ws:// endpoint of the server.
func (s *Server) Endpoint() string { return "ws://" + strings.TrimPrefix(s.hs.URL, "http://") }

// Opens is how many WebSocket connections the server accepted.
func (s *Server) Opens() int64 { return s.opens.Load() }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	s.opens.Add(1)
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	go func() { // read (and so answer pings and closes) until the end
		for {
			if _, _, err := c.Read(ctx); err != nil {
				cancel()
				return
			}
		}
	}()
	m := s.mode
	if m.Message != "" {
		c.Write(ctx, websocket.MessageText, []byte(m.Message))
	}
	switch {
	case m.HugeFrame > 0:
		c.Write(ctx, websocket.MessageText, []byte(`{"messageType":"ICE_CANDIDATE","messagePayload":"`+strings.Repeat("A", m.HugeFrame)+`"}`))
		<-ctx.Done()
	case m.GoAwayEvery > 0:
		t := time.NewTicker(m.GoAwayEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if c.Write(ctx, websocket.MessageText, []byte(`{"messageType":"GO_AWAY"}`)) != nil {
					return
				}
			}
		}
	default:
		select {
		case <-ctx.Done():
			return
		case <-time.After(m.CloseAfter):
		}
		c.Close(websocket.StatusNormalClosure, "broken on purpose")
	}
}
