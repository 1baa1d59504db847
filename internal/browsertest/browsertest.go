// Package browsertest starts Debian's chromium, headless, for the project's
// real-browser tests (packages web and interop): the flags this machine
// needs (no sandbox as root, no GPU, no background networking, a fresh
// profile), a fake camera and microphone, autoplay allowed, and WebRTC host
// candidates as plain IP addresses with loopback included, so that peers on
// one machine connect.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumPath finds chromium. When it is missing the test fails if the CI
// environment variable is set (the browser tests must run in CI) and is
// skipped otherwise.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("chromium not found (CI=%s): install it with `apt-get update && apt-get install -y chromium`", os.Getenv("CI"))
	}
	t.Skip("chromium not found; install it with `apt-get install -y chromium` (the test fails instead of skipping when CI is set)")
	return ""
}

// Options returns the allocator options of a headless chromium for tests,
// with extra appended (for example chromedp.Flag("ignore-certificate-errors", true)).
func Options(t testing.TB, extra ...chromedp.ExecAllocatorOption) []chromedp.ExecAllocatorOption {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Plain IP host candidates (no mDNS names), loopback included.
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns,Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
	}
	return append(opts, extra...)
}

// Allocator starts nothing yet: it returns the chromedp allocator context
// for Options(t, extra...), cancelled when the test ends. Pass it to
// chromedp.NewContext; the browser starts with the first action.
func Allocator(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewExecAllocator(context.Background(), Options(t, extra...)...)
	t.Cleanup(cancel)
	return ctx
}
