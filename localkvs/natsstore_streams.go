package localkvs

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// The natsStore's streams (keys s.<name>) and media storage
// configurations (keys m.<channel ARN>); natsstore.go has the bucket, its
// view and the channels.

func (st *natsStore) createStream(region string, r *streamRec, maxStreams int) (*streamRec, error) {
	if err := st.ready(); err != nil {
		return nil, err
	}
	st.mu.RLock()
	n := len(st.ss.byName)
	st.mu.RUnlock()
	if n >= maxStreams {
		return nil, limitExceeded(codeAccountStreamLimit, "the account already has %d streams in %s", n, region)
	}
	ms := time.Now().UnixMilli()
	r.ARN = streamARN(region, r.Name, ms)
	r.Created = ms
	r.Version = newVersion()
	r.Status = "ACTIVE"
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	ctx, cancel := st.opContext()
	defer cancel()
	rev, err := st.kv.Create(ctx, keyStream+token(r.Name), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, inUse("a stream named %q already exists", r.Name)
	}
	if err != nil {
		return nil, st.unavailable("create stream", err)
	}
	st.watch.waitRev(rev, clusterOpTimeout)
	return r.clone(), nil
}

func (st *natsStore) getStream(name, arn string) (*streamRec, bool) {
	st.mu.RLock()
	var r *streamRec
	if arn != "" {
		r = st.ss.byARN[arn]
	} else {
		r = st.ss.byName[name]
	}
	st.mu.RUnlock()
	if r != nil {
		return r.clone(), true
	}
	if arn != "" {
		name = nameOf(arn, "stream")
	}
	if name == "" || !wire.ValidName(name) || st.ready() != nil {
		return nil, false
	}
	ctx, cancel := st.opContext()
	defer cancel()
	val, _, found, err := st.c.leaderGet(ctx, st.kv, keyStream+token(name))
	if err != nil || !found {
		return nil, false
	}
	var rec streamRec
	if json.Unmarshal(val, &rec) != nil || (arn != "" && rec.ARN != arn) {
		return nil, false
	}
	return &rec, true
}

func (st *natsStore) readStream(ctx context.Context, arn string) (*streamRec, uint64, error) {
	name := nameOf(arn, "stream")
	if name == "" {
		return nil, 0, notFound("no stream with ARN %q", arn)
	}
	val, rev, found, err := st.c.leaderGet(ctx, st.kv, keyStream+token(name))
	if err != nil {
		return nil, 0, st.unavailable("read stream", err)
	}
	var r streamRec
	if !found || json.Unmarshal(val, &r) != nil || r.ARN != arn {
		return nil, 0, notFound("no stream with ARN %q", arn)
	}
	if r.Tags == nil {
		r.Tags = map[string]string{}
	}
	return &r, rev, nil
}

func (st *natsStore) updateStream(arn string, fn func(r *streamRec) error) (*streamRec, error) {
	if err := st.ready(); err != nil {
		return nil, err
	}
	ctx, cancel := st.opContext()
	defer cancel()
	for attempt := 0; attempt < casRetries; attempt++ {
		r, rev, err := st.readStream(ctx, arn)
		if err != nil {
			return nil, err
		}
		if err := fn(r); err != nil {
			return nil, err
		}
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		nrev, err := st.kv.Update(ctx, keyStream+token(r.Name), b, rev)
		if isConflict(err) {
			continue
		}
		if err != nil {
			return nil, st.unavailable("update stream", err)
		}
		st.watch.waitRev(nrev, clusterOpTimeout)
		return r.clone(), nil
	}
	return nil, st.unavailable("update stream", errors.New("too many concurrent updates"))
}

func (st *natsStore) deleteStream(arn, version string) (*streamRec, error) {
	if err := st.ready(); err != nil {
		return nil, err
	}
	ctx, cancel := st.opContext()
	defer cancel()
	for attempt := 0; attempt < casRetries; attempt++ {
		r, rev, err := st.readStream(ctx, arn)
		if err != nil {
			return nil, err
		}
		if version != "" && version != r.Version {
			return nil, newAPIError(400, codeVersionMismatch, ErrVersionMismatch, "CurrentVersion %q is not the stream's current version", version)
		}
		err = st.kv.Delete(ctx, keyStream+token(r.Name), jetstream.LastRevision(rev))
		if isConflict(err) {
			continue
		}
		if err != nil {
			return nil, st.unavailable("delete stream", err)
		}
		st.forget(func() {
			if cur := st.ss.byName[r.Name]; cur != nil && cur.ARN == r.ARN {
				delete(st.ss.byName, r.Name)
				delete(st.ss.byARN, r.ARN)
			}
		})
		return r, nil
	}
	return nil, st.unavailable("delete stream", errors.New("too many concurrent updates"))
}

func (st *natsStore) listStreams(prefix, after string, max int) ([]*streamRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	names := make([]string, 0, len(st.ss.byName))
	for n := range st.ss.byName {
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
		out[i] = st.ss.byName[n].clone()
	}
	return out, more
}

func (st *natsStore) mediaStorage(channelARN string) mediaStorageRec {
	st.mu.RLock()
	defer st.mu.RUnlock()
	r, ok := st.ss.storage[channelARN]
	if !ok {
		return mediaStorageRec{Status: storageDisabled}
	}
	return r
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
	var out []string
	for ch, r := range st.ss.storage {
		if r.StreamARN == stream {
			out = append(out, ch)
		}
	}
	sort.Strings(out)
	return out
}

func (st *natsStore) dropMediaStorage(channelARN string) error {
	return st.setMediaStorage(channelARN, mediaStorageRec{Status: storageDisabled}, nil)
}
