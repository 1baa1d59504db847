package channel_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"

	"github.com/kvswebrtc/kvswebrtc/channel"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// enableStorage gives the channel a new stream (24 h retention) as its media
// storage, through Resolver.SetMediaStorage, and returns the stream's ARN.
func enableStorage(t *testing.T, srv *localkvs.Server, channelARN, stream string) string {
	t.Helper()
	kv := kinesisvideo.NewFromConfig(srv.AWSConfig())
	out, err := kv.CreateStream(ctx(t), &kinesisvideo.CreateStreamInput{StreamName: aws.String(stream), DataRetentionInHours: aws.Int32(24)})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	r, err := channel.NewResolver(srv.AWSConfig(), channel.ResolverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetMediaStorage(ctx(t), channelARN, channel.MediaStorage{Enabled: true, StreamARN: aws.ToString(out.StreamARN)}); err != nil {
		t.Fatalf("SetMediaStorage: %v", err)
	}
	return aws.ToString(out.StreamARN)
}

// TestJoinStorageSession: the media storage calls and JoinStorageSession
// against the local service, and the errors of a join that cannot work.
func TestJoinStorageSession(t *testing.T) {
	srv := startServer(t, false)
	cfg := loadConfig(t, srv)
	r := newResolver(t, cfg, channel.ResolverOptions{})
	arn := createChannel(t, srv, "storage")
	createChannel(t, srv, "no-storage")

	ms, err := r.MediaStorage(ctx(t), "storage")
	if err != nil || ms.Enabled {
		t.Fatalf("MediaStorage before: %+v %v", ms, err)
	}
	// Without media storage: no WEBRTC endpoint, and a join says why.
	plain, err := r.Resolve(ctx(t), "no-storage", channel.RoleMaster, channel.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.JoinStorageSession(ctx(t)); !errors.Is(err, channel.ErrNoMediaStorage) || !errors.Is(err, channel.ErrJoinStorageSession) {
		t.Errorf("join without media storage: %v, want ErrNoMediaStorage", err)
	}
	if _, err := r.Resolve(ctx(t), "no-storage", channel.RoleMaster, channel.Options{WebRTCEndpoint: true}); err == nil {
		t.Error("Resolve with WebRTCEndpoint on a channel without media storage succeeded")
	}

	stream := enableStorage(t, srv, arn, "storage-stream")
	ms, err = r.MediaStorage(ctx(t), arn)
	if err != nil || !ms.Enabled || ms.StreamARN != stream {
		t.Fatalf("MediaStorage: %+v %v", ms, err)
	}
	res, err := r.Resolve(ctx(t), "storage", channel.RoleMaster, channel.Options{WebRTCEndpoint: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.WebRTCEndpoint() != srv.URL() {
		t.Errorf("WebRTCEndpoint %q, want %q", res.WebRTCEndpoint(), srv.URL())
	}
	// A viewer joins the storage session the master started, not before.
	v, err := r.Resolve(ctx(t), "storage", channel.RoleViewer, channel.Options{ClientID: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	var ae *channel.APIError
	if err := v.JoinStorageSessionAsViewer(ctx(t)); !errors.As(err, &ae) || ae.StatusCode != 404 || !strings.Contains(ae.Message, "no storage session") {
		t.Errorf("JoinStorageSessionAsViewer before the master joined: %v, want 404 naming the missing storage session", err)
	}
	if err := res.JoinStorageSession(ctx(t)); err != nil {
		t.Fatalf("JoinStorageSession: %v", err)
	}
	if err := v.JoinStorageSessionAsViewer(ctx(t)); err != nil {
		t.Errorf("JoinStorageSessionAsViewer: %v", err)
	}
	// Ten viewers at most, as on a channel; one that joined may join again.
	for i := 2; i <= 11; i++ {
		time.Sleep(250 * time.Millisecond) // under the channel's 5 GetIceServerConfig calls a second
		vi, err := r.Resolve(ctx(t), "storage", channel.RoleViewer, channel.Options{ClientID: fmt.Sprintf("v%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		err = vi.JoinStorageSessionAsViewer(ctx(t))
		switch {
		case i <= 10 && err != nil:
			t.Errorf("viewer %d of the storage session: %v", i, err)
		case i == 11 && (!errors.As(err, &ae) || ae.Code != "ClientLimitExceededException" || !strings.Contains(ae.Message, "maximum of 10 viewers")):
			t.Errorf("the 11th viewer of the storage session: %v, want ClientLimitExceededException", err)
		}
	}
	if err := v.JoinStorageSessionAsViewer(ctx(t)); err != nil {
		t.Errorf("a viewer joining again: %v", err)
	}
	if err := v.JoinStorageSession(ctx(t)); !errors.Is(err, channel.ErrInvalidArgument) {
		t.Errorf("JoinStorageSession as a viewer: %v", err)
	}

	// The stream deleted: 404, not worth a retry.
	kv := kinesisvideo.NewFromConfig(cfg)
	if _, err := kv.DeleteStream(ctx(t), &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(stream)}); err != nil {
		t.Fatal(err)
	}
	err = res.JoinStorageSession(ctx(t))
	if !errors.As(err, &ae) || ae.StatusCode != 404 || !errors.Is(err, channel.ErrChannelNotFound) || channel.RetryableJoinError(err) {
		t.Errorf("join with the stream deleted: %v", err)
	}
}

func TestJoinRetryDelay(t *testing.T) {
	for n, want := range map[int][2]int{1: {6000, 6001}, 2: {6000, 6200}, 3: {6000, 16000}, 9: {6000, 16000}} {
		lo, hi := channel.JoinRetryDelay(n, 0).Milliseconds(), channel.JoinRetryDelay(n, 0.999999).Milliseconds()
		if lo != int64(want[0]) || hi > int64(want[1]) || hi < lo {
			t.Errorf("JoinRetryDelay(%d): %d..%d ms, want %d..%d", n, lo, hi, want[0], want[1])
		}
	}
	if channel.RetryableJoinError(&channel.APIError{StatusCode: 400, Code: "ClientLimitExceededException", Message: "rate"}) != true ||
		channel.RetryableJoinError(&channel.APIError{StatusCode: 400, Code: "ClientLimitExceededException", Message: "the maximum number of viewers connected to the session"}) ||
		!channel.RetryableJoinError(&channel.APIError{StatusCode: 503}) || channel.RetryableJoinError(&channel.APIError{StatusCode: 403}) {
		t.Error("RetryableJoinError does not follow the official test page")
	}
}
