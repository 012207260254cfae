package main

// Browser tests of conversations on the page (docs/api.md "Conversations"):
// an owner's follow-ups and "carry on with this one", a viewer with the
// share link following the new turns, and a column's own settings in the
// compose form. The harness is web_server_test.go and web_chrome_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// pageTurn is one turn as the page shows it, top to bottom.
type pageTurn struct {
	SessionID string `json:"sessionId"`
	Columns   []struct {
		Label      string `json:"label"`
		Model      string `json:"model"`
		ResponseID string `json:"responseId"`
		Status     string `json:"status"`
		Text       string `json:"text"`
	} `json:"columns"`
}

const turnsJS = `[...document.querySelectorAll('#session .turn')].map(t => ({
	sessionId: t.dataset.sessionId,
	columns: [...t.querySelectorAll('[data-model]')].map(c => ({
		label: c.dataset.label, model: c.dataset.model, responseId: c.dataset.responseId,
		status: c.querySelector('.status').textContent, text: c.querySelector('.text').textContent,
	})),
}))`

// threadSession is the part of a Session of GET /thread the tests compare with.
type threadSession struct {
	ID        string `json:"id"`
	Kind      string `json:"kind"`
	ParentID  string `json:"parentId"`
	Status    string `json:"status"`
	Responses []struct {
		ID        string          `json:"id"`
		Model     string          `json:"model"`
		Label     string          `json:"label"`
		Status    string          `json:"status"`
		Text      string          `json:"text"`
		Continues string          `json:"continues"`
		Params    json.RawMessage `json:"params"`
	} `json:"responses"`
}

// fetchThread asks for GET /sessions/{id}/thread from inside the page, with
// its own credentials (the cookie, or the share token).
func fetchThread(t *testing.T, tab context.Context, id, share string) []threadSession {
	t.Helper()
	path := "/sessions/" + id + "/thread"
	if share != "" {
		path += "?share=" + share
	}
	text := eval[string](t, tab, fmt.Sprintf(`fetch(%s, {credentials: 'same-origin'}).then(r => r.text())`, jsString(path)))
	var body struct {
		Sessions []threadSession `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(text), &body); err != nil || len(body.Sessions) == 0 {
		t.Fatalf("GET %s: %v: %s", path, err, text)
	}
	return body.Sessions
}

// sameThread checks that a page shows the conversation as the thread has
// it: the same turns in order, each with the same columns (label, model,
// status) and exactly the same texts.
func sameThread(t *testing.T, who string, turns []pageTurn, thread []threadSession) {
	t.Helper()
	if len(turns) != len(thread) {
		t.Fatalf("%s: the page shows %d turns, the thread has %d", who, len(turns), len(thread))
	}
	for i, s := range thread {
		got := turns[i]
		if got.SessionID != s.ID {
			t.Errorf("%s: turn %d is %s on the page, %s in the thread", who, i+1, got.SessionID, s.ID)
		}
		if len(got.Columns) != len(s.Responses) {
			t.Errorf("%s: turn %d has %d columns on the page, %d responses in the thread", who, i+1, len(got.Columns), len(s.Responses))
			continue
		}
		for j, r := range s.Responses {
			c := got.Columns[j]
			if c.ResponseID != r.ID || c.Label != r.Label || c.Model != r.Model || c.Status != r.Status {
				t.Errorf("%s: turn %d column %d shows %s %s %s/%s, the thread says %s %s %s/%s", who, i+1, j,
					c.ResponseID, c.Label, c.Model, c.Status, r.ID, r.Label, r.Model, r.Status)
			}
			if c.Text != r.Text {
				t.Errorf("%s: turn %d column %s text differs\npage:   %q\nserver: %q", who, i+1, r.Label, c.Text, r.Text)
			}
		}
	}
}

// sendFollowup types a follow-up under the last turn, sends it, and waits
// for the new turn to be the one in focus and to end with n columns.
func sendFollowup(t *testing.T, tab context.Context, prompt string, n int) string {
	t.Helper()
	before := eval[string](t, tab, `document.querySelector('#session').dataset.sessionId`)
	waitForPage(t, tab, 10*time.Second, "the follow-up box", `!document.querySelector('#followup').hidden`)
	do(t, tab, 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#followup-prompt"), prompt),
		click("#followup-send"))
	waitForPage(t, tab, 10*time.Second, "the new turn", fmt.Sprintf(`(() => { const id = document.querySelector('#session').dataset.sessionId; return id && id !== %s; })()`, jsString(before)))
	waitEnded(t, tab, n, 30*time.Second)
	return eval[string](t, tab, `document.querySelector('#session').dataset.sessionId`)
}

// TestBrowserConversationViewer: the owner compares two models, shares,
// sends two follow-ups and carries on with one answer; a viewer who came
// with the share link before any follow-up ends with the same turns, the
// same columns per turn and the same texts as GET /thread.
func TestBrowserConversationViewer(t *testing.T) {
	t.Parallel()
	srv := startTestServer(t)
	owner := newBrowser(t)
	registerThroughForm(t, owner, srv.URL)
	root := startComparison(t, owner, "Name a colour", []string{"demo/fast", "demo/steady"}, false)
	waitEnded(t, owner, 2, 30*time.Second)

	do(t, owner, 10*time.Second, click("#share"))
	waitForPage(t, owner, 10*time.Second, "the share link", `document.querySelector('#share-link').value.includes('/s/')`)
	link := eval[string](t, owner, `document.querySelector('#share-link').value`)
	token := link[strings.LastIndex(link, "/s/")+3:]

	viewer := newIsolatedTab(t, "viewer")
	do(t, viewer, 30*time.Second, chromedp.Navigate(link))
	waitEnded(t, viewer, 2, 30*time.Second)

	sendFollowup(t, owner, "And another one?", 2)
	sendFollowup(t, owner, "Which is warmer?", 2)
	if eval[bool](t, owner, `document.querySelector('#followup-from').hidden === false`) {
		t.Errorf("the follow-up box says it carries on one answer before any was chosen")
	}
	// Carry on with answer A, by its own model (the picker's default).
	do(t, owner, 10*time.Second, click(`#columns [data-label="A"] .carry-on`))
	waitForPage(t, owner, 10*time.Second, "the follow-up box to carry on answer A", `!document.querySelector('#followup-from').hidden`)
	if got := eval[string](t, owner, `document.querySelector('#followup-model').value`); got != "demo/fast" {
		t.Errorf("the model picker of a carry-on defaults to %q, want the answer's own demo/fast", got)
	}
	last := sendFollowup(t, owner, "Say more about that one.", 1)

	thread := fetchThread(t, owner, root, "")
	if len(thread) != 4 || thread[3].ID != last {
		t.Fatalf("the thread has %d turns, the last %s; want 4 ending with %s", len(thread), thread[len(thread)-1].ID, last)
	}
	carried := thread[3]
	if carried.Kind != "followup" || len(carried.Responses) != 1 || carried.Responses[0].Continues != thread[2].Responses[0].ID {
		t.Errorf("carry on: turn 4 is %s with %d responses continuing %q, want one continuing answer A (%s)",
			carried.Kind, len(carried.Responses), carried.Responses[0].Continues, thread[2].Responses[0].ID)
	}
	sameThread(t, "owner", eval[[]pageTurn](t, owner, turnsJS), thread)

	// The viewer follows: four turns, the last one ended.
	waitForPage(t, viewer, 90*time.Second, "the viewer to show the fourth turn, ended", fmt.Sprintf(`(() => {
		const turns = document.querySelectorAll('#session .turn');
		const s = document.querySelector('#session');
		return turns.length === 4 && s.dataset.sessionId === %s && s.dataset.status === 'complete';
	})()`, jsString(last)))
	sameThread(t, "viewer", eval[[]pageTurn](t, viewer, turnsJS), fetchThread(t, viewer, root, token))
	if eval[bool](t, viewer, `!document.querySelector('#followup').hidden || [...document.querySelectorAll('.carry-on')].some(b => !b.hidden)`) {
		t.Errorf("the viewer is offered a follow-up")
	}
	how := "by reading the thread"
	if eval[string](t, viewer, `document.querySelector('#session').dataset.newTurns || ''`) == "live" {
		how = "live (next events)"
	}
	t.Logf("the viewer learned of new turns %s", how)
	shot(t, viewer, "viewer")
}

// TestBrowserColumnSettings: a column's own settings and "Add again" make
// the request's models entries {"model", "params"}: demo/fast twice, with
// different settings, runs as two columns with those params.
func TestBrowserColumnSettings(t *testing.T) {
	t.Parallel()
	_, tab, _ := signedIn(t, "")
	waitForPage(t, tab, 10*time.Second, "the model list", `document.querySelectorAll('#model-list input').length > 0`)
	row := `#model-list .model[data-model-id="demo/fast"]`
	do(t, tab, 10*time.Second,
		click(row+` input[type=checkbox]`),
		click(row+` .col-settings summary`),
		chromedp.SendKeys(chromedp.CSS(row+` input[name=temperature]`), "0.3"),
		click(row+` .add-again`),
	)
	extra := `#extra-columns .model[data-model-id="demo/fast"]`
	waitForPage(t, tab, 5*time.Second, "the second demo/fast with its settings open", `!!document.querySelector(`+jsString(extra+` .col-settings[open]`)+`)`)
	do(t, tab, 10*time.Second, chromedp.SendKeys(chromedp.CSS(extra+` input[name=maxTokens]`), "20"))
	chooseOption(t, tab, `#extra-columns select[name=reasoningEffort]`, "low")
	// A click elsewhere closes the popover (it would cover the Start button).
	do(t, tab, 10*time.Second,
		click("#prompt"),
		chromedp.SendKeys(chromedp.CSS("#prompt"), "One model, two settings"))
	if eval[bool](t, tab, `!!document.querySelector('.col-settings[open]')`) {
		t.Errorf("a settings popover stayed open after a click outside it")
	}
	do(t, tab, 10*time.Second,
		click("#start"))
	waitForPage(t, tab, 10*time.Second, "the comparison to start", `document.querySelectorAll('#columns [data-model]').length === 2`)
	id := eval[string](t, tab, `document.querySelector('#session').dataset.sessionId`)
	if labels := eval[[]string](t, tab, `[...document.querySelectorAll('#columns [data-model]')].map(c => c.querySelector('.col-label').textContent)`); strings.Join(labels, ",") != "A,B" {
		t.Errorf("the columns are labelled %v, want A,B", labels)
	}

	thread := fetchThread(t, tab, id, "")
	type params struct {
		Temperature     float64 `json:"temperature"`
		MaxTokens       int     `json:"maxTokens"`
		ReasoningEffort *string `json:"reasoningEffort"`
	}
	rs := thread[0].Responses
	if len(rs) != 2 {
		t.Fatalf("%d responses, want 2", len(rs))
	}
	var a, b params
	if err := json.Unmarshal(rs[0].Params, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rs[1].Params, &b); err != nil {
		t.Fatal(err)
	}
	if rs[0].Model != "demo/fast" || rs[1].Model != "demo/fast" {
		t.Errorf("models %s, %s; want demo/fast twice", rs[0].Model, rs[1].Model)
	}
	// The form's own values are temperature 0.7 and 512 tokens: each column overlays its settings on them.
	if a.Temperature != 0.3 || a.MaxTokens != 512 || a.ReasoningEffort != nil {
		t.Errorf("column A ran with %+v (%s), want temperature 0.3 over the form's 512 tokens", a, rs[0].Params)
	}
	if b.Temperature != 0.7 || b.MaxTokens != 20 || b.ReasoningEffort == nil || *b.ReasoningEffort != "low" {
		t.Errorf("column B ran with %+v (%s), want 20 tokens and effort low over the form's temperature 0.7", b, rs[1].Params)
	}
	waitEnded(t, tab, 2, 30*time.Second)
}

// TestScreenshotConversation writes the README's screenshot (make
// screenshot): a two-turn conversation of two demo models, the follow-up box
// under it. Like TestScreenshotPhone it runs only when its variable names
// the file: the page itself is tested by TestBrowserConversationViewer.
func TestScreenshotConversation(t *testing.T) {
	out, _, tab, ok := screenshotTab(t, "PLAYGROUND_SCREENSHOT", screenshotCatalogue, chromedp.EmulateViewport(1280, 860))
	if !ok {
		return // by design: only `make screenshot` wants the file
	}
	startComparison(t, tab, "Explain CRDTs in two sentences", []string{"demo/fast", "demo/steady"}, false)
	waitEnded(t, tab, 2, 60*time.Second)
	sendFollowup(t, tab, "Now an example: two phones edit a list offline", 2)
	waitRendered(t, tab)
	do(t, tab, 10*time.Second, chromedp.Blur(chromedp.CSS("#followup-send")))
	ctx, cancel := context.WithTimeout(tab, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
	// The whole page in the viewport: answers render their parts only when
	// on screen (content-visibility), so a screenshot past the viewport is blank.
	h := eval[float64](t, tab, `document.documentElement.scrollHeight`)
	do(t, tab, 10*time.Second, chromedp.EmulateViewport(1280, int64(h)))
	eval[bool](t, tab, `new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))`)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	writeDocScreenshot(t, out, png)
}

// wsSpy wraps the page's WebSocket before any script runs: it keeps what the
// page sends (window.__sent) and each socket (window.__sockets), so a test
// can read the subscribes and hand the page an event as if the server sent it.
const wsSpy = `(() => {
	const Native = window.WebSocket;
	window.__sent = [];
	window.__sockets = [];
	window.WebSocket = class extends Native {
		constructor(...args) { super(...args); window.__sockets.push(this); }
		send(data) { window.__sent.push(String(data)); return super.send(data); }
	};
})()`

// TestBrowserViewerFollowsNext: a viewer subscribes with follow, and a
// `next` event (docs/api.md "Conversations") moves its page to the new turn
// at once, while the turn before still runs; once both have ended, it shows
// the thread as the server has it. The event is handed to the page's socket
// by the test, so this holds whether or not the server sends it yet.
func TestBrowserViewerFollowsNext(t *testing.T) {
	t.Parallel()
	// The second model streams until the viewer has moved on, so the
	// follow-up and the next event come while the first turn still runs,
	// however long a busy machine takes to get there.
	up := newScriptedUpstream(t, 20*time.Millisecond, map[string][]string{"open": chunked("A colour that takes its time", 6)})
	release := up.holdOpen(t, "open")
	srv := startTestServer(t, append(up.env("open"), "MODELS=demo/fast,openai/open")...)
	owner := newBrowser(t)
	registerThroughForm(t, owner, srv.URL)
	root := startComparison(t, owner, "Name a colour you like", []string{"demo/fast", "openai/open"}, false)
	do(t, owner, 10*time.Second, click("#share"))
	waitForPage(t, owner, 10*time.Second, "the share link", `document.querySelector('#share-link').value.includes('/s/')`)
	link := eval[string](t, owner, `document.querySelector('#share-link').value`)
	token := link[strings.LastIndex(link, "/s/")+3:]

	viewer := newIsolatedTab(t, "viewer")
	do(t, viewer, 10*time.Second, chromedp.Func(func(ctx context.Context, tgt *chromedp.Target) error {
		_, err := cdp.Call(ctx, tgt, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: wsSpy})
		return err
	}))
	do(t, viewer, 30*time.Second, chromedp.Navigate(link))
	waitForPage(t, viewer, 10*time.Second, "the viewer's subscribe with follow", fmt.Sprintf(`window.__sent.map(m => JSON.parse(m)).some(m =>
		m.type === 'subscribe' && m.sessionId === %s && m.follow === true && m.shareToken === %s)`, jsString(root), jsString(token)))

	// demo/fast ends while the other model streams: carry it on meanwhile.
	waitForPage(t, owner, 10*time.Second, "demo/fast to offer carrying on", `!document.querySelector('#columns [data-model="demo/fast"] .carry-on').hidden`)
	do(t, owner, 10*time.Second,
		click(`#columns [data-model="demo/fast"] .carry-on`),
		chromedp.SendKeys(chromedp.CSS("#followup-prompt"), "Why that one?"),
		click("#followup-send"))
	waitForPage(t, owner, 10*time.Second, "the new turn", fmt.Sprintf(`document.querySelector('#session').dataset.sessionId !== %s`, jsString(root)))
	child := eval[string](t, owner, `document.querySelector('#session').dataset.sessionId`)

	next, _ := json.Marshal(map[string]any{"type": "next", "sessionId": root, "next": map[string]string{"sessionId": child, "kind": "followup"}})
	eval[bool](t, viewer, fmt.Sprintf(`(window.__sockets.at(-1).onmessage({data: %s}), true)`, jsString(string(next))))
	waitForPage(t, viewer, 10*time.Second, "the viewer on the new turn", fmt.Sprintf(`(() => {
		const on = document.querySelector('#session').dataset.sessionId === %s;
		if (on && window.__before === undefined) window.__before = document.querySelector('#thread-before .turn').dataset.status;
		return on;
	})()`, jsString(child)))
	if before := eval[string](t, viewer, `window.__before`); before != "running" {
		t.Errorf("the viewer moved on when the turn before was %q: want it moved by next, while that turn still ran", before)
	}
	if !eval[bool](t, viewer, fmt.Sprintf(`window.__sent.map(m => JSON.parse(m)).some(m => m.type === 'subscribe' && m.sessionId === %s && m.follow === true)`, jsString(child))) {
		t.Errorf("the viewer does not follow the new turn")
	}
	release()

	// Both turns end; the turn before is read again, whole.
	waitForPage(t, viewer, 30*time.Second, "both turns to end on the viewer's page", `document.querySelector('#session').dataset.status === 'complete' &&
		document.querySelector('#thread-before .turn').dataset.status === 'complete'`)
	waitForPage(t, owner, 30*time.Second, "both turns to end on the owner's page", `document.querySelector('#session').dataset.status === 'complete' &&
		document.querySelector('#thread-before .turn').dataset.status === 'complete'`)
	thread := fetchThread(t, owner, root, "")
	sameThread(t, "viewer", eval[[]pageTurn](t, viewer, turnsJS), thread)
	sameThread(t, "owner", eval[[]pageTurn](t, owner, turnsJS), thread)
}

// chooseOption picks value in the select element at sel, as a person
// choosing from its list does (the change event included).
func chooseOption(t *testing.T, tab context.Context, sel, value string) {
	t.Helper()
	if !eval[bool](t, tab, `(() => {
		const s = document.querySelector(`+jsString(sel)+`);
		s.value = `+jsString(value)+`;
		s.dispatchEvent(new Event('change', {bubbles: true}));
		return s.value === `+jsString(value)+`;
	})()`) {
		t.Fatalf("%s offers no %q", sel, value)
	}
}
