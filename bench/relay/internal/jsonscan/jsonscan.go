// Package jsonscan finds string fields in a JSON frame by byte search, with
// no decoding: how the bare relay reads the frames it carries and how the
// load generator reads the frames it receives, both on their hot paths.
package jsonscan

import "bytes"

// Field returns the JSON string value that follows key in data, up to the
// next '"' (no unescaping), or nil when key is not there or the value has
// no end. The key includes the quotes and colon: `"action":"`.
func Field(data, key []byte) []byte {
	i := bytes.Index(data, key)
	if i < 0 {
		return nil
	}
	v := data[i+len(key):]
	j := bytes.IndexByte(v, '"')
	if j < 0 {
		return nil
	}
	return v[:j]
}
