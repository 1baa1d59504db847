package peer

import "testing"

func TestCandidateStringBracketsIPv6(t *testing.T) {
	for _, tc := range []struct {
		c    Candidate
		want string
	}{
		{Candidate{Type: "host", Protocol: "udp", Address: "127.0.0.1", Port: 5000}, "host udp 127.0.0.1:5000"},
		{Candidate{Type: "srflx", Protocol: "udp", Address: "fd00::2", Port: 52216}, "srflx udp [fd00::2]:52216"},
		{Candidate{}, "-"},
	} {
		if got := tc.c.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.c, got, tc.want)
		}
	}
}
