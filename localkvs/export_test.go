package localkvs

import "time"

// SetAlexaTimeout shortens how long send-alexa-offer-to-master waits, for tests.
func SetAlexaTimeout(s *Server, d time.Duration) { s.alexaTimeout = d }

// SetInlineWriteTimeout sets how long a frame written from the sender's
// goroutine may block before its recipient is disconnected, for tests that
// need a write to stay stuck.
func SetInlineWriteTimeout(s *Server, d time.Duration) { s.inlineWriteTimeout = d }

// TURNCredentials returns TURN credentials for arn expiring at expires, as
// GetIceServerConfig would issue them, so tests can craft expired ones.
func TURNCredentials(s *Server, arn string, expires time.Time) (username, password string) {
	return s.turn.Load().credentials(arn, expires)
}
