package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// child is a server started by the generator: `kvswebrtc serve` or the bare
// relay, built with `go build` and run directly so that its pid is the
// server's (with `go run` the server would be a grandchild).
type child struct {
	cmd  *exec.Cmd
	dir  string
	url  string // control-plane URL (serve) or ws:// URL (bare)
	prof string // base URL of the pprof handlers (profserve only)
	done chan error
}

// moduleRoot returns the directory of the go.mod that holds this module.
func moduleRoot(hint string) (string, error) {
	if hint != "" {
		return hint, nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w (run from the repository, or pass -repo)", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the kvswebrtc module: run from the repository, or pass -repo")
	}
	return filepath.Dir(gomod), nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// buildServer builds pkg of the module (repo, or the one `go env GOMOD`
// names) into a new temporary directory (pattern as os.MkdirTemp's) as
// name, and returns the directory (the caller removes it) and the binary.
func buildServer(ctx context.Context, repo, pattern, pkg, name string) (dir, bin string, err error) {
	root, err := moduleRoot(repo)
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", pattern)
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, name)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return dir, bin, nil
}

// startChild builds and starts the server; logs get its stderr. With
// profile (serve only) the child is bench/relay/profserve: the same
// service with the net/http/pprof handlers on a second port.
func startChild(ctx context.Context, repo string, bare, profile bool, logs io.Writer) (*child, error) {
	pkg, name := "./cmd/kvswebrtc", "kvswebrtc"
	switch {
	case bare:
		pkg, name = "./bench/relay/echo", "echo"
	case profile:
		pkg, name = "./bench/relay/profserve", "profserve"
	}
	dir, bin, err := buildServer(ctx, repo, "kvs-loadgen-", pkg, name)
	if err != nil {
		return nil, err
	}
	var args []string
	if bare {
		args = []string{"-addr", "127.0.0.1:0"}
	} else {
		addr, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		args = []string{"serve", "-addr", addr, "-data=", "-log-level", "warn"}
		if profile {
			args = []string{"-addr", addr, "-pprof", "127.0.0.1:0"}
		}
	}
	c := &child{dir: dir}
	if err := c.start(name, bin, args, bare, logs); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

// start runs bin with args, its stderr to logs, and waits up to 30 s for
// the URL it prints on stdout (c.url): "endpoint: URL" from serve,
// "listening on URL" from the bare relay (bare); a "pprof: URL" line
// before it sets c.prof. what names the child in errors. On error the
// child is not running (start stops it when it printed no URL in time).
func (c *child) start(what, bin string, args []string, bare bool, logs io.Writer) error {
	c.done = make(chan error, 1)
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stderr = logs
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.cmd.Start(); err != nil {
		return err
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if u, ok := strings.CutPrefix(line, "pprof:"); ok {
				c.prof = strings.TrimSpace(u) // before "endpoint:", so before ready
			} else if u, ok := strings.CutPrefix(line, "endpoint:"); ok && !bare {
				ready <- strings.TrimSpace(u)
			} else if u, ok := strings.CutPrefix(line, "listening on "); ok && bare {
				ready <- u
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { c.done <- c.cmd.Wait() }()
	select {
	case c.url = <-ready:
		return nil
	case err := <-c.done:
		return fmt.Errorf("%s exited before it was ready: %v", what, err)
	case <-time.After(30 * time.Second):
		c.stop()
		return fmt.Errorf("%s printed no endpoint within 30 s", what)
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop sends SIGTERM, waits up to 15 s, then kills, unless the child has
// exited already (killed by the recovery run); it removes c.dir.
func (c *child) stop() {
	select {
	case <-c.done: // exited already
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	os.RemoveAll(c.dir)
}
