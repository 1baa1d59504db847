package localkvs

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
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
	mu     sync.RWMutex
	byName map[string]*channelRec
	byARN  map[string]*channelRec
	db     *bolt.DB

	streams *streamState // streams and media storage: store_streams.go

	warnings []string // what openStore found wrong but could go on with; New logs them
}

func openStore(dataDir string) (*store, error) {
	st := &store{byName: map[string]*channelRec{}, byARN: map[string]*channelRec{}}
	if dataDir == "" {
		return st, nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("localkvs: DataDir: %w", err)
	}
	path := filepath.Join(dataDir, storeFile)
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
				st.warnings = append(st.warnings, fmt.Sprintf("localkvs: the channel store %s: record %q is unreadable (%v) and was "+
					"skipped; `kvswebrtc serve --repair` (localkvs.RepairStore) removes it", path, k, err))
				return nil
			}
			st.byName[c.Name] = c
			st.byARN[c.ARN] = c
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

func (st *store) close() error {
	if st.db == nil {
		return nil
	}
	return st.db.Close()
}

// persist writes c (or deletes name when c is nil). Called with st.mu held.
func (st *store) persist(name string, c *channelRec) error {
	if st.db == nil {
		return nil
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChannels)
		if c == nil {
			return b.Delete([]byte(name))
		}
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return b.Put([]byte(name), v)
	})
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
	if _, ok := st.byName[c.Name]; ok {
		return nil, inUse("a signaling channel named %q already exists", c.Name)
	}
	if len(st.byName) >= maxChannels {
		return nil, limitExceeded(codeAccountChannelLimit, "the account already has %d signaling channels in %s", len(st.byName), region)
	}
	ms := time.Now().UnixMilli()
	for {
		c.ARN = channelARN(region, c.Name, ms)
		if _, dup := st.byARN[c.ARN]; !dup {
			break
		}
		ms++
	}
	c.Created = ms
	c.Version = newVersion()
	c.Status = "ACTIVE"
	return st.putLocked(c)
}

// putLocked persists c and indexes it, and returns a copy. Called with
// st.mu held.
func (st *store) putLocked(c *channelRec) (*channelRec, error) {
	if err := st.persist(c.Name, c); err != nil {
		return nil, fmt.Errorf("localkvs: storing channel: %w", err)
	}
	st.byName[c.Name] = c
	st.byARN[c.ARN] = c
	return c.clone(), nil
}

// get finds a channel by name or ARN and returns a copy.
func (st *store) get(name, arn string) (*channelRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	var c *channelRec
	if arn != "" {
		c = st.byARN[arn]
	} else {
		c = st.byName[name]
	}
	if c == nil {
		return nil, false
	}
	return c.clone(), true
}

// update applies fn to the stored channel with arn, under the lock, and
// persists it; fn returns an error to abort.
func (st *store) update(arn string, fn func(c *channelRec) error) (*channelRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	old := st.byARN[arn]
	if old == nil {
		return nil, noChannel(arn)
	}
	c := old.clone()
	if err := fn(c); err != nil {
		return nil, err
	}
	return st.putLocked(c)
}

func (st *store) delete(arn, version string) (*channelRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.byARN[arn]
	if c == nil {
		return nil, noChannel(arn)
	}
	if version != "" && version != c.Version {
		return nil, versionMismatch(version)
	}
	if err := st.persist(c.Name, nil); err != nil {
		return nil, fmt.Errorf("localkvs: deleting channel: %w", err)
	}
	delete(st.byName, c.Name)
	delete(st.byARN, c.ARN)
	return c, nil
}

// list returns channels whose name begins with prefix and sorts after
// "after", in name order, at most max of them, and whether more remain.
func (st *store) list(prefix, after string, max int) ([]*channelRec, bool) {
	st.mu.RLock()
	names := make([]string, 0, len(st.byName))
	for n := range st.byName {
		if strings.HasPrefix(n, prefix) && n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	more := len(names) > max
	if more {
		names = names[:max]
	}
	out := make([]*channelRec, len(names))
	for i, n := range names {
		out[i] = st.byName[n].clone()
	}
	st.mu.RUnlock()
	return out, more
}
