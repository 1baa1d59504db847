package localkvs

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The media store keeps the fragments the media server records: each
// fragment's metadata (number, timestamps, duration, size) and its bytes.
// With a DataDir the metadata lives in the store's bbolt file (bucket
// "fragments", one nested bucket per stream ARN, keyed by fragment number)
// and the bytes in one file per fragment under DataDir/media/; without one
// both live in memory, at most maxMemoryMedia bytes in all (the oldest
// fragments go first). Like the stream records (store_streams.go), all of
// it goes through the methods of mediaStore, the seam where a clustered
// store can come in.

// maxMemoryMedia bounds the fragment bytes kept in memory without a DataDir.
const maxMemoryMedia = 512 << 20

var bucketFragments = []byte("fragments")

// fragmentMeta describes one stored fragment.
type fragmentMeta struct {
	Number    string `json:"n"`
	Producer  int64  `json:"p"`  // producer timestamp, epoch ms (the first frame's)
	Server    int64  `json:"s"`  // server timestamp, epoch ms (when its first frame arrived)
	LengthMS  int64  `json:"l"`  // duration
	TracksLen int    `json:"tl"` // bytes of Info and Tracks at the start of the data
	Size      int64  `json:"sz"` // bytes of the data (Info, Tracks, Cluster)
}

// fragmentNumberPrefix makes the fragment numbers look like KVS's long
// decimal ones; all have the same length, so that their order as strings
// is their numeric order.
const fragmentNumberPrefix = "913438523331"

func fragmentNumber(seq uint64) string {
	return fragmentNumberPrefix + fmt.Sprintf("%020d", seq)
}

// streamFragments is the index of one stream, in number order.
type streamFragments struct {
	list    []fragmentMeta
	data    map[string][]byte // memory mode only
	next    uint64
	changed chan struct{} // closed and replaced when a fragment is added or starts, or the stream goes
	gone    bool
	pending []*liveFragment // recorded, or being recorded, and not yet stored; in number order
}

// mediaStore keeps the fragments of every stream.
type mediaStore struct {
	st  *store
	dir string // DataDir/media, or "" in memory

	mu       sync.Mutex
	streams  map[string]*streamFragments // stream ARN ->
	memBytes int64
	memOrder []memRef // memory mode: fragments in the order they were stored
}

type memRef struct{ stream, number string }

// openMediaStore opens the fragment index of st (loading it from bbolt)
// and, with a DataDir, the media directory.
func openMediaStore(st *store, dataDir string) (*mediaStore, error) {
	ms := &mediaStore{st: st, streams: map[string]*streamFragments{}}
	if dataDir == "" || st.db == nil {
		return ms, nil
	}
	ms.dir = filepath.Join(dataDir, "media")
	if err := os.MkdirAll(ms.dir, 0o700); err != nil {
		return nil, fmt.Errorf("localkvs: DataDir: %w", err)
	}
	err := st.db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketFragments)
		if err != nil {
			return err
		}
		return root.ForEachBucket(func(k []byte) error {
			sf := ms.streamLocked(string(k))
			return root.Bucket(k).ForEach(func(fk, v []byte) error {
				m, err := decodeFragment(v)
				if err != nil { // one bad entry does not cost the stream's other fragments
					st.warnBadRecord("fragment index entry of stream "+string(k)+":", fk, err)
					return nil
				}
				sf.list = append(sf.list, m)
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("localkvs: reading the fragment index: %w", err)
	}
	for _, sf := range ms.streams {
		if n := len(sf.list); n > 0 {
			sf.next = seqOf(sf.list[n-1].Number) + 1
		}
	}
	return ms, nil
}

func seqOf(number string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimPrefix(number, fragmentNumberPrefix), 10, 64)
	return n
}

// streamLocked returns the index of a stream, making it. Called with
// ms.mu held (or before the store is shared).
func (ms *mediaStore) streamLocked(arn string) *streamFragments {
	sf := ms.streams[arn]
	if sf == nil {
		sf = &streamFragments{changed: make(chan struct{}), next: 1}
		if ms.dir == "" {
			sf.data = map[string][]byte{}
		}
		ms.streams[arn] = sf
	}
	return sf
}

// fileOf is the file holding a fragment's bytes.
func (ms *mediaStore) fileOf(stream, number string) string {
	return filepath.Join(ms.dir, fileKey(stream), number+".mkv")
}

// fileKey turns a stream ARN into a directory name: its name and creation
// time (ARN "…:stream/NAME/MS" -> "NAME-MS").
func fileKey(stream string) string {
	_, rest, _ := strings.Cut(stream, ":stream/")
	return strings.ReplaceAll(rest, "/", "-")
}

// reserve numbers the fragment that starts now on stream, before it is
// stored: GetMedia sends its frames as they are recorded, under that
// number.
func (ms *mediaStore) reserve(stream string) (string, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	sf := ms.streamLocked(stream)
	if sf.gone {
		return "", notFound("no stream with ARN %q", stream)
	}
	n := fragmentNumber(sf.next)
	sf.next++
	return n, nil
}

// startLive adds f, the fragment that starts being recorded on stream, to
// the fragments GetMedia sends as they are recorded, and wakes the readers
// waiting for a fragment.
func (ms *mediaStore) startLive(stream string, f *liveFragment) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	sf := ms.streams[stream]
	if sf == nil || sf.gone {
		return
	}
	i := sort.Search(len(sf.pending), func(i int) bool { return sf.pending[i].number > f.number })
	sf.pending = slices.Insert(sf.pending, i, f)
	close(sf.changed)
	sf.changed = make(chan struct{})
}

// dropLive forgets a fragment that will not be stored (the writer was
// behind, or storing it failed).
func (ms *mediaStore) dropLive(stream, number string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if sf := ms.streams[stream]; sf != nil {
		sf.dropPendingLocked(number)
	}
}

func (sf *streamFragments) dropPendingLocked(number string) {
	sf.pending = slices.DeleteFunc(sf.pending, func(f *liveFragment) bool { return f.number == number })
}

// live returns the fragments of stream recorded or being recorded and not
// yet stored, in number order.
func (ms *mediaStore) live(stream string) []*liveFragment {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if sf := ms.streams[stream]; sf != nil {
		return slices.Clone(sf.pending)
	}
	return nil
}

// add stores a fragment of stream: it numbers it (unless m.Number was
// reserved), writes its bytes and index entry, drops the fragments past
// the retention (hours, measured against now) and wakes the readers
// waiting for new fragments.
func (ms *mediaStore) add(stream string, m fragmentMeta, data []byte, retention time.Duration, now time.Time) (fragmentMeta, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	sf := ms.streamLocked(stream)
	if sf.gone {
		return m, notFound("no stream with ARN %q", stream)
	}
	if m.Number == "" {
		m.Number = fragmentNumber(sf.next)
		sf.next++
	}
	m.Size = int64(len(data))
	if ms.dir != "" {
		path := ms.fileOf(stream, m.Number)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return m, err
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return m, err
		}
		err := ms.st.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.Bucket(bucketFragments).CreateBucketIfNotExists([]byte(stream))
			if err != nil {
				return err
			}
			v, err := json.Marshal(m)
			if err != nil {
				return err
			}
			return b.Put([]byte(m.Number), v)
		})
		if err != nil {
			os.Remove(path)
			return m, err
		}
	} else {
		sf.data[m.Number] = data
		ms.memBytes += int64(len(data))
		ms.memOrder = append(ms.memOrder, memRef{stream, m.Number})
		for ms.memBytes > maxMemoryMedia && len(ms.memOrder) > 1 {
			old := ms.memOrder[0]
			ms.memOrder = ms.memOrder[1:]
			ms.removeLocked(old.stream, old.number)
		}
	}
	// A reserved number can be below the newest stored one: the last
	// fragment of a session that a new session replaced.
	i := sort.Search(len(sf.list), func(i int) bool { return sf.list[i].Number > m.Number })
	sf.list = slices.Insert(sf.list, i, m)
	sf.dropPendingLocked(m.Number)
	if retention > 0 {
		ms.expireLocked(stream, now.Add(-retention).UnixMilli())
	}
	close(sf.changed)
	sf.changed = make(chan struct{})
	return m, nil
}

// removeLocked forgets one fragment (memory mode).
func (ms *mediaStore) removeLocked(stream, number string) {
	sf := ms.streams[stream]
	if sf == nil {
		return
	}
	if d, ok := sf.data[number]; ok {
		ms.memBytes -= int64(len(d))
		delete(sf.data, number)
	}
	i := sort.Search(len(sf.list), func(i int) bool { return sf.list[i].Number >= number })
	if i < len(sf.list) && sf.list[i].Number == number {
		sf.list = append(sf.list[:i], sf.list[i+1:]...)
	}
}

// expireLocked drops the fragments of stream whose server timestamp is
// before cutoff (epoch ms).
func (ms *mediaStore) expireLocked(stream string, cutoff int64) {
	sf := ms.streams[stream]
	n := 0
	for n < len(sf.list) && sf.list[n].Server < cutoff {
		n++
	}
	if n == 0 {
		return
	}
	old := sf.list[:n]
	if ms.dir != "" {
		_ = ms.st.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketFragments).Bucket([]byte(stream))
			for _, m := range old {
				if b != nil {
					_ = b.Delete([]byte(m.Number))
				}
				os.Remove(ms.fileOf(stream, m.Number))
			}
			return nil
		})
	} else {
		for _, m := range old {
			if d, ok := sf.data[m.Number]; ok {
				ms.memBytes -= int64(len(d))
				delete(sf.data, m.Number)
			}
		}
	}
	sf.list = append([]fragmentMeta(nil), sf.list[n:]...)
}

// list returns a copy of the fragments of stream, in number order,
// leaving out those past the retention.
func (ms *mediaStore) list(stream string, retention time.Duration, now time.Time) []fragmentMeta {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	sf := ms.streams[stream]
	if sf == nil {
		return nil
	}
	if retention > 0 {
		ms.expireLocked(stream, now.Add(-retention).UnixMilli())
	}
	return append([]fragmentMeta(nil), sf.list...)
}

// watch returns a channel closed when stream gets a new fragment or is
// dropped.
func (ms *mediaStore) watch(stream string) <-chan struct{} {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.streamLocked(stream).changed
}

// errFragmentGone reports a fragment removed (retention, deletion) after it
// was listed.
var errFragmentGone = errors.New("localkvs: the fragment is no longer stored")

// read returns the bytes of one fragment.
func (ms *mediaStore) read(stream, number string) ([]byte, error) {
	ms.mu.Lock()
	sf := ms.streams[stream]
	var data []byte
	if sf != nil && sf.data != nil {
		data = sf.data[number]
	}
	dir := ms.dir
	ms.mu.Unlock()
	if dir == "" {
		if data == nil {
			return nil, errFragmentGone
		}
		return data, nil
	}
	data, err := os.ReadFile(ms.fileOf(stream, number))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errFragmentGone
	}
	return data, err
}

// dropStream removes every fragment of a deleted stream and wakes its
// readers.
func (ms *mediaStore) dropStream(stream string) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	sf := ms.streams[stream]
	if sf == nil {
		return nil
	}
	delete(ms.streams, stream)
	sf.gone = true
	close(sf.changed)
	sf.changed = make(chan struct{})
	for _, d := range sf.data {
		ms.memBytes -= int64(len(d))
	}
	if ms.dir == "" {
		return nil
	}
	err := ms.st.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketFragments)
		if root.Bucket([]byte(stream)) == nil {
			return nil
		}
		return root.DeleteBucket([]byte(stream))
	})
	if rerr := os.RemoveAll(filepath.Join(ms.dir, fileKey(stream))); err == nil {
		err = rerr
	}
	return err
}

// gone reports whether stream was dropped since ch was returned by watch.
func (ms *mediaStore) gone(stream string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	_, ok := ms.streams[stream]
	return !ok
}
