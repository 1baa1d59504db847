package main

// The flag framework every command uses: a *flag.FlagSet per command (and
// per subcommand) made by newFlagSet and parsed by parseFlags or parseArgs.
// On top of package flag it gives
//
//   - flags before and after positional arguments (`channel create y
//     --message-ttl 30s` and `channel create --message-ttl 30s y`), with
//     "--" ending the flags;
//   - help that prints flags as --flag (as the README and the aws CLI write
//     them), on stdout when asked for (--help, -h, `kvswebrtc help CMD`),
//     with the shared AWS flags in a group of their own;
//   - parse errors that name flags as --flag, followed by the synopsis and
//     a pointer to --help instead of the whole flag list;
//   - what completion needs to know (flags, their value names and choices).
//
// A command written as
//
//	fs := newFlagSet("name", "SYNOPSIS", stderr)
//	x := fs.String("x", "", "usage")
//	if code, ok := parseFlags(fs, args, stderr); !ok {
//		return code
//	}
//
// gets all of it with nothing else to do: newFlagSet finds stdout (for help)
// and the completion hook through the stderr writer the dispatcher hands
// every command (a *cliStderr).

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// cliStderr is the stderr the dispatcher passes to commands: writes go to
// the real stderr; newFlagSet reads stdout (where requested help goes) and
// the capture hook from it.
type cliStderr struct {
	io.Writer
	stdout io.Writer
	// capture, when set, is handed every FlagSet newFlagSet makes (for
	// completion and the docs); the command is run with --help.
	capture func(*flag.FlagSet)
}

// fsMeta is what the CLI knows about a FlagSet beyond package flag.
type fsMeta struct {
	cmd      string    // "master", "channel create"
	synopsis string    // what follows "Usage: kvswebrtc CMD "
	help     io.Writer // where requested help goes; nil: the FlagSet's output
	mu       sync.Mutex
	groups   map[string]string   // flag name -> group heading; absent: the command's own flags
	headings []string            // the group headings, in the order they were set
	hidden   map[string]bool     // aliases kept for old command lines, not shown
	choices  map[string][]string // the values a flag takes, for completion
}

var metas sync.Map // *flag.FlagSet -> *fsMeta

// metaOf returns the metadata of fs, creating empty metadata for a FlagSet
// that newFlagSet did not make.
func metaOf(fs *flag.FlagSet) *fsMeta {
	if m, ok := metas.Load(fs); ok {
		return m.(*fsMeta)
	}
	m, _ := metas.LoadOrStore(fs, &fsMeta{cmd: strings.TrimPrefix(fs.Name(), "kvswebrtc "), synopsis: "[flags]"})
	return m.(*fsMeta)
}

// setGroup puts the named flags of fs under a heading of their own in the help.
func setGroup(fs *flag.FlagSet, heading string, names ...string) {
	m := metaOf(fs)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.groups == nil {
		m.groups = map[string]string{}
	}
	for _, n := range names {
		m.groups[n] = heading
	}
	if !slices.Contains(m.headings, heading) {
		m.headings = append(m.headings, heading)
	}
}

// hideFlag leaves the named flags out of the help and completion (aliases
// that old command lines use).
func hideFlag(fs *flag.FlagSet, names ...string) {
	m := metaOf(fs)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hidden == nil {
		m.hidden = map[string]bool{}
	}
	for _, n := range names {
		m.hidden[n] = true
	}
}

// setChoices records the values flag name takes, for completion.
func setChoices(fs *flag.FlagSet, name string, values ...string) {
	m := metaOf(fs)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.choices == nil {
		m.choices = map[string][]string{}
	}
	m.choices[name] = values
}

// newFlagSet returns a FlagSet for command name ("serve", "channel create")
// whose usage is "Usage: kvswebrtc NAME SYNOPSIS" and the flags as --flag.
// Errors go to stderr; help asked for goes to stdout when stderr is the
// dispatcher's. Parse it with parseFlags or parseArgs.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("kvswebrtc "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	m := &fsMeta{cmd: name, synopsis: synopsis}
	if ce, ok := stderr.(*cliStderr); ok {
		m.help = ce.stdout
		if ce.capture != nil {
			defer ce.capture(fs)
		}
	}
	metas.Store(fs, m)
	fs.Usage = func() { printHelp(fs.Output(), fs) }
	return fs
}

// parseFlags parses args, flags and no positional argument, and returns
// (-1, true) to continue, or the exit code to return: 0 after --help, 2 on
// a bad flag or a stray argument (with a message on stderr).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (int, bool) {
	pos, code, ok := parseArgs(fs, args, stderr)
	if !ok {
		return code, false
	}
	if len(pos) > 0 {
		usageErr(stderr, fs, fmt.Sprintf("unexpected argument %q", pos[0]))
		return 2, false
	}
	return -1, true
}

// parseArgs parses args with flags before, between and after the
// positional arguments, which it returns in order; every argument after a
// "--" is positional. code and ok are as parseFlags'.
func parseArgs(fs *flag.FlagSet, args []string, stderr io.Writer) (pos []string, code int, ok bool) {
	usage := fs.Usage
	out := fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	defer func() {
		fs.Usage = usage
		fs.SetOutput(out)
	}()
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			w := metaOf(fs).help
			if w == nil {
				w = out
			}
			printHelp(w, fs)
			return nil, 0, false
		}
		if err != nil {
			usageErr(stderr, fs, dashdash(err.Error()))
			return nil, 2, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, -1, true
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), -1, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageErr prints a command-line error, the synopsis and where the full help is.
func usageErr(stderr io.Writer, fs *flag.FlagSet, msg string) {
	m := metaOf(fs)
	fmt.Fprintf(stderr, "%s: %s\n", fs.Name(), msg)
	first, _, _ := strings.Cut(m.synopsis, "\n")
	fmt.Fprintf(stderr, "Usage: %s %s\n", fs.Name(), first)
	fmt.Fprintf(stderr, "Run '%s --help' for its flags.\n", fs.Name())
}

// flagNameRe finds the flag names in package flag's error messages, which
// spell them with one dash.
var flagNameRe = regexp.MustCompile(`(defined: |for flag |for |argument: )-([A-Za-z0-9][\w.-]*)`)

// dashdash rewrites package flag's "-name" as "--name".
func dashdash(msg string) string { return flagNameRe.ReplaceAllString(msg, "$1--$2") }

// helpWidth is the width help text is wrapped to.
const helpWidth = 80

// printHelp writes the help of fs: usage line, the command's summary, its
// flags, then the grouped (shared) flags under their headings.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	m := metaOf(fs)
	first, more, _ := strings.Cut(m.synopsis, "\n")
	fmt.Fprintf(w, "Usage: %s %s\n", fs.Name(), first)
	if c := commands[m.cmd]; c != nil && c.summary != "" {
		fmt.Fprintf(w, "\n%s\n", wrap(upperFirst(c.summary)+".", 0))
	}
	if more = strings.Trim(more, "\n"); more != "" {
		fmt.Fprintf(w, "\n%s\n", more)
	}
	var own []*flag.Flag
	grouped := map[string][]*flag.Flag{}
	m.mu.Lock()
	headings := slices.Clone(m.headings)
	fs.VisitAll(func(f *flag.Flag) {
		if m.hidden[f.Name] {
			return
		}
		h, ok := m.groups[f.Name]
		if !ok {
			own = append(own, f)
			return
		}
		grouped[h] = append(grouped[h], f)
	})
	m.mu.Unlock()
	if len(own) > 0 {
		fmt.Fprintf(w, "\nFlags:\n")
		for _, f := range own {
			printFlag(w, f)
		}
	}
	for _, h := range headings {
		if len(grouped[h]) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", h)
		for _, f := range grouped[h] {
			printFlag(w, f)
		}
	}
}

// printFlag writes one flag: "  --name VALUE", then its usage indented.
func printFlag(w io.Writer, f *flag.Flag) {
	name, usage := flag.UnquoteUsage(f)
	line := "  --" + f.Name
	if name != "" {
		line += " " + name
	}
	if !zeroDefault(f) {
		usage += fmt.Sprintf(" (default %s)", shortDuration(f.DefValue))
	}
	fmt.Fprintln(w, line)
	fmt.Fprintln(w, wrap(usage, 8))
}

// shortDuration drops the zero units time.Duration's String leaves at the
// end: "1m0s" is "1m", "1h0m0s" "1h"; other values are returned as they are.
func shortDuration(v string) string {
	if _, err := time.ParseDuration(v); err != nil || v == "0s" {
		return v
	}
	for _, z := range []string{"0s", "0m"} {
		if strings.HasSuffix(v, z) && len(v) > len(z) && !strings.ContainsAny(v[len(v)-len(z)-1:len(v)-len(z)], "0123456789.") {
			v = strings.TrimSuffix(v, z)
		}
	}
	return v
}

// zeroDefault reports whether f's default is its type's zero value, which
// the help does not print.
func zeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return true
	}
	return false
}

// wrap breaks s into lines of at most helpWidth columns, each indented by
// indent spaces.
func wrap(s string, indent int) string {
	pad := strings.Repeat(" ", indent)
	var b strings.Builder
	for i, para := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		line := pad
		for _, word := range strings.Fields(para) {
			if len(line) > indent && len(line)+1+len(word) > helpWidth {
				b.WriteString(line)
				b.WriteByte('\n')
				line = pad
			}
			if len(line) > indent {
				line += " "
			}
			line += word
		}
		b.WriteString(line)
	}
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// outputValue is the value of --output: one of the formats a command prints.
type outputValue struct {
	format  string
	formats []string
}

func (o *outputValue) String() string { return o.format }

func (o *outputValue) Set(s string) error {
	for _, f := range o.formats {
		if s == f {
			o.format = s
			return nil
		}
	}
	return fmt.Errorf("want %s", orList(o.formats))
}

// Get returns the format, as a flag.Getter.
func (o *outputValue) Get() any { return o.format }

// outputFlag registers --output for a command that prints data, as the aws
// CLI's: formats are what the command can print, the first its default.
// As with the aws CLI, AWS_DEFAULT_OUTPUT sets the format when --output is
// not given, if it names one the command prints (it is shared with the aws
// CLI, whose yaml this CLI does not write: another value is passed over).
// The returned pointer holds the format after parsing.
func outputFlag(fs *flag.FlagSet, formats ...string) *string {
	o := &outputValue{format: formats[0], formats: formats}
	fs.Var(o, "output", "output `FORMAT`: "+orList(formats))
	setChoices(fs, "output", formats...)
	// After fs.Var, which keeps the first format as the default --help shows.
	if env := os.Getenv("AWS_DEFAULT_OUTPUT"); slices.Contains(formats, env) {
		o.format = env
	}
	return &o.format
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
