package localkvs

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kvswebrtc/kvswebrtc/internal/wire"
)

// A damaged store (docs/security.md, "The store"). bbolt trusts its file:
// a truncated, zeroed or garbled page makes it panic, or fault on memory
// past the end of a shorter file. openBolt turns both into ErrStoreDamaged,
// naming the file and the way out, and checks every page before the
// service uses the file; RepairStore keeps what can still be read.

// storeFile is the store's file name in DataDir.
const storeFile = "channels.db"

// damaged is the ErrStoreDamaged of the store at path.
func damaged(path string, why any) error {
	return fmt.Errorf("%w: %s: %v. Keep what can be read with `kvswebrtc serve --data %s --repair` "+
		"(localkvs.RepairStore; the damaged file is kept beside it), or move the file aside to start with no channels: mv %s %s.damaged",
		ErrStoreDamaged, path, why, filepath.Dir(path), path, path)
}

// guard runs fn, turning a panic, or a memory fault in the mapped file,
// into an error.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return fn()
}

// openBolt opens the store at path, after checking its header and, on a
// read-only open of its own, every page: so that the open that follows, and
// the service's use of the file, meet no damage. A file in use is
// ErrStoreLocked; a file bbolt cannot read is ErrStoreDamaged. An empty
// file is left to bbolt, which makes it a new store.
func openBolt(path string) (*bolt.DB, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		if err := checkHeader(path); err != nil {
			return nil, damaged(path, err)
		}
		ro, err := openGuarded(path, true)
		if err != nil {
			return nil, err
		}
		err = checkPages(ro)
		guard(ro.Close)
		if err != nil {
			return nil, damaged(path, err)
		}
	}
	return openGuarded(path, false)
}

// openGuarded is bolt.Open under guard, its errors made ErrStoreLocked or
// ErrStoreDamaged.
func openGuarded(path string, readOnly bool) (*bolt.DB, error) {
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: readOnly})
		return err
	})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("%w: %s", ErrStoreLocked, path)
		}
		return nil, damaged(path, err)
	}
	return db, nil
}

// checkPages runs bbolt's consistency check (every page reachable once,
// freed or in use) and returns the first errors it finds.
func checkPages(db *bolt.DB) error {
	return guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			var errs []error
			for e := range tx.Check() {
				if len(errs) < 3 {
					errs = append(errs, e)
				}
			}
			return errors.Join(errs...)
		})
	})
}

// boltMeta is what checkHeader reads of a bbolt meta page.
type boltMeta struct {
	pageSize uint32
	pgid     uint64 // the high water mark: pages the file must hold
	txid     uint64
}

const (
	boltMagic   = 0xED0CDAED
	boltVersion = 2
	pageHeader  = 16 // id, flags, count, overflow
	metaSumLen  = 56 // the meta's bytes before its checksum
)

// readMeta decodes the meta page at off of f, or fails when it is not a
// valid one (magic, version, FNV-64a checksum).
func readMeta(f *os.File, off int64) (boltMeta, error) {
	var b [pageHeader + metaSumLen + 8]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return boltMeta{}, err
	}
	m := b[pageHeader:]
	le := binary.NativeEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, errors.New("not a bbolt meta page")
	}
	h := fnv.New64a()
	h.Write(m[:metaSumLen])
	if h.Sum64() != le.Uint64(m[metaSumLen:]) {
		return boltMeta{}, errors.New("meta page checksum mismatch")
	}
	return boltMeta{pageSize: le.Uint32(m[8:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, nil
}

// storeMeta returns the meta page bbolt would use (the valid one with the
// higher transaction id) and the file's size.
func storeMeta(path string) (boltMeta, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return boltMeta{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return boltMeta{}, 0, err
	}
	m0, err0 := readMeta(f, 0)
	var best boltMeta
	found := false
	if err0 == nil {
		best, found = m0, true
	}
	sizes := []int64{int64(m0.pageSize), 4096, 8192, 16384, 32768, 65536, int64(os.Getpagesize())}
	for _, ps := range sizes {
		if ps <= 0 {
			continue
		}
		if m1, err := readMeta(f, ps); err == nil && m1.pageSize == uint32(ps) {
			if !found || m1.txid > best.txid {
				best = m1
			}
			found = true
			break
		}
	}
	if !found {
		return boltMeta{}, fi.Size(), errors.New("neither meta page is valid: this is not a bbolt file any more")
	}
	return best, fi.Size(), nil
}

// checkHeader checks that path has a valid meta page and holds every page
// it names: bbolt would read past the end of a shorter (truncated) file,
// which faults.
func checkHeader(path string) error {
	m, size, err := storeMeta(path)
	if err != nil {
		return err
	}
	if need := int64(m.pgid) * int64(m.pageSize); size < need {
		return fmt.Errorf("the file is truncated: %d bytes, its pages need %d", size, need)
	}
	return nil
}

// decodeChannel decodes a stored channel and checks that it is one (a
// stream record, which looks alike, is not).
func decodeChannel(v []byte) (*channelRec, error) {
	var c channelRec
	if err := json.Unmarshal(v, &c); err != nil {
		return nil, err
	}
	if !wire.ValidName(c.Name) {
		return nil, fmt.Errorf("name %q is not a channel name", c.Name)
	}
	if _, err := wire.ParseChannelARN(c.ARN); err != nil {
		return nil, fmt.Errorf("ARN %q: %v", c.ARN, err)
	}
	return &c, nil
}

// decodeStream decodes a stream record, refusing one whose name or ARN
// the service could not have written.
func decodeStream(v []byte) (*streamRec, error) {
	var r streamRec
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, err
	}
	if !wire.ValidName(r.Name) {
		return nil, fmt.Errorf("name %q is not a stream name", r.Name)
	}
	if a, err := wire.ParseARN(r.ARN); err != nil {
		return nil, fmt.Errorf("ARN %q: %v", r.ARN, err)
	} else if a.Type != "stream" {
		return nil, fmt.Errorf("ARN %q is a %s ARN, not a stream's", r.ARN, a.Type)
	}
	return &r, nil
}

// decodeMediaStorage decodes a channel's media storage configuration.
func decodeMediaStorage(v []byte) (mediaStorageRec, error) {
	var r mediaStorageRec
	if err := json.Unmarshal(v, &r); err != nil {
		return r, err
	}
	if r.Status != storageEnabled && r.Status != storageDisabled {
		return r, fmt.Errorf("status %q is neither %s nor %s", r.Status, storageEnabled, storageDisabled)
	}
	if r.StreamARN != "" {
		if _, err := wire.ParseARN(r.StreamARN); err != nil {
			return r, fmt.Errorf("stream ARN %q: %v", r.StreamARN, err)
		}
	}
	return r, nil
}

// decodeFragment decodes an entry of the fragment index, refusing one
// whose number is not of the form fragmentNumber writes.
func decodeFragment(v []byte) (fragmentMeta, error) {
	var m fragmentMeta
	if err := json.Unmarshal(v, &m); err != nil {
		return m, err
	}
	digits, ok := strings.CutPrefix(m.Number, fragmentNumberPrefix)
	if !ok || len(digits) != 20 || strings.Trim(digits, "0123456789") != "" {
		return m, fmt.Errorf("fragment number %q is not one this service writes", m.Number)
	}
	return m, nil
}

// recordCheck returns how the records of the top-level bucket name are
// checked (nil: not at all), and the records of the buckets nested in it.
func recordCheck(name []byte) (records, nested func([]byte) error) {
	switch string(name) {
	case string(bucketChannels):
		return func(v []byte) error { _, err := decodeChannel(v); return err }, nil
	case string(bucketStreams):
		return func(v []byte) error { _, err := decodeStream(v); return err }, nil
	case string(bucketMediaStorage):
		return func(v []byte) error { _, err := decodeMediaStorage(v); return err }, nil
	case string(bucketFragments):
		return nil, func(v []byte) error { _, err := decodeFragment(v); return err }
	}
	return nil, nil
}

// RepairReport is what [RepairStore] did.
type RepairReport struct {
	// Path is the store file, DataDir/channels.db.
	Path string
	// Sound is true when the store was readable in full: nothing was changed.
	Sound bool
	// DamagedCopy is where the damaged file was moved ("" when Sound).
	DamagedCopy string
	// Channels is the number of channels in the repaired store.
	Channels int
	// Kept is the number of records (channels, streams, ...) written to
	// the repaired store.
	Kept int
	// Lost is the number of records found unreadable and left out. Records
	// on pages that could not be read at all are not counted.
	Lost int
}

// RepairStore repairs the channel store in dataDir (DataDir/channels.db) for
// a server that refuses it with ErrStoreDamaged or warns of unreadable
// records: it reads what can still be read (every bucket, record by record,
// and channel records found anywhere in the file), writes it to a new store
// and moves the damaged file aside (channels.db.damaged-<time>), so nothing
// is thrown away. A sound store is left as it is (report.Sound). A store in
// use by a running server is ErrStoreLocked. It never panics on a damaged
// file.
func RepairStore(dataDir string) (RepairReport, error) {
	path := filepath.Join(dataDir, storeFile)
	rep := RepairReport{Path: path}
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		rep.Sound = true
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("localkvs: repair: %w", err)
	}
	// Sound, and every record readable: nothing to do.
	tree, lost, readErr := salvage(path, len(raw) > 0)
	if errors.Is(readErr, ErrStoreLocked) {
		return rep, readErr
	}
	if readErr == nil && lost == 0 && len(raw) > 0 {
		rep.Sound = true
		rep.Channels = len(tree[string(bucketChannels)].records)
		return rep, nil
	}
	// Channel records the page structure no longer reaches.
	chans := tree.bucket(bucketChannels)
	for _, c := range scanChannels(raw) {
		if _, ok := chans.records[c.Name]; !ok {
			v, _ := json.Marshal(c)
			chans.records[c.Name] = v
		}
	}
	rep.Lost = lost
	tmp := path + ".repair"
	os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return rep, fmt.Errorf("localkvs: repair: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for name, b := range tree {
			nb, err := tx.CreateBucketIfNotExists([]byte(name))
			if err != nil {
				return err
			}
			n, err := b.writeTo(nb)
			if err != nil {
				return err
			}
			rep.Kept += n
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return rep, fmt.Errorf("localkvs: repair: writing %s: %w", tmp, err)
	}
	rep.Channels = len(chans.records)
	rep.DamagedCopy = path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(path, rep.DamagedCopy); err != nil {
		os.Remove(tmp)
		return rep, fmt.Errorf("localkvs: repair: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return rep, fmt.Errorf("localkvs: repair: %w (the damaged store is at %s, what was kept at %s)", err, rep.DamagedCopy, tmp)
	}
	return rep, nil
}

// boltTree is the content of a bbolt file read back: buckets of records
// and of nested buckets.
type boltTree map[string]*boltBucket

type boltBucket struct {
	records map[string][]byte
	nested  boltTree
}

func newBoltBucket() *boltBucket {
	return &boltBucket{records: map[string][]byte{}, nested: boltTree{}}
}

func (t boltTree) bucket(name []byte) *boltBucket {
	b := t[string(name)]
	if b == nil {
		b = newBoltBucket()
		t[string(name)] = b
	}
	return b
}

func (b *boltBucket) writeTo(nb *bolt.Bucket) (int, error) {
	n := 0
	for k, v := range b.records {
		if err := nb.Put([]byte(k), v); err != nil {
			return n, err
		}
		n++
	}
	for name, sub := range b.nested {
		sb, err := nb.CreateBucketIfNotExists([]byte(name))
		if err != nil {
			return n, err
		}
		m, err := sub.writeTo(sb)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// salvage reads what it can of the store at path, bucket by bucket and
// record by record, and counts the channel records that do not decode. Its
// error is nil when the whole file was read (header, pages and records).
// A damaged file is read from a copy, padded to the size its pages need,
// so that nothing faults and the original stays as it was.
func salvage(path string, nonEmpty bool) (boltTree, int, error) {
	tree := boltTree{}
	tree.bucket(bucketChannels)
	if !nonEmpty {
		return tree, 0, errors.New("empty file")
	}
	var checkErr error
	db, err := openGuarded(path, true)
	if errors.Is(err, ErrStoreLocked) {
		return tree, 0, err
	}
	if err == nil {
		guard(db.Close)
	}
	if checkErr = checkHeader(path); checkErr == nil {
		if db, err = openGuarded(path, true); err == nil {
			checkErr = checkPages(db)
			guard(db.Close)
		} else {
			checkErr = err
		}
	}
	if checkErr == nil {
		db, err = openGuarded(path, true)
	} else {
		db, err = paddedCopy(path)
	}
	if err != nil {
		return tree, 0, errors.Join(checkErr, err)
	}
	defer func() {
		p := db.Path()
		guard(db.Close)
		if p != path {
			os.Remove(p)
		}
	}()
	lost := 0
	walkErr := guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				check, nested := recordCheck(name)
				return guard(func() error { return copyBucket(b, tree.bucket(name), check, nested, &lost) })
			})
		})
	})
	return tree, lost, errors.Join(checkErr, walkErr)
}

// paddedCopy opens, read-only, a copy of the store at path padded with
// zeros to the size its meta page names.
func paddedCopy(path string) (*bolt.DB, error) {
	m, _, err := storeMeta(path)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// int64: on 32-bit platforms (linux/arm) an int cannot hold 2 GiB.
	if need := int64(m.pgid) * int64(m.pageSize); int64(len(raw)) < need && need < 1<<31-1 {
		raw = append(raw, make([]byte, need-int64(len(raw)))...)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), storeFile+".salvage-*")
	if err != nil {
		return nil, err
	}
	_, err = tmp.Write(raw)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	db, err := openGuarded(tmp.Name(), true)
	if err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	return db, nil
}

// copyBucket copies b into out until the end or a page that cannot be read,
// counting in lost the records check refuses (nestedCheck is the check of
// the records of b's nested buckets).
func copyBucket(b *bolt.Bucket, out *boltBucket, check, nestedCheck func([]byte) error, lost *int) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil { // a nested bucket
			sub := b.Bucket(k)
			if sub == nil {
				return nil
			}
			nb := newBoltBucket()
			out.nested[string(k)] = nb
			return guard(func() error { return copyBucket(sub, nb, nestedCheck, nil, lost) })
		}
		if check != nil && check(v) != nil {
			*lost++
			return nil
		}
		out.records[string(k)] = bytes.Clone(v)
		return nil
	})
}

// scanChannels finds the channel records written anywhere in raw (a JSON
// object per record, starting {"name":), for pages the structure of the
// file no longer reaches.
func scanChannels(raw []byte) []*channelRec {
	var out []*channelRec
	marker := []byte(`{"name":"`)
	for i := 0; ; {
		j := bytes.Index(raw[i:], marker)
		if j < 0 {
			return out
		}
		start := i + j
		i = start + 1
		d := json.NewDecoder(bytes.NewReader(raw[start:]))
		var m json.RawMessage
		if d.Decode(&m) != nil {
			continue
		}
		if c, err := decodeChannel(m); err == nil {
			out = append(out, c)
		}
	}
}
