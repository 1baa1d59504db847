package localkvs

import (
	"encoding/json"
)

// The natsStore's streams (keys s.<name>) and media storage
// configurations (keys m.<channel ARN>); natsstore.go has the bucket, its
// view and the channels.

func (st *natsStore) createStream(region string, r *streamRec, maxStreams int) (*streamRec, error) {
	return natsCreate(st, streamKind, &st.ss.recs, region, r, maxStreams)
}

func (st *natsStore) getStream(name, arn string) (*streamRec, bool) {
	return natsGet(st, streamKind, &st.ss.recs, name, arn)
}

func (st *natsStore) updateStream(arn string, fn func(r *streamRec) error) (*streamRec, error) {
	return natsUpdate(st, streamKind, &st.ss.recs, arn, fn)
}

func (st *natsStore) deleteStream(arn, version string) (*streamRec, error) {
	return natsDelete(st, streamKind, &st.ss.recs, arn, version)
}

func (st *natsStore) listStreams(prefix, after string, max int) ([]*streamRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.ss.recs.list(prefix, after, max)
}

func (st *natsStore) mediaStorage(channelARN string) mediaStorageRec {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.ss.storageOf(channelARN)
}

// setMediaStorage stores a channel's configuration after check accepted
// it given the other channels' configurations as this node sees them (a
// node a millisecond behind another's write could accept the same stream
// for a second channel: docs/cluster.md, "Limits").
func (st *natsStore) setMediaStorage(channelARN string, r mediaStorageRec, check func(others map[string]mediaStorageRec) error) error {
	if err := st.ready(); err != nil {
		return err
	}
	if check != nil {
		st.mu.RLock()
		others := make(map[string]mediaStorageRec, len(st.ss.storage))
		for k, v := range st.ss.storage {
			others[k] = v
		}
		st.mu.RUnlock()
		if err := check(others); err != nil {
			return err
		}
	}
	ctx, cancel := st.opContext()
	defer cancel()
	key := keyStorage + token(channelARN)
	if r.Status == storageDisabled && r.StreamARN == "" {
		if err := st.kv.Delete(ctx, key); err != nil {
			return st.unavailable("media storage", err)
		}
		st.forget(func() { delete(st.ss.storage, channelARN) })
		return nil
	}
	b, _ := json.Marshal(r)
	rev, err := st.kv.Put(ctx, key, b)
	if err != nil {
		return st.unavailable("media storage", err)
	}
	st.watch.waitRev(rev, clusterOpTimeout)
	return nil
}

func (st *natsStore) channelsOfStream(stream string) []string {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.ss.channelsOf(stream)
}

func (st *natsStore) dropMediaStorage(channelARN string) error {
	return st.setMediaStorage(channelARN, mediaStorageRec{Status: storageDisabled}, nil)
}
