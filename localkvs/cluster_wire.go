package localkvs

import (
	"encoding/binary"
	"errors"
	"strings"
)

// What the nodes of a cluster say to each other on NATS (cluster.go): the
// subjects, the key names in the JetStream buckets, and the one binary
// message format of node-to-node traffic.

// token encodes s as one NATS subject token and one JetStream key token:
// every byte outside [A-Za-z0-9-] becomes "_" and two upper-case hex digits,
// so that the dots that channel names and client ids may hold (and the
// colons and slashes of ARNs) cannot split or wildcard a subject, and a key
// keeps to the bucket's alphabet. The encoding is one to one; "" becomes
// "_" (no byte encodes to that alone).
func token(s string) string {
	if s == "" {
		return "_"
	}
	plain := true
	for i := 0; i < len(s); i++ {
		if !tokenByte(s[i]) {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func tokenByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
}

// untoken is the inverse of token.
func untoken(t string) (string, error) {
	if t == "_" {
		return "", nil
	}
	if !strings.Contains(t, "_") {
		return t, nil
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c != '_' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(t) {
			return "", errors.New("truncated escape")
		}
		hi, ok1 := unhex(t[i+1])
		lo, ok2 := unhex(t[i+2])
		if !ok1 || !ok2 {
			return "", errors.New("bad escape")
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// masterToken stands for the master where a subject names a recipient or a
// sender: token never yields it (it is "_" and a letter that is no hex digit).
const masterToken = "_M"

// peerToken is the subject token of a client: masterToken for the master,
// token(id) for a viewer.
func peerToken(master bool, id string) string {
	if master {
		return masterToken
	}
	return token(id)
}

// The kinds of node-to-node messages.
const (
	msgDeliver   byte = iota + 1 // a frame for a client of the receiving node
	msgChanged                   // a channel was updated or deleted: re-read it
	msgReconnect                 // send RECONNECT_ICE_SERVER to the channel's clients
	msgPoke                      // a message was kept for a recipient: deliver it if the recipient is here
	msgAlexa                     // send-alexa-offer-to-master for the master here; the answer is the reply
	msgLeave                     // the sending node stops: count it gone at once; the answer (the node's id) is the reply
)

// nodeMsg is one node-to-node message. Which fields matter depends on kind.
type nodeMsg struct {
	kind     byte
	toMaster bool   // the recipient is the master (msgDeliver, msgPoke)
	hops     byte   // times a msgDeliver was forwarded (at most once)
	arn      string // the channel
	from     string // the sending node's id
	peer     string // the recipient's ClientId (a viewer)
	sender   string // the sender's ClientId ("" for the master)
	action   string // SDP_OFFER, SDP_ANSWER or ICE_CANDIDATE (msgDeliver)
	seq      uint64 // msgDeliver: the admission (roster revision) of the sending client's connection
	data     []byte // msgDeliver: the frame as the recipient gets it; msgAlexa: the payload
}

// encode appends m to dst: kind, flags, hops, the strings with a uvarint
// length each, seq as a uvarint, then data to the end.
func (m *nodeMsg) encode(dst []byte) []byte {
	var flags byte
	if m.toMaster {
		flags |= 1
	}
	dst = append(dst, m.kind, flags, m.hops)
	for _, s := range [...]string{m.arn, m.from, m.peer, m.sender, m.action} {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = binary.AppendUvarint(dst, m.seq)
	return append(dst, m.data...)
}

var errBadNodeMsg = errors.New("localkvs: malformed node message")

// decodeNodeMsg decodes what encode wrote. m.data aliases b.
func decodeNodeMsg(b []byte, m *nodeMsg) error {
	if len(b) < 3 {
		return errBadNodeMsg
	}
	m.kind, m.toMaster, m.hops = b[0], b[1]&1 != 0, b[2]
	b = b[3:]
	for _, p := range [...]*string{&m.arn, &m.from, &m.peer, &m.sender, &m.action} {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return errBadNodeMsg
		}
		*p = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	seq, k := binary.Uvarint(b)
	if k <= 0 {
		return errBadNodeMsg
	}
	m.seq = seq
	m.data = b[k:]
	return nil
}
