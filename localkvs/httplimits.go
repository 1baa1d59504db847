package localkvs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kvswebrtc/kvswebrtc/sigv4"
)

// What an HTTP client may hold, authenticated or not (docs/security.md,
// "Connections"): the service reads a request's headers within
// httpTimeouts.header and its body within httpTimeouts.body, keeps an idle
// keep-alive connection for httpTimeouts.idle, closes the connection after
// refusing a request, buffers at most bodyBudget bytes of request bodies at
// once, checks the Authorization header (shape, key, date) before it reads
// a body, and accepts at most Limits.MaxConnections connections at once.
const (
	defaultHeaderTimeout = 10 * time.Second
	defaultBodyTimeout   = 10 * time.Second
	defaultIdleTimeout   = 30 * time.Second
	// maxHeaderBytes bounds a request's headers (presigned URLs included).
	maxHeaderBytes = 64 << 10
	// bodyBudget is how many bytes of request bodies are buffered at once,
	// all connections together: 32 bodies of the 1 MiB maximum.
	bodyBudget = 32 << 20
)

// httpTimeouts are the HTTP server's timeouts; tests shorten them.
type httpTimeouts struct {
	header, body, idle time.Duration
}

var defaultHTTPTimeouts = httpTimeouts{defaultHeaderTimeout, defaultBodyTimeout, defaultIdleTimeout}

// refuse writes a refusal and asks the client to close the connection, so
// that a client whose requests fail holds no idle keep-alive connection.
func refuse(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Connection", "close")
	writeError(w, e)
}

var errTooLarge = newAPIError(http.StatusRequestEntityTooLarge, codeInvalidArgument, ErrInvalidArgument, "request body is larger than 1 MiB")

// readBody reads the body of an API request once its headers could come
// from a signer: a Content-Length over the maximum is refused (413) before
// anything, then the Authorization header's shape, key and date are checked
// (sigv4.Verifier.PrecheckHeaders: 403 without reading the body), then the
// body is read within httpTimeouts.body and within the process's body
// budget. The caller verifies the signature over the body and must call
// release when done with it. On failure the response is written.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), ok bool) {
	if r.ContentLength > maxBody {
		refuse(w, errTooLarge)
		return nil, nil, false
	}
	if err := s.verifier.PrecheckHeaders(r); err != nil {
		s.logRefusal(r, "localkvs: request refused", "path", r.URL.Path, "err", err)
		refuse(w, accessDenied(err))
		return nil, nil, false
	}
	n := r.ContentLength
	if n < 0 {
		n = maxBody + 1 // chunked: up to the maximum, and one byte to tell
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(s.httpTimeouts.body)
	_ = rc.SetReadDeadline(deadline) // not every ResponseWriter (httptest) has one
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	err := s.bodies.acquire(ctx, n)
	cancel()
	if err != nil {
		s.logRefusal(r, "localkvs: request refused: too many request bodies in flight", "path", r.URL.Path)
		refuse(w, newAPIError(http.StatusServiceUnavailable, codeUnavailable, nil, "the service is reading too many request bodies; retry"))
		return nil, nil, false
	}
	release = func() { s.bodies.release(n) }
	buf := make([]byte, 0, min(n, maxBody+1))
	body, err = readAllInto(buf, io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		release()
		why := "reading the request body failed"
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			why = fmt.Sprintf("the request body did not arrive within %s", s.httpTimeouts.body)
		}
		s.logRefusal(r, "localkvs: request refused", "path", r.URL.Path, "err", why)
		refuse(w, newAPIError(http.StatusRequestTimeout, codeInvalidArgument, ErrInvalidArgument, "%s", why))
		return nil, nil, false
	}
	if len(body) > maxBody {
		release()
		refuse(w, errTooLarge)
		return nil, nil, false
	}
	_ = rc.SetReadDeadline(time.Time{})
	return body, release, true
}

// readAllInto reads r to its end, appending to buf.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// byteBudget is a weighted semaphore of bytes, first come first served.
type byteBudget struct {
	mu      sync.Mutex
	free    int64
	waiters []*budgetWaiter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

func newByteBudget(n int64) *byteBudget { return &byteBudget{free: n} }

// acquire takes n bytes, waiting until they are free or ctx is done.
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.free >= n {
		b.free -= n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			b.mu.Unlock()
			b.release(n)
			return ctx.Err()
		default:
		}
		for i, x := range b.waiters {
			if x == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
		b.grantLocked()
		b.mu.Unlock()
		return ctx.Err()
	}
}

// release gives n bytes back.
func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.grantLocked()
	b.mu.Unlock()
}

func (b *byteBudget) grantLocked() {
	for len(b.waiters) > 0 && b.free >= b.waiters[0].n {
		w := b.waiters[0]
		b.waiters = b.waiters[1:]
		b.free -= w.n
		close(w.ready)
	}
}

// connLimiter caps the connections a listener has open at once: Accept
// waits for a free place (the kernel's backlog holds new connections
// meanwhile), and closing a connection frees its place. Hijacked
// connections (WebSockets) keep their place until they close.
type connLimiter struct {
	net.Listener
	places chan struct{}
	open   sync.WaitGroup
}

func limitConns(l net.Listener, n int) *connLimiter {
	return &connLimiter{Listener: l, places: make(chan struct{}, n)}
}

// Accept waits for a place, then for a connection.
func (l *connLimiter) Accept() (net.Conn, error) {
	l.places <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.places
		return nil, err
	}
	return &limitedNetConn{Conn: c, l: l}, nil
}

// InUse reports how many places are taken.
func (l *connLimiter) InUse() int { return len(l.places) }

type limitedNetConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

func (c *limitedNetConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.l.places })
	return err
}

// defaultMaxConnections is Limits.MaxConnections' default: three quarters
// of the file descriptors the process may open, so that a flood of
// connections leaves descriptors for the store, TURN and the connections
// already in place, and at least 64.
func defaultMaxConnections() int {
	n := fdLimit()
	if n <= 0 {
		return 4096
	}
	return max(64, n*3/4)
}

// maxConnectionsString is for logs.
func maxConnectionsString(n int) string {
	if n < 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

var _ = sigv4.ErrMissingAuth
