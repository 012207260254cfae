package main

// Browser test of the Leaderboard view (docs/api.md "Blind comparisons and
// the leaderboard"). The harness is web_server_test.go and web_chrome_test.go.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// leaderboardSpy answers the page's GET /leaderboard, before any script
// runs, with a designed leaderboard (window.__leaderboards, by query), and
// keeps each query the page asked (window.__leaderboardAsked): the view's
// drawing is checked against numbers chosen for it, and its controls
// against the queries they send. Every other request goes to the server.
const leaderboardSpy = `(() => {
	const native = window.fetch;
	window.__leaderboardAsked = [];
	window.fetch = (input, init) => {
		const url = new URL(typeof input === 'string' ? input : input.url, location.href);
		if (url.pathname !== '/leaderboard') return native(input, init);
		window.__leaderboardAsked.push(url.search);
		const q = url.searchParams;
		let body = window.__leaderboards[q.get('scope') + (q.get('leaks') === 'include' ? '+leaks' : '')];
		if (Array.isArray(body)) body = body.length > 1 ? body.shift() : body[0]; // answers in turn, the last for good
		return Promise.resolve(new Response(JSON.stringify(body), {status: 200, headers: {'Content-Type': 'application/json'}}));
	};
})()`

// designedLeaderboards are the answers of leaderboardSpy: the caller's
// votes (three models, one of them not in this server's catalogue), the
// same with identity leaks counted, and everyone's: not computed yet at
// first (updatedAt null, as the server answers before its first
// computation), then computed, with no votes.
const designedLeaderboards = `window.__leaderboards = {
	'me': {votes: 26, updatedAt: new Date(Date.now() - 150000).toISOString(), models: [
		{model: 'demo/fast', rating: 1062.4, ci95: [1010.2, 1120.9], battles: 20, wins: 13, ties: 3, losses: 4},
		{model: 'demo/steady', rating: 1001.0, ci95: [950.4, 1049.6], battles: 18, wins: 8, ties: 4, losses: 6},
		{model: 'openai/gpt-9-imaginary', rating: 936.6, ci95: [870.1, 990.3], battles: 14, wins: 3, ties: 1, losses: 10}]},
	'me+leaks': {votes: 27, updatedAt: new Date().toISOString(), models: [
		{model: 'demo/fast', rating: 1050, ci95: [1000, 1100], battles: 21, wins: 13, ties: 3, losses: 5},
		{model: 'demo/steady', rating: 950, ci95: [900, 1000], battles: 21, wins: 5, ties: 3, losses: 13}]},
	'all': [{votes: 0, updatedAt: null, models: []}, {votes: 0, updatedAt: new Date().toISOString(), models: []}],
	'all+leaks': {votes: 0, updatedAt: new Date().toISOString(), models: []},
}`

// lbRow is one row of the leaderboard as the page draws it, with the
// pixel edges of its interval bar and rating tick.
type lbRow struct {
	Model    string  `json:"model"`
	Name     string  `json:"name"`
	Rating   string  `json:"rating"`
	Interval string  `json:"interval"`
	Battles  string  `json:"battles"`
	WinRate  string  `json:"winRate"`
	BarLeft  float64 `json:"barLeft"`
	BarRight float64 `json:"barRight"`
	Point    float64 `json:"point"`
	Mean     float64 `json:"mean"`
}

const lbRowsJS = `[...document.querySelectorAll('#lb-table tbody tr')].map(tr => {
	const box = (sel) => tr.querySelector(sel).getBoundingClientRect();
	const mean = box('.ci-mean');
	return {
		model: tr.dataset.model, name: tr.querySelector('.lb-name').textContent,
		rating: tr.querySelector('.lb-rating').textContent, interval: tr.querySelector('.lb-ci-text').textContent,
		battles: tr.querySelector('.lb-battles').textContent, winRate: tr.querySelector('.lb-winrate').textContent,
		barLeft: box('.ci-range').left, barRight: box('.ci-range').right,
		point: box('.ci-point').left + box('.ci-point').width / 2, mean: mean.left + mean.width / 2,
	};
})`

// TestBrowserLeaderboardView: the page's navigation opens the Leaderboard
// at its own URL; it draws each model's rating, interval, battles and win
// rate, and the intervals as bars on one scale (each bar's edges where its
// numbers put them, the mean of 1000 at one place in every row), and asks
// again for one over a minute old; "Everyone's"
// and the identity-leak toggle ask for scope=all and leaks=include and
// stay in the URL, which opens the same view when loaded, and Back returns.
func TestBrowserLeaderboardView(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t)
	tab := newBrowser(t)
	do(t, tab, 10*time.Second, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: leaderboardSpy + ";" + designedLeaderboards})
		return err
	}))
	registerThroughForm(t, tab, srv.URL)
	do(t, tab, 10*time.Second, click("#nav-leaderboard"))
	waitForPage(t, tab, 10*time.Second, "the leaderboard", `document.querySelector('#leaderboard').dataset.state === 'ready' &&
		document.querySelectorAll('#lb-table tbody tr').length === 3`)
	if got := eval[string](t, tab, `location.pathname + location.search`); got != "/?view=leaderboard" {
		t.Errorf("the leaderboard's URL is %q", got)
	}
	if eval[bool](t, tab, `getComputedStyle(document.querySelector('#compose')).display !== 'none'`) {
		t.Errorf("the comparison form shows beside the leaderboard")
	}
	rows := eval[[]lbRow](t, tab, lbRowsJS)
	want := []lbRow{
		{Model: "demo/fast", Name: "Demo fast", Rating: "1062", Interval: "1010–1121", Battles: "20", WinRate: "65%"},
		{Model: "demo/steady", Name: "Demo steady", Rating: "1001", Interval: "950–1050", Battles: "18", WinRate: "44%"},
		{Model: "openai/gpt-9-imaginary", Name: "openai/gpt-9-imaginary", Rating: "937", Interval: "870–990", Battles: "14", WinRate: "21%"},
	}
	for i, w := range want {
		r := rows[i]
		if r.Model != w.Model || r.Name != w.Name || r.Rating != w.Rating || r.Interval != w.Interval || r.Battles != w.Battles || !strings.HasPrefix(r.WinRate, w.WinRate) {
			t.Errorf("row %d shows %+v, want %+v", i+1, r, w)
		}
	}
	// One scale for every bar: pixels = a + b·rating, the same a and b in
	// every row, fitted on the first bar and checked on the others.
	lows := []float64{1010.2, 950.4, 870.1}
	highs := []float64{1120.9, 1049.6, 990.3}
	ratings := []float64{1062.4, 1001.0, 936.6}
	b := (rows[0].BarRight - rows[0].BarLeft) / (highs[0] - lows[0])
	a := rows[0].BarLeft - b*lows[0]
	if b <= 0 {
		t.Fatalf("the first bar is %v px to %v px: not drawn left to right", rows[0].BarLeft, rows[0].BarRight)
	}
	near := func(px, v float64) bool { return px > a+b*v-2 && px < a+b*v+2 }
	for i, r := range rows {
		if !near(r.BarLeft, lows[i]) || !near(r.BarRight, highs[i]) || !near(r.Point, ratings[i]) || !near(r.Mean, 1000) {
			t.Errorf("row %d: bar %.1f–%.1f px, rating at %.1f px, mean at %.1f px; the scale puts them at %.1f–%.1f, %.1f and %.1f",
				i+1, r.BarLeft, r.BarRight, r.Point, r.Mean, a+b*lows[i], a+b*highs[i], a+b*ratings[i], a+b*1000)
		}
	}
	if meta := eval[string](t, tab, `document.querySelector('#lb-meta').textContent`); meta != "26 votes counted · updated 3 minutes ago" {
		t.Errorf("the leaderboard's footnote reads %q", meta)
	}
	// Older than a minute, it is asked again once: the server is computing a fresher one.
	waitForPage(t, tab, 10*time.Second, "the stale leaderboard asked again", `JSON.stringify(window.__leaderboardAsked) === '["?scope=me","?scope=me"]'`)
	shot(t, tab, "mine")

	// Everyone's: not computed yet, so asked again; then nobody has voted yet.
	do(t, tab, 10*time.Second, click(`label[for="lb-scope-all"]`))
	waitForPage(t, tab, 10*time.Second, "everyone's (empty) leaderboard", `window.__leaderboardAsked.filter(q => q === '?scope=all').length === 2 &&
		document.querySelector('#leaderboard').dataset.scope === 'all' &&
		document.querySelector('#leaderboard').dataset.state === 'ready' && document.querySelector('#lb-table').hidden &&
		document.querySelector('#lb-status').textContent.includes('No votes')`)
	do(t, tab, 10*time.Second, click(`#lb-leaks`))
	waitForPage(t, tab, 10*time.Second, "the query with leaks", `window.__leaderboardAsked.at(-1) === '?scope=all&leaks=include'`)
	if got := eval[string](t, tab, `location.search`); got != "?view=leaderboard&scope=all&leaks=include" {
		t.Errorf("the URL keeps the view as %q", got)
	}

	// The URL opens the same view, and Mine with leaks asks for that.
	do(t, tab, 30*time.Second, chromedp.Navigate(srv.URL+"/?view=leaderboard&leaks=include"))
	waitForPage(t, tab, 10*time.Second, "the leaderboard from its URL", `document.querySelector('#leaderboard').dataset.state === 'ready' &&
		document.querySelectorAll('#lb-table tbody tr').length === 2`)
	if !eval[bool](t, tab, `document.querySelector('#lb-scope-me').checked && document.querySelector('#lb-leaks').checked &&
		JSON.stringify(window.__leaderboardAsked) === '["?scope=me&leaks=include"]'`) {
		t.Errorf("loaded from its URL, the view asked %v", eval[[]string](t, tab, `window.__leaderboardAsked`))
	}
	// Compare, then Back: the leaderboard again.
	do(t, tab, 10*time.Second, click("#nav-compare"))
	waitForPage(t, tab, 10*time.Second, "the comparison form", `location.search === '' && !document.querySelector('#compose').hidden &&
		getComputedStyle(document.querySelector('#compose')).display !== 'none' && document.querySelector('#leaderboard').hidden`)
	eval[bool](t, tab, `(history.back(), true)`)
	waitForPage(t, tab, 10*time.Second, "the leaderboard after Back", `!document.querySelector('#leaderboard').hidden &&
		document.querySelector('#nav-leaderboard').getAttribute('aria-current') === 'page'`)
}

// screenshotJudge casts the votes of TestScreenshotLeaderboard from inside
// the page: eight blind comparisons of the three demo models, each voted on
// (by their owner, so each is revealed at once) as a judge who likes long
// answers would, one a tie and one "all bad".
const screenshotJudge = `(async () => {
	const call = async (method, path, body) => {
		const r = await fetch(path, {method, credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
			body: body === undefined ? undefined : JSON.stringify(body)});
		if (!r.ok) throw new Error(method + ' ' + path + ': ' + r.status + ' ' + await r.text());
		return r.json();
	};
	const topics = ['CRDTs', 'B-trees', 'TCP slow start', 'bloom filters', 'Raft', 'garbage collection', 'SIMD', 'JIT compilers'];
	const started = await Promise.all(topics.map(t => call('POST', '/sessions',
		{prompt: 'Explain ' + t + ' in two sentences', models: ['demo/fast', 'demo/steady', 'demo/slow'], blind: true})));
	for (const [i, {session}] of started.entries()) {
		let s = session;
		while (s.status === 'running') {
			await new Promise(r => setTimeout(r, 250));
			s = (await call('GET', '/sessions/' + s.id)).session;
		}
		const longest = s.responses.reduce((a, b) => (b.text.length > a.text.length ? b : a));
		await call('PUT', '/sessions/' + s.id + '/vote', {choice: i === 6 ? 'tie' : i === 7 ? 'all_bad' : longest.id});
	}
	return true;
})()`

// TestScreenshotLeaderboard writes the README's picture of the Leaderboard
// (make screenshot) after eight blind comparisons judged by screenshotJudge.
// Like TestScreenshotPhone it runs only when its variable names the file:
// the view itself is tested by TestBrowserLeaderboardView and
// TestBrowserBlindVoteReveal.
func TestScreenshotLeaderboard(t *testing.T) {
	out, srv, tab, ok := screenshotTab(t, "PLAYGROUND_SCREENSHOT_LEADERBOARD", "MODELS=demo/fast,demo/steady,demo/slow", chromedp.EmulateViewport(1280, 560))
	if !ok {
		return // by design: only `make screenshot` wants the file
	}
	ctx, cancel := context.WithTimeout(tab, 2*time.Minute)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](screenshotJudge, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("the votes: %v", err)
	}
	// Loaded by its address, so the history and the quota show the comparisons made.
	do(t, tab, 30*time.Second, chromedp.Navigate(srv.URL+"/?view=leaderboard"))
	waitForPage(t, tab, 30*time.Second, "the leaderboard", `document.querySelector('#leaderboard').dataset.state === 'ready' &&
		document.querySelectorAll('#lb-table tbody tr').length === 3 && document.querySelectorAll('#history-list li').length === 8`)
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	writeDocScreenshot(t, out, png)
}
