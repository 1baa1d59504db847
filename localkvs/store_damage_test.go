package localkvs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"
	bolt "go.etcd.io/bbolt"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// makeStore writes n channels into a store in dir and returns its file.
func makeStore(t *testing.T, dir string, n int) string {
	t.Helper()
	srv, err := localkvs.New(localkvs.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := srv.CreateChannel(context.Background(), fmt.Sprintf("ch-%03d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "channels.db")
}

// logBuffer is a slog handler writing text lines into a buffer.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// openSafely is localkvs.New, reporting a panic instead of dying of it.
func openSafely(cfg localkvs.Config) (srv *localkvs.Server, err error, panicked any) {
	defer func() { panicked = recover() }()
	srv, err = localkvs.New(cfg)
	return srv, err, nil
}

func damage(t *testing.T, path, how string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch how {
	case "truncated":
		b = b[:len(b)/2]
	case "zero-tailed":
		clear(b[len(b)/2:])
	case "garbled":
		for i := 8192; i < len(b); i += 97 {
			b[i] ^= 0x5a
		}
	case "empty":
		b = nil
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDefect8DamagedStore: a truncated, zero-tailed or garbled store file
// makes New fail with ErrStoreDamaged, an error that names the file and the
// way out, instead of a panic; RepairStore then keeps what can be read,
// moves the damaged file aside, and the server starts.
func TestDefect8DamagedStore(t *testing.T) {
	for _, how := range []string{"truncated", "zero-tailed", "garbled"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			path := makeStore(t, dir, 300)
			damage(t, path, how)
			srv, err, p := openSafely(localkvs.Config{DataDir: dir})
			if p != nil {
				t.Fatalf("New panicked on a %s store: %v", how, p)
			}
			if err == nil {
				srv.Close()
				t.Fatalf("New accepted a %s store", how)
			}
			if !errors.Is(err, localkvs.ErrStoreDamaged) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "--repair") {
				t.Fatalf("error %q: want ErrStoreDamaged naming %s and --repair", err, path)
			}
			rep, err := localkvs.RepairStore(dir)
			if err != nil {
				t.Fatalf("RepairStore: %v", err)
			}
			t.Logf("%s: %+v", how, rep)
			if rep.Sound || rep.DamagedCopy == "" {
				t.Fatalf("report %+v: want the damaged file moved aside", rep)
			}
			if _, err := os.Stat(rep.DamagedCopy); err != nil {
				t.Fatalf("the damaged copy: %v", err)
			}
			if how == "garbled" && rep.Channels == 0 {
				t.Errorf("nothing kept of a garbled store: %+v", rep)
			}
			srv, err = localkvs.New(localkvs.Config{DataDir: dir})
			if err != nil {
				t.Fatalf("New after the repair: %v", err)
			}
			defer srv.Close()
			if _, err := srv.CreateChannel(context.Background(), "after-repair"); err != nil {
				t.Fatalf("CreateChannel after the repair: %v", err)
			}
		})
	}
}

// TestDefect8BadRecord: one unreadable record does not refuse the store:
// the other channels load, the bad one is named in a warning, and
// RepairStore drops it.
func TestDefect8BadRecord(t *testing.T) {
	dir := t.TempDir()
	path := makeStore(t, dir, 20)
	b, _ := os.ReadFile(path)
	i := bytes.Index(b, []byte(`{"name":"ch-007"`))
	if i < 0 {
		t.Fatal("record of ch-007 not found in the file")
	}
	b[i] = '#' // no longer JSON
	os.WriteFile(path, b, 0o600)

	var logs logBuffer
	srv, err := localkvs.Start(localkvs.Config{DataDir: dir, Logger: logs.logger()}, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("one bad record refused the store: %v", err)
	}
	kv := devClient(srv)
	list, err := kv.ListSignalingChannels(context.Background(), &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.ChannelInfoList) != 19 {
		t.Errorf("%d channels loaded, want the 19 good ones", len(list.ChannelInfoList))
	}
	if _, err := kv.DescribeSignalingChannel(context.Background(), &kinesisvideo.DescribeSignalingChannelInput{ChannelName: aws.String("ch-008")}); err != nil {
		t.Errorf("a good channel: %v", err)
	}
	if !strings.Contains(logs.String(), "ch-007") || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("no warning naming the bad record:\n%s", logs.String())
	}
	srv.Close()
	rep, err := localkvs.RepairStore(dir)
	if err != nil || rep.Sound || rep.Lost != 1 || rep.Channels != 19 {
		t.Fatalf("RepairStore: %+v, %v; want 19 channels kept and 1 record lost", rep, err)
	}
	logs = logBuffer{}
	srv, err = localkvs.New(localkvs.Config{DataDir: dir, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if strings.Contains(logs.String(), "WARN") {
		t.Errorf("warnings after the repair:\n%s", logs.String())
	}
}

// TestDefect8EmptyFile: a 0-byte file where a store was starts empty with
// a warning, not silently.
func TestDefect8EmptyFile(t *testing.T) {
	dir := t.TempDir()
	damage(t, makeStore(t, dir, 3), "empty")
	var logs logBuffer
	srv, err := localkvs.New(localkvs.Config{DataDir: dir, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "empty") {
		t.Errorf("no warning for an empty store file:\n%s", logs.String())
	}
}

// TestRepairSoundStore: RepairStore leaves a sound store alone.
func TestRepairSoundStore(t *testing.T) {
	dir := t.TempDir()
	path := makeStore(t, dir, 5)
	before, _ := os.ReadFile(path)
	rep, err := localkvs.RepairStore(dir)
	if err != nil || !rep.Sound || rep.DamagedCopy != "" {
		t.Fatalf("RepairStore of a sound store: %+v, %v", rep, err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Fatal("RepairStore changed a sound store")
	}
	// A store in use by a server is not touched.
	srv, err := localkvs.New(localkvs.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := localkvs.RepairStore(dir); !errors.Is(err, localkvs.ErrStoreLocked) {
		t.Fatalf("RepairStore of a store in use: %v, want ErrStoreLocked", err)
	}
}

// TestBadStreamAndFragmentRecords: an unreadable stream record, media
// storage configuration or fragment index entry is skipped with a warning
// that names it, as a bad channel record is; the rest of the store loads,
// and RepairStore then drops exactly those (and does not take a stream
// record for a channel).
func TestBadStreamAndFragmentRecords(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	srv, err := localkvs.Start(localkvs.Config{DataDir: dir}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	kv := devClient(srv)
	ch, err := srv.CreateChannel(ctx, "cam-channel")
	if err != nil {
		t.Fatal(err)
	}
	var streamARN string
	for i := range 5 {
		out, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(fmt.Sprintf("st-%03d", i)), DataRetentionInHours: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			streamARN = aws.ToString(out.StreamARN)
		}
	}
	if _, err := kv.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
		ChannelARN: aws.String(ch),
		MediaStorageConfiguration: &types.MediaStorageConfiguration{
			Status: types.MediaStorageConfigurationStatusEnabled, StreamARN: aws.String(streamARN),
		},
	}); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	// The fragment index of st-000: one good entry, one that is not.
	path := filepath.Join(dir, "channels.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists([]byte("fragments"))
		if err != nil {
			return err
		}
		b, err := root.CreateBucketIfNotExists([]byte(streamARN))
		if err != nil {
			return err
		}
		if err := b.Put([]byte("a"), []byte(`{"n":"91343852333100000000000000000001","p":1,"s":1,"l":1000,"tl":10,"sz":100}`)); err != nil {
			return err
		}
		return b.Put([]byte("b"), []byte(`{"n":"not-a-fragment-number"}`))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	for _, rec := range []string{`{"name":"st-003"`, `{"status":"ENABLED"`} {
		if !bytes.Contains(b, []byte(rec)) {
			t.Fatalf("record %s not found in the file", rec)
		}
		// Every copy: bbolt may have left older versions of the page.
		b = bytes.ReplaceAll(b, []byte(rec), append([]byte("#"), rec[1:]...)) // no longer JSON
	}
	os.WriteFile(path, b, 0o600)

	var logs logBuffer
	srv, err = localkvs.Start(localkvs.Config{DataDir: dir, Logger: logs.logger()}, "127.0.0.1:0")
	if err != nil {
		t.Fatalf("bad stream records refused the store: %v", err)
	}
	kv = devClient(srv)
	streams, err := kv.ListStreams(ctx, &kinesisvideo.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(streams.StreamInfoList) != 4 {
		t.Errorf("%d streams loaded, want the 4 good ones", len(streams.StreamInfoList))
	}
	if _, err := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("st-004")}); err != nil {
		t.Errorf("a good stream: %v", err)
	}
	for _, want := range []string{`stream \"st-003\" is unreadable`, `media storage configuration \"` + ch + `\" is unreadable`, `fragment index entry of stream ` + streamARN + `: \"b\" is unreadable`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no warning naming %s:\n%s", want, logs.String())
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 3 {
		t.Errorf("%d warnings, want 3:\n%s", n, logs.String())
	}
	srv.Close()

	rep, err := localkvs.RepairStore(dir)
	if err != nil || rep.Sound || rep.Lost != 3 || rep.Channels != 1 {
		t.Fatalf("RepairStore: %+v, %v; want 1 channel kept and 3 records lost", rep, err)
	}
	logs = logBuffer{}
	srv, err = localkvs.Start(localkvs.Config{DataDir: dir, Logger: logs.logger()}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if strings.Contains(logs.String(), "WARN") {
		t.Errorf("warnings after the repair:\n%s", logs.String())
	}
	kv = devClient(srv)
	chans, err := kv.ListSignalingChannels(ctx, &kinesisvideo.ListSignalingChannelsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(chans.ChannelInfoList) != 1 {
		t.Errorf("%d channels after the repair, want 1 (a stream record taken for a channel?)", len(chans.ChannelInfoList))
	}
	if streams, err = kv.ListStreams(ctx, &kinesisvideo.ListStreamsInput{}); err != nil || len(streams.StreamInfoList) != 4 {
		t.Errorf("after the repair: %d streams (%v), want 4", len(streams.StreamInfoList), err)
	}
}
