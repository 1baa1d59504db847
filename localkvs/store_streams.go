package localkvs

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The streams and the channels' media storage configurations, as the
// store keeps them: in memory, and with a DataDir in the same bbolt file as
// the channels (buckets "streams" and "mediaStorage"). Everything the
// service persists about streams goes through the methods below, so that
// the store can later sit behind an interface (a clustered store, say)
// without the API handlers changing. The fragments themselves are kept by
// the media store (mediastore.go).

// streamRec is a Kinesis video stream as stored.
type streamRec struct {
	Name      string            `json:"name"`
	ARN       string            `json:"arn"`
	Created   int64             `json:"created"` // epoch ms
	Version   string            `json:"version"`
	Status    string            `json:"status"`
	Retention int               `json:"retention"` // DataRetentionInHours
	Device    string            `json:"device,omitempty"`
	MediaType string            `json:"mediaType,omitempty"`
	KMSKeyID  string            `json:"kmsKeyId,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
}

func (r *streamRec) clone() *streamRec {
	cp := *r
	cp.Tags = make(map[string]string, len(r.Tags))
	for k, v := range r.Tags {
		cp.Tags[k] = v
	}
	return &cp
}

// mediaStorageRec is a channel's media storage configuration.
type mediaStorageRec struct {
	Status    string `json:"status"` // ENABLED or DISABLED
	StreamARN string `json:"streamArn,omitempty"`
}

var (
	bucketStreams      = []byte("streams")
	bucketMediaStorage = []byte("mediaStorage")
)

// streamState is the part of the store that holds streams; it lives in
// store (st.streams), under st.mu.
type streamState struct {
	byName  map[string]*streamRec
	byARN   map[string]*streamRec
	storage map[string]mediaStorageRec // channel ARN -> configuration
}

func newStreamState() streamState {
	return streamState{byName: map[string]*streamRec{}, byARN: map[string]*streamRec{}, storage: map[string]mediaStorageRec{}}
}

// streamsOf returns the stream state of st, making it on first use.
// Called with st.mu held.
func (st *store) streamsLocked() *streamState {
	if st.streams == nil {
		s := newStreamState()
		st.streams = &s
	}
	return st.streams
}

// openStreams creates the stream buckets and loads what they hold. It is
// called once, after openStore.
func (st *store) openStreams() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	ss := st.streamsLocked()
	if st.db == nil {
		return nil
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketStreams)
		if err != nil {
			return err
		}
		err = b.ForEach(func(k, v []byte) error {
			var r streamRec
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("localkvs: stream %q: %w", k, err)
			}
			ss.byName[r.Name] = &r
			ss.byARN[r.ARN] = &r
			return nil
		})
		if err != nil {
			return err
		}
		m, err := tx.CreateBucketIfNotExists(bucketMediaStorage)
		if err != nil {
			return err
		}
		return m.ForEach(func(k, v []byte) error {
			var r mediaStorageRec
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("localkvs: media storage of %q: %w", k, err)
			}
			ss.storage[string(k)] = r
			return nil
		})
	})
}

// putBolt writes v (JSON) under key in bucket, or deletes key when v is
// nil. Called with st.mu held.
func (st *store) putBolt(bucket []byte, key string, v any) error {
	if st.db == nil {
		return nil
	}
	return st.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if v == nil {
			return b.Delete([]byte(key))
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), data)
	})
}

func streamARN(region, name string, createdMS int64) string {
	return "arn:aws:kinesisvideo:" + region + ":" + AccountID + ":stream/" + name + "/" + strconv.FormatInt(createdMS, 10)
}

// createStream stores a new stream (r has its name and settings) and
// returns a copy with its ARN, version and status.
func (st *store) createStream(region string, r *streamRec, maxStreams int) (*streamRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ss := st.streamsLocked()
	if _, ok := ss.byName[r.Name]; ok {
		return nil, inUse("a stream named %q already exists", r.Name)
	}
	if len(ss.byName) >= maxStreams {
		return nil, limitExceeded(codeAccountStreamLimit, "the account already has %d streams in %s", len(ss.byName), region)
	}
	ms := time.Now().UnixMilli()
	for {
		r.ARN = streamARN(region, r.Name, ms)
		if _, dup := ss.byARN[r.ARN]; !dup {
			break
		}
		ms++
	}
	r.Created = ms
	r.Version = newVersion()
	r.Status = "ACTIVE"
	return st.putStreamLocked(r)
}

func (st *store) putStreamLocked(r *streamRec) (*streamRec, error) {
	if err := st.putBolt(bucketStreams, r.Name, r); err != nil {
		return nil, fmt.Errorf("localkvs: storing stream: %w", err)
	}
	ss := st.streamsLocked()
	ss.byName[r.Name] = r
	ss.byARN[r.ARN] = r
	return r.clone(), nil
}

// getStream finds a stream by ARN (when set) or name and returns a copy.
func (st *store) getStream(name, arn string) (*streamRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.streams == nil {
		return nil, false
	}
	var r *streamRec
	if arn != "" {
		r = st.streams.byARN[arn]
	} else {
		r = st.streams.byName[name]
	}
	if r == nil {
		return nil, false
	}
	return r.clone(), true
}

// updateStream applies fn to the stream with arn under the lock and
// persists the result; fn returns an error to abort.
func (st *store) updateStream(arn string, fn func(r *streamRec) error) (*streamRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	old := st.streamsLocked().byARN[arn]
	if old == nil {
		return nil, notFound("no stream with ARN %q", arn)
	}
	r := old.clone()
	if err := fn(r); err != nil {
		return nil, err
	}
	return st.putStreamLocked(r)
}

// deleteStream removes a stream (checking version when not empty). The
// media storage configurations that name it keep naming it: a join on
// such a channel fails because the stream is gone, as on KVS.
func (st *store) deleteStream(arn, version string) (*streamRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ss := st.streamsLocked()
	r := ss.byARN[arn]
	if r == nil {
		return nil, notFound("no stream with ARN %q", arn)
	}
	if version != "" && version != r.Version {
		return nil, newAPIError(400, codeVersionMismatch, ErrVersionMismatch, "CurrentVersion %q is not the stream's current version", version)
	}
	if err := st.putBolt(bucketStreams, r.Name, nil); err != nil {
		return nil, fmt.Errorf("localkvs: deleting stream: %w", err)
	}
	delete(ss.byName, r.Name)
	delete(ss.byARN, r.ARN)
	return r, nil
}

// listStreams returns the streams whose name begins with prefix and sorts
// after "after", in name order, at most max, and whether more remain.
func (st *store) listStreams(prefix, after string, max int) ([]*streamRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.streams == nil {
		return nil, false
	}
	names := make([]string, 0, len(st.streams.byName))
	for n := range st.streams.byName {
		if strings.HasPrefix(n, prefix) && n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	more := len(names) > max
	if more {
		names = names[:max]
	}
	out := make([]*streamRec, len(names))
	for i, n := range names {
		out[i] = st.streams.byName[n].clone()
	}
	return out, more
}

// mediaStorage returns the media storage configuration of a channel; a
// channel never configured is DISABLED.
func (st *store) mediaStorage(channelARN string) mediaStorageRec {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.streams == nil {
		return mediaStorageRec{Status: storageDisabled}
	}
	r, ok := st.streams.storage[channelARN]
	if !ok {
		return mediaStorageRec{Status: storageDisabled}
	}
	return r
}

// setMediaStorage stores a channel's media storage configuration, after
// check (under the lock) has accepted it given the configurations of the
// other channels. A DISABLED configuration without a stream is dropped.
func (st *store) setMediaStorage(channelARN string, r mediaStorageRec, check func(others map[string]mediaStorageRec) error) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	ss := st.streamsLocked()
	if check != nil {
		if err := check(ss.storage); err != nil {
			return err
		}
	}
	var v any = r
	if r.Status == storageDisabled && r.StreamARN == "" {
		v = nil
	}
	if err := st.putBolt(bucketMediaStorage, channelARN, v); err != nil {
		return fmt.Errorf("localkvs: storing the media storage configuration: %w", err)
	}
	if v == nil {
		delete(ss.storage, channelARN)
	} else {
		ss.storage[channelARN] = r
	}
	return nil
}

// channelsOfStream returns the ARNs of the channels whose media storage
// configuration names stream (enabled or not), sorted.
func (st *store) channelsOfStream(stream string) []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.streams == nil {
		return nil
	}
	var out []string
	for ch, r := range st.streams.storage {
		if r.StreamARN == stream {
			out = append(out, ch)
		}
	}
	sort.Strings(out)
	return out
}

// dropMediaStorage forgets the configuration of a deleted channel.
func (st *store) dropMediaStorage(channelARN string) error {
	return st.setMediaStorage(channelARN, mediaStorageRec{Status: storageDisabled}, nil)
}
