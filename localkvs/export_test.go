package localkvs

import "time"

// SetAlexaTimeout shortens how long send-alexa-offer-to-master waits, for tests.
func SetAlexaTimeout(s *Server, d time.Duration) { s.alexaTimeout = d }
