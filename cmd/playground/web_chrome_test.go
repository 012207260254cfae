package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// moduleRoot is the module's root from this package's directory, where
// go test runs it; webDir holds the page's files.
const (
	moduleRoot = "../.."
	webDir     = moduleRoot + "/api/web"
)

// chromiumPath is Debian's Chromium; `make test` installs it when missing.
const chromiumPath = "/usr/bin/chromium"

// chromium is one headless Chromium for the whole test binary, started by
// the first browser test and closed after the last (runAfterTests).
// Starting one costs seconds on a busy machine; each test still gets a
// browser context of its own (its own cookies, storage and cache), as a
// fresh profile would give.
var chromium struct {
	once sync.Once
	ctx  context.Context // the browser's first tab; tabs of tests hang off it
	err  error
}

func sharedChromium(t *testing.T) context.Context {
	t.Helper()
	chromium.once.Do(func() {
		if _, err := os.Stat(chromiumPath); err != nil {
			chromium.err = fmt.Errorf("the browser tests need Chromium at %s (`make test` installs it with apt-get, as root; elsewhere install it with your package manager): %w", chromiumPath, err)
			return
		}
		profile, err := os.MkdirTemp("", "playground-chromium-")
		if err != nil {
			chromium.err = err
			return
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
			chromedp.UserDataDir(profile),
			chromedp.WindowSize(1400, 1000),
		}
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(allocCtx)
		runAfterTests(func() {
			cancel()
			cancelAlloc() // waits for the browser process to end
			os.RemoveAll(profile)
		})
		if err := chromedp.Do(ctx); err != nil {
			chromium.err = fmt.Errorf("start Chromium: %w", err)
			return
		}
		chromium.ctx = ctx
	})
	if chromium.err != nil {
		t.Fatal(chromium.err)
	}
	return chromium.ctx
}

// newBrowser opens a tab in a browser context of its own in the shared
// Chromium: a cookie jar and storage of its own, as a new person's browser
// would have. When the test started a server (startTestServer) and it dies,
// every step on the tab fails at once with the server's log. A missing
// Chromium fails the test: the browser tests are part of the suite, never
// silently skipped.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return openTab(t, "page")
}

// newIsolatedTab opens another such tab for the same test: its own cookies
// and storage, as a second person would have.
func newIsolatedTab(t *testing.T, name string) context.Context {
	t.Helper()
	return openTab(t, name)
}

// idleTabs are tabs that tests have finished with, each in a browser
// context of its own, emptied for the next test (emptyTab). A new browser
// context and its tab cost Chromium about a CPU-second to set up (a
// renderer process among others), more than the page they then load.
// Each test still gets a DevTools session of its own on the tab, and the
// session ends with the test: what a test sets through its session
// (scripts run on each new document, emulation, request interception)
// ends with it.
var idleTabs struct {
	sync.Mutex
	tabs []pooledTab
}

// pooledTab is a tab and the browser context it has to itself.
type pooledTab struct {
	id      target.ID
	context cdp.BrowserContextID
}

// takeTab returns an idle tab, or opens one in a new browser context.
func takeTab(browser context.Context) (pooledTab, error) {
	idleTabs.Lock()
	if n := len(idleTabs.tabs); n > 0 {
		tab := idleTabs.tabs[n-1]
		idleTabs.tabs = idleTabs.tabs[:n-1]
		idleTabs.Unlock()
		return tab, nil
	}
	idleTabs.Unlock()
	// The tab, and its browser context, stay when this first session
	// detaches; closeTab disposes of them.
	ctx, detach := chromedp.NewContext(browser, chromedp.WithNewBrowserContext(), chromedp.WithDetachOnCancel())
	defer detach()
	if err := chromedp.Do(ctx); err != nil {
		return pooledTab{}, err
	}
	c := chromedp.FromContext(ctx)
	return pooledTab{id: c.Target.TargetID, context: c.BrowserContextID}, nil
}

// attachTab opens a DevTools session on the tab; the returned function
// ends the session and leaves the tab open.
func attachTab(browser context.Context, id target.ID) (context.Context, context.CancelFunc, error) {
	session, detach := chromedp.NewContext(browser, chromedp.WithTargetID(id), chromedp.WithDetachOnCancel())
	if err := chromedp.Do(session); err != nil {
		detach()
		return nil, nil, err
	}
	return session, detach, nil
}

// closeTab disposes of a tab that is not to be used again, with its
// browser context.
func closeTab(browser context.Context, tab pooledTab) {
	ctx, cancel := context.WithTimeout(browser, 10*time.Second)
	defer cancel()
	_, _ = cdp.Call(ctx, chromedp.FromContext(browser).Browser, target.DisposeBrowserContext, target.DisposeBrowserContextParams{BrowserContextID: tab.context})
}

func openTab(t *testing.T, name string) context.Context {
	t.Helper()
	browser := sharedChromium(t)
	tab, err := takeTab(browser)
	if err != nil {
		t.Fatalf("open a new browser context: %v", err)
	}
	session, detach, err := attachTab(browser, tab.id)
	if err != nil {
		closeTab(browser, tab)
		t.Fatalf("attach to a tab: %v", err)
	}
	ctx, cancel := context.WithCancelCause(session)
	stop := func() bool { return false }
	if v, ok := serversByTest.Load(t); ok {
		alive := v.(*browserServer).alive
		stop = context.AfterFunc(alive, func() { cancel(context.Cause(alive)) })
	}
	t.Cleanup(func() {
		stop()
		cancel(nil)
		// A failed test's tab may be in any state: it is closed.
		emptied := !t.Failed() && emptyTab(session)
		detach()
		if !emptied {
			closeTab(browser, tab)
			return
		}
		idleTabs.Lock()
		idleTabs.tabs = append(idleTabs.tabs, tab)
		idleTabs.Unlock()
	})
	logConsole(t, ctx, name)
	return ctx
}

// emptyTab leaves a tab as a new one is for the next test: the storage of
// the origin it shows cleared (cookies included), on about:blank (which
// closes the page's connections), and the cookies of any other host it
// visited gone too. Each test's server has an origin of its own (a port of
// its own), but cookies are kept per host, not per port, and a port can
// come round again. What the test set through its DevTools session
// (emulation, scripts for new documents) ends with the session. It
// reports whether all of that worked.
func emptyTab(tab context.Context) bool {
	ctx, cancel := context.WithTimeout(tab, 10*time.Second)
	defer cancel()
	origin, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.origin`))
	if err != nil {
		return false
	}
	err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		if strings.HasPrefix(origin, "http") {
			if _, err := cdp.Call(ctx, tgt, storage.ClearDataForOrigin, storage.ClearDataForOriginParams{Origin: origin, StorageTypes: "all"}); err != nil {
				return err
			}
		}
		return nil
	}),
		chromedp.Navigate("about:blank"),
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			_, err := cdp.Call(ctx, tgt, network.ClearBrowserCookies, cdp.Empty{})
			return err
		}))
	return err == nil
}

// A tab handed on to the next test is as a new one: not signed in to the
// server the last test used, nothing left in that origin's storage, none
// of the viewport, touch or media emulation the last test set, and no
// script it had run on each new document.
func TestBrowserTabEmptiedForTheNextTest(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t)
	browser := sharedChromium(t)
	tab, err := takeTab(browser)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeTab(browser, tab) })
	type look struct {
		Width  int    `json:"width"`
		Dark   bool   `json:"dark"`
		Touch  int    `json:"touch"`
		Stored string `json:"stored"`
		Signed string `json:"signed"`
		Script bool   `json:"script"`
	}
	const looks = `({width: innerWidth, dark: matchMedia('(prefers-color-scheme: dark)').matches,
		touch: navigator.maxTouchPoints, stored: String(localStorage.getItem('left') ?? '') + String(sessionStorage.getItem('left') ?? ''),
		signed: document.querySelector('#account-email').textContent, script: 'leftBehind' in window})`

	// The last test: signs up, sets what a test can set, and leaves.
	first, detach, err := attachTab(browser, tab.id)
	if err != nil {
		t.Fatal(err)
	}
	registerThroughForm(t, first, srv.URL)
	fresh := eval[look](t, first, looks)
	do(t, first, 10*time.Second,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch),
		chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
			if _, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: "window.leftBehind = 1"}); err != nil {
				return err
			}
			_, err := cdp.Call(ctx, tgt, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
				Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
			return err
		}),
		chromedp.Reload())
	eval[bool](t, first, `localStorage.setItem('left', 'l'); sessionStorage.setItem('left', 's'); true`)
	waitForPage(t, first, 10*time.Second, "the account after the reload", `document.querySelector('#account-email').textContent !== ''`)
	dirty := eval[look](t, first, looks)
	if dirty.Width != 390 || !dirty.Dark || dirty.Touch == 0 || dirty.Stored != "ls" || dirty.Signed == "" || !dirty.Script {
		t.Fatalf("the tab was not made dirty (%+v), so this test shows nothing", dirty)
	}
	if !emptyTab(first) {
		t.Fatal("emptying the tab failed")
	}
	detach()

	// The next test.
	next, detach, err := attachTab(browser, tab.id)
	if err != nil {
		t.Fatal(err)
	}
	defer detach()
	do(t, next, 30*time.Second, chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.CSS("#register-form")))
	got := eval[look](t, next, looks)
	want := fresh
	want.Signed, want.Stored = "", ""
	if got != want {
		t.Errorf("the next test's tab shows %+v; want %+v: a new tab's viewport and media, signed out, nothing stored, no script", got, want)
	}
}

// browserErr explains a failed browser step: when the tab was given up
// because the server died, that is the reason, not the step's own error.
func browserErr(tab context.Context, err error) error {
	if cause := context.Cause(tab); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
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
		t.Fatalf("browser: %v", browserErr(tab, err))
	}
}

// click clicks the first element that matches css as a person would: once
// it holds still. chromedp.Click reads where the element is and then sends
// the mouse there; a layout that moves in between (a column that ends and
// swaps its buttons, the turns above re-drawn with their final texts) sends
// the click to whatever is there now, which a machine busy with other tests
// makes likely. So click first waits until the element has kept its box for
// four looks, 16 ms apart, and is what the page has at its centre. An
// element that never settles, or that a scrolled box hides, is clicked as
// chromedp would after about a second of that.
func click(css string) chromedp.Action[chromedp.Void] {
	settled := fmt.Sprintf(`new Promise((settled) => {
		let box = '', still = 0, looks = 0;
		const look = () => {
			const el = document.querySelector(%s);
			const r = el && el.getBoundingClientRect();
			if (r && r.width > 0 && r.height > 0) {
				const now = [r.x, r.y, r.width, r.height].join();
				still = now === box ? still + 1 : 0;
				box = now;
				looks++;
				const x = r.x + r.width / 2, y = r.y + r.height / 2;
				const inView = x >= 0 && y >= 0 && x < innerWidth && y < innerHeight;
				const hit = inView && document.elementFromPoint(x, y);
				if ((still >= 3 && (!inView || (hit && el.contains(hit)))) || looks >= 60) return settled();
			}
			setTimeout(look, 16);
		};
		look();
	})`, jsString(css))
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](settled, chromedp.EvalAwaitPromise),
		chromedp.Click(chromedp.CSS(css)),
	)
}

// eval evaluates a JavaScript expression in the page (promises awaited) and
// decodes its value.
func eval[T any](t *testing.T, tab context.Context, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %q: %v", js, browserErr(tab, err))
	}
	return v
}

// waitFor polls a JavaScript predicate until it is truthy.
func waitForPage(t *testing.T, tab context.Context, d time.Duration, what, predicate string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, d+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate,
		chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err != nil {
		shot(t, tab, "timeout")
		t.Fatalf("waiting for %s: %v\ncolumns: %+v", what, browserErr(tab, err), columnsOf(t, tab))
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

// writeDocScreenshot writes a picture of the docs (make screenshot) to out,
// a path absolute or relative to the module root, where make runs.
func writeDocScreenshot(t *testing.T, out string, png []byte) {
	t.Helper()
	if !filepath.IsAbs(out) {
		out = filepath.Join(moduleRoot, out)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
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
