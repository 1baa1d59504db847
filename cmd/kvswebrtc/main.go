package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// command is one command, or one subcommand ("channel create"). Each lives
// in its own file and registers itself from an init function; its flags
// come from newFlagSet and parseFlags / parseArgs (cli.go).
type command struct {
	// name is the command's name, or for a subcommand its parent's name, a
	// space and its own: "channel create".
	name string
	// summary is the one line the help lists the command with.
	summary string
	// run executes the command with the arguments after its name and returns
	// the exit code: 0 success, 1 failure, 2 bad usage. A parent command
	// whose subcommands do the work leaves it nil.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	// hidden leaves the command out of the help (the completion helper).
	hidden bool
}

var commands = map[string]*command{}

// register adds a command or subcommand; it panics on a duplicate name.
// A subcommand's parent need not be registered first.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("kvswebrtc: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// children returns the names (last word) of the subcommands of parent ("" for
// the top level), sorted, hidden ones left out unless all is set.
func children(parent string, all bool) []string {
	var names []string
	for full, c := range commands {
		if c.hidden && !all {
			continue
		}
		rest, ok := strings.CutPrefix(full, parent+" ")
		if parent == "" {
			rest, ok = full, true
		}
		if ok && !strings.Contains(rest, " ") {
			names = append(names, rest)
		}
	}
	sort.Strings(names)
	return names
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// sharedValueFlags are the flags, each taking a value, that may also come
// before the command's name, as the aws CLI's global options do:
// `kvswebrtc --region eu-west-1 channel list`. They are moved after it.
var sharedValueFlags = map[string]bool{
	"endpoint-url": true, "region": true, "profile": true, "output": true,
	"iot-credential-endpoint": true, "iot-role-alias": true, "iot-thing-name": true,
	"iot-cert": true, "iot-key": true, "iot-ca": true,
}

// run dispatches args to a command and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if _, ok := stderr.(*cliStderr); !ok {
		stderr = &cliStderr{Writer: stderr, stdout: stdout}
	}
	var moved []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-h", "-help", "--help":
			usage(stdout)
			return 0
		case "--version", "-version":
			return runVersion(ctx, args[1:], stdout, stderr)
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if !sharedValueFlags[name] {
			fmt.Fprintf(stderr, "kvswebrtc: %s before the command is not a shared flag (%s); put it after the command's name\n", args[0], sharedList())
			return 2
		}
		n := 2
		if hasValue {
			n = 1
		}
		if len(args) < n {
			fmt.Fprintf(stderr, "kvswebrtc: flag needs an argument: --%s\n", name)
			return 2
		}
		moved = append(moved, args[:n]...)
		args = args[n:]
	}
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "help" {
		return runHelp(ctx, args[1:], stdout, stderr)
	}
	c, path, rest := lookup(args)
	if c == nil {
		fmt.Fprintf(stderr, "kvswebrtc: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if c.run == nil {
		return parentUsage(path, rest, stdout, stderr)
	}
	return c.run(ctx, append(rest, moved...), stdout, stderr)
}

// lookup finds the deepest command that args name and returns it, its full
// name and the arguments after its name; nil when args[0] is no command.
func lookup(args []string) (c *command, path string, rest []string) {
	c = commands[args[0]]
	if c == nil {
		return nil, "", nil
	}
	path, rest = args[0], args[1:]
	for len(rest) > 0 {
		sub := commands[path+" "+rest[0]]
		if sub == nil {
			break
		}
		c, path, rest = sub, path+" "+rest[0], rest[1:]
	}
	return c, path, rest
}

// parentUsage handles a parent command given no (known) subcommand: its help
// for --help, else a usage error.
func parentUsage(path string, rest []string, stdout, stderr io.Writer) int {
	if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "-help") {
		printParentHelp(stdout, path)
		return 0
	}
	if len(rest) == 0 {
		fmt.Fprintf(stderr, "kvswebrtc %s: missing subcommand (%s)\n\n", path, orList(children(path, false)))
	} else {
		fmt.Fprintf(stderr, "kvswebrtc %s: unknown subcommand %q (want %s)\n\n", path, rest[0], orList(children(path, false)))
	}
	printParentHelp(stderr, path)
	return 2
}

// runHelp is `kvswebrtc help [COMMAND [SUBCOMMAND]]`.
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stdout)
		return 0
	}
	c, path, rest := lookup(args)
	if c == nil || len(rest) > 0 {
		fmt.Fprintf(stderr, "kvswebrtc help: unknown command %q\n\n", strings.Join(args, " "))
		usage(stderr)
		return 2
	}
	if c.run == nil {
		printParentHelp(stdout, path)
		return 0
	}
	return c.run(ctx, []string{"--help"}, stdout, stderr)
}

func sharedList() string {
	names := make([]string, 0, len(sharedValueFlags))
	for n := range sharedValueFlags {
		names = append(names, "--"+n)
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}

// usage writes the top-level help.
func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: kvswebrtc <command> [flags] [arguments]

Amazon Kinesis Video Streams with WebRTC from the command line: masters,
viewers, channels and signed URLs against KVS, and a local KVS-compatible
service to run it all on one machine with no AWS account.

Commands:
`)
	printCommandList(w, "")
	fmt.Fprint(w, `  help        this help, or a command's: kvswebrtc help <command>

`+wrap("Flags go before or after a command's arguments, as --flag value or --flag=value. "+
		"Commands that talk to KVS find credentials, region and endpoint as the aws CLI does "+
		"(--profile, --region, --endpoint-url, the AWS_* environment variables, ~/.aws/config; "+
		"the region defaults to us-west-2), or take temporary credentials from the AWS IoT "+
		"credentials provider with a device certificate (--iot-*). `kvswebrtc serve` prints the lines "+
		"that point them, and the aws CLI, at the local service.", 0)+`

Run 'kvswebrtc <command> --help' for a command's flags.
`)
}

// printCommandList writes the subcommands of parent ("" for the commands)
// with their summaries.
func printCommandList(w io.Writer, parent string) {
	for _, n := range children(parent, false) {
		full := n
		if parent != "" {
			full = parent + " " + n
		}
		fmt.Fprintf(w, "  %-11s %s\n", n, strings.TrimSpace(wrap(commands[full].summary, 14)))
	}
}

// printParentHelp writes the help of a command made of subcommands.
func printParentHelp(w io.Writer, path string) {
	fmt.Fprintf(w, "Usage: kvswebrtc %s <subcommand> [flags] [arguments]\n", path)
	if c := commands[path]; c != nil && c.summary != "" {
		fmt.Fprintf(w, "\n%s\n", wrap(upperFirst(c.summary)+".", 0))
	}
	fmt.Fprintf(w, "\nSubcommands:\n")
	printCommandList(w, path)
	fmt.Fprintf(w, "\nRun 'kvswebrtc %s <subcommand> --help' for its flags.\n", path)
}
