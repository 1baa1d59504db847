package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kvswebrtc/kvswebrtc/localkvs"
)

var update = flag.Bool("update", false, "rewrite the README's CLI section and docs/cli.md from the CLI's --help")

// The CLI tests below run the binary a user runs: built once, on first use.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// kvsBinary builds cmd/kvswebrtc (with the VCS stamps, as a release build)
// and returns its path.
func kvsBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "kvswebrtc-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "kvswebrtc")
		if runtime.GOOS == "windows" {
			binPath += ".exe"
		}
		out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cleanEnv is the environment of a user with no AWS configuration at all:
// the process environment without AWS_* variables, HOME in a temporary
// directory (no ~/.aws), instance metadata off.
func cleanEnv(t *testing.T) []string {
	t.Helper()
	home := t.TempDir()
	env := []string{"HOME=" + home, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(home, ".aws", "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, ".aws", "credentials")}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || k == "HOME" || k == "XDG_CACHE_HOME" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// binResult is what a run of the binary gave.
type binResult struct {
	code           int
	stdout, stderr string
}

// runBin runs the binary with env and args, for at most 60 s.
func runBin(t *testing.T, env []string, args ...string) binResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kvsBinary(t), args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := binResult{stdout: o.String(), stderr: e.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("running kvswebrtc %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("kvswebrtc %v did not end within 60 s; stdout:\n%s\nstderr:\n%s", args, r.stdout, r.stderr)
	}
	return r
}

// localService starts a local service in the test process for the binary
// to talk to.
func localService(t *testing.T) *localkvs.Server {
	t.Helper()
	srv, err := localkvs.Start(localkvs.Config{}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestFlagsAfterArguments: the README's own syntax works, flags after the
// channel name (issue 14, item 2), and before it, and with "=".
func TestFlagsAfterArguments(t *testing.T) {
	srv := localService(t)
	env := cleanEnv(t)
	ep := "--endpoint-url=" + srv.URL()
	for i, args := range [][]string{
		{"channel", "create", "after", "--message-ttl", "30s", ep},
		{"channel", "create", "--message-ttl", "30s", ep, "before"},
		{"channel", "create", ep, "--message-ttl=30s", "--", "dashdash"},
		{"--endpoint-url", srv.URL(), "channel", "create", "--message-ttl", "30s", "global"},
		{"channel", "create", "--channel-name", "awsstyle", "--message-ttl", "30s", ep}, // as aws kinesisvideo create-signaling-channel
	} {
		r := runBin(t, env, args...)
		if r.code != 0 || !strings.Contains(r.stdout, ":channel/") {
			t.Fatalf("%d %v: exit %d\n%s%s", i, args, r.code, r.stdout, r.stderr)
		}
	}
	for _, name := range []string{"after", "before", "dashdash", "global", "awsstyle"} {
		r := runBin(t, env, "channel", "describe", name, "--json", ep)
		var out struct {
			ChannelInfo struct {
				ChannelName               string
				SingleMasterConfiguration struct{ MessageTtlSeconds int }
			}
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil || out.ChannelInfo.ChannelName != name ||
			out.ChannelInfo.SingleMasterConfiguration.MessageTtlSeconds != 30 {
			t.Fatalf("describe %s --json: exit %d\n%s%s", name, r.code, r.stdout, r.stderr)
		}
	}
	r := runBin(t, env, "channel", "list", "--output", "text", ep)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 5 || strings.Contains(r.stdout, "NAME") || len(strings.Split(lines[0], "\t")) != 5 {
		t.Fatalf("list --output text: exit %d\n%q", r.code, r.stdout)
	}
	r = runBin(t, env, "channel", "list", ep)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "NAME ") || !strings.Contains(r.stdout, "dashdash") {
		t.Fatalf("list (table): exit %d\n%s", r.code, r.stdout)
	}
	// AWS_DEFAULT_OUTPUT as the aws CLI's: the format without --output,
	// which wins over it; a format the command does not print is passed over.
	r = runBin(t, append(env, "AWS_DEFAULT_OUTPUT=json"), "channel", "list", ep)
	var listed struct {
		ChannelInfoList []struct{ ChannelName string }
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &listed) != nil || len(listed.ChannelInfoList) != 5 {
		t.Fatalf("list with AWS_DEFAULT_OUTPUT=json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r = runBin(t, append(env, "AWS_DEFAULT_OUTPUT=json"), "channel", "list", "--output", "table", ep); r.code != 0 || !strings.HasPrefix(r.stdout, "NAME ") {
		t.Fatalf("list --output table with AWS_DEFAULT_OUTPUT=json: exit %d\n%s", r.code, r.stdout)
	}
	if r = runBin(t, append(env, "AWS_DEFAULT_OUTPUT=yaml"), "channel", "list", ep); r.code != 0 || !strings.HasPrefix(r.stdout, "NAME ") {
		t.Fatalf("list with AWS_DEFAULT_OUTPUT=yaml: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = runBin(t, env, "channel", "list", "--output", "xml", ep)
	if r.code != 2 || !strings.Contains(r.stderr, `invalid value "xml" for flag --output: want table, text or json`) {
		t.Fatalf("--output xml: exit %d %q", r.code, r.stderr)
	}
}

// TestSubcommandFlagSets: each subcommand has its own flags, and help and
// errors spell them --flag.
func TestSubcommandFlagSets(t *testing.T) {
	env := cleanEnv(t)
	r := runBin(t, env, "channel", "list", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--prefix P") || strings.Contains(r.stdout, "message-ttl") {
		t.Fatalf("channel list --help: exit %d\n%s", r.code, r.stdout)
	}
	r = runBin(t, env, "channel", "create", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--message-ttl") || strings.Contains(r.stdout, "--prefix") {
		t.Fatalf("channel create --help: exit %d\n%s", r.code, r.stdout)
	}
	r = runBin(t, env, "channel", "list", "--message-ttl", "30s")
	if r.code != 2 || !strings.Contains(r.stderr, "flag provided but not defined: --message-ttl") ||
		!strings.Contains(r.stderr, "Run 'kvswebrtc channel list --help'") {
		t.Fatalf("list --message-ttl: exit %d %q", r.code, r.stderr)
	}
	// No help text spells one of the command's flags with one dash.
	for _, name := range allCommands() {
		r := runBin(t, env, append(strings.Fields(name), "--help")...)
		if r.code != 0 || r.stdout == "" {
			t.Errorf("%s --help: exit %d, stdout %q", name, r.code, r.stdout)
		}
		fs := captureFlags(context.Background(), commands[name])
		if fs == nil {
			continue
		}
		fs.VisitAll(func(f *flag.Flag) {
			if m := regexp.MustCompile(`(^|[^-\w])-` + regexp.QuoteMeta(f.Name) + `\b`).FindString(r.stdout); m != "" {
				t.Errorf("%s --help spells its flag %q:\n%s", name, m, r.stdout)
			}
		})
	}
}

// allCommands lists every command and subcommand that is not hidden.
func allCommands() []string {
	var names []string
	for n, c := range commands {
		if !c.hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// TestVersion: --version and `version` print the module version, the
// commit the binary was built from (when the build stamped it) and the Go
// version.
func TestVersion(t *testing.T) {
	env := cleanEnv(t)
	a, b := runBin(t, env, "--version"), runBin(t, env, "version")
	if a.code != 0 || a.stdout != b.stdout || !strings.HasPrefix(a.stdout, "kvswebrtc ") || !strings.Contains(a.stdout, runtime.Version()) {
		t.Fatalf("--version %q, version %q", a.stdout, b.stdout)
	}
	r := runBin(t, env, "version", "--output", "json")
	var v buildVersion
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.Go != runtime.Version() || v.Version == "" {
		t.Fatalf("version --output json: %d %q", r.code, r.stdout)
	}
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil && v.Commit != "" {
		if v.Commit != strings.TrimSpace(string(head)) {
			t.Errorf("commit %s, HEAD is %s", v.Commit, head)
		}
		if !strings.Contains(a.stdout, "commit "+v.Commit[:12]) {
			t.Errorf("--version %q lacks the commit", a.stdout)
		}
	} else {
		t.Logf("no VCS stamp in this build (%q)", a.stdout)
	}
}

// TestCompletionBash sources the bash script and completes as bash would.
func TestCompletionBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := kvsBinary(t)
	env := cleanEnv(t)
	complete := func(words ...string) []string {
		t.Helper()
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		script := fmt.Sprintf(`source <(%q completion bash)
COMP_WORDS=(%q %s); COMP_CWORD=%d; _kvswebrtc; printf '%%s\n' "${COMPREPLY[@]}"`, bin, bin, strings.Join(quoted, " "), len(words))
		cmd := exec.Command(bash, "-c", script)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"ch"}, []string{"channel"}},
		{[]string{"channel", "d"}, []string{"delete", "describe"}},
		{[]string{"channel", "list", "--pr"}, []string{"--prefix", "--profile"}},
		{[]string{"channel", "list", "--output", ""}, []string{"table", "text", "json"}},
		{[]string{"viewer", "--nat", "s"}, []string{"stun-turn", "stun-only"}},
		{[]string{"completion", ""}, []string{"bash", "zsh", "fish"}},
		{[]string{"help", "se"}, []string{"serve"}},
	} {
		if got := complete(tc.words...); !slices.Equal(got, tc.want) {
			t.Errorf("complete %q: %q, want %q", tc.words, got, tc.want)
		}
	}
	// Every shell's script is valid for that shell, where the shell is installed.
	for shell, check := range map[string][]string{"bash": {"-n"}, "zsh": {"-n"}, "fish": {"--no-execute"}} {
		path, err := exec.LookPath(shell)
		if err != nil {
			t.Logf("%s not installed: its script is not checked", shell)
			continue
		}
		r := runBin(t, env, "completion", shell)
		f := filepath.Join(t.TempDir(), "script")
		os.WriteFile(f, []byte(r.stdout), 0o644)
		if out, err := exec.Command(path, append(check, f)...).CombinedOutput(); r.code != 0 || err != nil {
			t.Errorf("%s script: exit %d, %v\n%s", shell, r.code, err, out)
		}
		// And it completes: what the shell offers for a command line.
		var script string
		switch shell {
		case "zsh": // the completion system stubbed: compadd prints what it is given
			script = fmt.Sprintf(`compdef() { :; }; compadd() { shift; print -l -- "$@"; }; _files() { print FILES; }
source %q; words=(kvswebrtc channel d); CURRENT=3; _kvswebrtc`, f)
		case "fish":
			script = fmt.Sprintf(`source %q; complete -C 'kvswebrtc channel d'`, f)
		default:
			continue
		}
		cmd := exec.Command(path, "-c", script)
		cmd.Env = append(env, "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if got := strings.Fields(string(out)); err != nil || !slices.Equal(got, []string{"delete", "describe"}) {
			t.Errorf("%s completes %q (%v), want [delete describe]", shell, out, err)
		}
	}
}

// TestDocsMatchHelp: the README's CLI section is `kvswebrtc --help`, and
// docs/cli.md holds every command's --help, exactly (go test -run
// TestDocsMatchHelp -update rewrites both).
func TestDocsMatchHelp(t *testing.T) {
	// The help as it reads for a user whose home is /home/user (the
	// default --data dir of serve depends on it).
	env := cleanEnv(t)
	for i, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			env[i] = "HOME=/home/user"
		}
	}
	help := func(args ...string) string {
		t.Helper()
		r := runBin(t, env, args...)
		if r.code != 0 {
			t.Fatalf("kvswebrtc %v: exit %d %s", args, r.code, r.stderr)
		}
		return r.stdout
	}
	top := help("--help")

	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- begin: kvswebrtc --help -->\n```\n", "```\n<!-- end: kvswebrtc --help -->"
	i, j := bytes.Index(readme, []byte(begin)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q ... %q section", begin, end)
	}
	if got := string(readme[i+len(begin) : j]); got != top {
		if *update {
			readme = slices.Concat(readme[:i+len(begin)], []byte(top), readme[j:])
			if err := os.WriteFile("../../README.md", readme, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Errorf("the README's CLI section is not `kvswebrtc --help` (go test ./cmd/kvswebrtc -run TestDocsMatchHelp -update rewrites it):\n%s\nwant:\n%s", got, top)
		}
	}

	var b strings.Builder
	b.WriteString("# The kvswebrtc CLI\n\n<!-- Generated from the CLI's --help by `go test ./cmd/kvswebrtc -run TestDocsMatchHelp -update`; do not edit. -->\n\n")
	b.WriteString("Every command's `--help`, as `kvswebrtc help <command>` prints it. The [README](../README.md#the-cli) has the overview.\n\n")
	b.WriteString("## kvswebrtc\n\n```\n" + top + "```\n")
	for _, name := range allCommands() {
		b.WriteString("\n## kvswebrtc " + name + "\n\n```\n" + help(append([]string{"help"}, strings.Fields(name)...)...) + "```\n")
	}
	want := b.String()
	got, _ := os.ReadFile("../../docs/cli.md")
	if string(got) != want {
		if *update {
			if err := os.WriteFile("../../docs/cli.md", []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			t.Errorf("docs/cli.md is not every command's --help (go test ./cmd/kvswebrtc -run TestDocsMatchHelp -update rewrites it)")
		}
	}
}

// TestParseArgs checks the parser itself: positions, "--", errors.
func TestParseArgs(t *testing.T) {
	var errOut bytes.Buffer
	fs := newFlagSet("t", "[flags] A B", &errOut)
	n := fs.Int("n", 0, "")
	v := fs.Bool("v", false, "")
	pos, _, ok := parseArgs(fs, []string{"a", "--n", "3", "b", "-v", "--", "-c", "d"}, &errOut)
	if !ok || *n != 3 || !*v || !slices.Equal(pos, []string{"a", "b", "-c", "d"}) {
		t.Fatalf("pos %q n %d v %v ok %v: %s", pos, *n, *v, ok, errOut.String())
	}
	errOut.Reset()
	if _, code, ok := parseArgs(fs, []string{"--n", "x"}, &errOut); ok || code != 2 || !strings.Contains(errOut.String(), `invalid value "x" for flag --n`) {
		t.Fatalf("code %d: %q", code, errOut.String())
	}
	for in, want := range map[string]string{"1m0s": "1m", "1h0m0s": "1h", "10s": "10s", "1m30s": "1m30s", "500ms": "500ms", "x": "x"} {
		if got := shortDuration(in); got != want {
			t.Errorf("shortDuration(%q) = %q, want %q", in, got, want)
		}
	}
}
