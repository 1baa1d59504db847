package localkvs

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

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
	recs    streamIndex
	storage map[string]mediaStorageRec // channel ARN -> configuration
}

func newStreamState() streamState {
	return streamState{recs: newRecIndex[streamRec](), storage: map[string]mediaStorageRec{}}
}

// storageOf returns the media storage configuration of a channel; a
// channel never configured is DISABLED, as is every channel when ss is nil
// (the bbolt store before openStreams).
func (ss *streamState) storageOf(channelARN string) mediaStorageRec {
	if ss != nil {
		if r, ok := ss.storage[channelARN]; ok {
			return r
		}
	}
	return mediaStorageRec{Status: storageDisabled}
}

// channelsOf returns the ARNs of the channels whose media storage
// configuration names stream (enabled or not), sorted; none when ss is nil.
func (ss *streamState) channelsOf(stream string) []string {
	if ss == nil {
		return nil
	}
	var out []string
	for ch, r := range ss.storage {
		if r.StreamARN == stream {
			out = append(out, ch)
		}
	}
	sort.Strings(out)
	return out
}

// streamsLocked returns the stream state of st, making it on first use.
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
			r, err := decodeStream(v)
			if err != nil { // one bad record does not cost the others
				st.warnBadRecord("stream", k, err)
				return nil
			}
			ss.recs.put(r)
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
			r, err := decodeMediaStorage(v)
			if err != nil {
				st.warnBadRecord("media storage configuration", k, err)
				return nil
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
	return boltCreate(st, streamKind, &st.streamsLocked().recs, region, r, maxStreams)
}

// getStream finds a stream by ARN (when set) or name and returns a copy.
func (st *store) getStream(name, arn string) (*streamRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.streams == nil {
		return nil, false
	}
	return boltGet(&st.streams.recs, name, arn)
}

// updateStream applies fn to the stream with arn under the lock and
// persists the result; fn returns an error to abort.
func (st *store) updateStream(arn string, fn func(r *streamRec) error) (*streamRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return boltUpdate(st, streamKind, &st.streamsLocked().recs, arn, fn)
}

// deleteStream removes a stream (checking version when not empty). The
// media storage configurations that name it keep naming it: a join on
// such a channel fails because the stream is gone, as on KVS.
func (st *store) deleteStream(arn, version string) (*streamRec, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return boltDelete(st, streamKind, &st.streamsLocked().recs, arn, version)
}

// listStreams returns the streams whose name begins with prefix and sorts
// after "after", in name order, at most max, and whether more remain.
func (st *store) listStreams(prefix, after string, max int) ([]*streamRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.streams == nil {
		return nil, false
	}
	return st.streams.recs.list(prefix, after, max)
}

// mediaStorage returns the media storage configuration of a channel; a
// channel never configured is DISABLED.
func (st *store) mediaStorage(channelARN string) mediaStorageRec {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.streams.storageOf(channelARN)
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
	return st.streams.channelsOf(stream)
}

// dropMediaStorage forgets the configuration of a deleted channel.
func (st *store) dropMediaStorage(channelARN string) error {
	return st.setMediaStorage(channelARN, mediaStorageRec{Status: storageDisabled}, nil)
}
