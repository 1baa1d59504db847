package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/kvswebrtc/kvswebrtc/channel"
)

// failer returns the fail function of command name: it prints
// "kvswebrtc NAME: " and the message on stderr and returns exit code 2.
func failer(stderr io.Writer, name string) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, "kvswebrtc "+name+": "+format+"\n", a...)
		return 2
	}
}

// peerFlags are the flags master and viewer share: --channel, the AWS
// flags, --nat and --log-level, with their checks.
type peerFlags struct {
	cmd     string // "master", "viewer"
	fs      *flag.FlagSet
	stderr  io.Writer
	channel *string
	aws     awsFlags
	nat     func() (channel.NATTraversal, error)
	level   *string

	// What parse makes of --nat and --log-level.
	mode   channel.NATTraversal
	logger *slog.Logger
}

// newPeerFlags makes the FlagSet of command cmd ("master", "viewer") with
// the shared flags; the command adds its own.
func newPeerFlags(cmd string, stderr io.Writer) *peerFlags {
	p := &peerFlags{cmd: cmd, stderr: stderr}
	p.fs = newFlagSet(cmd, "--channel NAME [flags]", stderr)
	p.channel = p.fs.String("channel", "", "signaling channel `NAME` or ARN (required)")
	p.aws.register(p.fs)
	p.nat = natFlag(p.fs)
	p.level = p.fs.String("log-level", "warn", "log level: debug, info or warn")
	return p
}

// parse parses args as parseFlags does, then checks --channel (required),
// --nat, the command's own flags with check (nil: none) and --log-level,
// in that order. A failed check is printed after "kvswebrtc CMD: " and
// gives exit code 2.
func (p *peerFlags) parse(args []string, check func() error) (int, bool) {
	if code, ok := parseFlags(p.fs, args, p.stderr); !ok {
		return code, false
	}

	if *p.channel == "" {
		return p.fail("--channel is required (a signaling channel name or ARN)"), false
	}
	var err error
	if p.mode, err = p.nat(); err != nil {
		return p.fail("%v", err), false
	}
	if check != nil {
		if err := check(); err != nil {
			return p.fail("%v", err), false
		}
	}
	if p.logger, err = newLogger(*p.level, p.stderr); err != nil {
		return p.fail("%v", err), false
	}
	return -1, true
}

// fail prints "kvswebrtc CMD: " and the message on stderr and returns exit
// code 2.
func (p *peerFlags) fail(format string, a ...any) int {
	return failer(p.stderr, p.cmd)(format, a...)
}
