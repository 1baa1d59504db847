package testcam_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kvswebrtc/kvswebrtc/internal/testcam"
	"github.com/kvswebrtc/kvswebrtc/media"
)

// A camera with a password, read back with media.OpenURL: its first video
// sample is a key frame.
func Example() {
	cam, err := testcam.Start(testcam.Config{User: "admin", Pass: "secret"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cam.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := media.OpenURL(ctx, cam.URL(), media.URLOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	s, err := st.Video.Next(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	idr := false
	for i := 0; i+4 < len(s.Data); i++ { // an Annex-B start code, then NAL type 5
		if s.Data[i] == 0 && s.Data[i+1] == 0 && s.Data[i+2] == 1 && s.Data[i+3]&0x1f == 5 {
			idr = true
		}
	}
	fmt.Println(st.Video.Codec().MimeType, st.Audio.Codec().MimeType, "key frame:", idr)
	// Output: video/H264 audio/opus key frame: true
}
