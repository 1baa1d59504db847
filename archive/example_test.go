package archive_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo"
	"github.com/aws/aws-sdk-go-v2/service/kinesisvideo/types"

	"github.com/kvswebrtc/kvswebrtc/archive"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/media"
	"github.com/kvswebrtc/kvswebrtc/peer"
)

// Record a master's H.264 + Opus clip through WebRTC ingestion on the local
// service, then list the stored fragments and read them back as MKV.
func ExampleClient_ListFragments() {
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	awsCfg := srv.AWSConfig()

	// A channel whose media storage is a stream that keeps its media.
	kv := kinesisvideo.NewFromConfig(awsCfg)
	channelARN, _ := srv.CreateChannel(ctx, "doorbell")
	stream, err := kv.CreateStream(ctx, &kinesisvideo.CreateStreamInput{StreamName: aws.String("doorbell"), DataRetentionInHours: aws.Int32(24)})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := kv.UpdateMediaStorageConfiguration(ctx, &kinesisvideo.UpdateMediaStorageConfigurationInput{
		ChannelARN:                aws.String(channelARN),
		MediaStorageConfiguration: &types.MediaStorageConfiguration{Status: types.MediaStorageConfigurationStatusEnabled, StreamARN: stream.StreamARN},
	}); err != nil {
		log.Fatal(err)
	}

	// A master in ingestion mode records for a few seconds.
	m, err := peer.NewMaster(ctx, peer.MasterConfig{
		ChannelConfig: peer.ChannelConfig{AWS: awsCfg, Channel: "doorbell"},
		Video:         media.DefaultH264(media.Options{Loop: true}),
		Audio:         media.DefaultAudio(media.Options{Loop: true}),
		Ingestion:     peer.IngestAuto,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	ac, err := archive.New(awsCfg, archive.Options{})
	if err != nil {
		log.Fatal(err)
	}
	var list []archive.Fragment
	for deadline := time.Now().Add(20 * time.Second); len(list) < 2 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		list, err = ac.ListFragments(ctx, "doorbell", nil)
		if err != nil {
			log.Fatal(err)
		}
	}
	m.Close()
	// The first fragment may start at a key frame the master sent from its
	// fast-start cache, so the second is the one with a whole key-frame
	// interval of the clip (1 s).
	fmt.Println("fragments of about a second:", len(list) >= 2 && list[1].Length > 900*time.Millisecond)

	mkv, err := ac.GetMediaForFragmentList(ctx, "doorbell", []string{list[0].Number, list[1].Number})
	if err != nil {
		log.Fatal(err)
	}
	defer mkv.Close()
	head := make([]byte, 4)
	io.ReadFull(mkv, head)
	fmt.Printf("MKV: %x\n", head)
	// Output:
	// fragments of about a second: true
	// MKV: 1a45dfa3
}
