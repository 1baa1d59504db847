// Package media moves encoded media between files and pion/webrtc tracks.
//
// # Sources
//
// A [Source] yields encoded samples (one video frame or one audio packet
// each) from a file: VP8, VP9 or AV1 in IVF ([NewIVF]), H.264 Annex-B
// ([NewH264]) or Opus in Ogg ([NewOgg]). [Open] picks the reader from the
// file's extension. With [Options].Loop a source starts over at the end of
// the file, so it never runs dry. A source does not pace itself:
// [Source.Next] returns as fast as the file can be read, with each sample's Duration set.
//
// [DefaultVideo], [DefaultAudio] and [DefaultH264] are sources over small
// clips embedded in the package (a test pattern and a 440 Hz tone), so that a
// master can send media with no file at hand.
//
// # Sending
//
// A [Broadcaster] reads one source in real time and writes every sample to
// each attached track: one read, many viewers. Tracks are added and removed
// while it runs. [Stream] is the one-call form for a fixed set of tracks.
// Pacing follows the sample durations against one start time, so it does not
// drift however long it runs. A video track added while it runs starts at the
// next key frame or, with fast start ([Broadcaster.SetFastStart]), at once
// with the samples since the last one. Any [SampleWriter] can be attached; a
// *webrtc.TrackLocalStaticSample is one.
//
// # Receiving
//
// [Consume] reads RTP packets from a received track (a *webrtc.TrackRemote),
// puts them back in order, rebuilds complete frames and hands each to its
// sinks. A [Recorder] writes the frames to a file a player opens (IVF, Ogg or
// Annex-B, by extension); a [Counter] counts frames and bytes and reports the
// first frame, the moment "time to first frame" ends; [SinkFunc] turns a
// function into a sink, and [FromKeyframe] holds frames back from sinks
// until the first key frame.
package media
