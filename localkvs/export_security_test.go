package localkvs

import "time"

// StartTuned is Start with tune applied to the server before it listens.
func StartTuned(cfg Config, addr string, tune func(*Server)) (*Server, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	tune(s)
	if err := s.start(addr); err != nil {
		return nil, err
	}
	return s, nil
}

// SetHTTPTimeouts sets the header, body and keep-alive idle timeouts (call
// it in StartTuned).
func SetHTTPTimeouts(s *Server, header, body, idle time.Duration) {
	s.httpTimeouts = httpTimeouts{header, body, idle}
}

// OpenConnections reports how many connections the HTTP port holds (with
// Limits.MaxConnections), or -1.
func OpenConnections(s *Server) int {
	if s.connLimit == nil {
		return -1
	}
	return s.connLimit.InUse()
}

// PendingBytes reports the bytes of undelivered messages the server keeps.
func PendingBytes(s *Server) int64 { return s.pendingBytes.Load() }
