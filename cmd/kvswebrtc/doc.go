// Command kvswebrtc is the kvswebrtc CLI: `kvswebrtc <command> [flags] [arguments]`.
//
// Commands:
//
//	demo        the whole thing on one machine: an embedded local KVS service, a
//	            channel, a master streaming the embedded clip and N viewers, with
//	            each viewer's time to first frame and bitrate (--web adds the page)
//	serve       the local KVS-compatible service (control plane, HTTPS data
//	            plane, WSS signaling, STUN/TURN, streams); --tls for https/wss,
//	            --iot for the AWS IoT credentials provider
//	master      a pion master on a channel (KVS or --endpoint-url), sending a
//	            camera, a file or the embedded clip to up to 10 viewers
//	viewer      a pion viewer: live stats, --record to a file, a summary with time
//	            to first frame; exit code 1 when no media arrived
//	channel     create, describe, list, delete signaling channels; their storage
//	stream      create, describe, list, delete Kinesis video streams
//	fragments   a stream's recorded fragments
//	sign        print a presigned signaling URL, credentials from the AWS chain
//	web         the browser test page on http://localhost:3001
//	camera      the embedded clip as an RTSP camera
//	version     the build's module version, commit and Go version
//	completion  a bash, zsh or fish completion script
//
// Commands that talk to KVS find credentials, region and endpoint as the
// aws CLI does: --profile, --region, --endpoint-url, the AWS_* environment
// variables and ~/.aws (without an endpoint they talk to real AWS), or take
// temporary credentials from the AWS IoT credentials provider with a device
// certificate (--iot-*, package iotcreds). Flags go before or after the
// arguments. Run `kvswebrtc help <command>` for a command's flags; the same
// text is in docs/cli.md.
//
// Every command is a *flag.FlagSet made by newFlagSet and parsed by
// parseFlags or parseArgs (cli.go), registered from an init function with
// register; a subcommand registers as "parent sub". The CLI holds no logic
// beyond flags and output: everything it does is in the packages.
package main
