package browsertest_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kvswebrtc/kvswebrtc/internal/browsertest"
)

// A test opens a page in headless chromium (skipped where chromium is not
// installed, failed in CI).
func Example() {
	_ = func(t *testing.T) {
		ctx, cancel := chromedp.NewContext(browsertest.Allocator(t))
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			t.Fatal(err)
		}
		title, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.title`))
		if err != nil {
			t.Fatal(err)
		}
		t.Log(title)
	}
}

func TestAllocatorStartsChromium(t *testing.T) {
	ctx, cancel := chromedp.NewContext(browsertest.Allocator(t))
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	ua, err := chromedp.Run(ctx, chromedp.Evaluate[string](`navigator.userAgent`))
	if err != nil {
		t.Fatal(err)
	}
	if ua == "" {
		t.Fatal("no user agent from the page")
	}
}
