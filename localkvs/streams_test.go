package localkvs_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

// TestStreamAPI runs every stream and media-storage operation of the
// aws-sdk-go-v2 kinesisvideo client against the service, and checks that
// they persist across a restart.
func TestStreamAPI(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, localkvs.Config{DataDir: dir})
	kv := devClient(srv)
	ctx := context.Background()

	created, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{
		StreamName: aws.String("cam-1"), DataRetentionInHours: aws.Int32(24), MediaType: aws.String("video/h264,audio/opus"),
		DeviceName: aws.String("door"), Tags: map[string]string{"team": "video"},
	})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	arn := aws.ToString(created.StreamARN)
	if want := "arn:aws:kinesisvideo:us-west-2:000000000000:stream/cam-1/"; len(arn) <= len(want) || arn[:len(want)] != want {
		t.Fatalf("StreamARN %q", arn)
	}
	if _, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("cam-1")}); !isCode(err, "ResourceInUseException") {
		t.Errorf("CreateStream again: %v, want ResourceInUseException", err)
	}
	if _, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("no retention")}); !isCode(err, "InvalidArgumentException") {
		t.Errorf("CreateStream with a bad name: %v, want InvalidArgumentException", err)
	}
	for _, n := range []string{"cam-2", "cam-3", "other"} {
		if _, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(n)}); err != nil {
			t.Fatalf("CreateStream %s: %v", n, err)
		}
	}

	d, err := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	if err != nil {
		t.Fatalf("DescribeStream: %v", err)
	}
	si := d.StreamInfo
	if aws.ToString(si.StreamARN) != arn || si.Status != types.StatusActive || aws.ToInt32(si.DataRetentionInHours) != 24 ||
		aws.ToString(si.DeviceName) != "door" || aws.ToString(si.MediaType) != "video/h264,audio/opus" || si.CreationTime == nil || aws.ToString(si.Version) == "" {
		t.Errorf("DescribeStream: %+v", si)
	}
	if _, err := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("missing")}); !isCode(err, "ResourceNotFoundException") {
		t.Errorf("DescribeStream missing: %v", err)
	}

	// ListStreams: BEGINS_WITH and pagination.
	var names []string
	p := kinesisvideo.NewListStreamsPaginator(kv, &kinesisvideo.ListStreamsInput{
		MaxResults:          aws.Int32(2),
		StreamNameCondition: &types.StreamNameCondition{ComparisonOperator: types.ComparisonOperatorBeginsWith, ComparisonValue: aws.String("cam")},
	})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListStreams: %v", err)
		}
		pages++
		for _, s := range page.StreamInfoList {
			names = append(names, aws.ToString(s.StreamName))
		}
	}
	if pages != 2 || len(names) != 3 || names[0] != "cam-1" || names[2] != "cam-3" {
		t.Errorf("ListStreams: %d pages, %v", pages, names)
	}

	// UpdateStream, UpdateDataRetention (with versions).
	version := si.Version
	if _, err := kv.UpdateStream(ctx, &kinesisvideo.UpdateStreamInput{StreamARN: aws.String(arn), CurrentVersion: aws.String("nope"), DeviceName: aws.String("x")}); !isCode(err, "VersionMismatchException") {
		t.Errorf("UpdateStream with a wrong version: %v", err)
	}
	if _, err := kv.UpdateStream(ctx, &kinesisvideo.UpdateStreamInput{StreamARN: aws.String(arn), CurrentVersion: version, DeviceName: aws.String("porch")}); err != nil {
		t.Fatalf("UpdateStream: %v", err)
	}
	d, _ = kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(arn)})
	if _, err := kv.UpdateDataRetention(ctx, &kinesisvideo.UpdateDataRetentionInput{
		StreamName: aws.String("cam-1"), CurrentVersion: d.StreamInfo.Version,
		Operation: types.UpdateDataRetentionOperationIncreaseDataRetention, DataRetentionChangeInHours: aws.Int32(24),
	}); err != nil {
		t.Fatalf("UpdateDataRetention: %v", err)
	}
	d, _ = kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(arn)})
	if aws.ToString(d.StreamInfo.DeviceName) != "porch" || aws.ToInt32(d.StreamInfo.DataRetentionInHours) != 48 {
		t.Errorf("after the updates: %+v", d.StreamInfo)
	}
	if _, err := kv.UpdateDataRetention(ctx, &kinesisvideo.UpdateDataRetentionInput{
		StreamName: aws.String("cam-1"), CurrentVersion: d.StreamInfo.Version,
		Operation: types.UpdateDataRetentionOperationDecreaseDataRetention, DataRetentionChangeInHours: aws.Int32(49),
	}); !isCode(err, "InvalidArgumentException") {
		t.Errorf("UpdateDataRetention below zero: %v", err)
	}

	// Tags.
	if _, err := kv.TagStream(ctx, &kinesisvideo.TagStreamInput{StreamARN: aws.String(arn), Tags: map[string]string{"env": "test"}}); err != nil {
		t.Fatalf("TagStream: %v", err)
	}
	if _, err := kv.UntagStream(ctx, &kinesisvideo.UntagStreamInput{StreamName: aws.String("cam-1"), TagKeyList: []string{"team"}}); err != nil {
		t.Fatalf("UntagStream: %v", err)
	}
	tags, err := kv.ListTagsForStream(ctx, &kinesisvideo.ListTagsForStreamInput{StreamARN: aws.String(arn)})
	if err != nil || len(tags.Tags) != 1 || tags.Tags["env"] != "test" {
		t.Errorf("ListTagsForStream: %v %v", tags, err)
	}

	// GetDataEndpoint.
	for _, api := range []types.APIName{types.APINameGetMedia, types.APINameListFragments, types.APINameGetMediaForFragmentList} {
		e, err := kv.GetDataEndpoint(ctx, &kinesisvideo.GetDataEndpointInput{StreamName: aws.String("cam-1"), APIName: api})
		if err != nil || aws.ToString(e.DataEndpoint) != srv.URL() {
			t.Errorf("GetDataEndpoint %s: %v %v", api, e, err)
		}
	}

	// Media storage configuration.
	ch := mustCreate(t, srv, "door")
	other := mustCreate(t, srv, "yard")
	ms, err := kv.DescribeMediaStorageConfiguration(ctx, &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelName: aws.String("door")})
	if err != nil || ms.MediaStorageConfiguration.Status != types.MediaStorageConfigurationStatusDisabled {
		t.Errorf("DescribeMediaStorageConfiguration before: %+v %v", ms, err)
	}
	if _, err := kv.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{
		ChannelARN: aws.String(ch),
		SingleMasterChannelEndpointConfiguration: &types.SingleMasterChannelEndpointConfiguration{
			Protocols: []types.ChannelProtocol{types.ChannelProtocolWebrtc}, Role: types.ChannelRoleMaster,
		},
	}); !isCode(err, "InvalidArgumentException") {
		t.Errorf("WEBRTC endpoint without storage: %v, want InvalidArgumentException", err)
	}
	enable := func(channel, stream string) error {
		_, err := kv.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
			ChannelARN: aws.String(channel),
			MediaStorageConfiguration: &types.MediaStorageConfiguration{
				Status: types.MediaStorageConfigurationStatusEnabled, StreamARN: aws.String(stream),
			},
		})
		return err
	}
	noRetention, _ := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("other")})
	if err := enable(ch, aws.ToString(noRetention.StreamInfo.StreamARN)); !isCode(err, "NoDataRetentionException") {
		t.Errorf("enable with a stream without retention: %v, want NoDataRetentionException", err)
	}
	if err := enable(ch, arn); err != nil {
		t.Fatalf("UpdateMediaStorageConfiguration: %v", err)
	}
	if err := enable(other, arn); !isCode(err, "ResourceInUseException") {
		t.Errorf("a second channel on the same stream: %v, want ResourceInUseException", err)
	}
	ms, err = kv.DescribeMediaStorageConfiguration(ctx, &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelARN: aws.String(ch)})
	if err != nil || ms.MediaStorageConfiguration.Status != types.MediaStorageConfigurationStatusEnabled || aws.ToString(ms.MediaStorageConfiguration.StreamARN) != arn {
		t.Errorf("DescribeMediaStorageConfiguration: %+v %v", ms, err)
	}
	ep, err := kv.GetSignalingChannelEndpoint(ctx, &kinesisvideo.GetSignalingChannelEndpointInput{
		ChannelARN: aws.String(ch),
		SingleMasterChannelEndpointConfiguration: &types.SingleMasterChannelEndpointConfiguration{
			Protocols: []types.ChannelProtocol{types.ChannelProtocolWss, types.ChannelProtocolHttps, types.ChannelProtocolWebrtc}, Role: types.ChannelRoleMaster,
		},
	})
	if err != nil || len(ep.ResourceEndpointList) != 3 || aws.ToString(ep.ResourceEndpointList[2].ResourceEndpoint) != srv.URL() {
		t.Errorf("GetSignalingChannelEndpoint WEBRTC: %+v %v", ep, err)
	}
	mapped, err := kv.DescribeMappedResourceConfiguration(ctx, &kinesisvideo.DescribeMappedResourceConfigurationInput{StreamARN: aws.String(arn)})
	if err != nil || len(mapped.MappedResourceConfigurationList) != 1 || aws.ToString(mapped.MappedResourceConfigurationList[0].ARN) != ch {
		t.Errorf("DescribeMappedResourceConfiguration: %+v %v", mapped, err)
	}

	// Everything above survives a restart.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv = start(t, localkvs.Config{DataDir: dir})
	kv = devClient(srv)
	d, err = kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamName: aws.String("cam-1")})
	if err != nil || aws.ToInt32(d.StreamInfo.DataRetentionInHours) != 48 {
		t.Fatalf("DescribeStream after a restart: %+v %v", d, err)
	}
	ms, err = kv.DescribeMediaStorageConfiguration(ctx, &kinesisvideo.DescribeMediaStorageConfigurationInput{ChannelARN: aws.String(ch)})
	if err != nil || aws.ToString(ms.MediaStorageConfiguration.StreamARN) != arn {
		t.Errorf("DescribeMediaStorageConfiguration after a restart: %+v %v", ms, err)
	}

	// Disable, delete.
	if _, err := kv.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
		ChannelARN:                aws.String(ch),
		MediaStorageConfiguration: &types.MediaStorageConfiguration{Status: types.MediaStorageConfigurationStatusDisabled},
	}); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if err := enable(other, arn); err != nil {
		t.Errorf("the stream is free once the first channel is disabled: %v", err)
	}
	if _, err := kv.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arn), CurrentVersion: aws.String("nope")}); !isCode(err, "VersionMismatchException") {
		t.Errorf("DeleteStream with a wrong version: %v", err)
	}
	if _, err := kv.DeleteStream(ctx, &kinesisvideo.DeleteStreamInput{StreamARN: aws.String(arn)}); err != nil {
		t.Fatalf("DeleteStream: %v", err)
	}
	if _, err := kv.DescribeStream(ctx, &kinesisvideo.DescribeStreamInput{StreamARN: aws.String(arn)}); !isCode(err, "ResourceNotFoundException") {
		t.Errorf("DescribeStream after DeleteStream: %v", err)
	}
	// The channel still names the deleted stream: a join fails, saying so.
	st, _, body := signedPost(t, srv, "/joinStorageSession", map[string]string{"channelArn": other}, localkvs.DevSecretAccessKey)
	if st != http.StatusNotFound {
		t.Errorf("join with a deleted stream: %d %s", st, body)
	}
}

// enableStorage gives channelARN a new stream (24 h retention) as its media
// storage, and returns the stream's ARN.
func enableStorage(t *testing.T, kv *kinesisvideo.Client, channelARN, stream string) string {
	t.Helper()
	ctx := context.Background()
	out, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String(stream), DataRetentionInHours: aws.Int32(24)})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	_, err = kv.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
		ChannelARN: aws.String(channelARN),
		MediaStorageConfiguration: &types.MediaStorageConfiguration{
			Status: types.MediaStorageConfigurationStatusEnabled, StreamARN: out.StreamARN,
		},
	})
	if err != nil {
		t.Fatalf("UpdateMediaStorageConfiguration: %v", err)
	}
	return aws.ToString(out.StreamARN)
}
