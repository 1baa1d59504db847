// Package awsjson sends the signed AWS JSON calls that aws-sdk-go-v2 has
// no client for in this module (the KVS HTTPS data plane: GetIceServerConfig
// and JoinStorageSession in package channel; ListFragments,
// GetMediaForFragmentList and GetMedia in package archive) and reads their
// error answers, so that both packages sign and decode them the same way.
// Each package keeps its own exported errors; this one holds only what
// they share.
package awsjson
