package localkvs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
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

	mu     sync.RWMutex
	byName map[string]*channelRec
	byARN  map[string]*channelRec
	ss     streamState
}

func newNATSStore(c *cluster) *natsStore {
	return &natsStore{c: c, byName: map[string]*channelRec{}, byARN: map[string]*channelRec{}, ss: newStreamState()}
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
		name, err := untoken(k[len(keyChannel):])
		if err != nil {
			return
		}
		if old := st.byName[name]; old != nil {
			delete(st.byARN, old.ARN)
			delete(st.byName, name)
		}
		if del {
			return
		}
		var c channelRec
		if err := json.Unmarshal(e.Value(), &c); err != nil {
			st.c.log.Warn("localkvs: cluster: a channel record does not decode", "key", k, "err", err)
			return
		}
		st.byName[c.Name], st.byARN[c.ARN] = &c, &c
	case strings.HasPrefix(k, keyStream):
		name, err := untoken(k[len(keyStream):])
		if err != nil {
			return
		}
		if old := st.ss.byName[name]; old != nil {
			delete(st.ss.byARN, old.ARN)
			delete(st.ss.byName, name)
		}
		if del {
			return
		}
		var r streamRec
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			st.c.log.Warn("localkvs: cluster: a stream record does not decode", "key", k, "err", err)
			return
		}
		st.ss.byName[r.Name], st.ss.byARN[r.ARN] = &r, &r
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
	if err := st.ready(); err != nil {
		return nil, err
	}
	st.mu.RLock()
	n := len(st.byName)
	st.mu.RUnlock()
	if n >= maxChannels {
		return nil, limitExceeded(codeAccountChannelLimit, "the account already has %d signaling channels in %s", n, region)
	}
	ms := time.Now().UnixMilli()
	c.ARN = channelARN(region, c.Name, ms)
	c.Created = ms
	c.Version = newVersion()
	c.Status = "ACTIVE"
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := st.opContext()
	defer cancel()
	rev, err := st.kv.Create(ctx, keyChannel+token(c.Name), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil, inUse("a signaling channel named %q already exists", c.Name)
	}
	if err != nil {
		return nil, st.unavailable("create channel", err)
	}
	st.watch.waitRev(rev, clusterOpTimeout)
	return c.clone(), nil
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
	st.mu.RLock()
	var c *channelRec
	if arn != "" {
		c = st.byARN[arn]
	} else {
		c = st.byName[name]
	}
	st.mu.RUnlock()
	if c != nil {
		return c.clone(), true
	}
	if arn != "" {
		name = nameOf(arn, "channel")
	}
	if name == "" || !wire.ValidName(name) || st.ready() != nil {
		return nil, false
	}
	// Not in the view: maybe created on another node a moment ago.
	ctx, cancel := st.opContext()
	defer cancel()
	val, _, found, err := st.c.leaderGet(ctx, st.kv, keyChannel+token(name))
	if err != nil || !found {
		return nil, false
	}
	var rec channelRec
	if json.Unmarshal(val, &rec) != nil || (arn != "" && rec.ARN != arn) {
		return nil, false
	}
	return &rec, true
}

// readChannel reads the channel with arn and its revision from the leader.
func (st *natsStore) readChannel(ctx context.Context, arn string) (*channelRec, uint64, error) {
	name := nameOf(arn, "channel")
	if name == "" {
		return nil, 0, noChannel(arn)
	}
	val, rev, found, err := st.c.leaderGet(ctx, st.kv, keyChannel+token(name))
	if err != nil {
		return nil, 0, st.unavailable("read channel", err)
	}
	if !found {
		return nil, 0, noChannel(arn)
	}
	var c channelRec
	if err := json.Unmarshal(val, &c); err != nil {
		return nil, 0, st.unavailable("decode channel", err)
	}
	if c.ARN != arn {
		return nil, 0, noChannel(arn)
	}
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
	return &c, rev, nil
}

func (st *natsStore) update(arn string, fn func(c *channelRec) error) (*channelRec, error) {
	if err := st.ready(); err != nil {
		return nil, err
	}
	ctx, cancel := st.opContext()
	defer cancel()
	for attempt := 0; attempt < casRetries; attempt++ {
		c, rev, err := st.readChannel(ctx, arn)
		if err != nil {
			return nil, err
		}
		if err := fn(c); err != nil {
			return nil, err
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, err
		}
		nrev, err := st.kv.Update(ctx, keyChannel+token(c.Name), b, rev)
		if isConflict(err) {
			continue // changed meanwhile: read it again and apply fn to what is there now
		}
		if err != nil {
			return nil, st.unavailable("update channel", err)
		}
		st.watch.waitRev(nrev, clusterOpTimeout)
		return c.clone(), nil
	}
	return nil, st.unavailable("update channel", errors.New("too many concurrent updates"))
}

func (st *natsStore) delete(arn, version string) (*channelRec, error) {
	if err := st.ready(); err != nil {
		return nil, err
	}
	ctx, cancel := st.opContext()
	defer cancel()
	for attempt := 0; attempt < casRetries; attempt++ {
		c, rev, err := st.readChannel(ctx, arn)
		if err != nil {
			return nil, err
		}
		if version != "" && version != c.Version {
			return nil, versionMismatch(version)
		}
		err = st.kv.Delete(ctx, keyChannel+token(c.Name), jetstream.LastRevision(rev))
		if isConflict(err) {
			continue
		}
		if err != nil {
			return nil, st.unavailable("delete channel", err)
		}
		st.forget(func() {
			if cur := st.byName[c.Name]; cur != nil && cur.ARN == c.ARN {
				delete(st.byName, c.Name)
				delete(st.byARN, c.ARN)
			}
		})
		return c, nil
	}
	return nil, st.unavailable("delete channel", errors.New("too many concurrent updates"))
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
	return out, more
}
