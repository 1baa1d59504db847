package localkvs

import "net/http"

// logRefusal logs a refused request at info level.
func (s *Server) logRefusal(r *http.Request, msg string, args ...any) {
	s.log.Info(msg, append(args, "remote", r.RemoteAddr)...)
}
