package localkvs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// natsStore is the store of a cluster node: channels (with their tags),
// streams and media storage configurations in one JetStream key-value
// bucket shared by every node, under the keys
//
//	c.<channel name>   a channelRec
//	s.<stream name>    a streamRec
//	m.<channel ARN>    a mediaStorageRec
//
// (names and ARNs encoded by token). A create is the bucket's
// create-if-absent, so two nodes creating the same name race and one wins
// (ResourceInUseException for the other); an update or a delete reads the
// record from the stream's leader and writes it back only if its revision
// did not change meanwhile, retrying otherwise, which also makes KVS's
// CurrentVersion check exact across nodes. Reads are answered from this
// node's view of the bucket (kvWatch, a millisecond behind the other
// nodes' writes at most; a node reads its own writes), falling back to the
// leader for a record the view does not hold yet. Like the bbolt store it
// is used by the control plane and at connect time, never per message.
type natsStore struct {
	c     *cluster
	kv    jetstream.KeyValue
	watch *kvWatch
	local *store // the node's bbolt store, for what stays local (the media index); closed with this one

	mu       sync.RWMutex
	channels channelIndex
	ss       streamState
}

func newNATSStore(c *cluster) *natsStore {
	return &natsStore{c: c, channels: newRecIndex[channelRec](), ss: newStreamState()}
}

// bind attaches the store to its bucket (once JetStream is up).
func (st *natsStore) bind(kv jetstream.KeyValue) {
	st.kv = kv
	st.watch = newKVWatch(kv, st.apply, st.c.log)
}

// The key prefixes of the resources bucket.
const (
	keyChannel = "c."
	keyStream  = "s."
	keyStorage = "m."
)

// apply keeps the view in step with the bucket.
func (st *natsStore) apply(e jetstream.KeyValueEntry, _ bool) {
	k := e.Key()
	del := e.Operation() != jetstream.KeyValuePut
	st.mu.Lock()
	defer st.mu.Unlock()
	switch {
	case strings.HasPrefix(k, keyChannel):
		natsApply(st, channelKind, &st.channels, e, del)
	case strings.HasPrefix(k, keyStream):
		natsApply(st, streamKind, &st.ss.recs, e, del)
	case strings.HasPrefix(k, keyStorage):
		arn, err := untoken(k[len(keyStorage):])
		if err != nil {
			return
		}
		if del {
			delete(st.ss.storage, arn)
			return
		}
		var r mediaStorageRec
		if err := json.Unmarshal(e.Value(), &r); err == nil {
			st.ss.storage[arn] = r
		}
	}
}

// ready returns the error to answer while the cluster is not ready.
func (st *natsStore) ready() error {
	if err := st.c.readyErr(); err != nil {
		return errClusterUnavailable(err)
	}
	return nil
}

// unavailable is the answer to a failed bucket operation; what failed is
// logged (NATS errors hold no secret).
func (st *natsStore) unavailable(op string, err error) error {
	st.c.log.Warn("localkvs: cluster store operation failed", "op", op, "err", err)
	return newAPIError(503, codeUnavailable, nil, "the cluster store is unavailable; try again")
}

func (st *natsStore) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(st.c.ctx, clusterOpTimeout)
}

// isConflict reports whether err is a failed compare-and-set.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// casRetries bounds the read-modify-write attempts of one operation.
const casRetries = 64

// leaderGet reads the latest value of key in a bucket from its stream's
// leader (not from a replica that may lag): the value and its revision,
// found false when the key holds nothing or was deleted (rev is then the
// revision of the delete, or 0).
func (c *cluster) leaderGet(ctx context.Context, kv jetstream.KeyValue, key string) (val []byte, rev uint64, found bool, err error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + kv.Bucket() + "." + key})
	msg, err := c.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+kv.Bucket(), req)
	if err != nil {
		return nil, 0, false, err
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *struct {
			Code    int    `json:"code"`
			ErrCode int    `json:"err_code"`
			Desc    string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, false, err
	}
	if resp.Error != nil {
		if resp.Error.Code == 404 {
			return nil, 0, false, nil
		}
		return nil, 0, false, fmt.Errorf("%s (%d)", resp.Error.Desc, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return nil, 0, false, errors.New("empty message get response")
	}
	m := resp.Message
	if len(m.Hdrs) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Hdrs)
		if err == nil && (h.Get("KV-Operation") != "" || h.Get(jetstream.MarkerReasonHeader) != "") {
			return nil, m.Seq, false, nil
		}
	}
	return m.Data, m.Seq, true, nil
}

// casPut writes val under key if its revision is still rev (0: the key
// holds nothing), and returns the new revision.
func casPut(ctx context.Context, kv jetstream.KeyValue, key string, val []byte, rev uint64) (uint64, error) {
	if rev == 0 {
		return kv.Create(ctx, key, val)
	}
	return kv.Update(ctx, key, val, rev)
}

func (st *natsStore) close() error {
	st.c.close()
	if st.local != nil {
		return st.local.close()
	}
	return nil
}

// openStreams does nothing: the streams live in the same bucket as the
// channels, loaded with them.
func (st *natsStore) openStreams() error { return nil }

func (st *natsStore) create(region string, c *channelRec, maxChannels int) (*channelRec, error) {
	return natsCreate(st, channelKind, &st.channels, region, c, maxChannels)
}

// nameOf returns the name in an ARN of type typ, or "".
func nameOf(arn, typ string) string {
	a, err := wire.ParseARN(arn)
	if err != nil || a.Type != typ {
		return ""
	}
	return a.Name
}

func (st *natsStore) get(name, arn string) (*channelRec, bool) {
	return natsGet(st, channelKind, &st.channels, name, arn)
}

// readChannel reads the channel with arn and its revision from the leader.
func (st *natsStore) readChannel(ctx context.Context, arn string) (*channelRec, uint64, error) {
	return natsRead(ctx, st, channelKind, arn)
}

func (st *natsStore) update(arn string, fn func(c *channelRec) error) (*channelRec, error) {
	return natsUpdate(st, channelKind, &st.channels, arn, fn)
}

func (st *natsStore) delete(arn, version string) (*channelRec, error) {
	return natsDelete(st, channelKind, &st.channels, arn, version)
}

// forget drops a deleted record from the view at once (its delete marker,
// which the watch applies later too, carries no revision the delete returns).
func (st *natsStore) forget(fn func()) {
	st.mu.Lock()
	fn()
	st.mu.Unlock()
}

func (st *natsStore) list(prefix, after string, max int) ([]*channelRec, bool) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.channels.list(prefix, after, max)
}

// The JetStream store's create, get, update, delete and view upkeep of a
// channel or a stream: k says which, ix is the view's index of k's
// records (guarded by st.mu, which these take as they need).

// natsCreate stores the new record r (it has its name and settings) with
// the bucket's create-if-absent, and returns a copy with its ARN, version
// and status: the account's max records reached or a name taken (on any
// node) fail.
func natsCreate[R any, P record[R]](st *natsStore, k *recKind[R, P], ix *recIndex[R, P], region string, r P, max int) (P, error) {
	if err := st.ready(); err != nil {
		return nil, err
	}
	st.mu.RLock()
	n := ix.len()
	st.mu.RUnlock()
	if n >= max {
		return nil, k.limit(n, region)
	}
	ms := time.Now().UnixMilli()
	r.stamp(k.arnOf(region, r.recName(), ms), ms)
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	ctx, cancel := st.opContext()
	defer cancel()
	rev, err := st.kv.Create(ctx, k.key+token(r.recName()), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, k.inUse(r.recName())
	}
	if err != nil {
		return nil, st.unavailable("create "+k.what, err)
	}
	st.watch.waitRev(rev, clusterOpTimeout)
	return r.clone(), nil
}

// natsGet returns a copy of the record with arn (when set) or name, from
// the view or, when the view does not hold it, from the leader.
func natsGet[R any, P record[R]](st *natsStore, k *recKind[R, P], ix *recIndex[R, P], name, arn string) (P, bool) {
	st.mu.RLock()
	r := ix.find(name, arn)
	st.mu.RUnlock()
	if r != nil {
		return r.clone(), true
	}
	if arn != "" {
		name = nameOf(arn, k.what)
	}
	if name == "" || !wire.ValidName(name) || st.ready() != nil {
		return nil, false
	}
	// Not in the view: maybe created on another node a moment ago.
	ctx, cancel := st.opContext()
	defer cancel()
	val, _, found, err := st.c.leaderGet(ctx, st.kv, k.key+token(name))
	if err != nil || !found {
		return nil, false
	}
	rec := P(new(R))
	if json.Unmarshal(val, rec) != nil || (arn != "" && rec.recARN() != arn) {
		return nil, false
	}
	return rec, true
}

// natsRead reads the record with arn and its revision from the leader;
// the record returned has a tag map, empty when it has no tags.
func natsRead[R any, P record[R]](ctx context.Context, st *natsStore, k *recKind[R, P], arn string) (P, uint64, error) {
	name := nameOf(arn, k.what)
	if name == "" {
		return nil, 0, k.notFound(arn)
	}
	val, rev, found, err := st.c.leaderGet(ctx, st.kv, k.key+token(name))
	if err != nil {
		return nil, 0, st.unavailable("read "+k.what, err)
	}
	if !found {
		return nil, 0, k.notFound(arn)
	}
	r := P(new(R))
	if err := json.Unmarshal(val, r); err != nil {
		return nil, 0, k.badValue(st, arn, err)
	}
	if r.recARN() != arn {
		return nil, 0, k.notFound(arn)
	}
	return r.clone(), rev, nil // clone makes the tag map
}

// natsUpdate applies fn to the record with arn and stores the result,
// unless fn fails; fn runs again on what is there when the record changed
// meanwhile.
func natsUpdate[R any, P record[R]](st *natsStore, k *recKind[R, P], ix *recIndex[R, P], arn string, fn func(r P) error) (P, error) {
	return natsWrite(st, k, ix, arn, "update "+k.what, func(r P) ([]byte, error) {
		if err := fn(r); err != nil {
			return nil, err
		}
		return json.Marshal(r)
	})
}

// natsDelete deletes the record with arn, checking its version when
// version is not empty, and returns it.
func natsDelete[R any, P record[R]](st *natsStore, k *recKind[R, P], ix *recIndex[R, P], arn, version string) (P, error) {
	return natsWrite(st, k, ix, arn, "delete "+k.what, func(r P) ([]byte, error) {
		if version != "" && version != r.recVersion() {
			return nil, k.mismatch(version)
		}
		return nil, nil
	})
}

// natsWrite is the read-modify-write of natsUpdate and natsDelete: it
// reads the record with arn and its revision from the leader, has change
// check it and say what to write (the record's new value, or nil to delete
// it; an error aborts), and writes that only if the revision is still the
// one read, starting again otherwise. op names the operation in the log.
func natsWrite[R any, P record[R]](st *natsStore, k *recKind[R, P], ix *recIndex[R, P], arn, op string, change func(r P) ([]byte, error)) (P, error) {
	if err := st.ready(); err != nil {
		return nil, err
	}
	ctx, cancel := st.opContext()
	defer cancel()
	for attempt := 0; attempt < casRetries; attempt++ {
		r, rev, err := natsRead(ctx, st, k, arn)
		if err != nil {
			return nil, err
		}
		val, err := change(r)
		if err != nil {
			return nil, err
		}
		key := k.key + token(r.recName())
		var nrev uint64
		if val != nil {
			nrev, err = st.kv.Update(ctx, key, val, rev)
		} else {
			err = st.kv.Delete(ctx, key, jetstream.LastRevision(rev))
		}
		if isConflict(err) {
			continue // changed meanwhile: read it again and apply change to what is there now
		}
		if err != nil {
			return nil, st.unavailable(op, err)
		}
		if val == nil {
			st.forget(func() { ix.removeIfCurrent(r) })
			return r, nil
		}
		st.watch.waitRev(nrev, clusterOpTimeout)
		return r.clone(), nil
	}
	return nil, st.unavailable(op, errors.New("too many concurrent updates"))
}

// natsApply brings ix in step with a put or a delete of the record under
// e's key (a k key), called from apply with st.mu held.
func natsApply[R any, P record[R]](st *natsStore, k *recKind[R, P], ix *recIndex[R, P], e jetstream.KeyValueEntry, del bool) {
	name, err := untoken(e.Key()[len(k.key):])
	if err != nil {
		return
	}
	ix.removeName(name)
	if del {
		return
	}
	r := P(new(R))
	if err := json.Unmarshal(e.Value(), r); err != nil {
		st.c.log.Warn("localkvs: cluster: a "+k.what+" record does not decode", "key", e.Key(), "err", err)
		return
	}
	ix.put(r)
}
