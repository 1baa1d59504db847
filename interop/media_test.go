package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/archive"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// TestReadRecordingJSv3 reads a recording back with the AWS SDK for
// JavaScript v3 (@aws-sdk/client-kinesis-video-archived-media and
// @aws-sdk/client-kinesis-video-media) while a Go master records into it
// through the local service with TLS: ListFragments lists what the Go
// archive client lists; GetMediaForFragmentList carries each fragment's
// number and timestamps; GetMedia from EARLIEST streams the stored
// fragments in order and goes on live, each chunk with KVS's tags in KVS's
// order; a missing stream and a bad selector get the documented errors.
func TestReadRecordingJSv3(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	awsCfg := e.srv.AWSConfig()
	e.recordInto(t, "interop-rec")
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsCfg, Channel: "interop"},
		Video:         media.DefaultH264(media.Options{Loop: true}),
		Audio:         media.DefaultAudio(media.Options{Loop: true}),
		Ingestion:     peer.IngestOn,
		Settings: peer.Settings{
			NetworkTypes: []webrtc.NetworkType{webrtc.NetworkTypeUDP4},
			IPFilter:     func(ip net.IP) bool { return ip.IsLoopback() },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ac, err := archive.New(awsCfg, archive.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var stored []archive.Fragment
	for len(stored) < 3 {
		if stored, err = ac.ListFragments(ctx, "interop-rec", nil); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			t.Fatalf("%d fragments recorded, want 3", len(stored))
		}
		time.Sleep(100 * time.Millisecond)
	}

	const chunks = 4 // three stored, then at least one more, live
	outb := e.runAWSv3(t, ctx, "media.mjs", "KVS_STREAM=interop-rec", "KVS_CHUNKS="+strconv.Itoa(chunks))
	var steps struct {
		List struct {
			Fragments []string
			LengthsMs []int64
		}
		FragmentList, GetMedia struct {
			ContentType string
			Bytes       int
			Tags        [][2]string
		}
		GetMediaMissing, GetMediaBadSelector struct {
			Error  *string
			Status int
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(outb))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var head struct{ Step string }
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			t.Fatalf("bad line %q", sc.Text())
		}
		var dst any
		switch head.Step {
		case "list":
			dst = &steps.List
		case "fragmentList":
			dst = &steps.FragmentList
		case "getMedia":
			dst = &steps.GetMedia
		case "getMediaMissing":
			dst = &steps.GetMediaMissing
		case "getMediaBadSelector":
			dst = &steps.GetMediaBadSelector
		default:
			t.Fatalf("node media.mjs: %s", sc.Text())
		}
		if err := json.Unmarshal(sc.Bytes(), dst); err != nil {
			t.Fatalf("bad %s line %q: %v", head.Step, sc.Text(), err)
		}
	}
	t.Logf("node media.mjs:\n%s", outb)

	// ListFragments: at least what was stored before node ran, in order.
	var want []string
	for _, f := range stored {
		want = append(want, f.Number)
	}
	if len(steps.List.Fragments) < len(want) || !slices.Equal(steps.List.Fragments[:len(want)], want) {
		t.Errorf("JS ListFragments %v, want %v first", steps.List.Fragments, want)
	}
	// GetMediaForFragmentList: the first two, each with its number.
	numbers := func(tags [][2]string, name string) (out []string) {
		for _, kv := range tags {
			if kv[0] == name {
				out = append(out, kv[1])
			}
		}
		return out
	}
	if got := numbers(steps.FragmentList.Tags, "AWS_KINESISVIDEO_FRAGMENT_NUMBER"); !slices.Equal(got, want[:2]) || steps.FragmentList.ContentType != "video/webm" {
		t.Errorf("JS GetMediaForFragmentList: %s with fragment numbers %v, want video/webm with %v", steps.FragmentList.ContentType, got, want[:2])
	}
	if n := len(numbers(steps.FragmentList.Tags, "AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP")); n != 2 {
		t.Errorf("JS GetMediaForFragmentList: %d server-side timestamps, want 2", n)
	}
	// GetMedia from EARLIEST: the stored fragments in order, then newer
	// ones; per chunk, number and timestamps, then millis behind now and
	// the continuation token (the number), as KVS orders them.
	got := numbers(steps.GetMedia.Tags, "AWS_KINESISVIDEO_FRAGMENT_NUMBER")
	if len(got) < chunks || !slices.Equal(got[:len(want)], want) || got[chunks-1] <= want[len(want)-1] {
		t.Fatalf("JS GetMedia EARLIEST fragment numbers %v, want %v then newer ones", got, want)
	}
	per := []string{"AWS_KINESISVIDEO_FRAGMENT_NUMBER", "AWS_KINESISVIDEO_SERVER_TIMESTAMP", "AWS_KINESISVIDEO_PRODUCER_TIMESTAMP",
		"AWS_KINESISVIDEO_MILLIS_BEHIND_NOW", "AWS_KINESISVIDEO_CONTINUATION_TOKEN"}
	for i := 0; i < chunks; i++ {
		c := steps.GetMedia.Tags[i*len(per) : (i+1)*len(per)]
		for k, name := range per {
			if c[k][0] != name {
				t.Fatalf("JS GetMedia chunk %d: tag %d is %s, want %s (chunk tags %v)", i, k, c[k][0], name, c)
			}
		}
		if c[4][1] != c[0][1] {
			t.Errorf("JS GetMedia chunk %d: continuation token %s, want the fragment number %s", i, c[4][1], c[0][1])
		}
	}
	if steps.GetMedia.ContentType != "video/webm" {
		t.Errorf("JS GetMedia content type %q, want video/webm", steps.GetMedia.ContentType)
	}
	for name, r := range map[string]struct {
		Error  *string
		Status int
	}{"missing stream": steps.GetMediaMissing, "FRAGMENT_NUMBER without AfterFragmentNumber": steps.GetMediaBadSelector} {
		wantErr, wantStatus := "ResourceNotFoundException", 404
		if name != "missing stream" {
			wantErr, wantStatus = "InvalidArgumentException", 400
		}
		if r.Error == nil || *r.Error != wantErr || r.Status != wantStatus {
			t.Errorf("JS GetMedia, %s: %v %d, want %s %d", name, r.Error, r.Status, wantErr, wantStatus)
		}
	}
}
