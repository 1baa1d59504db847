// Package archive reads back what a Kinesis video stream recorded (for
// example through WebRTC ingestion, peer.MasterConfig.Ingestion):
// ListFragments and GetMediaForFragmentList of the kinesisvideoarchivedmedia
// API and GetMedia of the kinesisvideomedia API, each on the endpoint that
// GetDataEndpoint returns for it (docs/protocol.md, "Streams and storage").
//
// Their aws-sdk-go-v2 modules are not used: the calls are built with
// net/http and signed with aws-sdk-go-v2's aws/signer/v4 (service
// kinesisvideo), like the HTTPS data plane of package channel. The media
// comes as KVS sends it: one Matroska (MKV) chunk per fragment, each an
// EBML header and a Segment with the fragment's tracks, its tags (fragment
// number, server and producer timestamps) and one Cluster. ffmpeg and
// ffprobe read the concatenated chunks as one file.
//
// Errors are package-level values tested with errors.Is; an answer of the
// service is an *APIError. No error holds a secret key, a session token or
// a signature.
package archive
