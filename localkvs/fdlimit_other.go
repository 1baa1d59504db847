//go:build !unix

package localkvs

// fdLimit is 0: unknown on this platform.
func fdLimit() int { return 0 }
