package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print this build's version: module version, commit, Go version (also kvswebrtc --version)",
		run:     runVersion,
	})
}

// buildVersion is what the build info says about this binary.
type buildVersion struct {
	Version    string `json:"version"`              // module version, "(devel)" for a build inside the repository
	Commit     string `json:"commit,omitempty"`     // VCS revision, when the build stamped it
	CommitTime string `json:"commitTime,omitempty"` // its time, RFC 3339
	Modified   bool   `json:"modified,omitempty"`   // built from a tree with uncommitted changes
	Go         string `json:"go"`                   // Go version that built it
	Platform   string `json:"platform"`             // GOOS/GOARCH
}

// readBuildVersion reads the module version and the VCS stamps from the
// build info (go build stamps them unless -buildvcs=false; go install
// module@version gives the module version).
func readBuildVersion() buildVersion {
	v := buildVersion{Version: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line `kvswebrtc --version` prints.
func (v buildVersion) String() string {
	var detail []string
	if v.Commit != "" {
		c := v.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		detail = append(detail, "commit "+c)
	}
	if v.CommitTime != "" {
		detail = append(detail, v.CommitTime)
	}
	if v.Modified {
		detail = append(detail, "modified")
	}
	s := "kvswebrtc " + v.Version
	if len(detail) > 0 {
		s += " (" + strings.Join(detail, ", ") + ")"
	}
	return s + " " + v.Go + " " + v.Platform
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "[--output text|json]", stderr)
	output := outputFlag(fs, "text", "json")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	v := readBuildVersion()
	if *output == "json" {
		return printJSON(stdout, v)
	}
	fmt.Fprintln(stdout, v)
	return 0
}

// printJSON writes v as indented JSON and returns exit code 0.
func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return 1
	}
	return 0
}
