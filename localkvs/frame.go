package localkvs

import (
	"encoding/json"
	"slices"
	"unsafe"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// The relay's hot path decodes every client frame and encodes every frame it
// forwards. encoding/json costs a validation pass, reflection and a copy per
// field; the frames the SDKs send are almost always a flat object of plain
// ASCII strings, which decodeClientMessage and appendServiceMessage handle
// directly. Anything else (escapes, non-ASCII, null, numbers, nesting,
// unknown or repeated keys, bad syntax) goes to encoding/json, so that the
// result, and the error or its absence, is always what encoding/json gives
// (frame_test.go holds the fast paths to that, with a fuzz test).

// decodeClientMessage decodes a client frame into m exactly as
// json.Unmarshal(data, m) does into a zero m: same fields, and an error
// exactly when json.Unmarshal returns one. m's strings do not alias data,
// which the caller may reuse.
func decodeClientMessage(data []byte, m *wire.ClientMessage) error {
	v, ok := decodeFlat(data)
	if !ok {
		*m = wire.ClientMessage{}
		return json.Unmarshal(data, m)
	}
	m.Action = internAction(v[fieldAction])
	if m.Action == "" {
		m.Action = string(v[fieldAction])
	}
	m.MessagePayload = string(v[fieldPayload])
	m.RecipientClientID = string(v[fieldRecipient])
	m.CorrelationID = string(v[fieldCorrelation])
	return nil
}

// decodeRelay is decodeClientMessage for a frame to relay from sender ("" for
// the master). When the frame has the flat form, its action is one of the
// three relayed and its payload needs no escaping, it also builds the frame
// the service forwards, appendServiceMessage(m.Action, m.MessagePayload,
// sender), and puts m.MessagePayload in it instead of a copy of its own:
// one allocation per relayed message instead of two. m.MessagePayload then
// shares the frame's memory, which is never modified (frames are not, once
// built: they are queued and kept as they are). Otherwise frame is nil.
func decodeRelay(data []byte, m *wire.ClientMessage, sender string) (frame []byte, err error) {
	v, ok := decodeFlat(data)
	action := internAction(v[fieldAction])
	payload := v[fieldPayload]
	if !ok || action == "" || len(payload) == 0 || !jsonSafe(payload) || !jsonSafe(sender) {
		return nil, decodeClientMessage(data, m)
	}
	frame = make([]byte, 0, serviceMessageLen(action, len(payload), sender))
	frame = append(frame, `{"messageType":"`...)
	frame = append(frame, action...)
	frame = append(frame, `","messagePayload":"`...)
	frame = append(frame, payload...)
	m.MessagePayload = unsafe.String(&frame[len(frame)-len(payload)], len(payload))
	if sender != "" {
		frame = append(frame, `","senderClientId":"`...)
		frame = append(frame, sender...)
	}
	frame = append(frame, `"}`...)
	m.Action = action
	m.RecipientClientID = string(v[fieldRecipient])
	m.CorrelationID = string(v[fieldCorrelation])
	return frame, nil
}

// Indices of the fields of wire.ClientMessage, in decodeFlat.
const (
	fieldAction = iota
	fieldPayload
	fieldRecipient
	fieldCorrelation
	numFields
)

// decodeFlat decodes data when it is an object whose keys are unescaped
// printable ASCII naming distinct fields of wire.ClientMessage (matched
// case-insensitively, as encoding/json does for ASCII names) and whose
// values are strings of printable ASCII other than '\' — the one form for
// which the decoded value is the raw bytes. It returns the fields' values,
// indexed by field*, slices of data; ok is false for anything else.
func decodeFlat(data []byte) (vals [numFields][]byte, ok bool) {
	var seen [numFields]bool
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return vals, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			key, j, ok := plainString(data, i)
			if !ok {
				return vals, false
			}
			f := fieldOf(key)
			if f < 0 || seen[f] {
				return vals, false // unknown or repeated: encoding/json decides
			}
			seen[f] = true
			j = skipSpace(data, j)
			if j >= len(data) || data[j] != ':' {
				return vals, false
			}
			vals[f], j, ok = plainString(data, skipSpace(data, j+1))
			if !ok {
				return vals, false
			}
			j = skipSpace(data, j)
			if j >= len(data) {
				return vals, false
			}
			if data[j] == '}' {
				i = j + 1
				break
			}
			if data[j] != ',' {
				return vals, false
			}
			i = skipSpace(data, j+1)
		}
	}
	if skipSpace(data, i) != len(data) {
		return vals, false
	}
	return vals, true
}

// internAction returns the action constant spelled by v, or "".
func internAction(v []byte) string {
	for _, a := range [...]string{wire.ICECandidate, wire.SDPOffer, wire.SDPAnswer} {
		if string(v) == a {
			return a
		}
	}
	return ""
}

// fieldOf returns the field of wire.ClientMessage whose JSON name equals key
// ignoring ASCII case, or -1.
func fieldOf(key []byte) int {
	for f, name := range [numFields]string{"action", "messagePayload", "recipientClientId", "correlationId"} {
		if len(key) == len(name) && asciiEqualFold(key, name) {
			return f
		}
	}
	return -1
}

func asciiEqualFold(b []byte, s string) bool {
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plainString reads the JSON string at data[i] when its bytes are all
// printable ASCII (0x20-0x7e) and none is '\', returning its contents and
// the index after the closing quote.
func plainString(data []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// appendServiceMessage appends the JSON of wire.ServiceMessage{MessageType:
// typ, MessagePayload: payload, SenderClientID: sender}, byte for byte what
// json.Marshal writes.
func appendServiceMessage(dst []byte, typ, payload, sender string) []byte {
	if !jsonSafe(typ) || !jsonSafe(payload) || !jsonSafe(sender) {
		b, err := json.Marshal(wire.ServiceMessage{MessageType: typ, MessagePayload: payload, SenderClientID: sender})
		if err != nil {
			panic(err) // strings always marshal
		}
		return append(dst, b...)
	}
	dst = slices.Grow(dst, serviceMessageLen(typ, len(payload), sender))
	dst = append(dst, `{"messageType":"`...)
	dst = append(dst, typ...)
	if payload != "" {
		dst = append(dst, `","messagePayload":"`...)
		dst = append(dst, payload...)
	}
	if sender != "" {
		dst = append(dst, `","senderClientId":"`...)
		dst = append(dst, sender...)
	}
	return append(dst, `"}`...)
}

// serviceMessageLen is the length appendServiceMessage writes for a payload
// of payloadLen bytes when its strings are jsonSafe.
func serviceMessageLen(typ string, payloadLen int, sender string) int {
	n := len(`{"messageType":""}`) + len(typ)
	if payloadLen > 0 {
		n += len(`,"messagePayload":""`) + payloadLen
	}
	if sender != "" {
		n += len(`,"senderClientId":""`) + len(sender)
	}
	return n
}

// jsonSafe reports whether encoding/json writes s as is between quotes:
// printable ASCII other than '"', '\' and the HTML characters it escapes.
func jsonSafe[T string | []byte](s T) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
