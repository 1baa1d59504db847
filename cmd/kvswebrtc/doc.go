// Command kvswebrtc is the kvswebrtc CLI: `kvswebrtc <command> [flags]`.
//
// Commands:
//
//	demo     the whole thing on one machine: an embedded local KVS service, a
//	         channel, a master streaming the embedded clip and N viewers, with
//	         each viewer's time to first frame and bitrate (--web adds the page)
//	serve    the local KVS-compatible signaling service (control plane, HTTPS
//	         data plane, WSS signaling, STUN/TURN); --tls for https/wss
//	master   a pion master on a channel (KVS or --endpoint-url), sending a
//	         file or the embedded clip to up to 10 viewers
//	viewer   a pion viewer: live stats, --record to a file, a summary with time
//	         to first frame; exit code 1 when no media arrived
//	channel  create, describe, list or delete signaling channels
//	sign     print a presigned signaling URL, credentials from the AWS chain
//	web      the browser test page on http://localhost:3001
//
// Commands that talk to KVS take their credentials from the standard AWS
// chain (environment, profiles, SSO, IMDS) and their endpoint from
// --endpoint-url or AWS_ENDPOINT_URL; without either they talk to real AWS.
// Run `kvswebrtc help <command>` for a command's flags. The CLI holds no
// logic beyond flags and output: everything it does is in the packages.
package main
