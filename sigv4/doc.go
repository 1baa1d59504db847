// Package sigv4 presigns Amazon Kinesis Video Streams signaling WebSocket URLs
// and verifies them on the service side.
//
// A [Presigner] turns a signaling endpoint, its query parameters and a time
// into the signed wss:// URL that KVS accepts, byte for byte the URL that the
// official JavaScript SDK's SigV4RequestSigner.getSignedURL produces.
// Credentials come from an [aws.CredentialsProvider], so refreshing and cached
// providers from aws-sdk-go-v2 work; [StaticCredentials] covers a fixed key pair.
//
// A [Verifier] is the other half, for a KVS-compatible service: it checks a
// presigned URL ([Verifier.VerifyPresigned]) or a request signed with an
// Authorization header ([Verifier.VerifyHeaders]) and reports each failure as
// its own error value, to be tested with errors.Is.
//
// Neither half ever puts a secret key, a session token or a signature into an
// error message.
package sigv4
