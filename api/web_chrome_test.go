package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium; `make test` installs it when missing.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium with a fresh profile and returns the
// context of its first tab. Cleanup closes the browser and waits for it.
// A missing Chromium fails the test: the browser tests are part of the
// suite, never silently skipped.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser tests need Chromium at %s (apt-get install -y chromium; `make test` installs it): %v", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to end
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	logConsole(t, ctx, "page")
	return ctx
}

// newIsolatedTab opens a tab in a new browser context of the same browser:
// its own cookies and storage, as a second person would have.
func newIsolatedTab(t *testing.T, browser context.Context, name string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a new browser context: %v", err)
	}
	logConsole(t, ctx, name)
	return ctx
}

// logConsole collects the tab's console messages and logs them when the
// test ends (errors always, everything when the test failed).
func logConsole(t *testing.T, tab context.Context, name string) {
	ctx, cancel := context.WithCancel(tab)
	var (
		mu   sync.Mutex
		msgs []string
	)
	done := make(chan struct{})
	messages := chromedp.Console(ctx)
	go func() { // ends when ctx is cancelled by the cleanup below
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, m.String())
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, m := range msgs {
			if t.Failed() || strings.HasPrefix(m, "error") || strings.HasPrefix(m, "exception") {
				t.Logf("%s console: %s", name, m)
			}
		}
	})
}

// do runs actions on a tab with a time limit.
func do(t *testing.T, tab context.Context, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		shot(t, tab, "failure")
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page (promises awaited) and
// decodes its value.
func eval[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %q: %v", js, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is truthy.
func waitFor(t *testing.T, tab context.Context, d time.Duration, what, predicate string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, d+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err != nil {
		shot(t, tab, "timeout")
		t.Fatalf("waiting for %s: %v\ncolumns: %+v", what, err, columnsOf(t, tab))
	}
}

// shot saves a full-page screenshot under the test's temp dir (or
// $BROWSER_SCREENSHOT_DIR, to keep it) and logs its path.
func shot(t *testing.T, tab context.Context, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 15*time.Second)
	defer cancel()
	// From the top, so the sticky header sits where it belongs.
	_, _ = chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	dir := os.Getenv("BROWSER_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s.png", strings.ReplaceAll(t.Name(), "/", "_"), name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// column is what the page shows for one model.
type column struct {
	Model        string `json:"model"`
	ResponseID   string `json:"responseId"`
	Status       string `json:"status"`
	Text         string `json:"text"`
	Error        string `json:"error"`
	MetricsShown bool   `json:"metricsShown"`
	Metrics      string `json:"metrics"`
}

func (c column) String() string {
	text := c.Text
	if len(text) > 40 {
		text = text[:40] + "…"
	}
	return fmt.Sprintf("{%s %s %q err=%q metrics=%v}", c.Model, c.Status, text, c.Error, c.MetricsShown)
}

const columnsJS = `[...document.querySelectorAll('#columns [data-model]')].map(c => ({
	model: c.dataset.model,
	responseId: c.dataset.responseId,
	status: c.querySelector('.status').textContent,
	text: c.querySelector('.text').textContent,
	error: c.querySelector('.error-message').hidden ? '' : c.querySelector('.error-message').textContent,
	metricsShown: !c.querySelector('.metrics').hidden,
	metrics: c.querySelector('.metrics').textContent,
}))`

func columnsOf(t *testing.T, tab context.Context) []column {
	ctx, cancel := context.WithTimeout(tab, 5*time.Second)
	defer cancel()
	cols, _ := chromedp.Run(ctx, chromedp.Evaluate[[]column](columnsJS))
	return cols
}

// wireSession is the part of the API's Session the tests compare with.
type wireSession struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Shared    bool   `json:"shared"`
	Responses []struct {
		ID     string `json:"id"`
		Model  string `json:"model"`
		Status string `json:"status"`
		Text   string `json:"text"`
		Error  *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Metrics json.RawMessage `json:"metrics"`
	} `json:"responses"`
}

// fetchSession asks the API for a session from inside the page, with the
// page's own credentials (its cookie, or the share token).
func fetchSession(t *testing.T, tab context.Context, id, share string) wireSession {
	t.Helper()
	q := ""
	if share != "" {
		q = "?share=" + share
	}
	raw := eval[[]byte](t, tab, fmt.Sprintf(`fetch(%q, {credentials: 'same-origin'}).then(r => r.text())`, "/sessions/"+id+q))
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		t.Fatalf("GET /sessions/%s: %v", id, err)
	}
	var body struct {
		Session wireSession `json:"session"`
	}
	if err := json.Unmarshal([]byte(text), &body); err != nil || body.Session.ID == "" {
		t.Fatalf("GET /sessions/%s: %v: %s", id, err, text)
	}
	return body.Session
}
