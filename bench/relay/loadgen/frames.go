package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/kvswebrtc/kvswebrtc/bench/relay/internal/jsonscan"
)

// A message payload is base64 of JSON that starts with a 27-byte prefix
// holding the send time, `{"ts":"<16 hex digits>",  `, followed by the body
// of an RTCIceCandidateInit or RTCSessionDescription. 27 bytes are 36 base64
// characters with no padding, so the sender encodes only the prefix per
// message and appends the body's base64, computed once; the receiver decodes
// only the first 36 characters.
const (
	prefixLen    = 27
	prefixB64Len = 36
)

// epoch is the origin of the send times carried in payloads (monotonic).
var epoch = time.Now()

func appendPrefixB64(dst []byte, sent time.Duration) []byte {
	var raw [prefixLen]byte
	copy(raw[:], `{"ts":"`)
	var ts [8]byte
	v := uint64(sent)
	for i := 7; i >= 0; i-- {
		ts[i] = byte(v)
		v >>= 8
	}
	hex.Encode(raw[7:23], ts[:])
	copy(raw[23:], `",  `)
	return base64.StdEncoding.AppendEncode(dst, raw[:])
}

// bodyB64 returns the base64 of a payload body (the JSON after the prefix)
// sized so that the whole base64 payload is about size bytes.
func bodyB64(action string, size int) string {
	var head, tail string
	switch action {
	case actionOffer:
		head, tail = `"type":"offer","sdp":"v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=x-pad:`, `\r\n"}`
	case actionAnswer:
		head, tail = `"type":"answer","sdp":"v=0\r\no=- 7613551931030442881 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=x-pad:`, `\r\n"}`
	default:
		head, tail = `"candidate":"candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host generation 0 ufrag kvsb x-pad `, `","sdpMid":"0","sdpMLineIndex":0}`
	}
	raw := size*3/4 - prefixLen // bytes of JSON that make about size base64 bytes
	pad := raw - len(head) - len(tail)
	if pad < 0 {
		pad = 0
	}
	body := head + strings.Repeat("x", pad) + tail
	return base64.StdEncoding.EncodeToString([]byte(body))
}

const (
	actionOffer  = "SDP_OFFER"
	actionAnswer = "SDP_ANSWER"
	actionICE    = "ICE_CANDIDATE"
)

// appendClientFrame appends a client-to-service frame with a fresh send time.
func appendClientFrame(dst []byte, action, body, recipient string, sent time.Duration) []byte {
	dst = append(dst, `{"action":"`...)
	dst = append(dst, action...)
	dst = append(dst, `","messagePayload":"`...)
	dst = appendPrefixB64(dst, sent)
	dst = append(dst, body...)
	if recipient != "" {
		dst = append(dst, `","recipientClientId":"`...)
		dst = append(dst, recipient...)
	}
	return append(dst, `"}`...)
}

// serviceFrame is what a receiver needs from a service-to-client frame.
type serviceFrame struct {
	typ    []byte
	sender []byte
	sent   time.Duration // send time carried in the payload
}

var (
	keyType    = []byte(`"messageType":"`)
	keyPayload = []byte(`"messagePayload":"`)
	keySender  = []byte(`"senderClientId":"`)
)

// parseServiceFrame finds the fields by byte search (both the service and
// the bare relay write them as encoding/json does, unescaped).
func parseServiceFrame(data []byte) (serviceFrame, error) {
	var f serviceFrame
	f.typ = jsonscan.Field(data, keyType)
	if f.typ == nil {
		return f, fmt.Errorf("no messageType in %.80q", data)
	}
	f.sender = jsonscan.Field(data, keySender)
	p := jsonscan.Field(data, keyPayload)
	if p == nil {
		return f, nil // STATUS_RESPONSE, GO_AWAY, ...
	}
	if len(p) < prefixB64Len {
		return f, fmt.Errorf("payload of %d bytes is too short", len(p))
	}
	var raw [prefixLen]byte
	if _, err := base64.StdEncoding.Decode(raw[:], p[:prefixB64Len]); err != nil {
		return f, fmt.Errorf("payload: %w", err)
	}
	var ts [8]byte
	if _, err := hex.Decode(ts[:], raw[7:23]); err != nil || !bytes.HasPrefix(raw[:], []byte(`{"ts":"`)) {
		return f, fmt.Errorf("payload carries no send time")
	}
	var v uint64
	for _, b := range ts {
		v = v<<8 | uint64(b)
	}
	f.sent = time.Duration(v)
	return f, nil
}
