package localkvs

import "time"

// resourceStore is where the service keeps what outlives a connection:
// signaling channels and their tags (store.go), streams and media storage
// configurations (store_streams.go). Two implementations: *store, bbolt
// in DataDir (or memory only), for a single server; and *natsStore, a
// JetStream key-value bucket shared by the nodes of a cluster
// (natsstore.go). The API handlers see only this interface.
//
// Records go in and come out as copies. A create fails with
// ResourceInUseException when the name is taken; update applies fn to the
// current record and stores the result unless fn fails (fn may run more
// than once on a cluster, where a concurrent change makes it start again:
// it must depend on its argument only); delete with a version fails with
// VersionMismatchException unless it is the record's. get and the other
// reads never fail: a record that cannot be read is not there.
type resourceStore interface {
	create(region string, c *channelRec, maxChannels int) (*channelRec, error)
	get(name, arn string) (*channelRec, bool)
	update(arn string, fn func(c *channelRec) error) (*channelRec, error)
	delete(arn, version string) (*channelRec, error)
	list(prefix, after string, max int) ([]*channelRec, bool)

	openStreams() error
	createStream(region string, r *streamRec, maxStreams int) (*streamRec, error)
	getStream(name, arn string) (*streamRec, bool)
	updateStream(arn string, fn func(r *streamRec) error) (*streamRec, error)
	deleteStream(arn, version string) (*streamRec, error)
	listStreams(prefix, after string, max int) ([]*streamRec, bool)
	mediaStorage(channelARN string) mediaStorageRec
	setMediaStorage(channelARN string, r mediaStorageRec, check func(others map[string]mediaStorageRec) error) error
	channelsOfStream(stream string) []string
	dropMediaStorage(channelARN string) error

	close() error
}

var (
	_ resourceStore = (*store)(nil)
	_ resourceStore = (*natsStore)(nil)
)

// openResourceStore opens the bbolt store, or on a cluster node its
// JetStream store; both are timed for the metrics.
func (s *Server) openResourceStore() (resourceStore, error) {
	st, err := openStore(s.cfg.DataDir)
	if err != nil {
		if s.cluster != nil {
			s.cluster.close()
		}
		return nil, err
	}
	s.bolt = st
	if s.cluster != nil {
		s.cluster.store.local = st // closed with it
		return timedStore{s.cluster.store, s.metrics, "jetstream"}, nil
	}
	return timedStore{st, s.metrics, "bbolt"}, nil
}

// timedStore records the latency of each operation of a store
// (kvswebrtc_store_operation_seconds) and otherwise passes it through.
type timedStore struct {
	st      resourceStore
	m       *metrics
	backend string
}

func (t timedStore) done(op string, t0 time.Time) { t.m.storeOp(op, t.backend, t0) }

func (t timedStore) create(region string, c *channelRec, maxChannels int) (*channelRec, error) {
	defer t.done("create", time.Now())
	return t.st.create(region, c, maxChannels)
}

func (t timedStore) get(name, arn string) (*channelRec, bool) {
	defer t.done("get", time.Now())
	return t.st.get(name, arn)
}

func (t timedStore) update(arn string, fn func(c *channelRec) error) (*channelRec, error) {
	defer t.done("update", time.Now())
	return t.st.update(arn, fn)
}

func (t timedStore) delete(arn, version string) (*channelRec, error) {
	defer t.done("delete", time.Now())
	return t.st.delete(arn, version)
}

func (t timedStore) list(prefix, after string, max int) ([]*channelRec, bool) {
	defer t.done("list", time.Now())
	return t.st.list(prefix, after, max)
}

func (t timedStore) openStreams() error { return t.st.openStreams() }

func (t timedStore) createStream(region string, r *streamRec, maxStreams int) (*streamRec, error) {
	defer t.done("create_stream", time.Now())
	return t.st.createStream(region, r, maxStreams)
}

func (t timedStore) getStream(name, arn string) (*streamRec, bool) {
	defer t.done("get_stream", time.Now())
	return t.st.getStream(name, arn)
}

func (t timedStore) updateStream(arn string, fn func(r *streamRec) error) (*streamRec, error) {
	defer t.done("update_stream", time.Now())
	return t.st.updateStream(arn, fn)
}

func (t timedStore) deleteStream(arn, version string) (*streamRec, error) {
	defer t.done("delete_stream", time.Now())
	return t.st.deleteStream(arn, version)
}

func (t timedStore) listStreams(prefix, after string, max int) ([]*streamRec, bool) {
	defer t.done("list_streams", time.Now())
	return t.st.listStreams(prefix, after, max)
}

func (t timedStore) mediaStorage(channelARN string) mediaStorageRec {
	defer t.done("media_storage", time.Now())
	return t.st.mediaStorage(channelARN)
}

func (t timedStore) setMediaStorage(channelARN string, r mediaStorageRec, check func(others map[string]mediaStorageRec) error) error {
	defer t.done("set_media_storage", time.Now())
	return t.st.setMediaStorage(channelARN, r, check)
}

func (t timedStore) channelsOfStream(stream string) []string {
	defer t.done("channels_of_stream", time.Now())
	return t.st.channelsOfStream(stream)
}

func (t timedStore) dropMediaStorage(channelARN string) error {
	defer t.done("drop_media_storage", time.Now())
	return t.st.dropMediaStorage(channelARN)
}

func (t timedStore) close() error { return t.st.close() }
