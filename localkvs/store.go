package localkvs

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// channelRec is a signaling channel as stored.
type channelRec struct {
	Name    string            `json:"name"`
	ARN     string            `json:"arn"`
	Type    string            `json:"type"`
	Created int64             `json:"created"` // epoch ms
	TTL     int               `json:"ttl"`     // MessageTtlSeconds
	Version string            `json:"version"`
	Tags    map[string]string `json:"tags,omitempty"`
	Status  string            `json:"status"`
}

func (c *channelRec) clone() *channelRec {
	cp := *c
	cp.Tags = make(map[string]string, len(c.Tags))
	for k, v := range c.Tags {
		cp.Tags[k] = v
	}
	return &cp
}

var bucketChannels = []byte("channels")

// store holds the channels in memory and, with a DataDir, in bbolt. It is
// used by the control plane and at connect time, never per message.
type store struct {
	mu       sync.RWMutex
	channels channelIndex
	db       *bolt.DB
	path     string // the file, for messages ("" in memory)

	streams *streamState // streams and media storage: store_streams.go

	warnings []string // what openStore, openStreams and openMediaStore found wrong but could go on with; New logs them
}

func openStore(dataDir string) (*store, error) {
	st := &store{channels: newRecIndex[channelRec]()}
	if dataDir == "" {
		return st, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("localkvs: DataDir: %w", err)
	}
	path := filepath.Join(dataDir, storeFile)
	st.path = path
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		st.warnings = append(st.warnings, fmt.Sprintf("localkvs: the channel store %s is an empty file: "+
			"whatever it held is gone (a full disk, a failed copy?); starting with no channels", path))
	}
	db, err := openBolt(path) // a damaged file is an error, not a panic: store_repair.go
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketChannels)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			c, err := decodeChannel(v)
			if err != nil { // one bad record does not cost the others
				st.warnBadRecord("record", k, err)
				return nil
			}
			st.channels.put(c)
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("localkvs: reading %s: %w", path, err)
	}
	st.db = db
	return st, nil
}

// warnBadRecord notes, for New to log, a record of the store that could not
// be read and was skipped: what (a record, a stream, ...), its key and why.
func (st *store) warnBadRecord(what string, key []byte, err error) {
	st.warnings = append(st.warnings, fmt.Sprintf("localkvs: the channel store %s: %s %q is unreadable (%v) and was "+
		"skipped; `kvswebrtc serve --repair` (localkvs.RepairStore) removes it", st.path, what, key, err))
}

func (st *store) close() error {
	if st.db == nil {
		return nil
	}
	return st.db.Close()
}

const versionAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newVersion returns a fresh 20-character channel version.
func newVersion() string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = versionAlphabet[int(b[i])%len(versionAlphabet)]
	}
	return string(b[:])
}

func channelARN(region, name string, createdMS int64) string {
	return "arn:aws:kinesisvideo:" + region + ":" + AccountID + ":channel/" + name + "/" + strconv.FormatInt(createdMS, 10)
}

func (st *store) create(region string, c *channelRec, maxChannels int) (*channelRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return boltCreate(st, channelKind, &st.channels, region, c, maxChannels)
}

// get finds a channel by name or ARN and returns a copy.
func (st *store) get(name, arn string) (*channelRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return boltGet(&st.channels, name, arn)
}

// update applies fn to the stored channel with arn, under the lock, and
// persists it; fn returns an error to abort.
func (st *store) update(arn string, fn func(c *channelRec) error) (*channelRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return boltUpdate(st, channelKind, &st.channels, arn, fn)
}

func (st *store) delete(arn, version string) (*channelRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return boltDelete(st, channelKind, &st.channels, arn, version)
}

// list returns channels whose name begins with prefix and sorts after
// "after", in name order, at most max of them, and whether more remain.
func (st *store) list(prefix, after string, max int) ([]*channelRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.channels.list(prefix, after, max)
}

// The bbolt store's create, get, update and delete of a channel or a
// stream, called with st.mu held (get: at least read-held) and ix the
// index of k's records.

// boltCreate stores the new record r (it has its name and settings) and
// returns a copy with its ARN, version and status: a name taken or the
// account's max records reached fail.
func boltCreate[R any, P record[R]](st *store, k *recKind[R, P], ix *recIndex[R, P], region string, r P, max int) (P, error) {
	if _, ok := ix.byName[r.recName()]; ok {
		return nil, k.inUse(r.recName())
	}
	if ix.len() >= max {
		return nil, k.limit(ix.len(), region)
	}
	ms := time.Now().UnixMilli()
	arn := k.arnOf(region, r.recName(), ms)
	for ix.byARN[arn] != nil {
		ms++
		arn = k.arnOf(region, r.recName(), ms)
	}
	r.stamp(arn, ms)
	return boltPut(st, k, ix, r)
}

// boltPut persists r and indexes it, and returns a copy.
func boltPut[R any, P record[R]](st *store, k *recKind[R, P], ix *recIndex[R, P], r P) (P, error) {
	if err := st.putBolt(k.bucket, r.recName(), r); err != nil {
		return nil, fmt.Errorf("localkvs: storing %s: %w", k.what, err)
	}
	ix.put(r)
	return r.clone(), nil
}

// boltGet returns a copy of the record with arn (when set) or name.
func boltGet[R any, P record[R]](ix *recIndex[R, P], name, arn string) (P, bool) {
	r := ix.find(name, arn)
	if r == nil {
		return nil, false
	}
	return r.clone(), true
}

// boltUpdate applies fn to a copy of the record with arn and stores the
// result; fn returns an error to abort.
func boltUpdate[R any, P record[R]](st *store, k *recKind[R, P], ix *recIndex[R, P], arn string, fn func(r P) error) (P, error) {
	old := ix.byARN[arn]
	if old == nil {
		return nil, k.notFound(arn)
	}
	r := P(old.clone())
	if err := fn(r); err != nil {
		return nil, err
	}
	return boltPut(st, k, ix, r)
}

// boltDelete removes the record with arn, checking its version when
// version is not empty, and returns it.
func boltDelete[R any, P record[R]](st *store, k *recKind[R, P], ix *recIndex[R, P], arn, version string) (P, error) {
	r := ix.byARN[arn]
	if r == nil {
		return nil, k.notFound(arn)
	}
	if version != "" && version != r.recVersion() {
		return nil, k.mismatch(version)
	}
	if err := st.putBolt(k.bucket, r.recName(), nil); err != nil {
		return nil, fmt.Errorf("localkvs: deleting %s: %w", k.what, err)
	}
	ix.remove(r)
	return r, nil
}
