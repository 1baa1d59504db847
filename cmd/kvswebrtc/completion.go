package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

func init() {
	register(&command{
		name:    "completion",
		summary: "print a shell completion script: bash, zsh or fish",
		run:     runCompletion,
	})
	register(&command{
		name:    "__complete",
		summary: "the completion scripts' helper: candidates for the last word",
		run:     runComplete,
		hidden:  true,
	})
}

const completionSynopsis = `bash|zsh|fish

  bash:  source <(kvswebrtc completion bash)          (in ~/.bashrc)
  zsh:   source <(kvswebrtc completion zsh)           (in ~/.zshrc, after compinit)
  fish:  kvswebrtc completion fish > ~/.config/fish/completions/kvswebrtc.fish`

// The scripts ask the binary itself (kvswebrtc __complete WORDS... CURRENT)
// for the candidates, so they know every command and flag of the binary
// that answers, new ones included. No candidate means "file names".
var completionScripts = map[string]string{
	"bash": `# bash completion for kvswebrtc: source <(kvswebrtc completion bash)
_kvswebrtc() {
    local IFS=$'\n'
    COMPREPLY=($("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _kvswebrtc kvswebrtc
`,
	"zsh": `#compdef kvswebrtc
# zsh completion for kvswebrtc: source <(kvswebrtc completion zsh), or save
# as _kvswebrtc in a directory of $fpath.
_kvswebrtc() {
    local -a out
    out=("${(@f)$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
    if (( ${#out} == 0 )) || [[ -z "${out[1]}" ]]; then
        _files
    else
        compadd -- "${out[@]}"
    fi
}
if [ "$funcstack[1]" = "_kvswebrtc" ]; then
    _kvswebrtc "$@"
else
    compdef _kvswebrtc kvswebrtc
fi
`,
	"fish": `# fish completion for kvswebrtc: kvswebrtc completion fish > ~/.config/fish/completions/kvswebrtc.fish
function __kvswebrtc_complete
    set -l words (commandline -opc)
    set -l out (command $words[1] __complete $words[2..-1] (commandline -ct) 2>/dev/null)
    if test (count $out) -eq 0
        __fish_complete_path (commandline -ct)
    else
        printf '%s\n' $out
    end
end
complete -c kvswebrtc -f -a '(__kvswebrtc_complete)'
`,
}

func runCompletion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("completion", completionSynopsis, stderr)
	setChoices(fs, "", "bash", "zsh", "fish")
	pos, code, ok := parseArgs(fs, args, stderr)
	if !ok {
		return code
	}
	if len(pos) != 1 || completionScripts[pos[0]] == "" {
		usageErr(stderr, fs, "name one shell: bash, zsh or fish")
		return 2
	}
	fmt.Fprint(stdout, completionScripts[pos[0]])
	return 0
}

// runComplete prints the candidates for the last of args (the word being
// completed, possibly empty), one a line; the words before it are those
// typed after "kvswebrtc".
func runComplete(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	for _, c := range completions(ctx, args) {
		fmt.Fprintln(stdout, c)
	}
	return 0
}

// knownChoices are the values of flags that several commands define in
// their own way, for completion.
var knownChoices = map[string][]string{
	"log-level": {"debug", "info", "warn"},
	"nat":       {"stun-turn", "turn-only", "stun-only", "disabled"},
}

// completions returns the candidates for the last word of words.
func completions(ctx context.Context, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, prev := words[len(words)-1], words[:len(words)-1]
	// bash splits --flag=value at "=": treat "--flag" "=" "val" as --flag=val.
	if n := len(prev); n >= 2 && prev[n-1] == "=" && strings.HasPrefix(prev[n-2], "-") {
		cur, prev = prev[n-2]+"="+cur, prev[:n-2]
		return trimPrefixes(completeWord(ctx, prev, cur), prev2flag(cur))
	}
	return completeWord(ctx, prev, cur)
}

// prev2flag is the "--flag=" part of a --flag=value word.
func prev2flag(word string) string {
	f, _, _ := strings.Cut(word, "=")
	return f + "="
}

// trimPrefixes removes prefix from each candidate (bash has the flag and
// the "=" as words of their own).
func trimPrefixes(cands []string, prefix string) []string {
	out := cands[:0]
	for _, c := range cands {
		out = append(out, strings.TrimPrefix(c, prefix))
	}
	return out
}

func completeWord(ctx context.Context, prev []string, cur string) []string {
	path := ""
	helpMode := false
	for _, w := range prev {
		if strings.HasPrefix(w, "-") {
			continue
		}
		if path == "" && w == "help" && !helpMode {
			helpMode = true
			continue
		}
		next := w
		if path != "" {
			next = path + " " + w
		}
		if commands[next] != nil && !commands[next].hidden {
			path = next
		}
	}
	if path == "" {
		if strings.HasPrefix(cur, "-") && !helpMode {
			return filter([]string{"--help", "--version"}, cur)
		}
		names := children("", false)
		if !helpMode {
			names = append(names, "help")
		}
		return filter(names, cur)
	}
	c := commands[path]
	if c.run == nil || helpMode {
		if helpMode && c.run != nil {
			return nil
		}
		return filter(children(path, false), cur)
	}
	fs := captureFlags(ctx, c)
	if fs == nil {
		return nil
	}
	m := metaOf(fs)
	choices := func(name string) []string {
		m.mu.Lock()
		defer m.mu.Unlock()
		if v, ok := m.choices[name]; ok {
			return v
		}
		return knownChoices[name]
	}
	// A value for the flag before it?
	if n := len(prev); n > 0 && strings.HasPrefix(prev[n-1], "-") && !strings.Contains(prev[n-1], "=") {
		if f := fs.Lookup(strings.TrimLeft(prev[n-1], "-")); f != nil && !isBoolFlag(f) {
			return filter(choices(f.Name), cur)
		}
	}
	if name, val, ok := strings.Cut(cur, "="); ok && strings.HasPrefix(name, "-") {
		var out []string
		for _, v := range filter(choices(strings.TrimLeft(name, "-")), val) {
			out = append(out, name+"="+v)
		}
		return out
	}
	if strings.HasPrefix(cur, "-") {
		var names []string
		fs.VisitAll(func(f *flag.Flag) {
			m.mu.Lock()
			hidden := m.hidden[f.Name]
			m.mu.Unlock()
			if !hidden {
				names = append(names, "--"+f.Name)
			}
		})
		names = append(names, "--help")
		sort.Strings(names)
		return filter(names, cur)
	}
	return filter(choices(""), cur) // positional words a command names (completion's shells)
}

// captureFlags runs c with --help, output discarded, and returns the
// FlagSet it made (the last one, for a command that makes several).
func captureFlags(ctx context.Context, c *command) *flag.FlagSet {
	if c.run == nil {
		return nil
	}
	var fs *flag.FlagSet
	errw := &cliStderr{Writer: io.Discard, stdout: io.Discard, capture: func(f *flag.FlagSet) { fs = f }}
	c.run(ctx, []string{"--help"}, io.Discard, errw)
	return fs
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// filter keeps the words that begin with prefix.
func filter(words []string, prefix string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, prefix) {
			out = append(out, w)
		}
	}
	return out
}
