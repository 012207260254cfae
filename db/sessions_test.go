package db_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
)

// Twenty concurrent charges against a quota of five: exactly five win.
func TestCreateSession_QuotaRace(t *testing.T) {
	forEachUser(t, "race@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		const n = 20
		errs := make([]error, n)
		together(n, func(i int) { errs[i] = d.CreateSession(ctx, newSession(u.ID, "demo/fast")) })
		ok, exceeded := 0, 0
		for _, err := range errs {
			switch playground.ErrorCode(err) {
			case "":
				ok++
			case playground.EQuotaExceeded:
				exceeded++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}
		if ok != 5 || exceeded != 15 {
			t.Fatalf("%d created, %d quota_exceeded; want 5 and 15", ok, exceeded)
		}
		ss, _, err := d.ListSessions(ctx, u.ID, "", 100)
		if err != nil || len(ss) != 5 {
			t.Fatalf("stored %d sessions (%v), want 5", len(ss), err)
		}
		got, _ := d.FindUserByID(ctx, u.ID)
		if got.Quota.Remaining != 0 {
			t.Fatalf("remaining %d, want 0", got.Quota.Remaining)
		}
	})
}

// The period turns at UTC midnight; the first charge of a new day starts
// from the plan's limit.
func TestCreateSession_LazyPeriodReset(t *testing.T) {
	forEachDBAt(t, plans, time.Date(2025, 3, 10, 23, 0, 0, 0, time.UTC), func(t *testing.T, d *db.DB, clk *clock) {
		u := mustCreateUser(t, d, "a@example.com")
		mustCreateSession(t, d, u.ID, "demo/a", "demo/b")
		mustCreateSession(t, d, u.ID, "demo/a", "demo/b")

		s := newSession(u.ID, "demo/a", "demo/b")
		err := d.CreateSession(ctx, s)
		pe := wantCode(t, err, playground.EQuotaExceeded)
		want := map[string]any{"remaining": 1, "required": 2, "resetsAt": time.Date(2025, 3, 11, 0, 0, 0, 0, time.UTC)}
		if !reflect.DeepEqual(pe.Details, want) {
			t.Fatalf("details %v, want %v", pe.Details, want)
		}
		if _, err := d.FindSession(ctx, s.ID); playground.ErrorCode(err) != playground.ENotFound {
			t.Fatalf("refused session was stored: %v", err)
		}

		clk.Add(2 * time.Hour) // 01:00 the next day
		if u2, _ := d.FindUserByID(ctx, u.ID); u2.Quota.Remaining != 5 {
			t.Fatalf("remaining after turn %d, want 5 (FillQuota)", u2.Quota.Remaining)
		}
		mustCreateSession(t, d, u.ID, "demo/a", "demo/b")
		u2, _ := d.FindUserByID(ctx, u.ID)
		if u2.Quota.Remaining != 3 || !u2.QuotaPeriodStart.Equal(time.Date(2025, 3, 11, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("after charge next day: remaining %d period %v", u2.Quota.Remaining, u2.QuotaPeriodStart)
		}

		// More than a whole day's quota is refused even right after a turn.
		clk.Add(24 * time.Hour)
		err = d.CreateSession(ctx, newSession(u.ID, "1/a", "1/b", "1/c", "1/d", "1/e", "1/f"))
		pe = wantCode(t, err, playground.EQuotaExceeded)
		if pe.Details["remaining"] != 5 || pe.Details["required"] != 6 {
			t.Fatalf("details %v", pe.Details)
		}

		err = d.CreateSession(ctx, newSession("u_nope", "demo/a"))
		wantCode(t, err, playground.ENotFound)
	})
}

func TestCreateSession_FindSession(t *testing.T) {
	forEachDBAt(t, plans, time.Date(2025, 3, 10, 12, 0, 0, 987654321, time.UTC), func(t *testing.T, d *db.DB, clk *clock) {
		u := mustCreateUser(t, d, "a@example.com")
		parent := mustCreateSession(t, d, u.ID, "demo/a")
		s := &playground.Session{
			ID: "s_given", UserID: u.ID, Prompt: "Hello", System: ptr("Be brief."),
			Params:   playground.Params{Temperature: ptr(0.7), MaxTokens: ptr(512)},
			ParentID: &parent.ID, Owner: "instance-1",
			Responses: []*playground.Response{
				{ID: "r_given", Model: "openai/gpt-4o-mini"},
				{Model: "demo/fast"},
			},
		}
		if err := d.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if s.ID != "s_given" || s.Responses[0].ID != "r_given" || s.Responses[1].ID[:2] != "r_" ||
			s.Status != playground.SessionRunning || s.Responses[1].Status != playground.StatusPending {
			t.Fatalf("created %+v", s)
		}
		got := mustFindSession(t, d, s.ID)
		if !reflect.DeepEqual(got, s) {
			t.Fatalf("found\n%+v\nwant\n%+v", got, s)
		}
		if got.Responses[0].Metrics != nil || got.Responses[0].Text != "" {
			t.Fatalf("pending response has metrics or text: %+v", got.Responses[0])
		}
		if got.CreatedAt != time.Date(2025, 3, 10, 12, 0, 0, 987654000, time.UTC) {
			t.Fatalf("created at %v", got.CreatedAt)
		}

		// A session without system, params or responses' ids.
		p := mustFindSession(t, d, parent.ID)
		if p.System != nil || p.ParentID != nil || p.Params != (playground.Params{}) || len(p.Responses) != 1 {
			t.Fatalf("parent %+v", p)
		}

		_, err := d.FindSession(ctx, "s_nope")
		wantCode(t, err, playground.ENotFound)

		// Duplicate ids are an internal error, and nothing is charged.
		before, _ := d.FindUserByID(ctx, u.ID)
		dup := &playground.Session{ID: "s_given", UserID: u.ID, Prompt: "x", Responses: []*playground.Response{{Model: "demo/a"}}}
		if err := d.CreateSession(ctx, dup); err == nil || playground.ErrorCode(err) != playground.EInternal {
			t.Fatalf("duplicate id: %v", err)
		}
		after, _ := d.FindUserByID(ctx, u.ID)
		if after.Quota.Remaining != before.Quota.Remaining {
			t.Fatalf("failed insert charged quota: %d -> %d", before.Quota.Remaining, after.Quota.Remaining)
		}
	})
}

func TestShareToken(t *testing.T) {
	forEachUser(t, "a@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		s := mustCreateSession(t, d, u.ID, "demo/a")
		if err := d.SetShareToken(ctx, s.ID, "tok123"); err != nil {
			t.Fatal(err)
		}
		got, err := d.FindSessionByShareToken(ctx, "tok123")
		if err != nil || got.ID != s.ID || !got.Shared || got.ShareToken != "tok123" || len(got.Responses) != 1 {
			t.Fatalf("by token: %+v, %v", got, err)
		}
		if err := d.SetShareToken(ctx, s.ID, ""); err != nil {
			t.Fatal(err)
		}
		_, err = d.FindSessionByShareToken(ctx, "tok123")
		wantCode(t, err, playground.ENotFound)
		_, err = d.FindSessionByShareToken(ctx, "")
		wantCode(t, err, playground.ENotFound)
		if got := mustFindSession(t, d, s.ID); got.Shared || got.ShareToken != "" {
			t.Fatalf("still shared: %+v", got)
		}
		wantCode(t, d.SetShareToken(ctx, "s_nope", "x"), playground.ENotFound)
	})
}

func TestFinishResponse_RefundOnce(t *testing.T) {
	forEachUser(t, "a@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		s := mustCreateSession(t, d, u.ID, "demo/a", "demo/b") // 3 left
		r := s.Responses[0]
		r.Status = playground.StatusError
		r.Error = &playground.ResponseError{Code: playground.RErrProviderError, Message: "upstream 500", Retryable: true}
		r.Metrics = &playground.Metrics{DurationMs: 40, Attempts: 3, FinishReason: playground.FinishError}
		r.Attempts = 3
		for i := range 3 {
			if err := d.FinishResponse(ctx, s.ID, r, true); err != nil {
				t.Fatalf("finish %d: %v", i, err)
			}
			if !r.Refunded {
				t.Fatalf("finish %d: Refunded not set", i)
			}
		}
		got, _ := d.FindUserByID(ctx, u.ID)
		if got.Quota.Remaining != 4 {
			t.Fatalf("remaining %d, want 4 (one refund)", got.Quota.Remaining)
		}
		f := mustFindSession(t, d, s.ID).Responses[0]
		if !f.Refunded || f.Status != "error" || !reflect.DeepEqual(f.Error, r.Error) || !reflect.DeepEqual(f.Metrics, r.Metrics) || f.Attempts != 3 {
			t.Fatalf("stored %+v metrics %+v", f, f.Metrics)
		}

		// Without refund, nothing is given back.
		r2 := s.Responses[1]
		r2.Status, r2.Text, r2.NextIndex = playground.StatusComplete, "hello world", 2
		r2.Metrics = &playground.Metrics{TTFTMs: ptr[int64](120), DurationMs: 900, PromptTokens: ptr[int64](14), CompletionTokens: ptr[int64](96),
			TokensPerSecond: ptr(49.7), CostUSD: ptr(0.0000597), Attempts: 1, FinishReason: "stop", ReasoningTokens: ptr[int64](0)}
		if err := d.FinishResponse(ctx, s.ID, r2, false); err != nil {
			t.Fatal(err)
		}
		if got, _ := d.FindUserByID(ctx, u.ID); got.Quota.Remaining != 4 || r2.Refunded {
			t.Fatalf("remaining %d refunded %v", got.Quota.Remaining, r2.Refunded)
		}
		f2 := mustFindSession(t, d, s.ID).Responses[1]
		if f2.Text != "hello world" || f2.NextIndex != 2 || f2.Error != nil || !reflect.DeepEqual(f2.Metrics, r2.Metrics) {
			t.Fatalf("stored %+v metrics %+v", f2, f2.Metrics)
		}

		// A final row is written once: a later ending (another instance's
		// recovery, say) changes nothing and refunds nothing.
		late := *r2
		late.Status, late.Text = playground.StatusError, "hello"
		late.Error = &playground.ResponseError{Code: playground.RErrInterrupted, Message: "gone", Retryable: true}
		if err := d.FinishResponse(ctx, s.ID, &late, true); err != nil {
			t.Fatal(err)
		}
		if f := mustFindSession(t, d, s.ID).Responses[1]; f.Status != "complete" || f.Text != "hello world" || f.Error != nil || late.Refunded {
			t.Fatalf("second ending overwrote the first: %+v (refunded %v)", f, late.Refunded)
		}
		if got, _ := d.FindUserByID(ctx, u.ID); got.Quota.Remaining != 4 {
			t.Fatalf("remaining %d after a second ending, want 4", got.Quota.Remaining)
		}

		wantCode(t, d.FinishResponse(ctx, s.ID, &playground.Response{ID: "r_nope", Status: "complete"}, true), playground.ENotFound)
		// A response of another session is not found either.
		other := mustCreateSession(t, d, u.ID, "demo/a")
		wantCode(t, d.FinishResponse(ctx, other.ID, r2, true), playground.ENotFound)
	})
}

func TestCheckpoint_NeverOverwritesEnded(t *testing.T) {
	forEachUser(t, "a@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		s := mustCreateSession(t, d, u.ID, "demo/a", "demo/b")
		done := s.Responses[0]
		done.Status, done.Text, done.NextIndex = playground.StatusComplete, "final text", 3
		done.Metrics = &playground.Metrics{DurationMs: 10, Attempts: 1, FinishReason: "stop"}
		if err := d.FinishResponse(ctx, s.ID, done, false); err != nil {
			t.Fatal(err)
		}
		err := d.Checkpoint(ctx, s.ID, 7, []playground.ResponseCheckpoint{
			{ID: done.ID, Status: playground.StatusStreaming, Text: "final", NextIndex: 2, Attempts: 1},
			{ID: s.Responses[1].ID, Status: playground.StatusStreaming, Text: "partial", NextIndex: 4, Attempts: 2},
		})
		if err != nil {
			t.Fatal(err)
		}
		got := mustFindSession(t, d, s.ID)
		if r := got.Responses[0]; r.Status != "complete" || r.Text != "final text" || r.NextIndex != 3 {
			t.Fatalf("ended response overwritten: %+v", r)
		}
		if r := got.Responses[1]; r.Status != "streaming" || r.Text != "partial" || r.NextIndex != 4 || r.Attempts != 2 || r.Metrics != nil {
			t.Fatalf("running response not checkpointed: %+v", r)
		}
		if got.LastSeq != 7 {
			t.Fatalf("last seq %d, want 7", got.LastSeq)
		}

		// A session is never stored ended while a response is not.
		if err := d.FinishSession(ctx, s.ID, playground.SessionComplete, 12); !errors.Is(err, db.ErrResponsesRunning) {
			t.Fatalf("finish with a response streaming: %v", err)
		}
		if got := mustFindSession(t, d, s.ID); got.Status != playground.SessionRunning {
			t.Fatalf("refused finish stored %s", got.Status)
		}
		second := s.Responses[1]
		second.Status, second.Text, second.NextIndex = playground.StatusComplete, "partial and more", 5
		second.Metrics = &playground.Metrics{DurationMs: 12, Attempts: 2, FinishReason: "stop"}
		if err := d.FinishResponse(ctx, s.ID, second, false); err != nil {
			t.Fatal(err)
		}
		if err := d.FinishSession(ctx, s.ID, playground.SessionComplete, 12); err != nil {
			t.Fatal(err)
		}
		// Ended once: a second ending (another instance's recovery) changes nothing.
		if err := d.FinishSession(ctx, s.ID, playground.SessionError, 13); err != nil {
			t.Fatal(err)
		}
		// A late checkpoint does not move an ended session's seq.
		if err := d.Checkpoint(ctx, s.ID, 9, nil); err != nil {
			t.Fatal(err)
		}
		if got := mustFindSession(t, d, s.ID); got.Status != "complete" || got.LastSeq != 12 {
			t.Fatalf("after finish: status %s seq %d", got.Status, got.LastSeq)
		}
		wantCode(t, d.FinishSession(ctx, "s_nope", "complete", 1), playground.ENotFound)
	})
}

func TestRunningSessions(t *testing.T) {
	forEachDBAt(t, plans, time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC), func(t *testing.T, d *db.DB, clk *clock) {
		u := mustCreateUser(t, d, "a@example.com")
		a := mustCreateSession(t, d, u.ID, "demo/a", "demo/b")
		clk.Add(time.Second)
		b := mustCreateSession(t, d, u.ID, "demo/a")
		clk.Add(time.Second)
		c := mustCreateSession(t, d, u.ID, "demo/a")
		rb := b.Responses[0]
		rb.Status, rb.Metrics = playground.StatusCancelled, &playground.Metrics{FinishReason: playground.FinishCancelled}
		if err := d.FinishResponse(ctx, b.ID, rb, false); err != nil {
			t.Fatal(err)
		}
		if err := d.FinishSession(ctx, b.ID, playground.SessionCancelled, 3); err != nil {
			t.Fatal(err)
		}
		ss, err := d.RunningSessions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) != 2 || ss[0].ID != a.ID || ss[1].ID != c.ID || len(ss[0].Responses) != 2 || ss[0].Responses[1].Model != "demo/b" {
			t.Fatalf("running %+v", ss)
		}
	})
}

func TestSetRating(t *testing.T) {
	forEachUser(t, "a@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		s := mustCreateSession(t, d, u.ID, "demo/a", "demo/b")
		other := mustCreateSession(t, d, u.ID, "demo/a")
		r := s.Responses[0]

		_, err := d.SetRating(ctx, s.ID, r.ID, 2)
		if pe := wantCode(t, err, playground.EInvalid); pe.Details["field"] != "score" {
			t.Fatalf("details %v", pe.Details)
		}
		_, err = d.SetRating(ctx, s.ID, r.ID, 1)
		wantCode(t, err, playground.EInvalid) // still pending

		r.Status, r.Text = playground.StatusComplete, "done"
		r.Metrics = &playground.Metrics{DurationMs: 1, Attempts: 1, FinishReason: "stop"}
		if err := d.FinishResponse(ctx, s.ID, r, false); err != nil {
			t.Fatal(err)
		}
		got, err := d.SetRating(ctx, s.ID, r.ID, 1)
		if err != nil || got.Rating != 1 || got.ID != r.ID || got.Text != "done" || got.Metrics == nil {
			t.Fatalf("rated: %+v, %v", got, err)
		}
		if f := mustFindSession(t, d, s.ID); f.Responses[0].Rating != 1 || f.Responses[1].Rating != 0 {
			t.Fatalf("ratings %d %d", f.Responses[0].Rating, f.Responses[1].Rating)
		}
		if got, err = d.SetRating(ctx, s.ID, r.ID, -1); err != nil || got.Rating != -1 {
			t.Fatalf("re-rate: %+v, %v", got, err)
		}
		_, err = d.SetRating(ctx, other.ID, r.ID, 1)
		wantCode(t, err, playground.ENotFound)
		_, err = d.SetRating(ctx, s.ID, "r_nope", 1)
		wantCode(t, err, playground.ENotFound)
	})
}

// Pages walk every session once, newest first, even when several share a
// created_at (the id breaks the tie).
func TestListSessions_Cursor(t *testing.T) {
	forEachDBAt(t, playground.Plans{FreePerDay: 50}, time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC), func(t *testing.T, d *db.DB, clk *clock) {
		u := mustCreateUser(t, d, "a@example.com")
		v := mustCreateUser(t, d, "b@example.com")
		mustCreateSession(t, d, v.ID, "demo/a") // someone else's
		var created []*playground.Session
		for i := range 5 {
			if i != 2 { // sessions 1 and 2 share a timestamp
				clk.Add(1500 * time.Microsecond)
			}
			s := newSession(u.ID, "demo/a", "demo/b")
			s.Prompt = fmt.Sprintf("prompt %d", i)
			if err := d.CreateSession(ctx, s); err != nil {
				t.Fatal(err)
			}
			created = append(created, s)
		}
		// Give one response a text: lists leave it out.
		created[4].Responses[0].Status, created[4].Responses[0].Text = playground.StatusStreaming, "secret"
		if err := d.Checkpoint(ctx, created[4].ID, 1, []playground.ResponseCheckpoint{{ID: created[4].Responses[0].ID, Status: "streaming", Text: "secret"}}); err != nil {
			t.Fatal(err)
		}

		// Expected order: created_at desc, id desc.
		want := []string{created[4].ID, created[3].ID, "", "", created[0].ID}
		a, b := created[1].ID, created[2].ID
		if a < b {
			a, b = b, a
		}
		want[2], want[3] = a, b

		var got []string
		var pages []int
		cursor := ""
		for range 10 {
			ss, next, err := d.ListSessions(ctx, u.ID, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, len(ss))
			for _, s := range ss {
				got = append(got, s.ID)
				if len(s.Responses) != 2 || s.Responses[0].Model != "demo/a" {
					t.Fatalf("list item responses %+v", s.Responses)
				}
				for _, r := range s.Responses {
					if r.Text != "" {
						t.Fatalf("list item has text %q", r.Text)
					}
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if !reflect.DeepEqual(pages, []int{2, 2, 1}) || !reflect.DeepEqual(got, want) {
			t.Fatalf("pages %v order %v, want [2 2 1] %v", pages, got, want)
		}

		// An exact fit leaves no empty last page.
		ss, next, err := d.ListSessions(ctx, u.ID, "", 5)
		if err != nil || len(ss) != 5 || next != "" {
			t.Fatalf("limit 5: %d sessions, next %q, %v", len(ss), next, err)
		}
		if ss[0].Prompt != "prompt 4" {
			t.Fatalf("first %q", ss[0].Prompt)
		}
		_, _, err = d.ListSessions(ctx, u.ID, "!!bad", 2)
		wantCode(t, err, playground.EInvalid)
		ss, next, err = d.ListSessions(ctx, "u_nobody", "", 2)
		if err != nil || len(ss) != 0 || next != "" || ss == nil {
			t.Fatalf("empty list: %v %q %v", ss, next, err)
		}
	})
}

// A checkpoint appends what the last one did not carry; a reader sees the
// text so far, a retry at the same offsets does not double it, and the
// final row replaces the chunks.
func TestCheckpoint_Appends(t *testing.T) {
	forEachUser(t, "a@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		s := mustCreateSession(t, d, u.ID, "demo/a")
		r := s.Responses[0]
		write := func(seq int64, textFrom int, text string, reasoningFrom int, reasoning string, next int) {
			t.Helper()
			if err := d.Checkpoint(ctx, s.ID, seq, []playground.ResponseCheckpoint{{ID: r.ID, Status: playground.StatusStreaming,
				TextFrom: textFrom, Text: text, ReasoningFrom: reasoningFrom, Reasoning: reasoning, NextIndex: next, Attempts: 1}}); err != nil {
				t.Fatal(err)
			}
		}
		want := func(text, reasoning string, next int) {
			t.Helper()
			got := mustFindSession(t, d, s.ID).Responses[0]
			if got.Text != text || got.Reasoning != reasoning || got.NextIndex != next {
				t.Fatalf("stored text %q reasoning %q next %d, want %q %q %d", got.Text, got.Reasoning, got.NextIndex, text, reasoning, next)
			}
		}
		write(2, 0, "Hello", 0, "Hm", 1)
		want("Hello", "Hm", 1)
		write(3, 5, ", wor", 2, "", 2)
		want("Hello, wor", "Hm", 2)
		// The write of seq 4 failed as far as its writer knew, yet was
		// stored; sent again longer from the same offsets, it is kept once.
		write(4, 10, "ld", 2, ".", 3)
		write(5, 10, "ld!", 2, ". Ok", 4)
		want("Hello, world!", "Hm. Ok", 4)
		if running, err := d.RunningSessions(ctx); err != nil || len(running) != 1 || running[0].Responses[0].Text != "Hello, world!" {
			t.Fatalf("running sessions: %v, %+v", err, running)
		}

		r.Status, r.Text, r.Reasoning, r.NextIndex = playground.StatusComplete, "Hello, world! Bye.", "Hm. Ok.", 5
		r.Metrics = &playground.Metrics{DurationMs: 10, Attempts: 1, FinishReason: "stop"}
		if err := d.FinishResponse(ctx, s.ID, r, false); err != nil {
			t.Fatal(err)
		}
		want("Hello, world! Bye.", "Hm. Ok.", 5)
		var left int
		if err := d.Bun().NewSelect().Table("response_chunks").ColumnExpr("COUNT(*)").Scan(ctx, &left); err != nil || left != 0 {
			t.Fatalf("chunks left after the final row: %d (%v)", left, err)
		}
		// A late checkpoint of the ended response writes nothing.
		write(6, 13, " more", 6, "", 6)
		want("Hello, world! Bye.", "Hm. Ok.", 5)
	})
}

// A model's text may hold a NUL character (JSON's \u0000): its
// checkpoints and final row are stored all the same, rather than refused
// on every retry while the session stays running. PostgreSQL's text cannot
// hold NUL, so there it is dropped; SQLite keeps it.
func TestFinishResponse_TextWithNUL(t *testing.T) {
	forEachUser(t, "nul@example.com", func(t *testing.T, d *db.DB, u *playground.User) {
		s := mustCreateSession(t, d, u.ID, "demo/a")
		r := s.Responses[0]
		if err := d.Checkpoint(ctx, s.ID, 2, []playground.ResponseCheckpoint{{ID: r.ID, Status: playground.StatusStreaming, Text: "a\x00b", NextIndex: 1}}); err != nil {
			t.Fatalf("checkpoint: %v", err)
		}
		if got := mustFindSession(t, d, s.ID).Responses[0].Text; strings.ReplaceAll(got, "\x00", "") != "ab" {
			t.Fatalf("checkpointed text %q, want a, NUL, b (or ab)", got)
		}
		r.Status, r.Text = playground.StatusComplete, "a\x00bc"
		r.Metrics = &playground.Metrics{FinishReason: playground.FinishStop}
		if err := d.FinishResponse(ctx, s.ID, r, false); err != nil {
			t.Fatalf("finish response: %v", err)
		}
		if err := d.FinishSession(ctx, s.ID, playground.SessionComplete, 4); err != nil {
			t.Fatalf("finish session: %v", err)
		}
		got := mustFindSession(t, d, s.ID)
		if got.Status != playground.SessionComplete || strings.ReplaceAll(got.Responses[0].Text, "\x00", "") != "abc" {
			t.Fatalf("stored %s with text %q; want complete and abc", got.Status, got.Responses[0].Text)
		}
	})
}
