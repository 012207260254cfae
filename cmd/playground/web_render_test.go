package main

// Browser tests of readable answers: Markdown, code and math rendered while
// they stream, hostile answers kept inert, the work of each render, focus,
// synchronised scrolling, the phone layout, links that pre-fill the form,
// and the thinking block. The models say exactly what a test wants through
// a fake OpenAI-compatible upstream (scriptedUpstream below).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// scriptedUpstream is an OpenAI-compatible upstream (Chat Completions,
// streamed) whose models each say a fixed text, in fixed chunks, a fixed
// delay apart. The server is pointed at it with OPENAI_BASE_URL, and lists
// its models as openai/<name> through MODELS. A model held open (holdOpen)
// goes on after its text until the test lets it end.
type scriptedUpstream struct {
	srv     *httptest.Server
	answers map[string][]string // model name -> chunks
	delay   time.Duration

	mu   sync.Mutex
	open map[string]chan struct{} // model name -> closed when it may end
}

// holdOpen keeps every answer of model streaming, a word every 50 ms after
// its text, until release is called (the test's cleanup calls it too). A
// test that needs a comparison still running at some step, however long a
// busy machine takes to get there, holds one of its models open until then.
func (u *scriptedUpstream) holdOpen(t *testing.T, model string) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	u.mu.Lock()
	if u.open == nil {
		u.open = map[string]chan struct{}{}
	}
	u.open[model] = ch
	u.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	return release
}

func newScriptedUpstream(t *testing.T, delay time.Duration, answers map[string][]string) *scriptedUpstream {
	t.Helper()
	u := &scriptedUpstream{answers: answers, delay: delay}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.srv.Close)
	return u
}

// env is the server's settings for this upstream, offering its models in
// the order given.
func (u *scriptedUpstream) env(models ...string) []string {
	ids := make([]string, len(models))
	for i, m := range models {
		ids[i] = "openai/" + m
	}
	return []string{"OPENAI_API_KEY=sk-test", "OPENAI_BASE_URL=" + u.srv.URL + "/v1", "MODELS=" + strings.Join(ids, ",")}
}

// chunked cuts a text into pieces of n bytes (on rune boundaries).
func chunked(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		k := min(n, len(s))
		for k < len(s) && (s[k]&0xC0) == 0x80 {
			k++
		}
		out = append(out, s[:k])
		s = s[k:]
	}
	return out
}

func (u *scriptedUpstream) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.URL.Path != "/v1/chat/completions" {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	chunks, ok := u.answers[req.Model]
	if !ok {
		http.Error(w, `{"error":{"message":"no such model"}}`, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1764100800, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for _, c := range chunks {
		if u.delay > 0 {
			select {
			case <-time.After(u.delay):
			case <-r.Context().Done():
				return
			}
		}
		if !send(chunk(map[string]any{"content": c}, nil)) {
			return
		}
	}
	u.mu.Lock()
	open := u.open[req.Model]
	u.mu.Unlock()
	for open != nil {
		select {
		case <-open:
			open = nil
			continue
		case <-r.Context().Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
		if !send(chunk(map[string]any{"content": " more"}, nil)) {
			return
		}
	}
	send(chunk(map[string]any{}, "stop"))
	send(map[string]any{"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1764100800, "model": req.Model,
		"choices": []any{}, "usage": map[string]any{"prompt_tokens": 10, "completion_tokens": len(chunks), "total_tokens": 10 + len(chunks)}})
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}

// answerOf returns a JavaScript expression for a column's element.
func answerOf(model, sel string) string {
	return fmt.Sprintf(`document.querySelector(%s)`, jsString(fmt.Sprintf(`[data-model="openai/%s"] %s`, model, sel)))
}

const markdownAnswer = "## CRDTs in brief\n\n" +
	"A **CRDT** merges without coordination. The merge is ~~slow~~ *cheap*:\n\n" +
	"| property | G-Counter | LWW-Register |\n|---|---|---|\n| merge | sum of maxima | latest wins |\n| size | one slot per node | one value |\n\n" +
	"- [x] commutative\n- [ ] needs a leader\n\n" +
	"```go\nfunc (c GCounter) Value() (n int) {\n\tfor _, v := range c {\n\t\tn += v\n\t}\n\treturn n\n}\n```\n\n" +
	"The value is $v = \\sum_i c_i$, and in display form:\n\n$$\\max(a, b) \\ge \\frac{a + b}{2}$$\n\n" +
	"See [the paper](https://hal.inria.fr/inria-00555588) or \\(x^2\\).\n"

// unrendered selects the math and code that KaTeX and highlight.js, which
// load when an answer first needs them, have not rendered yet.
const unrendered = `span.math:not(.math-done), code.highlight-pending`

// waitRendered waits until the math and code on the page are rendered.
func waitRendered(t *testing.T, tab context.Context) {
	t.Helper()
	waitForPage(t, tab, 10*time.Second, "the math and code rendered", `document.querySelector('`+unrendered+`') === null`)
}

// TestBrowserMarkdownRendered: a Markdown answer with a table, a task
// list, a code block and math shows as such while the raw text stays
// exactly what the model wrote, a toggle away. KaTeX and highlight.js are
// fetched only once an answer needs them.
func TestBrowserMarkdownRendered(t *testing.T) {
	t.Parallel()
	up := newScriptedUpstream(t, 5*time.Millisecond, map[string][]string{"md": chunked(markdownAnswer, 7)})
	srv := startTestServer(t, up.env("md")...)
	tab := newBrowser(t)
	registerThroughForm(t, tab, srv.URL)
	fetched := func(file string) bool {
		return eval[bool](t, tab, `performance.getEntriesByType('resource').some(e => new URL(e.name).pathname.endsWith('/`+file+`'))`)
	}
	lazy := []string{"katex.mjs", "katex.min.css", "highlight.min.js"}
	for _, f := range lazy {
		if fetched(f) {
			t.Errorf("%s was fetched before any answer needed it", f)
		}
	}
	startComparison(t, tab, "Explain CRDTs", []string{"openai/md"}, false)
	cols := waitEnded(t, tab, 1, 30*time.Second)
	if cols[0].Status != "complete" || cols[0].Text != markdownAnswer {
		t.Fatalf("column %v: want complete with the model's exact text", cols[0])
	}
	a := answerOf("md", ".answer")
	waitForPage(t, tab, 10*time.Second, "KaTeX and highlight.js loaded and run",
		a+`.querySelector('.katex') !== null && `+a+`.querySelector('`+unrendered+`') === null`)
	for _, f := range lazy {
		if !fetched(f) {
			t.Errorf("%s was not fetched for an answer with math and code", f)
		}
	}
	checks := map[string]string{
		"a heading":                     a + `.querySelector('h2').textContent === 'CRDTs in brief'`,
		"a table of 2 rows, 3 columns":  a + `.querySelectorAll('table tbody tr').length === 2 && ` + a + `.querySelectorAll('table thead th').length === 3`,
		"strikethrough":                 a + `.querySelector('del').textContent === 'slow'`,
		"a task list, one done":         a + `.querySelectorAll('.task').length === 2 && ` + a + `.querySelectorAll('.task-done').length === 1`,
		"highlighted Go code":           a + `.querySelector('pre code.hljs.language-go .hljs-keyword') !== null`,
		"a copy button on the code":     a + `.querySelector('.code-block button.copy-code') !== null`,
		"inline and display KaTeX":      a + `.querySelectorAll('.katex').length >= 3 && ` + a + `.querySelector('.katex-display .mfrac') !== null`,
		"a safe link":                   a + `.querySelector('a[href="https://hal.inria.fr/inria-00555588"]').rel === 'noopener noreferrer'`,
		"no inline style attribute":     a + `.querySelector('[style]') === null || [...` + a + `.querySelectorAll('[style]')].every(e => e.closest('.katex'))`,
		"the raw text hidden, verbatim": answerOf("md", ".text") + `.hidden && ` + answerOf("md", ".text") + `.textContent === ` + jsString(markdownAnswer),
	}
	for what, js := range checks {
		if !eval[bool](t, tab, js) {
			shot(t, tab, "markdown")
			t.Errorf("rendered answer lacks %s (%s)", what, js)
		}
	}
	// KaTeX positioned its glyphs through element.style, which the CSP
	// allows (inline style attributes it would block): the fraction's
	// numerator sits well above its denominator.
	if d := eval[float64](t, tab, `(() => {
		const f = `+a+`.querySelector('.katex-display .mfrac');
		const [den, , num] = f.querySelectorAll('.vlist-t > .vlist-r > .vlist > span');
		return den.getBoundingClientRect().top - num.getBoundingClientRect().top;
	})()`); d < 10 {
		t.Errorf("the display fraction's numerator is %.0f px above its denominator: KaTeX's layout did not apply", d)
	}
	// The raw toggle shows the text as written, and back.
	do(t, tab, 10*time.Second, click(`[data-model="openai/md"] .view-raw`))
	if !eval[bool](t, tab, `!`+answerOf("md", ".text")+`.hidden && `+a+`.hidden`) {
		t.Errorf("the raw toggle did not show the raw text")
	}
	do(t, tab, 10*time.Second, click(`[data-model="openai/md"] .view-raw`))
	if !eval[bool](t, tab, answerOf("md", ".text")+`.hidden && !`+a+`.hidden`) {
		t.Errorf("the raw toggle did not go back to the rendered answer")
	}
	shot(t, tab, "markdown")
}

// hostileAnswers are answers that try to run code, leave the page or
// freeze it. Every one must render inert, and the page must stay usable.
var hostileAnswers = map[string]string{
	"html": `<script>window.pwned = 'script'</script>` + "\n\n" +
		`<img src=x onerror="window.pwned = 'img'"> <svg onload="window.pwned = 'svg'"><script>window.pwned = 'svg-script'</script></svg>` + "\n\n" +
		`<!-- <script>window.pwned = 'comment'</script> --> <iframe src="javascript:window.pwned = 'iframe'"></iframe>` + "\n\n" +
		`<a href="javascript:window.pwned = 'a'">click</a> <b onmouseover="window.pwned = 'b'">bold</b> <style>body { display: none }</style>`,
	"links": `[js](javascript:window.pwned='md-link') [JS](JaVaScRiPt:alert(1)) [data](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==) ` +
		`[vb](vbscript:msgbox) [rel](/auth/logout) ![img](javascript:alert(1)) ![pixel](https://tracker.example/p.gif) <javascript:alert(1)> ` +
		`[ok](https://example.com/ok) <mailto:someone@example.com>` + "\n\n[ref]: javascript:alert(1)\n\nA [ref] link.",
	"math": `$\href{javascript:alert(1)}{x}$ $\url{javascript:alert(1)}$ $\htmlClass{x}{y}$ $\htmlStyle{color:red}{z}$ ` +
		`$$\def\a{\a}\a$$ $\rule{100000em}{100000em}$ $x</span><script>window.pwned='katex'</script>$`,
	"fence":  "Unclosed fence:\n\n```html\n<script>window.pwned = 'fence'</script>\n<img src=x onerror=\"window.pwned='fence-img'\">\n",
	"nested": strings.Repeat("- ", 10000) + "deep\n\n" + strings.Repeat(">", 5000) + " quoted\n",
	"table":  "| " + strings.Repeat("h | ", 50) + "\n|" + strings.Repeat("---|", 50) + "\n" + strings.Repeat("| "+strings.Repeat("cell | ", 50)+"\n", 400),
}

// TestBrowserHostileAnswers: script tags, event handlers, javascript: and
// data: links, SVG, comments, an unclosed fence, 10,000 nested lists and a
// huge table, from models: nothing runs, no link leaves for a dangerous
// scheme, and the page still answers a click.
func TestBrowserHostileAnswers(t *testing.T) {
	// Not parallel: it times the page's answer to a click after rendering
	// the huge answers, which other tests' pages would slow down.
	models := []string{"html", "links", "math", "fence", "nested", "table"}
	answers := map[string][]string{}
	for m, text := range hostileAnswers {
		answers[m] = chunked(text, 400)
	}
	up := newScriptedUpstream(t, time.Millisecond, answers)
	srv := startTestServer(t, up.env(models...)...)
	tab := newBrowser(t)
	var dialogs atomic.Int64
	if err := chromedp.Listen(tab, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			dialogs.Add(1)
		}
	}); err != nil {
		t.Fatal(err)
	}
	registerThroughForm(t, tab, srv.URL)
	ids := make([]string, len(models))
	for i, m := range models {
		ids[i] = "openai/" + m
	}
	startComparison(t, tab, "Be hostile", ids, false)
	cols := waitEnded(t, tab, len(models), 60*time.Second)
	for _, c := range cols {
		want := hostileAnswers[strings.TrimPrefix(c.Model, "openai/")]
		if c.Status != "complete" || c.Text != want {
			t.Errorf("column %v: want complete with the exact hostile text\ngot:  %q\nwant: %q", c, c.Text, want)
		}
	}
	if p := eval[any](t, tab, `window.pwned ?? null`); p != nil {
		t.Fatalf("a hostile answer ran code: window.pwned = %v", p)
	}
	if n := dialogs.Load(); n > 0 {
		t.Fatalf("a hostile answer opened %d dialogs", n)
	}
	// What KaTeX and highlight.js make is checked too: they load when the
	// first answer needs them and then render what is in the page.
	waitForPage(t, tab, 10*time.Second, "the math and code rendered",
		`document.querySelector('#columns .katex') !== null && document.querySelector('#columns').querySelector('`+unrendered+`') === null`)
	if p := eval[any](t, tab, `window.pwned ?? null`); p != nil {
		t.Fatalf("a hostile answer ran code once KaTeX and highlight.js had run: window.pwned = %v", p)
	}
	bad := eval[[]string](t, tab, `[...document.querySelectorAll('#columns .answer *')].filter(e => {
		if (e.closest('.katex')) return e.matches('script, iframe, a[href], foreignObject') || [...e.attributes].some(a => a.name.startsWith('on'));
		if (['SCRIPT', 'IFRAME', 'IMG', 'SVG', 'STYLE', 'OBJECT', 'EMBED', 'FORM', 'INPUT'].includes(e.nodeName.toUpperCase())) return true;
		if ([...e.attributes].some(a => a.name.startsWith('on') || a.name === 'style' || a.name === 'src')) return true;
		if (e.nodeName === 'A' && e.hasAttribute('href')) {
			return !/^(https?:|mailto:)/i.test(e.getAttribute('href')) || e.rel !== 'noopener noreferrer';
		}
		return false;
	}).map(e => e.outerHTML.slice(0, 120))`)
	if len(bad) > 0 {
		t.Errorf("dangerous markup in rendered answers:\n%s", strings.Join(bad, "\n"))
	}
	if !eval[bool](t, tab, answerOf("links", ".answer")+`.querySelector('a[href="https://example.com/ok"]') !== null`) {
		t.Errorf("the safe link was lost")
	}
	if !eval[bool](t, tab, answerOf("nested", ".answer")+`.querySelector('pre.plain') !== null`) {
		t.Errorf("10,000 nested lists were not shown as plain text")
	}
	if !eval[bool](t, tab, answerOf("table", ".answer")+`.querySelectorAll('tbody tr').length === 400`) {
		t.Errorf("the huge table did not render")
	}
	if !eval[bool](t, tab, answerOf("fence", ".answer")+`.querySelector('pre code').textContent.includes('<script>')`) {
		t.Errorf("the unclosed fence's code is not shown as code")
	}
	// The page still responds: a toggle flips at once.
	start := time.Now()
	do(t, tab, 10*time.Second, click(`[data-model="openai/html"] .view-raw`))
	waitForPage(t, tab, 2*time.Second, "the raw toggle", answerOf("html", ".view-raw")+`.getAttribute('aria-pressed') === 'true'`)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a click took %v to answer", d)
	}
	shot(t, tab, "hostile")
}

// TestBrowserStreamingRendersIncrementally: a 20 KB Markdown answer streamed in 200
// chunks is rendered as it comes, and the work of each render does not grow
// with the answer: finished blocks are rendered once and kept, and only the
// open blocks at the end are rendered again. What the page did is counted,
// not timed (markdown.js's `work`: renders, characters lexed and rendered),
// so a busy machine changes how many renders there are, not what each one
// costs: the characters a render handles again (those beyond the answer's
// own length, over all renders) stay under 1,000 a render, where the
// answer's blocks are under 200; rendering the whole answer again on every
// chunk handles 10 KB a render on average, and with as few as three renders
// still over 6 KB. Every finished part stays in the page, the same node from
// the moment it appears: no part is ever removed, and the first heading
// seen while streaming is the one shown at the end. Counts do not depend on
// other tests sharing the CPU, so it runs beside them.
func TestBrowserStreamingRendersIncrementally(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 0; b.Len() < 20_000; i++ {
		fmt.Fprintf(&b, "### Part %d\n\nSome **bold** words, `code`, a [link](https://example.com/%d) and $x_%d^2$ in a paragraph of ordinary length, to read.\n\n", i, i, i)
		fmt.Fprintf(&b, "```python\ndef f%d(x):\n    return [y * %d for y in range(x)]\n```\n\n| n | square |\n|---|---|\n| %d | %d |\n\n- one\n- two\n\n", i, i, i, i*i)
	}
	text := b.String()
	pieces := chunked(text, len(text)/200+1) // 200 chunks, 10 ms apart: about two seconds
	up := newScriptedUpstream(t, 10*time.Millisecond, map[string][]string{"long": pieces})
	srv := startTestServer(t, up.env("long")...)
	tab := newBrowser(t)
	registerThroughForm(t, tab, srv.URL)
	do(t, tab, 30*time.Second, chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.CSS("#compose")))
	type work struct {
		Renders  int `json:"renders"`
		Lexed    int `json:"lexed"`
		Rendered int `json:"rendered"`
	}
	// The same module instance as the page's: a module is loaded once per URL.
	const readWork = `import('/assets/markdown.js').then(m => ({...m.work}))`
	eval[bool](t, tab, `(() => {
		window.partsRemoved = 0;
		new MutationObserver((ms) => {
			for (const m of ms) for (const n of m.removedNodes) {
				if (n.nodeType === 1 && (n.matches('.md-part') || n.querySelector('.md-part'))) window.partsRemoved++;
			}
		}).observe(document.querySelector('#columns'), { childList: true, subtree: true });
		return true;
	})()`)
	before := eval[work](t, tab, readWork)
	startComparison(t, tab, "Write at length", []string{"openai/long"}, false)
	waitForPage(t, tab, 20*time.Second, "the first heading of the answer", `(window.firstHeading = `+answerOf("long", ".answer h3")+`) !== null`)
	cols := waitEnded(t, tab, 1, 60*time.Second)
	if cols[0].Text != text {
		t.Fatalf("column %v: want the whole answer", cols[0])
	}
	waitForPage(t, tab, 5*time.Second, "the last part to render", answerOf("long", ".answer")+`.querySelectorAll('h3').length === `+fmt.Sprint(strings.Count(text, "### ")))
	after := eval[work](t, tab, readWork)
	renders, lexed, rendered := after.Renders-before.Renders, after.Lexed-before.Lexed, after.Rendered-before.Rendered
	t.Logf("%d chunks of about %d bytes, %d characters: %d renders; characters lexed %d, rendered %d", len(pieces), len(pieces[0]), len(text), renders, lexed, rendered)
	if renders < 3 {
		t.Errorf("the answer was rendered %d times while it streamed, want it rendered as it comes", renders)
	}
	for _, c := range []struct {
		what string
		n    int
	}{{"lexed", lexed}, {"rendered", rendered}} {
		if c.n < len(text) || c.n-len(text) > 1000*max(renders, 1) {
			t.Errorf("%d characters of Markdown %s for a %d-character answer in %d renders: want its length plus at most 1,000 a render (its open blocks)", c.n, c.what, len(text), renders)
		}
	}
	if n := eval[int](t, tab, `window.partsRemoved`); n > 0 {
		t.Errorf("%d finished parts of the answer were removed from the page (rendered again)", n)
	}
	if !eval[bool](t, tab, `window.firstHeading.isConnected && `+answerOf("long", ".answer h3")+` === window.firstHeading`) {
		t.Errorf("the first heading shown while the answer streamed was replaced: the finished blocks were rendered again")
	}
	// A part holds the blocks one render finished, so a starved page that
	// rendered a few times has a few parts; rendering everything again
	// leaves none.
	if n := eval[int](t, tab, answerOf("long", ".answer")+`.querySelectorAll('.md-part').length`); n < min(10, renders/2) {
		t.Errorf("the answer's finished blocks are in %d parts after %d renders, want them kept in parts as they finish", n, renders)
	}
}

// TestBrowserFocusAndSyncScroll: focusing a column gives it the width and
// shrinks the others to their status and metrics; scrolling one answer
// scrolls the others to the same place, unless the toggle is off; the best
// metrics are marked.
func TestBrowserFocusAndSyncScroll(t *testing.T) {
	t.Parallel()
	long := func(tag string) string {
		var b strings.Builder
		for i := range 60 {
			fmt.Fprintf(&b, "%s paragraph %d, long enough to wrap in a column of ordinary width.\n\n", tag, i)
		}
		return b.String()
	}
	up := newScriptedUpstream(t, 0, map[string][]string{"a": chunked(long("Alpha"), 500), "b": chunked(long("Beta"), 200), "c": chunked(long("Gamma"), 300)})
	srv := startTestServer(t, up.env("a", "b", "c")...)
	tab := newBrowser(t)
	registerThroughForm(t, tab, srv.URL)
	id := startComparison(t, tab, "Three long answers", []string{"openai/a", "openai/b", "openai/c"}, false)
	waitEnded(t, tab, 3, 30*time.Second)
	// The page is let settle before the reader scrolls: no answer's render
	// is still to come (one keeps an answer that was at its bottom there,
	// and a slow one is put off), and the scroll events of the reset to
	// the top have been handled. (The follow below once timed out in a
	// full run, the cause not seen again.)
	eval[bool](t, tab, `(async () => {
		const { work } = await import('/assets/markdown.js');
		for (let n = -1; n !== work.renders; ) { n = work.renders; await new Promise(r => setTimeout(r, 250)); }
		return true;
	})()`)
	frames := `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`

	// Synchronised scrolling, on by default.
	scrollA := `(() => { const e = ` + answerOf("a", ".answer") + `; e.scrollTop = (e.scrollHeight - e.clientHeight) / 2; return true; })()`
	ratio := func(m string) string {
		return `(() => { const e = ` + answerOf(m, ".answer") + `; return e.scrollTop / (e.scrollHeight - e.clientHeight); })()`
	}
	eval[bool](t, tab, `(() => { for (const e of document.querySelectorAll('#columns .answer')) e.scrollTop = 0; return true; })()`)
	eval[bool](t, tab, frames)
	eval[bool](t, tab, scrollA)
	waitForPage(t, tab, 5*time.Second, "the other answers to follow", `Math.abs(`+ratio("b")+` - 0.5) < 0.05 && Math.abs(`+ratio("c")+` - 0.5) < 0.05`)
	do(t, tab, 10*time.Second, click("#sync-scroll"))
	eval[bool](t, tab, `(() => { const e = `+answerOf("a", ".answer")+`; e.scrollTop = 0; return true; })()`)
	time.Sleep(300 * time.Millisecond) // give a wrongly synchronised scroll time to happen: nothing to wait for
	if r := eval[float64](t, tab, ratio("b")); r < 0.4 {
		t.Errorf("with synchronised scrolling off, b followed a to %.2f", r)
	}

	// Focus.
	do(t, tab, 10*time.Second, click(`[data-model="openai/b"] .focus-one`))
	widths := `[...document.querySelectorAll('#columns [data-model]')].map(c => ({m: c.dataset.model, w: Math.round(c.getBoundingClientRect().width), answer: c.querySelector('.answer').offsetParent !== null, metrics: !c.querySelector('.metrics').hidden && c.querySelector('.metrics').offsetParent !== null}))`
	type colBox struct {
		M       string `json:"m"`
		W       int    `json:"w"`
		Answer  bool   `json:"answer"`
		Metrics bool   `json:"metrics"`
	}
	boxes := eval[[]colBox](t, tab, widths)
	for _, c := range boxes {
		focused := c.M == "openai/b"
		if focused && (!c.Answer || c.W < 900) || !focused && (c.Answer || c.W > 300 || !c.Metrics) {
			t.Errorf("in focus on b: %+v", c)
		}
	}
	shot(t, tab, "focus")
	do(t, tab, 10*time.Second, click(`[data-model="openai/b"] .focus-one`))
	for _, c := range eval[[]colBox](t, tab, widths) {
		if !c.Answer {
			t.Errorf("after focus ends: %+v", c)
		}
	}
	// The best time to first token is marked, on the columns that have it
	// (a tie marks each; all equal marks none).
	s := fetchSession(t, tab, id, "")
	ttft := map[string]int64{}
	least, most := int64(-1), int64(-1)
	for _, r := range s.Responses {
		var m struct {
			TTFTMs int64 `json:"ttftMs"`
		}
		if err := json.Unmarshal(r.Metrics, &m); err != nil {
			t.Fatalf("%s metrics: %v", r.Model, err)
		}
		ttft[r.Model] = m.TTFTMs
		if least < 0 || m.TTFTMs < least {
			least = m.TTFTMs
		}
		most = max(most, m.TTFTMs)
	}
	for _, r := range s.Responses {
		want := ttft[r.Model] == least && least != most
		got := eval[bool](t, tab, `document.querySelector('[data-model=`+jsString(r.Model)+`] .metric[data-metric="ttft"]').classList.contains('best')`)
		if got != want {
			t.Errorf("%s (ttft %d ms, best %d): marked fastest %v, want %v", r.Model, ttft[r.Model], least, got, want)
		}
	}
}

// TestBrowserPhoneLayout: on a 390 × 844 phone the columns stack, nothing
// overflows sideways, and every column is one tap away in the jump bar.
func TestBrowserPhoneLayout(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t)
	tab := newBrowser(t)
	do(t, tab, 10*time.Second, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	registerThroughForm(t, tab, srv.URL)
	startComparison(t, tab, "Explain CRDTs in two sentences", demoTrio, false)
	waitEnded(t, tab, 3, 60*time.Second)
	if w := eval[int](t, tab, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the page is %d px wide on a 390 px phone", w)
	}
	for _, m := range demoTrio {
		link := fmt.Sprintf(`#column-nav a[data-response-id="%s"]`, eval[string](t, tab, fmt.Sprintf(`document.querySelector('[data-model=%s]').dataset.responseId`, jsString(m))))
		do(t, tab, 10*time.Second, click(link))
		waitForPage(t, tab, 5*time.Second, m+" in view", fmt.Sprintf(`(() => {
			const r = document.querySelector('[data-model=%s]').getBoundingClientRect();
			return r.top >= 0 && r.top < 844 / 2 && r.left >= 0 && r.right <= 390;
		})()`, jsString(m)))
	}
	shot(t, tab, "phone")
}

// TestBrowserPrefillLink: /?models=…&prompt=… fills the form and starts
// nothing until Start is pressed.
func TestBrowserPrefillLink(t *testing.T) {
	t.Parallel()
	srv, tab, _ := signedIn(t, "")
	prompt := "Compare <b>these</b> & those"
	q := url.Values{"models": {"demo/fast,demo/slow,demo/nope"}, "prompt": {prompt}}
	do(t, tab, 30*time.Second, chromedp.Navigate(srv.URL+"/?"+q.Encode()), chromedp.WaitVisible(chromedp.CSS("#compose")))
	waitForPage(t, tab, 10*time.Second, "the model list", `document.querySelectorAll('#model-list input').length > 0`)
	if got := eval[string](t, tab, `document.querySelector('#prompt').value`); got != prompt {
		t.Errorf("prompt pre-filled as %q", got)
	}
	checked := eval[[]string](t, tab, `[...document.querySelectorAll('#model-list input:checked')].map(i => i.value)`)
	if strings.Join(checked, ",") != "demo/fast,demo/slow" {
		t.Errorf("models ticked: %v", checked)
	}
	time.Sleep(500 * time.Millisecond) // a comparison started on load would show by now: nothing to wait for
	if !eval[bool](t, tab, `document.querySelector('#session').hidden && document.querySelectorAll('#history-list li').length === 0`) {
		t.Fatalf("a comparison started without a click")
	}
	do(t, tab, 10*time.Second, click("#start"))
	waitEnded(t, tab, 2, 60*time.Second)
}

// TestPageVendorFiles: every library file listed in vendor/VERSIONS is
// served from /vendor/ with its type, under 1 MiB, beside its LICENSE.
func TestPageVendorFiles(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t)
	manifest, err := os.ReadFile(filepath.Join(webDir, "vendor", "VERSIONS"))
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, line := range strings.Split(string(manifest), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "file" {
			continue
		}
		if strings.HasSuffix(f[3], "/") { // a glob into a folder: what it matched
			matches, _ := filepath.Glob(filepath.Join(webDir, "vendor", f[3], filepath.Base(f[2])))
			if len(matches) == 0 {
				t.Errorf("%s: nothing vendored for %s", f[1], f[2])
			}
			for _, m := range matches {
				paths = append(paths, strings.TrimPrefix(filepath.ToSlash(m), webDir))
			}
			continue
		}
		paths = append(paths, "/vendor/"+f[3])
	}
	if len(paths) < 10 {
		t.Fatalf("VERSIONS lists %d files", len(paths))
	}
	types := map[string]string{".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".woff2": "font/woff2", "": "text/plain"}
	for _, p := range paths {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		want := types[filepath.Ext(p)]
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), want) {
			t.Errorf("GET %s: %d %q, want 200 %s", p, res.StatusCode, res.Header.Get("Content-Type"), want)
		}
		if fi, err := os.Stat(filepath.Join(webDir, filepath.FromSlash(p))); err != nil || fi.Size() > 1<<20 {
			t.Errorf("%s: %v, over 1 MiB or missing", p, err)
		}
	}
	for _, lib := range []string{"marked", "dompurify", "highlight", "katex"} {
		if _, err := os.Stat(filepath.Join(webDir, "vendor", lib, "LICENSE")); err != nil {
			t.Errorf("%s: no LICENSE: %v", lib, err)
		}
	}
}

// thinkingHarness serves the real page with its modules, through a proxy
// to the server, except that the page runs thinkingDriver instead of
// app.js: a Column of view.js alone, which the test feeds synthetic
// `reasoning` and `chunk` events (the server does not send reasoning yet).
const thinkingDriver = `import { Column } from '/assets/view.js';
window.makeColumn = (response) => {
	const col = new Column(response, { modelName: 'Thinker' });
	document.body.append(col.el);
	return col;
};
window.ready = true;
`

func startThinkingHarness(t *testing.T, srv *browserServer) string {
	t.Helper()
	backend, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(backend)
	h := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/":
			res, err := http.Get(srv.URL + "/")
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer res.Body.Close()
			page, _ := io.ReadAll(res.Body)
			w.Header().Set("Content-Security-Policy", res.Header.Get("Content-Security-Policy"))
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write(bytes.Replace(page, []byte(`src="/assets/app.js"`), []byte(`src="/test/driver.js"`), 1))
		case "/test/driver.js":
			w.Header().Set("Content-Type", "text/javascript")
			io.WriteString(w, thinkingDriver)
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(h.Close)
	return h.URL
}

// TestBrowserThinkingBlock: a model's visible thinking shows in a
// collapsible block above the answer, as plain text: open while it streams,
// closed once the answer's first chunk arrives; a finished Response with
// reasoning shows it closed; no reasoning, no block.
func TestBrowserThinkingBlock(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t)
	page := startThinkingHarness(t, srv)
	tab := newBrowser(t)
	do(t, tab, 30*time.Second, chromedp.Navigate(page))
	waitForPage(t, tab, 10*time.Second, "the driver", `window.ready === true`)
	type block struct {
		Shown   bool   `json:"shown"`
		Open    bool   `json:"open"`
		Text    string `json:"text"`
		Above   bool   `json:"above"`
		Answer  string `json:"answer"`
		Element bool   `json:"element"`
	}
	state := func(col string) block {
		return eval[block](t, tab, `(() => { const c = `+col+`.el; const d = c.querySelector('.thinking');
			return { shown: !d.hidden && d.offsetParent !== null, open: d.open, text: d.querySelector('.thinking-text').textContent,
				above: !!(d.compareDocumentPosition(c.querySelector('.answer')) & Node.DOCUMENT_POSITION_FOLLOWING),
				answer: c.querySelector('.text').textContent, element: d.querySelector('.thinking-text *') !== null }; })()`)
	}
	eval[bool](t, tab, `(window.live = makeColumn({id: 'r1', model: 'x/thinker', status: 'pending', text: '', reasoning: ''}), true)`)
	if s := state("live"); s.Shown {
		t.Fatalf("a thinking block before any reasoning: %+v", s)
	}
	eval[bool](t, tab, `(live.setStatus('streaming'), live.appendReasoning(0, 'Let me think <img src=x onerror="window.pwned=1">'), live.appendReasoning(1, ' about it.'), live.appendReasoning(1, ' about it.'), true)`)
	if s := state("live"); !s.Shown || !s.Open || !s.Above || s.Text != `Let me think <img src=x onerror="window.pwned=1"> about it.` || s.Element {
		t.Errorf("while thinking: %+v, want shown, open, above the answer, the text once and as text", s)
	}
	eval[bool](t, tab, `(live.appendChunk(0, 'The **answer**.'), true)`)
	if s := state("live"); !s.Shown || s.Open || s.Answer != "The **answer**." {
		t.Errorf("once the answer began: %+v, want the block shown and closed", s)
	}
	eval[bool](t, tab, `(window.ended = makeColumn({id: 'r2', model: 'x/thinker', status: 'complete', text: 'Done.', reasoning: 'I thought.'}), true)`)
	if s := state("ended"); !s.Shown || s.Open || s.Text != "I thought." {
		t.Errorf("a finished response with reasoning: %+v, want shown, closed", s)
	}
	if p := eval[any](t, tab, `window.pwned ?? null`); p != nil {
		t.Errorf("thinking text ran code: %v", p)
	}
	// The reader can open it again.
	do(t, tab, 10*time.Second, click(`[data-response-id="r2"] .thinking > summary`))
	if s := state("ended"); !s.Open {
		t.Errorf("the thinking block did not open on a click")
	}
}

// TestScreenshotPhone writes docs/screenshot-phone.png (make screenshot):
// the three demo models on a 390 × 844 phone, scrolled to the answers. Like
// TestScreenshot it runs only when its variable names the file: the layout
// itself is tested by TestBrowserPhoneLayout.
func TestScreenshotPhone(t *testing.T) {
	out, _, tab, ok := screenshotTab(t, "PLAYGROUND_SCREENSHOT_PHONE", "MODELS=demo/fast,demo/steady,demo/slow", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	if !ok {
		return // by design: only `make screenshot` wants the file
	}
	startComparison(t, tab, "Explain CRDTs in two sentences", demoTrio, false)
	waitEnded(t, tab, 3, 60*time.Second)
	waitRendered(t, tab)
	do(t, tab, 10*time.Second, chromedp.Blur(chromedp.CSS("#start")))
	eval[bool](t, tab, `(document.querySelector('#session-title').scrollIntoView({block: 'start'}), window.scrollBy(0, -8), true)`)
	png := func() []byte {
		ctx, cancel := context.WithTimeout(tab, 15*time.Second)
		defer cancel()
		b, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	writeDocScreenshot(t, out, png)
}

// TestBrowserThinkingLive: a model that thinks before it answers (the demo
// models do, when a column asks for reasoning effort) fills the thinking
// block above its answer as the reasoning events come, open while it
// thinks, closed once the answer starts, and ends holding exactly the
// reasoning the server stored.
func TestBrowserThinkingLive(t *testing.T) {
	t.Parallel()
	_, tab, _ := signedIn(t, "", humanPace) // the thinking is seen before the answer begins
	waitForPage(t, tab, 10*time.Second, "the model list", `document.querySelectorAll('#model-list input').length > 0`)
	row := `#model-list .model[data-model-id="demo/slow"]`
	do(t, tab, 10*time.Second,
		click(row+` input[type=checkbox]`),
		click(row+` .col-settings summary`))
	chooseOption(t, tab, row+` select[name=reasoningEffort]`, "high")
	do(t, tab, 10*time.Second,
		click("#prompt"),
		chromedp.SendKeys(chromedp.CSS("#prompt"), "Think first"),
		click("#start"))
	col := `document.querySelector('#columns [data-model="demo/slow"]')`
	waitForPage(t, tab, 10*time.Second, "the thinking to stream", col+` && (() => { const d = `+col+`.querySelector('.thinking');
		return !d.hidden && d.open && d.querySelector('.thinking-text').textContent.length > 0 && `+col+`.querySelector('.text').textContent === ''; })()`)
	waitEnded(t, tab, 1, 30*time.Second)
	id := eval[string](t, tab, `document.querySelector('#session').dataset.sessionId`)
	stored := eval[string](t, tab, `(async () => (await (await fetch('/sessions/`+id+`')).json()).session.responses[0].reasoning)()`)
	shown := eval[string](t, tab, col+`.querySelector('.thinking-text').textContent`)
	if stored == "" || shown != stored {
		t.Errorf("the thinking block shows %q, the server stored %q", shown, stored)
	}
	if eval[bool](t, tab, col+`.querySelector('.thinking').open`) {
		t.Errorf("the thinking block is still open after the answer came")
	}
}
