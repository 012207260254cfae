package main

// Browser tests of the web page (issue 4): Chromium, headless, driven by
// chromedp against the real server with the demo provider. See
// web_server_test.go for how the server starts and web_chrome_test.go for
// the browser helpers. Each test has a server and a browser context of its
// own, so they run in parallel: most of their time is waiting on the demo
// models, which their servers run four times as fast as `make run` does.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// The demo models (providers/demo.go): fast ~1 s, steady ~3 s, slow ~4 s
// at humanPace, a quarter of that at fastDemo (web_server_test.go);
// demo/error fails on purpose with this message.
var demoTrio = []string{"demo/fast", "demo/steady", "demo/slow"}

const demoErrorMessage = "The demo model failed on purpose."

const testPassword = "correct horse battery staple"

var pageUserSeq atomic.Int64

// signedIn is how most browser tests begin: a server started with
// extraEnv, a tab, and a new account signed up through the form of the
// page at path. It returns the server, the tab and the account's email.
func signedIn(t *testing.T, path string, extraEnv ...string) (*browserServer, context.Context, string) {
	t.Helper()
	srv := startTestServer(t, extraEnv...)
	tab := newBrowser(t)
	email := registerThroughForm(t, tab, srv.URL+path)
	return srv, tab, email
}

// screenshotCatalogue is the catalogue of the README's screenshots: the
// demo models and two keyless ones, greyed.
const screenshotCatalogue = "MODELS=demo/fast,demo/steady,demo/slow,demo/error,openai/gpt-4o-mini,anthropic/claude-haiku-4-5"

// screenshotTab begins a test that writes a screenshot for make screenshot:
// the file the variable names, a server with models (a MODELS=… setting),
// and a tab of the viewport signed up to it. With the variable unset it
// returns ok false and the test returns at once, by design: the pages
// pictured are tested elsewhere, only make screenshot wants the file.
func screenshotTab(t *testing.T, variable, models string, viewport chromedp.Action[chromedp.Void]) (out string, srv *browserServer, tab context.Context, ok bool) {
	t.Helper()
	if out = os.Getenv(variable); out == "" {
		return "", nil, nil, false
	}
	srv = startTestServer(t, models)
	tab = newBrowser(t)
	do(t, tab, 10*time.Second, viewport)
	registerThroughForm(t, tab, srv.URL)
	return out, srv, tab, true
}

// registerThroughForm opens the page and creates an account with the form.
func registerThroughForm(t *testing.T, tab context.Context, baseURL string) string {
	t.Helper()
	email := fmt.Sprintf("browser%d-%d@example.com", time.Now().UnixNano(), pageUserSeq.Add(1))
	do(t, tab, 30*time.Second,
		chromedp.Navigate(baseURL),
		chromedp.WaitVisible(chromedp.CSS("#register-form")),
		chromedp.SendKeys(chromedp.CSS("#register-email"), email),
		chromedp.SendKeys(chromedp.CSS("#register-password"), testPassword),
		click("#register-submit"),
		chromedp.WaitVisible(chromedp.CSS("#compose")),
	)
	waitForPage(t, tab, 10*time.Second, "the account to show", `document.querySelector('#account-email').textContent === `+jsString(email))
	return email
}

// startComparison ticks the models, types the prompt and starts, with the
// button or with Ctrl+Enter; it returns the new session's id.
func startComparison(t *testing.T, tab context.Context, prompt string, models []string, keyboard bool) string {
	t.Helper()
	waitForPage(t, tab, 10*time.Second, "the model list", `document.querySelectorAll('#model-list input').length > 0`)
	for _, m := range models {
		sel := fmt.Sprintf(`#model-list input[value=%s]`, jsString(m))
		if !eval[bool](t, tab, fmt.Sprintf(`!!document.querySelector(%s) && !document.querySelector(%s).disabled`, jsString(sel), jsString(sel))) {
			t.Fatalf("model %s is not offered (or not available) in the picker", m)
		}
		do(t, tab, 10*time.Second, click(sel))
	}
	do(t, tab, 10*time.Second, chromedp.SendKeys(chromedp.CSS("#prompt"), prompt))
	if keyboard {
		do(t, tab, 10*time.Second, chromedp.Focus(chromedp.CSS("#prompt")),
			chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl)))
	} else {
		do(t, tab, 10*time.Second, click("#start"))
	}
	waitForPage(t, tab, 10*time.Second, "the comparison to start",
		fmt.Sprintf(`document.querySelector('#session').dataset.sessionId !== '' && document.querySelectorAll('#columns [data-model]').length === %d`, len(models)))
	return eval[string](t, tab, `document.querySelector('#session').dataset.sessionId`)
}

// waitEnded waits until the session is over on the page: n columns, each in
// a final state, and the session's done rendered.
func waitEnded(t *testing.T, tab context.Context, n int, d time.Duration) []column {
	t.Helper()
	waitForPage(t, tab, d, "every column to end", fmt.Sprintf(`(() => {
		const s = document.querySelector('#session');
		const cs = [...document.querySelectorAll('#columns [data-model]')];
		return s.dataset.status !== '' && s.dataset.status !== 'running' && cs.length === %d &&
			cs.every(c => ['complete', 'error', 'cancelled'].includes(c.querySelector('.status').textContent));
	})()`, n))
	return columnsOf(t, tab)
}

// sameAsServer checks that the page shows what GET /sessions/{id} returns:
// per response the status, exactly the text, the error message, and metrics.
func sameAsServer(t *testing.T, who string, cols []column, s wireSession) {
	t.Helper()
	if len(cols) != len(s.Responses) {
		t.Fatalf("%s: %d columns, the session has %d responses", who, len(cols), len(s.Responses))
	}
	byID := map[string]column{}
	for _, c := range cols {
		byID[c.ResponseID] = c
	}
	for _, r := range s.Responses {
		c, ok := byID[r.ID]
		if !ok {
			t.Fatalf("%s: no column for response %s (%s)", who, r.ID, r.Model)
		}
		if c.Model != r.Model || c.Status != r.Status {
			t.Errorf("%s: column %s shows %s/%s, the server says %s/%s", who, r.ID, c.Model, c.Status, r.Model, r.Status)
		}
		if c.Text != r.Text {
			t.Errorf("%s: %s text differs from the server's\npage:   %q\nserver: %q", who, r.Model, c.Text, r.Text)
		}
		if r.Error != nil && c.Error != r.Error.Message {
			t.Errorf("%s: %s error shown %q, the server says %q", who, r.Model, c.Error, r.Error.Message)
		}
		if !c.MetricsShown || !strings.Contains(c.Metrics, "TTFT") {
			t.Errorf("%s: %s shows no metrics (%q)", who, r.Model, c.Metrics)
		}
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func quotaLeft(t *testing.T, tab context.Context) int {
	t.Helper()
	q := eval[string](t, tab, `document.querySelector('#quota').textContent`)
	n, err := strconv.Atoi(strings.Fields(q + " x")[0])
	if err != nil {
		t.Fatalf("quota shown as %q", q)
	}
	return n
}

// TestPageServing checks the page's HTTP surface: the page and its assets
// with their security headers, the viewer URL, and the JSON 404 for
// anything else.
func TestPageServing(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	for _, path := range []string{"/", "/s/some-token"} {
		res, body := get(path)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `src="/assets/app.js"`) {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, res.Header.Get("Content-Type"))
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP allows unsafe code: %q", path, csp)
		}
		if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("GET %s: headers %v", path, res.Header)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, " onclick=") {
			t.Errorf("GET %s: inline script in the page", path)
		}
	}
	for _, a := range []string{"/assets/app.js", "/assets/api.js", "/assets/live.js", "/assets/view.js", "/assets/style.css"} {
		res, _ := get(a)
		if res.StatusCode != 200 || res.Header.Get("ETag") == "" {
			t.Errorf("GET %s: %d, ETag %q", a, res.StatusCode, res.Header.Get("ETag"))
		}
	}
	for _, path := range []string{"/nope", "/assets/nope.js", "/assets/", "/s/a/b", "/s/"} {
		res, body := get(path)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if res.StatusCode != 404 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != "not_found" {
			t.Errorf("GET %s: %d %q, want the JSON 404", path, res.StatusCode, body)
		}
	}
}

// TestBrowserComparison: register through the form, start a three-model
// demo comparison, and see three complete columns whose texts are what the
// server stored, with metrics, the quota refreshed and completions announced.
// The estimate under the form, which comes a moment after the typing, takes
// no more room than its empty line: nothing below it moves under the pointer.
func TestBrowserComparison(t *testing.T) {
	t.Parallel()
	_, tab, _ := signedIn(t, "")
	waitForPage(t, tab, 10*time.Second, "the quota", `/^\d+ of \d+ runs left/.test(document.querySelector('#quota').textContent)`)
	before := quotaLeft(t, tab)
	estimateBox := `document.querySelector('#estimate').getBoundingClientRect().height`
	empty := eval[float64](t, tab, `document.querySelector('#estimate').textContent === '' ? `+estimateBox+` : -1`)

	id := startComparison(t, tab, "Explain CRDTs in two sentences", demoTrio, false)
	waitForPage(t, tab, 10*time.Second, "the estimate", `document.querySelector('#estimate').textContent.startsWith('Uses ')`)
	if shown := eval[float64](t, tab, estimateBox); empty <= 0 || shown != empty {
		t.Errorf("the estimate line is %v px high empty, %v px once shown: the comparison below it moves", empty, shown)
	}
	cols := waitEnded(t, tab, 3, 60*time.Second)
	s := fetchSession(t, tab, id, "")
	if s.Status != "complete" {
		t.Fatalf("session %s ended %s", id, s.Status)
	}
	for _, c := range cols {
		if c.Status != "complete" || strings.TrimSpace(c.Text) == "" {
			t.Errorf("column %v: want complete with text", c)
		}
	}
	sameAsServer(t, "page", cols, s)

	// The quota is refreshed after the comparison (one unit per model).
	waitForPage(t, tab, 10*time.Second, "the quota to drop by 3",
		fmt.Sprintf(`document.querySelector('#quota').textContent.startsWith('%d of ')`, before-3))
	// Screen readers hear each completion.
	announced := eval[string](t, tab, `document.querySelector('#announcer').textContent`)
	for _, name := range []string{"Demo fast finished", "Demo steady finished", "Demo slow finished"} {
		if !strings.Contains(announced, name) {
			t.Errorf("announcer %q lacks %q", announced, name)
		}
	}
	// The history lists it, newest first.
	waitForPage(t, tab, 10*time.Second, "the history entry",
		fmt.Sprintf(`document.querySelector('#history-list li')?.dataset.sessionId === %s`, jsString(id)))
	shot(t, tab, "complete")
}

// TestBrowserShareViewer: a second person, in another browser context and
// without an account, opens the share link mid-stream and ends with the
// same three texts; both see how many are watching. One of the three
// models is held open until the viewer has come, so the comparison still
// runs then, however long a busy machine takes to get there.
func TestBrowserShareViewer(t *testing.T) {
	t.Parallel()
	up := newScriptedUpstream(t, 20*time.Millisecond, map[string][]string{"open": chunked("An answer that goes on until the viewer has come", 6)})
	release := up.holdOpen(t, "open")
	models := []string{"demo/fast", "demo/steady", "openai/open"}
	srv := startTestServer(t, append(up.env("open"), "MODELS="+strings.Join(models, ","))...)
	owner := newBrowser(t)
	registerThroughForm(t, owner, srv.URL)
	id := startComparison(t, owner, "Why is the sky blue?", models, false)

	waitForPage(t, owner, 10*time.Second, "text to stream", `[...document.querySelectorAll('#columns .text')].some(e => e.textContent.length > 0)`)
	do(t, owner, 10*time.Second, click("#share"))
	waitForPage(t, owner, 10*time.Second, "the share link", `document.querySelector('#share-link').value.includes('/s/')`)
	link := eval[string](t, owner, `document.querySelector('#share-link').value`)
	if st := eval[string](t, owner, `document.querySelector('#session').dataset.status`); st != "running" {
		t.Fatalf("the comparison is %s before the viewer came, with a model held open", st)
	}

	viewer := newIsolatedTab(t, "viewer")
	do(t, viewer, 30*time.Second, chromedp.Navigate(link))
	waitForPage(t, viewer, 10*time.Second, "the viewer's columns", `document.querySelectorAll('#columns [data-model]').length === 3`)
	if !eval[bool](t, viewer, `!document.querySelector('#mode-banner').hidden && document.querySelector('#compose').hidden && document.querySelector('#stop').hidden`) {
		t.Errorf("the viewer page is not read-only")
	}
	// Both are watching: the owner's page and the viewer's.
	waitForPage(t, owner, 10*time.Second, "the owner to see 2 watching", `document.querySelector('#presence').textContent === '2 watching'`)
	waitForPage(t, viewer, 10*time.Second, "the viewer to see 2 watching", `document.querySelector('#presence').textContent === '2 watching'`)
	if st := eval[string](t, viewer, `document.querySelector('#session').dataset.status`); st != "running" {
		t.Errorf("the viewer's page shows the comparison %s, want running: it came mid-stream", st)
	}
	release()

	ownerCols := waitEnded(t, owner, 3, 60*time.Second)
	viewerCols := waitEnded(t, viewer, 3, 60*time.Second)
	s := fetchSession(t, owner, id, "")
	sameAsServer(t, "owner", ownerCols, s)
	sameAsServer(t, "viewer", viewerCols, s)
	shot(t, owner, "owner")
	shot(t, viewer, "viewer")

	// Unsharing cuts the viewer off.
	do(t, owner, 10*time.Second, click("#unshare"))
	// docs/api.md: "viewers who came with it are cut off (... WebSocket
	// subscriptions get an error event not_found for that session)".
	waitForPage(t, viewer, 10*time.Second, "the viewer to be cut off after the unshare of an ended session",
		`document.querySelector('#notice').textContent.includes('no longer shared')`)
}

// TestBrowserReconnect: the page's WebSocket is cut mid-stream; the page
// shows "reconnecting", resumes from the last seq it rendered, and ends with
// the full texts, no word lost or doubled. One model streams on until the
// page has reconnected, so words come during the cut and after it.
func TestBrowserReconnect(t *testing.T) {
	t.Parallel()
	up := newScriptedUpstream(t, 20*time.Millisecond, map[string][]string{"open": chunked("A stream that outlasts the cut", 6)})
	release := up.holdOpen(t, "open")
	models := []string{"demo/fast", "demo/steady", "openai/open"}
	srv, tab, _ := signedIn(t, "", append(up.env("open"), "MODELS="+strings.Join(models, ","))...)
	id := startComparison(t, tab, "Tell me about resumable streams", models, false)

	waitForPage(t, tab, 10*time.Second, "text in the open column",
		`document.querySelector('[data-model="openai/open"] .text').textContent.length > 0`)
	// Record the indicator's states from now on.
	eval[bool](t, tab, `(() => { const c = document.querySelector('#conn'); window.connStates = [];
		new MutationObserver(() => window.connStates.push(c.textContent)).observe(c, {childList: true, characterData: true, subtree: true});
		return true; })()`)
	if n := srv.CutWebSockets(); n == 0 {
		t.Fatalf("no WebSocket to cut: the page is not using /ws")
	}
	waitForPage(t, tab, 20*time.Second, "a reconnect", `Number(document.querySelector('#conn').dataset.reconnects) >= 1`)
	// Words after the reconnect, then the end.
	grown := eval[int](t, tab, `document.querySelector('[data-model="openai/open"] .text').textContent.length`)
	waitForPage(t, tab, 10*time.Second, "words after the reconnect",
		fmt.Sprintf(`document.querySelector('[data-model="openai/open"] .text').textContent.length > %d`, grown))
	release()
	cols := waitEnded(t, tab, 3, 60*time.Second)
	s := fetchSession(t, tab, id, "")
	sameAsServer(t, "page", cols, s)
	if states := eval[[]string](t, tab, `window.connStates`); !containsPrefix(states, "reconnecting") {
		t.Errorf("the indicator never said reconnecting: %q", states)
	}
	if srv.WebSocketsOpened() < 2 {
		t.Errorf("the page opened %d WebSockets, want a second one after the cut", srv.WebSocketsOpened())
	}
	shot(t, tab, "after-reconnect")
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestBrowserProviderError: demo/error fails on purpose; its column shows
// the message while the others complete. Started with Ctrl+Enter.
func TestBrowserProviderError(t *testing.T) {
	t.Parallel()
	_, tab, _ := signedIn(t, "")
	id := startComparison(t, tab, "Fail one of three", []string{"demo/fast", "demo/error", "demo/steady"}, true)
	cols := waitEnded(t, tab, 3, 60*time.Second)
	s := fetchSession(t, tab, id, "")
	sameAsServer(t, "page", cols, s)
	for _, c := range cols {
		switch c.Model {
		case "demo/error":
			if c.Status != "error" || c.Error != demoErrorMessage {
				t.Errorf("error column: %v, want error %q", c, demoErrorMessage)
			}
		default:
			if c.Status != "complete" || c.Text == "" {
				t.Errorf("column %v: want complete with text", c)
			}
		}
	}
	if st := eval[string](t, tab, `document.querySelector('#session').dataset.status`); st != "error" {
		t.Errorf("session shown as %q, want error", st)
	}
	shot(t, tab, "provider-error")
}

// TestBrowserSSEFallback: with the WebSocket out of the picture
// (?transport=sse forces what a failing WebSocket leads to), the page
// follows the comparison over SSE to the same end.
func TestBrowserSSEFallback(t *testing.T) {
	t.Parallel()
	srv, tab, _ := signedIn(t, "/?transport=sse")
	id := startComparison(t, tab, "Server-sent events, please", demoTrio, false)
	cols := waitEnded(t, tab, 3, 60*time.Second)
	sameAsServer(t, "page", cols, fetchSession(t, tab, id, ""))
	if n := srv.WebSocketsOpened(); n != 0 {
		t.Errorf("%d WebSockets opened in SSE mode", n)
	}
	shot(t, tab, "sse")
}

// TestScreenshot writes the README's screenshot of a finished three-model
// comparison (make screenshot). It runs only when PLAYGROUND_SCREENSHOT
// names the file to write (absolute, or relative to the module root): this
// is the one test that returns early by design, since the other tests
// already cover the same path.
func TestScreenshot(t *testing.T) {
	out, _, tab, ok := screenshotTab(t, "PLAYGROUND_SCREENSHOT", screenshotCatalogue, chromedp.EmulateViewport(1280, 860))
	if !ok {
		return // by design: only `make screenshot` wants the file
	}
	startComparison(t, tab, "Explain CRDTs in two sentences", demoTrio, false)
	waitEnded(t, tab, 3, 60*time.Second)
	waitRendered(t, tab)
	do(t, tab, 10*time.Second, chromedp.Blur(chromedp.CSS("#start")))
	ctx, cancel := context.WithTimeout(tab, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(moduleRoot, out) // relative to the module root, where make runs
	}
	if abs, err := filepath.Abs(out); err == nil {
		out = abs
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", out)
}

// TestBrowserStop: a per-column stop ends that model as cancelled while the
// others go on; Stop ends the rest.
func TestBrowserStop(t *testing.T) {
	t.Parallel()
	// Answers of 30 s each: neither can end by itself before the clicks,
	// however busy the machine running the test is.
	long := strings.Repeat("word ", 600)
	up := newScriptedUpstream(t, 50*time.Millisecond, map[string][]string{
		"steady": chunked(long, 5), "slow": chunked(long, 5)})
	srv := startTestServer(t, up.env("steady", "slow")...)
	tab := newBrowser(t)
	registerThroughForm(t, tab, srv.URL)
	id := startComparison(t, tab, "Stop me", []string{"openai/steady", "openai/slow"}, false)
	waitForPage(t, tab, 10*time.Second, "the slow column to stream",
		`document.querySelector('[data-model="openai/slow"] .status').textContent === 'streaming'`)
	do(t, tab, 10*time.Second, click(`[data-model="openai/slow"] .stop-one`))
	waitForPage(t, tab, 10*time.Second, "the slow column to be cancelled",
		`document.querySelector('[data-model="openai/slow"] .status').textContent === 'cancelled'`)
	if st := eval[string](t, tab, `document.querySelector('[data-model="openai/steady"] .status').textContent`); st != "streaming" {
		t.Errorf("steady is %s when slow was cancelled, want streaming: stopping one column stops only that one", st)
	}
	do(t, tab, 10*time.Second, click(`#stop`))
	cols := waitEnded(t, tab, 2, 30*time.Second)
	s := fetchSession(t, tab, id, "")
	sameAsServer(t, "page", cols, s)
	if s.Status != "cancelled" {
		t.Errorf("session %s, want cancelled", s.Status)
	}
	shot(t, tab, "stopped")
}

// TestBrowserQuota: a 402 is explained in words, with when the quota resets.
func TestBrowserQuota(t *testing.T) {
	t.Parallel()
	_, tab, _ := signedIn(t, "", "QUOTA_FREE_PER_DAY=2")
	waitForPage(t, tab, 10*time.Second, "the quota", `document.querySelector('#quota').textContent === '2 of 2 runs left today'`)
	waitForPage(t, tab, 10*time.Second, "the model list", `document.querySelectorAll('#model-list input').length > 0`)
	for _, m := range demoTrio {
		do(t, tab, 10*time.Second, click(fmt.Sprintf(`#model-list input[value=%s]`, jsString(m))))
	}
	do(t, tab, 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#prompt"), "Three models, two runs left"),
		click("#start"))
	waitForPage(t, tab, 10*time.Second, "the quota message", `document.querySelector('#compose-error').textContent !== ''`)
	msg := eval[string](t, tab, `document.querySelector('#compose-error').textContent`)
	if !strings.Contains(msg, "needs 3 runs and you have 2 left") || !strings.Contains(msg, "resets in") {
		t.Errorf("402 shown as %q", msg)
	}
	if eval[string](t, tab, `document.querySelector('#session').dataset.sessionId`) != "" {
		t.Errorf("a session was opened after a 402")
	}
	shot(t, tab, "quota")
}

// TestBrowserHistoryAndTools: history loads more on scroll and reopens an
// old comparison read-only with its metrics; rating, the stats table,
// export links and rerun (with the link back to its parent) work.
func TestBrowserHistoryAndTools(t *testing.T) {
	t.Parallel()
	_, tab, _ := signedIn(t, "")
	first := startComparison(t, tab, "The first comparison", []string{"demo/fast", "demo/steady"}, false)
	waitEnded(t, tab, 2, 30*time.Second)

	// Rate demo/fast up: the button is pressed and the server keeps it.
	do(t, tab, 10*time.Second, click(`[data-model="demo/fast"] .rate-up`))
	waitForPage(t, tab, 10*time.Second, "the rating", `document.querySelector('[data-model="demo/fast"] .rate-up').getAttribute('aria-pressed') === 'true'`)
	rating := eval[float64](t, tab, fmt.Sprintf(`fetch('/sessions/%s').then(r => r.json()).then(b => b.session.responses.find(r => r.model === 'demo/fast').rating)`, first))
	if rating != 1 {
		t.Errorf("rating stored as %v, want 1", rating)
	}
	// Export: the Markdown download has a heading per model.
	href := eval[string](t, tab, `document.querySelector('#export-md').getAttribute('href')`)
	md := eval[string](t, tab, fmt.Sprintf(`fetch(%s).then(r => r.text())`, jsString(href)))
	if !strings.Contains(md, "demo/fast") || !strings.Contains(md, "demo/steady") {
		t.Errorf("export %s: %q", href, md)
	}
	// My models: a sortable table with the win.
	do(t, tab, 10*time.Second, click("#stats-toggle"))
	waitForPage(t, tab, 10*time.Second, "the stats table", `document.querySelectorAll('#stats-table tbody tr').length === 2`)
	wins := eval[string](t, tab, `document.querySelector('#stats-table tbody tr[data-model="demo/fast"] td:nth-of-type(3)').textContent`)
	if wins != "1" {
		t.Errorf("demo/fast wins shown as %q", wins)
	}
	do(t, tab, 10*time.Second, click(`#stats-table th[data-key="model"] button`))
	if got := eval[string](t, tab, `document.querySelector('#stats-table th[data-key="model"]').getAttribute('aria-sort')`); got != "ascending" {
		t.Errorf("sort by model: aria-sort %q", got)
	}
	do(t, tab, 10*time.Second, click("#stats-close"))

	// Rerun: a child session streams, and links back to its parent.
	do(t, tab, 10*time.Second, click("#rerun"))
	waitForPage(t, tab, 10*time.Second, "the child session", fmt.Sprintf(`(() => { const id = document.querySelector('#session').dataset.sessionId; return id && id !== %s; })()`, jsString(first)))
	child := eval[string](t, tab, `document.querySelector('#session').dataset.sessionId`)
	waitEnded(t, tab, 2, 30*time.Second)
	if !eval[bool](t, tab, `!document.querySelector('#session-parent').hidden`) {
		t.Errorf("the rerun shows no link to its parent")
	}

	// Fill the history past one page (20) through the API, then reload.
	created := eval[float64](t, tab, `(async () => {
		let n = 0;
		for (let i = 0; i < 22; i++) {
			const r = await fetch('/sessions', {method: 'POST', headers: {'Content-Type': 'application/json'},
				body: JSON.stringify({prompt: 'filler ' + i, models: ['demo/fast'], params: {maxTokens: 3}})});
			if (r.ok) n++;
		}
		return n;
	})()`)
	if created != 22 {
		t.Fatalf("created %v filler sessions", created)
	}
	do(t, tab, 30*time.Second, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#compose")))
	waitForPage(t, tab, 10*time.Second, "the first history page", `document.querySelectorAll('#history-list li').length >= 20`)
	do(t, tab, 10*time.Second, chromedp.ScrollIntoView(chromedp.CSS("#history-sentinel")))
	// The history lists conversations: the rerun is the first one's second turn.
	waitForPage(t, tab, 10*time.Second, "the rest of the history", `document.querySelectorAll('#history-list li').length === 23`)
	order := eval[[]string](t, tab, `[...document.querySelectorAll('#history-list li')].map(li => li.dataset.sessionId)`)
	if order[len(order)-1] != first || slices.Contains(order, child) {
		t.Errorf("history order: the first conversation should be last, its rerun not listed apart: %v", order)
	}
	if turns := eval[string](t, tab, fmt.Sprintf(`document.querySelector('#history-list li[data-session-id=%s] .history-turns').textContent`, jsString(first))); !strings.Contains(turns, "2 turns") {
		t.Errorf("the first conversation shows %q, want its 2 turns", turns)
	}

	// Open the first comparison from the history: read-only, with metrics.
	do(t, tab, 10*time.Second, click(fmt.Sprintf(`#history-list li[data-session-id=%s] button`, jsString(first))))
	waitForPage(t, tab, 10*time.Second, "the old comparison", fmt.Sprintf(`document.querySelector('#session').dataset.sessionId === %s`, jsString(first)))
	cols := waitEnded(t, tab, 2, 10*time.Second)
	sameAsServer(t, "reopened", cols, fetchSession(t, tab, first, ""))
	if eval[bool](t, tab, `[...document.querySelectorAll('.stop-one')].some(b => !b.hidden) || !document.querySelector('#stop').hidden`) {
		t.Errorf("an ended comparison offers Stop")
	}
	shot(t, tab, "history")
}

// TestBrowserLoginLogout: log out and back in through the forms; the token
// is never readable by the page (httpOnly cookie, nothing in web storage).
func TestBrowserLoginLogout(t *testing.T) {
	t.Parallel()
	_, tab, email := signedIn(t, "")
	if eval[bool](t, tab, `localStorage.length > 0 || sessionStorage.length > 0 || document.cookie.includes('playground_token')`) {
		t.Errorf("the page can read or has stored credentials")
	}
	do(t, tab, 10*time.Second, click("#logout"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	do(t, tab, 30*time.Second, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	do(t, tab, 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#login-email"), email),
		chromedp.SendKeys(chromedp.CSS("#login-password"), "wrong password!"),
		click("#login-submit"))
	waitForPage(t, tab, 10*time.Second, "the login error", `document.querySelector('#login-error').textContent !== ''`)
	eval[bool](t, tab, `(document.querySelector('#login-password').value = '') === ''`)
	do(t, tab, 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#login-password"), testPassword),
		click("#login-submit"),
		chromedp.WaitVisible(chromedp.CSS("#compose")))
	waitForPage(t, tab, 10*time.Second, "the account", `document.querySelector('#account-email').textContent === `+jsString(email))
	if eval[bool](t, tab, `localStorage.length > 0 || sessionStorage.length > 0 || document.cookie.includes('playground_token')`) {
		t.Errorf("the page can read or has stored credentials after login")
	}
}

// TestBrowserUntrustedText: markup in a prompt, echoed by the demo model,
// is shown as text and never run.
func TestBrowserUntrustedText(t *testing.T) {
	t.Parallel()
	_, tab, _ := signedIn(t, "")
	prompt := `<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> <b>bold</b>`
	startComparison(t, tab, prompt, []string{"demo/fast"}, false)
	cols := waitEnded(t, tab, 1, 30*time.Second)
	if eval[bool](t, tab, `window.pwned !== undefined || document.querySelector('#columns .text *, #session-title *, #session-prompt *, #history-list img, #history-list b') !== null`) {
		t.Fatalf("model or prompt text was rendered as HTML")
	}
	if shown := eval[string](t, tab, `document.querySelector('#session-prompt').textContent`); shown != prompt {
		t.Errorf("prompt shown as %q", shown)
	}
	if cols[0].Status != "complete" {
		t.Errorf("column %v", cols[0])
	}
}

// TestBrowserDiff: two ended answers can be compared word by word; the
// diff is drawn with <ins>/<del> around text nodes and rebuilds both texts.
func TestBrowserDiff(t *testing.T) {
	t.Parallel()
	_, tab, _ := signedIn(t, "")
	startComparison(t, tab, "Two answers to compare", []string{"demo/fast", "demo/steady"}, false)
	cols := waitEnded(t, tab, 2, 30*time.Second)
	// The diff is offered once the session has ended (its done, which may
	// come a moment after the columns' last status).
	waitForPage(t, tab, 10*time.Second, "the diff to be offered", `!document.querySelector('#diff').hidden`)
	// Clicked from script, not at coordinates: scrolling down to the diff
	// lays out the long answers above it (their finished parts skip layout
	// while out of view), which can move the button between the moment a
	// mouse click is aimed and the moment it lands.
	eval[bool](t, tab, `(document.querySelector('#diff > summary').click(), true)`)
	waitForPage(t, tab, 10*time.Second, "the diff form to open", `document.querySelector('#diff').open`)
	eval[bool](t, tab, `(document.querySelector('#diff-show').click(), true)`)
	waitForPage(t, tab, 20*time.Second, "the diff", `document.querySelector('#diff-output').childNodes.length > 0`)
	a := eval[string](t, tab, `[...document.querySelector('#diff-output').childNodes].filter(n => n.nodeName !== 'INS').map(n => n.textContent).join('')`)
	b := eval[string](t, tab, `[...document.querySelector('#diff-output').childNodes].filter(n => n.nodeName !== 'DEL').map(n => n.textContent).join('')`)
	if a != cols[0].Text || b != cols[1].Text {
		t.Errorf("the diff does not rebuild the two texts\na: %q\nb: %q", a, b)
	}
	shot(t, tab, "diff")
}

// TestBrowserThemesAndLayout: dark colours follow the system setting;
// columns sit side by side on a wide screen and stack on a narrow one.
func TestBrowserThemesAndLayout(t *testing.T) {
	t.Parallel()
	_, tab, _ := signedIn(t, "")
	startComparison(t, tab, "Side by side", []string{"demo/fast", "demo/steady"}, false)
	waitEnded(t, tab, 2, 30*time.Second)
	lefts := `[...document.querySelectorAll('#columns [data-model]')].map(c => Math.round(c.getBoundingClientRect().left))`
	if l := eval[[]int](t, tab, lefts); len(l) != 2 || l[0] == l[1] {
		t.Errorf("wide screen: columns at x=%v, want side by side", l)
	}
	do(t, tab, 10*time.Second, chromedp.EmulateViewport(600, 900))
	waitForPage(t, tab, 5*time.Second, "the columns to stack", `(() => { const l = `+lefts+`; return l.length === 2 && l[0] === l[1]; })()`)
	shot(t, tab, "narrow")

	bg := `getComputedStyle(document.body).backgroundColor`
	light := eval[string](t, tab, bg)
	do(t, tab, 10*time.Second, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
	if dark := eval[string](t, tab, bg); dark == light || dark != "rgb(17, 20, 24)" {
		t.Errorf("background light %s, dark %s", light, dark)
	}
	shot(t, tab, "dark")
}
