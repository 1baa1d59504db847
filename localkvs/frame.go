package localkvs

import (
	"encoding/json"

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
	if decodeFlat(data, m) {
		return nil
	}
	*m = wire.ClientMessage{}
	return json.Unmarshal(data, m)
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
// which the decoded value is the raw bytes. It reports false, leaving m in
// an unspecified state, for anything else.
func decodeFlat(data []byte, m *wire.ClientMessage) bool {
	var vals [numFields][]byte
	var seen [numFields]bool
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			key, j, ok := plainString(data, i)
			if !ok {
				return false
			}
			f := fieldOf(key)
			if f < 0 || seen[f] {
				return false // unknown or repeated: encoding/json decides
			}
			seen[f] = true
			j = skipSpace(data, j)
			if j >= len(data) || data[j] != ':' {
				return false
			}
			vals[f], j, ok = plainString(data, skipSpace(data, j+1))
			if !ok {
				return false
			}
			j = skipSpace(data, j)
			if j >= len(data) {
				return false
			}
			if data[j] == '}' {
				i = j + 1
				break
			}
			if data[j] != ',' {
				return false
			}
			i = skipSpace(data, j+1)
		}
	}
	if skipSpace(data, i) != len(data) {
		return false
	}
	if m.Action = internAction(vals[fieldAction]); m.Action == "" {
		m.Action = string(vals[fieldAction])
	}
	m.MessagePayload = string(vals[fieldPayload])
	m.RecipientClientID = string(vals[fieldRecipient])
	m.CorrelationID = string(vals[fieldCorrelation])
	return true
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

// serviceMessageLen is the length appendServiceMessage writes when its
// strings are jsonSafe.
func serviceMessageLen(typ, payload, sender string) int {
	n := len(`{"messageType":""}`) + len(typ)
	if payload != "" {
		n += len(`,"messagePayload":""`) + len(payload)
	}
	if sender != "" {
		n += len(`,"senderClientId":""`) + len(sender)
	}
	return n
}

// jsonSafe reports whether encoding/json writes s as is between quotes:
// printable ASCII other than '"', '\' and the HTML characters it escapes.
func jsonSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
