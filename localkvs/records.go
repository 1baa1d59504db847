package localkvs

import (
	"sort"
	"strings"
)

// What the channel and stream stores have in common. Both stores (bbolt,
// store.go and store_streams.go; JetStream, natsstore.go and
// natsstore_streams.go) keep signaling channels and streams the same way:
// indexed by name and ARN, created with a fresh ARN and version, updated
// and deleted by ARN, listed by name. The code that does so is written once
// here and in the generic functions of store.go and natsstore.go, over the
// record type (channelRec, streamRec) and its recKind, which holds what
// differs: the key, the bucket and the error messages.

// record is the constraint of the generic store code: a pointer to a
// channelRec or a streamRec, with the accessors that code needs.
type record[R any] interface {
	*R
	clone() *R          // a copy the caller may change (its tags are its own)
	recName() string    // the name, the key of the record in both stores
	recARN() string     // the ARN
	recVersion() string // the version a delete with a CurrentVersion checks
	// stamp makes r a newly created record with arn, created at ms.
	stamp(arn string, ms int64)
}

func (c *channelRec) recName() string    { return c.Name }
func (c *channelRec) recARN() string     { return c.ARN }
func (c *channelRec) recVersion() string { return c.Version }

func (c *channelRec) stamp(arn string, ms int64) {
	c.ARN, c.Created, c.Version, c.Status = arn, ms, newVersion(), "ACTIVE"
}

func (r *streamRec) recName() string    { return r.Name }
func (r *streamRec) recARN() string     { return r.ARN }
func (r *streamRec) recVersion() string { return r.Version }

func (r *streamRec) stamp(arn string, ms int64) {
	r.ARN, r.Created, r.Version, r.Status = arn, ms, newVersion(), "ACTIVE"
}

// recKind is what the generic store code needs to know of one record type
// besides the record itself: where it is kept and the errors it answers
// with, so that each message stays the one the type always had.
type recKind[R any, P record[R]] struct {
	what   string                                            // "channel" or "stream": the type in its ARNs, and the word in logged and wrapped errors
	bucket []byte                                            // its bbolt bucket
	key    string                                            // the prefix of its keys in the cluster's bucket
	arnOf  func(region, name string, createdMS int64) string // the ARN of a new record

	inUse    func(name string) error                          // a create of a name that is taken
	limit    func(n int, region string) error                 // a create beyond the account's limit of n
	notFound func(arn string) error                           // no record with arn
	mismatch func(version string) error                       // a delete with a CurrentVersion not the record's
	badValue func(st *natsStore, arn string, err error) error // a cluster record read from the leader (natsRead) that does not decode
}

// channelKind is the recKind of signaling channels.
var channelKind = &recKind[channelRec, *channelRec]{
	what: "channel", bucket: bucketChannels, key: keyChannel, arnOf: channelARN,
	inUse: func(name string) error { return inUse("a signaling channel named %q already exists", name) },
	limit: func(n int, region string) error {
		return limitExceeded(codeAccountChannelLimit, "the account already has %d signaling channels in %s", n, region)
	},
	notFound: func(arn string) error { return noChannel(arn) },
	mismatch: func(version string) error { return versionMismatch(version) },
	// A channel record that does not decode makes the store unavailable...
	badValue: func(st *natsStore, _ string, err error) error { return st.unavailable("decode channel", err) },
}

// streamKind is the recKind of streams.
var streamKind = &recKind[streamRec, *streamRec]{
	what: "stream", bucket: bucketStreams, key: keyStream, arnOf: streamARN,
	inUse: func(name string) error { return inUse("a stream named %q already exists", name) },
	limit: func(n int, region string) error {
		return limitExceeded(codeAccountStreamLimit, "the account already has %d streams in %s", n, region)
	},
	notFound: func(arn string) error { return notFound("no stream with ARN %q", arn) },
	mismatch: func(version string) error {
		return newAPIError(400, codeVersionMismatch, ErrVersionMismatch, "CurrentVersion %q is not the stream's current version", version)
	},
	// ...while a stream record that does not decode is not there.
	badValue: func(_ *natsStore, arn string, _ error) error { return notFound("no stream with ARN %q", arn) },
}

// recIndex is the in-memory index of the records of one type, by name and
// by ARN; the store holding it guards it with its mutex. The records in it
// are never changed in place: a change puts a changed copy.
type recIndex[R any, P record[R]] struct {
	byName map[string]P
	byARN  map[string]P
}

// channelIndex and streamIndex are the two indexes the stores keep.
type (
	channelIndex = recIndex[channelRec, *channelRec]
	streamIndex  = recIndex[streamRec, *streamRec]
)

func newRecIndex[R any, P record[R]]() recIndex[R, P] {
	return recIndex[R, P]{byName: map[string]P{}, byARN: map[string]P{}}
}

func (ix *recIndex[R, P]) len() int { return len(ix.byName) }

// put indexes r, replacing what its name and ARN held.
func (ix *recIndex[R, P]) put(r P) {
	ix.byName[r.recName()] = r
	ix.byARN[r.recARN()] = r
}

// remove drops r from both maps.
func (ix *recIndex[R, P]) remove(r P) {
	delete(ix.byName, r.recName())
	delete(ix.byARN, r.recARN())
}

// removeName drops the record indexed under name, if any.
func (ix *recIndex[R, P]) removeName(name string) {
	if old := ix.byName[name]; old != nil {
		ix.remove(old)
	}
}

// removeIfCurrent drops r unless its name now holds another record (one
// with another ARN, created since).
func (ix *recIndex[R, P]) removeIfCurrent(r P) {
	if cur := ix.byName[r.recName()]; cur != nil && cur.recARN() == r.recARN() {
		ix.remove(r)
	}
}

// find returns the record with arn when arn is set, else the one named
// name; nil when there is none. It is the indexed record, not a copy.
func (ix *recIndex[R, P]) find(name, arn string) P {
	if arn != "" {
		return ix.byARN[arn]
	}
	return ix.byName[name]
}

// list returns copies of the records whose name begins with prefix and
// sorts after "after", in name order, at most max of them, and whether
// more remain.
func (ix *recIndex[R, P]) list(prefix, after string, max int) ([]P, bool) {
	names := make([]string, 0, len(ix.byName))
	for n := range ix.byName {
		if strings.HasPrefix(n, prefix) && n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	more := len(names) > max
	if more {
		names = names[:max]
	}
	out := make([]P, len(names))
	for i, n := range names {
		out[i] = ix.byName[n].clone()
	}
	return out, more
}
