package peer

import (
	"context"
	"errors"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/kvswebrtc/kvswebrtc/media"
)

// This file is the viewer's receive path: the tracks and data channel
// messages from the master.

// gotFirstFrame ends the time to first frame, at the first video frame
// that passed the key-frame gate.
func (v *Viewer) gotFirstFrame(f media.Frame) {
	v.mu.Lock()
	start := v.start
	v.mu.Unlock()
	d := f.Received.Sub(start)
	if d <= 0 {
		d = time.Since(start)
	}
	v.ttff.Store(int64(d))
	close(v.firstFrame)
	v.log.Info("peer: first frame", "after", d)
}

// track reads a received track until it ends: its frames, from the first
// key frame on, go to the counter, the configured sinks and OnFrame.
func (v *Viewer) track(track *webrtc.TrackRemote) {
	onTrack := handler(&v.hmu, &v.onTrack)
	if onTrack != nil {
		onTrack(track)
	}
	video := track.Kind() == webrtc.RTPCodecTypeVideo
	sinks := []media.Sink{&v.aCount}
	cfgSinks := v.cfg.AudioSinks
	if video {
		sinks = []media.Sink{&v.vCount}
		cfgSinks = v.cfg.VideoSinks
	}
	sinks = append(sinks, cfgSinks...)
	sinks = append(sinks, media.SinkFunc(func(f media.Frame) error {
		fn := handler(&v.hmu, &v.onFrame)
		if fn != nil {
			fn(f)
		}
		return nil
	}))
	gate := media.FromKeyframe(sinks...)
	v.mu.Lock()
	ctx := v.ctx
	v.mu.Unlock()
	v.goRun(func() {
		if err := media.Consume(ctx, track, gate); err != nil && !errors.Is(err, context.Canceled) {
			v.log.Debug("peer: track ended", "kind", track.Kind(), "err", err)
		}
	})
}

// dataMessage hands a data channel message (counted by the link) to
// OnDataMessage.
func (v *Viewer) dataMessage(msg webrtc.DataChannelMessage) {
	f := handler(&v.hmu, &v.onData)
	if f != nil {
		f(msg)
	}
}
