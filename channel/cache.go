package channel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// endpointEntry is one cached answer of DescribeSignalingChannel plus
// GetSignalingChannelEndpoint, as kept in memory and in the cache file.
type endpointEntry struct {
	Key            string    `json:"key"`
	ControlPlane   string    `json:"controlPlane"` // custom base endpoint, "" for AWS's own
	Region         string    `json:"region"`
	Channel        string    `json:"channel"` // the name or ARN the caller gave
	Role           Role      `json:"role"`
	ChannelARN     string    `json:"channelARN"`
	ChannelName    string    `json:"channelName"`
	WSSEndpoint    string    `json:"wssEndpoint"`
	HTTPSEndpoint  string    `json:"httpsEndpoint"`
	WebRTCEndpoint string    `json:"webrtcEndpoint,omitempty"`
	HasWebRTC      bool      `json:"hasWebRTC,omitempty"` // WEBRTC was asked for
	CachedAt       time.Time `json:"cachedAt"`
}

// cacheFile is the JSON document of ResolverOptions.CacheFile.
type cacheFile struct {
	Version int             `json:"version"`
	Entries []endpointEntry `json:"entries"`
}

const cacheFileVersion = 1

func endpointKey(controlPlane, region, channel string, role Role) string {
	return controlPlane + "|" + region + "|" + channel + "|" + string(role)
}

// loadCacheFile reads the entries of path that are younger than ttl. A
// missing file is an empty cache.
func loadCacheFile(path string, now time.Time, ttl time.Duration) ([]endpointEntry, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var f cacheFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	if f.Version != cacheFileVersion {
		return nil, fmt.Errorf("%s: cache version %d, want %d", path, f.Version, cacheFileVersion)
	}
	var out []endpointEntry
	for _, e := range f.Entries {
		if e.Key == "" || e.ChannelARN == "" || e.WSSEndpoint == "" || e.HTTPSEndpoint == "" {
			continue
		}
		if !fresh(now, e.CachedAt, ttl) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// writeCacheFile writes entries to path atomically: a temporary file in the
// same directory, synced, then renamed over path.
func writeCacheFile(path string, entries []endpointEntry) error {
	data, err := json.MarshalIndent(cacheFile{Version: cacheFileVersion, Entries: entries}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // no-op after a successful rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(name, path)
}

func sortEntries(es []endpointEntry) {
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
}

// fresh reports whether an entry cached at "at" is still good at now. The
// age is taken in absolute value: an entry from the "future" (the clock was
// set back since) counts as fresh for at most ttl.
func fresh(now, at time.Time, ttl time.Duration) bool {
	return absDur(now.Sub(at)) < ttl
}
