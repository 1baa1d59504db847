package web_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/kvswebrtc/kvswebrtc/internal/browsertest"
	"github.com/kvswebrtc/kvswebrtc/localkvs"
	"github.com/kvswebrtc/kvswebrtc/web"
)

// stack is the local service and the web backend, both on 127.0.0.1.
type stack struct {
	Local *web.Local
	Web   *web.Server
	HTTP  *httptest.Server
	URL   string // the page's base URL, "http://127.0.0.1:PORT"
}

// startStack starts an embedded localkvs and the web backend over it, and
// stops both when the test ends.
func startStack(t testing.TB, limits localkvs.Limits) *stack {
	t.Helper()
	var logger *slog.Logger
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	local, err := web.StartLocal(web.LocalConfig{Limits: limits, Logger: logger})
	if err != nil {
		t.Fatalf("StartLocal: %v", err)
	}
	t.Cleanup(func() { _ = local.Close() })
	srv, err := web.New(local.Config(logger))
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &stack{Local: local, Web: srv, HTTP: hs, URL: hs.URL}
}

// PageURL returns the page URL with the given query fields.
func (s *stack) PageURL(fields map[string]string) string {
	q := url.Values{}
	for k, v := range fields {
		q.Set(k, v)
	}
	return s.URL + "/?" + q.Encode()
}

// startWait bounds the start of the browser and the opening of a tab.
const startWait = 60 * time.Second

// newBrowser starts a headless chromium with a fake camera and microphone
// and returns the context of its first tab. The browser is closed when the
// test ends.
func newBrowser(t testing.TB) context.Context {
	t.Helper()
	allocCtx := browsertest.Allocator(t)
	ctx, cancel := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancel)
	// The first action starts the browser, which lives as long as ctx: a
	// watchdog, not a deadline on ctx, bounds the start.
	watchdog := time.AfterFunc(startWait, cancel)
	err := chromedp.Do(ctx)
	if !watchdog.Stop() {
		t.Fatalf("start chromium: not started after %v (%v)", startWait, err)
	}
	if err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab is one browser tab showing the test page.
type tab struct {
	t    testing.TB
	name string
	ctx  context.Context
}

// openTab opens a new tab of browser at pageURL, 1280x900 pixels.
func openTab(t testing.TB, browser context.Context, name, pageURL string) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *cdpruntime.EventExceptionThrown:
			t.Logf("%s: page exception: %s %s", name, ev.ExceptionDetails.Text, exceptionText(ev.ExceptionDetails))
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError || ev.Type == cdpruntime.ConsoleAPICalledTypeWarning {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, strings.Trim(string(a.Value), `"`))
				}
				t.Logf("%s: console.%s: %s", name, ev.Type, strings.Join(parts, " "))
			}
		}
	}))
	t.Cleanup(cancel)
	watchdog := time.AfterFunc(startWait, cancel) // the tab lives as long as ctx
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(pageURL),
	)
	if !watchdog.Stop() {
		t.Fatalf("%s: %s not open after %v (%v)", name, pageURL, startWait, err)
	}
	if err != nil {
		t.Fatalf("%s: open %s: %v", name, pageURL, err)
	}
	tb := &tab{t: t, name: name, ctx: ctx}
	tb.waitJS("window.kvsTest !== undefined", 15*time.Second)
	return tb
}

// evalJS evaluates a JS expression in the tab (awaiting a promise) and
// decodes its value.
func evalJS[T any](tb *tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// mustEval is evalJS that fails the test on error.
func mustEval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	v, err := evalJS[T](tb, expr)
	if err != nil {
		tb.t.Fatalf("%s: eval %s: %v", tb.name, expr, err)
	}
	return v
}

// waitJS polls a JS boolean expression until it is true, failing the test
// with the page's log and state when timeout passes first.
func (tb *tab) waitJS(expr string, timeout time.Duration) {
	tb.t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := evalJS[bool](tb, "!!("+expr+")")
		if err == nil && ok {
			return
		}
		lastErr = err
		select {
		case <-tb.ctx.Done():
			tb.t.Fatalf("%s: tab closed while waiting for %s", tb.name, expr)
		case <-time.After(200 * time.Millisecond):
		}
	}
	tb.t.Fatalf("%s: %s still false after %v (last error: %v)\n%s", tb.name, expr, timeout, lastErr, tb.dump())
}

// dump returns the page's state and log for a failure message.
func (tb *tab) dump() string {
	diag, err := evalJS[string](tb, `window.kvsTest ? window.kvsTest.diagnostics() : document.documentElement.outerHTML.slice(0, 2000)`)
	if err != nil {
		return fmt.Sprintf("(no diagnostics: %v)", err)
	}
	return diag
}

// screenshot saves a PNG of the tab's viewport to path.
func (tb *tab) screenshot(path string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Fatalf("%s: screenshot: %v", tb.name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.t.Fatal(err)
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	tb.t.Logf("%s: screenshot saved to %s", tb.name, path)
}

// artifactsDir is $KVS_ARTIFACTS, or <repo>/artifacts (git-ignored).
func artifactsDir(t testing.TB) string {
	if d := os.Getenv("KVS_ARTIFACTS"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "artifacts")
		}
		if filepath.Dir(d) == d {
			return filepath.Join(dir, "artifacts")
		}
	}
}

func exceptionText(d *cdpruntime.ExceptionDetails) string {
	if d == nil || d.Exception == nil {
		return ""
	}
	return d.Exception.Description
}

// testClient is the tests' HTTP client: a request to a server that stops
// answering fails after 30 s instead of hanging the test.
var testClient = &http.Client{Timeout: 30 * time.Second}

// httptestServer serves h on 127.0.0.1 until the test ends and returns its URL.
func httptestServer(t testing.TB, h http.Handler) string {
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}
