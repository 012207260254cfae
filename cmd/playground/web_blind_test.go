package main

// Browser tests of blind comparisons and the leaderboard on the page
// (docs/api.md "Blind comparisons and the leaderboard"). The harness is
// web_server_test.go and web_chrome_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// blindPair are the models of the blind tests, with the names the
// catalogue gives them: neither may appear on a page before the reveal.
var blindPair = map[string]string{"demo/fast": "Demo fast", "demo/steady": "Demo steady"}

// pageMentions lists which of needles the page's DOM contains, in text or
// in any attribute (titles, accessible names, data-*). Without the form:
// the owner's model picker lists every model the server offers, blind or
// not, and says nothing of which answer is whose.
func pageMentions(t *testing.T, tab context.Context, needles []string, withoutForm bool) []string {
	t.Helper()
	return eval[[]string](t, tab, fmt.Sprintf(`(() => {
		const root = document.documentElement.cloneNode(true);
		if (%t) root.querySelector('#compose').remove();
		const html = root.outerHTML;
		return %s.filter(n => html.includes(n));
	})()`, withoutForm, mustJSON(t, needles)))
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// blindColumn is a column of a blind session as the page shows it.
type blindColumn struct {
	Label      string `json:"label"`
	Model      string `json:"model"`
	ResponseID string `json:"responseId"`
	Name       string `json:"name"`
	Tally      string `json:"tally"`
	VoteShown  bool   `json:"voteShown"`
	VoteOn     bool   `json:"voteOn"`
	Cost       bool   `json:"cost"`
	Animation  string `json:"animation"`
}

const blindColumnsJS = `[...document.querySelectorAll('#columns .column')].map(c => ({
	label: c.dataset.label, model: c.dataset.model, responseId: c.dataset.responseId,
	name: c.querySelector('.model-name').textContent,
	tally: c.querySelector('.tally').hidden ? '' : c.querySelector('.tally').textContent,
	voteShown: !c.querySelector('.vote-best').hidden,
	voteOn: c.querySelector('.vote-best').getAttribute('aria-pressed') === 'true',
	cost: !!c.querySelector('.metric[data-metric="cost"]'),
	animation: getComputedStyle(c.querySelector('.model-name')).animationName,
}))`

func blindColumns(t *testing.T, tab context.Context) []blindColumn {
	t.Helper()
	return eval[[]blindColumn](t, tab, blindColumnsJS)
}

// checkHidden fails when a page shows, before the reveal, anything of the
// models behind a blind session: an id or a name anywhere in the DOM, a
// column with a model, or a cost.
func checkHidden(t *testing.T, who string, tab context.Context, withoutForm bool) {
	t.Helper()
	var needles []string
	for id, name := range blindPair {
		needles = append(needles, id, name)
	}
	if got := pageMentions(t, tab, needles, withoutForm); len(got) > 0 {
		t.Errorf("%s: before the reveal the page's DOM names %q", who, got)
	}
	for _, c := range blindColumns(t, tab) {
		if c.Model != "" || c.Name != "model hidden" || c.Cost || c.Tally != "" {
			t.Errorf("%s: before the reveal column %s shows model %q, name %q, cost %v, tally %q", who, c.Label, c.Model, c.Name, c.Cost, c.Tally)
		}
	}
}

// voteFor clicks a vote ("A", "B", … for that column's "Best", or "tie" or
// "all_bad") and waits for the page to show it as the caller's vote.
func voteFor(t *testing.T, tab context.Context, choice string) {
	t.Helper()
	btn := `#vote-tie`
	if choice == "all_bad" {
		btn = `#vote-all-bad`
	} else if choice != "tie" {
		btn = fmt.Sprintf(`#columns .column[data-label=%q] .vote-best`, choice)
	}
	waitForPage(t, tab, 20*time.Second, "the vote button "+choice+" to be offered", fmt.Sprintf(`(() => {
		const b = document.querySelector(%s); return !!b && !b.hidden && !b.disabled; })()`, jsString(btn)))
	do(t, tab, 10*time.Second, click(btn))
	want := "Your vote: answer " + choice
	if choice == "tie" {
		want = "Your vote: a tie"
	}
	waitForPage(t, tab, 10*time.Second, "the vote to show as the caller's", fmt.Sprintf(`
		document.querySelector('#vote-status').textContent.startsWith(%s) &&
		document.querySelector(%s).getAttribute('aria-pressed') === 'true' &&
		[...document.querySelectorAll('#blind-bar .vote-other, #columns .vote-best')].filter(b => b.getAttribute('aria-pressed') === 'true').length === 1`,
		jsString(want), jsString(btn)))
}

// TestBrowserBlindVoteReveal: the owner starts a blind comparison of two
// models and shares it; a viewer who came with the link is asked to log in
// to vote, does, and comes back to the link. Owner and viewer vote (the
// owner changes their mind once) and both pages count two votes; until the
// reveal neither page holds a model's id or name anywhere in its DOM, nor
// a tally. The owner reveals: both pages
// name the columns as the server does, with the tally per column; the
// names animate in, except for a viewer who asks for reduced motion. The
// owner's leaderboard then counts the owner's vote, everyone's both.
func TestBrowserBlindVoteReveal(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t)
	owner := newBrowser(t)
	registerThroughForm(t, owner, srv.URL)
	do(t, owner, 10*time.Second, click("#blind")) // before the models: the hint says two are needed
	id := startComparison(t, owner, "Which is the better way to sort a deck of cards?", []string{"demo/fast", "demo/steady"}, false)
	if labels := eval[string](t, owner, `[...document.querySelectorAll('#columns .column')].map(c => c.dataset.label).join()`); labels != "A,B" {
		t.Fatalf("the blind columns are labelled %q, want A,B", labels)
	}
	checkHidden(t, "owner, streaming", owner, true)

	do(t, owner, 10*time.Second, click("#share"))
	waitForPage(t, owner, 10*time.Second, "the share link", `document.querySelector('#share-link').value.includes('/s/')`)
	link := eval[string](t, owner, `document.querySelector('#share-link').value`)
	waitForPage(t, owner, 5*time.Second, "the owner's Reveal button", `!document.querySelector('#reveal').hidden`)

	// The viewer: anonymous first, so asked to log in, with no vote to cast.
	viewer := newIsolatedTab(t, "viewer")
	do(t, viewer, 10*time.Second, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-reduced-motion", Value: "reduce"}}})
		return err
	}))
	do(t, viewer, 30*time.Second, chromedp.Navigate(link))
	waitForPage(t, viewer, 15*time.Second, "the anonymous viewer to be asked to log in", `document.querySelectorAll('#columns .column').length === 2 &&
		!document.querySelector('#vote-signin').hidden`)
	if eval[bool](t, viewer, `[...document.querySelectorAll('#columns .vote-best, #blind-bar .vote-other')].some(b => !b.hidden)`) {
		t.Errorf("an anonymous viewer is offered a vote")
	}
	checkHidden(t, "anonymous viewer", viewer, false)
	email := fmt.Sprintf("voter%d-%d@example.com", time.Now().UnixNano(), pageUserSeq.Add(1))
	do(t, viewer, 30*time.Second,
		click("#vote-signin"),
		chromedp.WaitVisible(chromedp.CSS("#register-form")),
		chromedp.SendKeys(chromedp.CSS("#register-email"), email),
		chromedp.SendKeys(chromedp.CSS("#register-password"), testPassword),
		click("#register-submit"),
		// The page goes back to the link (a navigation: a script poll would not outlive it).
		chromedp.WaitVisible(chromedp.CSS("#columns .column .vote-best")),
	)
	waitForPage(t, viewer, 15*time.Second, "the signed-in viewer back on the shared comparison", fmt.Sprintf(`location.href === %s &&
		document.querySelectorAll('#columns .column').length === 2 && document.querySelector('#vote-signin').hidden`, jsString(link)))

	voteFor(t, owner, "tie")
	voteFor(t, owner, "A") // a second vote replaces the first
	voteFor(t, viewer, "B")
	// How many have voted, not for what: the owner's page learns of the viewer's vote by itself.
	for who, tab := range map[string]context.Context{"owner": owner, "viewer": viewer} {
		waitForPage(t, tab, 20*time.Second, who+": the count of votes", `document.querySelector('#vote-count').textContent === '2 votes so far' &&
			!document.querySelector('#vote-count').hidden && document.querySelector('#tally').hidden`)
	}
	checkHidden(t, "owner, voted", owner, true)
	checkHidden(t, "viewer, voted", viewer, false)
	if eval[bool](t, owner, `!document.querySelector('#rerun').hidden || !document.querySelector('#followup').hidden`) {
		t.Errorf("the owner is offered a rerun or a follow-up of a blind comparison before its reveal")
	}

	// Both answers complete, so the owner's vote for A is a win over B on the leaderboard.
	waitEnded(t, owner, 2, 60*time.Second)
	checkHidden(t, "owner, ended", owner, true)
	do(t, owner, 10*time.Second, click("#reveal"))
	// The click only sends the reveal: ask the server once the page has its answer.
	waitForPage(t, owner, 15*time.Second, "the owner's page to show the names", `[...document.querySelectorAll('#columns .column')].every(c => c.dataset.model !== '')`)
	s := fetchSession(t, owner, id, "")
	models := map[string]string{} // response id -> model
	for _, r := range s.Responses {
		if _, ok := blindPair[r.Model]; !ok {
			t.Fatalf("after the reveal response %s is %q, want one of the two models", r.ID, r.Model)
		}
		models[r.ID] = r.Model
	}
	for who, tab := range map[string]context.Context{"owner": owner, "viewer": viewer} {
		waitForPage(t, tab, 15*time.Second, who+": the names and the tally", `[...document.querySelectorAll('#columns .column')].every(c =>
			c.dataset.model !== '' && !c.querySelector('.tally').hidden)`)
		for _, c := range blindColumns(t, tab) {
			if c.Model != models[c.ResponseID] || c.Name != blindPair[c.Model] {
				t.Errorf("%s: column %s shows %q (%s), the server says %s", who, c.Label, c.Name, c.Model, models[c.ResponseID])
			}
			// The owner voted A (after a tie, which it replaced), the viewer B.
			if c.Tally != "1 vote" {
				t.Errorf("%s: column %s has the tally %q, want 1 vote", who, c.Label, c.Tally)
			}
			if c.VoteShown && !c.VoteOn {
				t.Errorf("%s: column %s still offers a vote after the reveal", who, c.Label)
			}
			if want := map[string]string{"owner": "reveal-in", "viewer": "none"}[who]; c.Animation != want {
				t.Errorf("%s: the name of column %s comes in with the animation %q, want %q", who, c.Label, c.Animation, want)
			}
		}
		if line := eval[string](t, tab, `document.querySelector('#tally').textContent`); !strings.Contains(line, "A 1 · B 1 · tie 0 · all bad 0 (2 in all)") {
			t.Errorf("%s: the tally reads %q", who, line)
		}
	}
	if got := eval[string](t, viewer, `document.querySelector('#vote-status').textContent`); got != "Your vote: answer B ("+blindPair[models[s.Responses[1].ID]]+")" {
		t.Errorf("the viewer's vote reads %q after the reveal", got)
	}
	shot(t, owner, "revealed")

	// The owner's leaderboard counts the owner's vote: A's model first, one
	// battle each; everyone's counts the viewer's too.
	do(t, owner, 10*time.Second, click("#nav-leaderboard"))
	waitForPage(t, owner, 30*time.Second, "the owner's leaderboard", `document.querySelector('#leaderboard').dataset.state === 'ready' &&
		document.querySelectorAll('#lb-table tbody tr').length === 2`)
	rows := eval[[]lbRow](t, owner, lbRowsJS)
	a, b := models[s.Responses[0].ID], models[s.Responses[1].ID]
	if rows[0].Model != a || rows[1].Model != b || rows[0].Battles != "1" || rows[1].Battles != "1" ||
		!strings.HasPrefix(rows[0].WinRate, "100%") || !strings.HasPrefix(rows[1].WinRate, "0%") {
		t.Errorf("the owner's leaderboard shows %+v, want %s (voted for) over %s, one battle each", rows, a, b)
	}
	if meta := eval[string](t, owner, `document.querySelector('#lb-meta').textContent`); !strings.HasPrefix(meta, "1 vote counted") {
		t.Errorf("the owner's leaderboard says %q", meta)
	}
	do(t, owner, 10*time.Second, click(`label[for="lb-scope-all"]`))
	waitForPage(t, owner, 30*time.Second, "everyone's leaderboard, with both votes", `document.querySelector('#leaderboard').dataset.scope === 'all' &&
		document.querySelector('#leaderboard').dataset.state === 'ready' && document.querySelector('#lb-meta').textContent.startsWith('2 votes counted')`)
	shot(t, owner, "leaderboard")
}
