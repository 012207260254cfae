package db

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/playground-dev/playground"
)

// sessionRow is a row of sessions.
type sessionRow struct {
	bun.BaseModel `bun:"table:sessions"`

	ID         string    `bun:"id,pk"`
	UserID     string    `bun:"user_id"`
	Prompt     string    `bun:"prompt"`
	System     *string   `bun:"system"`
	Params     string    `bun:"params"` // JSON of playground.Params
	ShareToken *string   `bun:"share_token"`
	ParentID   *string   `bun:"parent_id"`
	RootID     string    `bun:"root_id"`
	Kind       string    `bun:"kind"`
	Blind      bool      `bun:"blind"`
	Revealed   bool      `bun:"revealed"`
	CreatedAt  time.Time `bun:"created_at"`
	Status     string    `bun:"status"`
	LastSeq    int64     `bun:"last_seq"`
	Owner      string    `bun:"owner"`
}

// responseRow is a row of responses. Metric columns are NULL until the
// response ends, and stay NULL when neither reported nor computable.
type responseRow struct {
	bun.BaseModel `bun:"table:responses"`

	ID               string     `bun:"id,pk"`
	SessionID        string     `bun:"session_id"`
	Position         int        `bun:"position"`
	Model            string     `bun:"model"`
	Params           string     `bun:"params"` // JSON of playground.Params
	System           *string    `bun:"system"`
	Continues        *string    `bun:"continues"`
	Text             string     `bun:"text"`
	Reasoning        string     `bun:"reasoning"`
	Status           string     `bun:"status"`
	Error            *string    `bun:"error"` // JSON of playground.ResponseError
	TTFTMs           *int64     `bun:"ttft_ms"`
	DurationMs       *int64     `bun:"duration_ms"`
	PromptTokens     *int64     `bun:"prompt_tokens"`
	CompletionTokens *int64     `bun:"completion_tokens"`
	ReasoningTokens  *int64     `bun:"reasoning_tokens"`
	CachedTokens     *int64     `bun:"cached_tokens"`
	CostUSD          *float64   `bun:"cost_usd"`
	TokensPerSecond  *float64   `bun:"tokens_per_second"`
	FinishReason     *string    `bun:"finish_reason"`
	Attempts         int        `bun:"attempts"`
	NextIndex        int        `bun:"next_index"`
	Refunded         bool       `bun:"refunded"`
	Rating           int        `bun:"rating"`
	EndedAt          *time.Time `bun:"ended_at"`
}

// endedStatuses is the SQL list of final response statuses, and
// runningStatuses of the others.
const (
	endedStatuses   = "('complete', 'error', 'cancelled')"
	runningStatuses = "('pending', 'streaming')"
)

func toSession(r *sessionRow) (*playground.Session, error) {
	s := &playground.Session{
		ID:        r.ID,
		UserID:    r.UserID,
		Prompt:    r.Prompt,
		System:    r.System,
		CreatedAt: r.CreatedAt.UTC(),
		Status:    r.Status,
		ParentID:  r.ParentID,
		RootID:    r.RootID,
		Kind:      r.Kind,
		Blind:     r.Blind,
		Revealed:  r.Revealed || !r.Blind,
		LastSeq:   r.LastSeq,
		Owner:     r.Owner,
		Responses: []*playground.Response{},
	}
	if r.ShareToken != nil {
		s.Shared, s.ShareToken = true, *r.ShareToken
	}
	if r.Params != "" {
		if err := json.Unmarshal([]byte(r.Params), &s.Params); err != nil {
			return nil, fmt.Errorf("session %s: params: %w", r.ID, err)
		}
	}
	return s, nil
}

func toResponse(r *responseRow) (*playground.Response, error) {
	resp := &playground.Response{
		ID:        r.ID,
		SessionID: r.SessionID,
		Model:     r.Model,
		Label:     playground.Label(r.Position),
		Status:    r.Status,
		System:    r.System,
		Continues: r.Continues,
		Text:      r.Text,
		Reasoning: r.Reasoning,
		Rating:    r.Rating,
		NextIndex: r.NextIndex,
		Attempts:  r.Attempts,
		Refunded:  r.Refunded,
	}
	if r.Params != "" {
		if err := json.Unmarshal([]byte(r.Params), &resp.Params); err != nil {
			return nil, fmt.Errorf("response %s: params: %w", r.ID, err)
		}
	}
	if r.Error != nil {
		resp.Error = new(playground.ResponseError)
		if err := json.Unmarshal([]byte(*r.Error), resp.Error); err != nil {
			return nil, fmt.Errorf("response %s: error: %w", r.ID, err)
		}
	}
	// Metrics are null until the response ends (docs/api.md, Response).
	if resp.Ended() {
		m := &playground.Metrics{
			TTFTMs:           r.TTFTMs,
			PromptTokens:     r.PromptTokens,
			CompletionTokens: r.CompletionTokens,
			TokensPerSecond:  r.TokensPerSecond,
			CostUSD:          r.CostUSD,
			Attempts:         r.Attempts,
			ReasoningTokens:  r.ReasoningTokens,
			CachedTokens:     r.CachedTokens,
		}
		if r.DurationMs != nil {
			m.DurationMs = *r.DurationMs
		}
		if r.FinishReason != nil {
			m.FinishReason = *r.FinishReason
		}
		resp.Metrics = m
	}
	return resp, nil
}

// CreateSession charges one run per response from the owner's quota and
// inserts the session and its responses, in one transaction. IDs, status
// (running / pending) and CreatedAt are set when empty. Not enough quota
// is EQuotaExceeded with details remaining, required and resetsAt, and
// nothing is written.
func (d *DB) CreateSession(ctx context.Context, s *playground.Session) error {
	now := d.now()
	if s.ID == "" {
		s.ID = NewID(SessionIDPrefix)
	}
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	s.CreatedAt = s.CreatedAt.UTC().Truncate(time.Microsecond)
	if s.Status == "" {
		s.Status = playground.SessionRunning
	}
	if s.Kind == "" {
		s.Kind = playground.KindNew
	}
	if s.RootID == "" {
		s.RootID = s.ID
	}
	// A blind session starts hidden; any other is revealed from the start.
	s.Revealed = !s.Blind
	if s.Responses == nil {
		s.Responses = []*playground.Response{}
	}
	params, err := json.Marshal(s.Params)
	if err != nil {
		return fmt.Errorf("db: create session: params: %w", err)
	}
	srow := &sessionRow{
		ID:        s.ID,
		UserID:    s.UserID,
		Prompt:    s.Prompt,
		System:    s.System,
		Params:    string(params),
		ParentID:  s.ParentID,
		RootID:    s.RootID,
		Kind:      s.Kind,
		Blind:     s.Blind,
		Revealed:  s.Revealed,
		CreatedAt: s.CreatedAt,
		Status:    s.Status,
		LastSeq:   s.LastSeq,
		Owner:     s.Owner,
	}
	if s.ShareToken != "" {
		srow.ShareToken = &s.ShareToken
		s.Shared = true
	}
	rrows := make([]responseRow, len(s.Responses))
	for i, r := range s.Responses {
		if r.ID == "" {
			r.ID = NewID(ResponseIDPrefix)
		}
		r.SessionID = s.ID
		if r.Status == "" {
			r.Status = playground.StatusPending
		}
		r.Label = playground.Label(i)
		rparams, err := json.Marshal(r.Params)
		if err != nil {
			return fmt.Errorf("db: create session: response params: %w", err)
		}
		rrows[i] = responseRow{
			ID: r.ID, SessionID: s.ID, Position: i, Model: r.Model, Params: string(rparams),
			System: r.System, Continues: r.Continues, Text: r.Text, Reasoning: r.Reasoning,
			Status: r.Status, Attempts: r.Attempts, NextIndex: r.NextIndex, Rating: r.Rating,
		}
	}

	n := len(s.Responses)
	period := dbTime(playground.PeriodStart(now))
	err = d.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var remaining int
		err := d.hot.Scan(ctx, &tx, chargeSQL, []any{period, d.plans.ProPerDay, d.plans.FreePerDay, n, s.UserID}, &remaining)
		if errors.Is(err, sql.ErrNoRows) {
			return d.quotaExceeded(ctx, tx, s.UserID, n)
		} else if err != nil {
			return err
		}
		if _, err := d.hot.Exec(ctx, &tx, insertSessionSQL,
			srow.ID, srow.UserID, srow.Prompt, srow.System, srow.Params, srow.ShareToken, srow.ParentID, srow.RootID,
			srow.Kind, srow.Blind, srow.Revealed, dbTime(srow.CreatedAt), srow.Status, srow.LastSeq, srow.Owner); err != nil {
			return err
		}
		for _, r := range rrows {
			if _, err := d.hot.Exec(ctx, &tx, insertResponseSQL,
				r.ID, r.SessionID, r.Position, r.Model, r.Params, r.System, r.Continues, r.Text, r.Reasoning,
				r.Status, r.Attempts, r.NextIndex, r.Rating); err != nil {
				return err
			}
		}
		return nil
	})
	return txFail("create session", err)
}

// The statements of CreateSession (see hotQueries).
const (
	// chargeSQL takes $4 runs from user $5's quota and answers what is
	// left, or no row when too little is: the check and the decrement are
	// one statement, so a concurrent charge cannot come between them
	// (PostgreSQL re-checks the WHERE on the locked row; SQLite runs one
	// writer at a time). The quota counts from the plan's limit ($2 for
	// pro, $3 for any other plan, as playground.Plans.Limit does) when the
	// stored period started before $1, the current period's start: the
	// lazy reset of effectiveRemainingSQL.
	chargeSQL = "UPDATE users SET quota_remaining = " + chargeRemaining + " - $4, quota_period_start = $1" +
		" WHERE id = $5 AND " + chargeRemaining + " >= $4 RETURNING quota_remaining"
	chargeRemaining = "(CASE WHEN quota_period_start < $1" +
		" THEN (CASE plan WHEN 'pro' THEN CAST($2 AS INTEGER) ELSE CAST($3 AS INTEGER) END)" +
		" ELSE quota_remaining END)"

	insertSessionSQL = "INSERT INTO sessions (id, user_id, prompt, system, params, share_token, parent_id, root_id," +
		" kind, blind, revealed, created_at, status, last_seq, owner)" +
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"

	// insertResponseSQL leaves the columns of an ended response (error,
	// metrics, ended_at, refunded) to their defaults: NULL and false.
	insertResponseSQL = "INSERT INTO responses (id, session_id, position, model, params, system, continues, text, reasoning," +
		" status, attempts, next_index, rating)" +
		" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
)

// quotaExceeded builds the 402 once the charge updated no row: either the
// user does not exist or has too little left.
func (d *DB) quotaExceeded(ctx context.Context, tx bun.Tx, userID string, required int) error {
	row := new(userRow)
	if err := tx.NewSelect().Model(row).Where("id = ?", userID).Scan(ctx); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("User")
		}
		return err
	}
	u := d.toUser(row)
	return playground.Errorf(playground.EQuotaExceeded,
		"Not enough quota: %d runs needed, %d left.", required, u.Quota.Remaining).
		WithDetail("remaining", u.Quota.Remaining).
		WithDetail("required", required).
		WithDetail("resetsAt", u.Quota.ResetsAt)
}

// FindSession returns the session with its responses in order, or ENotFound.
func (d *DB) FindSession(ctx context.Context, id string) (*playground.Session, error) {
	return d.findSession(ctx, "id = ?", id)
}

// FindSessionByShareToken returns the session shared under token, or
// ENotFound for an unknown or cleared token.
func (d *DB) FindSessionByShareToken(ctx context.Context, token string) (*playground.Session, error) {
	if token == "" {
		return nil, notFound("Session")
	}
	return d.findSession(ctx, "share_token = ?", token)
}

func (d *DB) findSession(ctx context.Context, where string, arg any) (*playground.Session, error) {
	row, err := findRow[sessionRow](ctx, d.db, "Session", where, arg)
	if err != nil {
		return nil, err
	}
	ss, err := d.withResponses(ctx, []*sessionRow{row}, true)
	if err != nil {
		return nil, fail("find session", err)
	}
	return ss[0], nil
}

// withResponses converts session rows and attaches their responses,
// loaded by one query, in position order; without text when withText is
// false.
func (d *DB) withResponses(ctx context.Context, rows []*sessionRow, withText bool) ([]*playground.Session, error) {
	out := make([]*playground.Session, len(rows))
	byID := make(map[string]*playground.Session, len(rows))
	ids := make([]string, len(rows))
	for i, r := range rows {
		s, err := toSession(r)
		if err != nil {
			return nil, err
		}
		out[i], byID[r.ID], ids[i] = s, s, r.ID
	}
	if len(ids) == 0 {
		return out, nil
	}
	if err := d.conversationTokens(ctx, out); err != nil {
		return nil, err
	}
	var rrows []*responseRow
	q := d.db.NewSelect().Model(&rrows).Where("session_id IN (?)", bun.List(ids)).Order("session_id", "position")
	if !withText {
		q = q.ExcludeColumn("text")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, err
	}
	running := map[string]*playground.Response{}
	for _, rr := range rrows {
		r, err := toResponse(rr)
		if err != nil {
			return nil, err
		}
		s := byID[rr.SessionID]
		s.Responses = append(s.Responses, r)
		if withText && !r.Ended() {
			running[r.ID] = r
		}
	}
	if err := d.withChunks(ctx, running); err != nil {
		return nil, err
	}
	if err := d.voteCounts(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

// voteCounts sets Votes on the blind sessions of ss, by one query.
func (d *DB) voteCounts(ctx context.Context, ss []*playground.Session) error {
	var ids []string
	byID := map[string]*playground.Session{}
	for _, s := range ss {
		if s.Blind {
			zero := 0
			s.Votes = &zero
			ids = append(ids, s.ID)
			byID[s.ID] = s
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var counts []struct {
		SessionID string `bun:"session_id"`
		N         int    `bun:"n"`
	}
	if err := d.db.NewSelect().Table("votes").ColumnExpr("session_id, COUNT(*) AS n").
		Where("session_id IN (?)", bun.List(ids)).Group("session_id").Scan(ctx, &counts); err != nil {
		return err
	}
	for _, c := range counts {
		n := c.N
		byID[c.SessionID].Votes = &n
	}
	return nil
}

// conversationTokens gives each session without a share token of its own
// its conversation's: a share token is set on the first turn and covers
// every turn, present and future. (A later turn that was shared on its own,
// before conversations existed, keeps its own token, which covers it alone.)
func (d *DB) conversationTokens(ctx context.Context, ss []*playground.Session) error {
	var roots []string
	for _, s := range ss {
		if !s.Shared && s.RootID != "" && s.RootID != s.ID {
			roots = append(roots, s.RootID)
		}
	}
	if len(roots) == 0 {
		return nil
	}
	var rows []struct {
		ID         string `bun:"id"`
		ShareToken string `bun:"share_token"`
	}
	if err := d.db.NewSelect().Table("sessions").Column("id", "share_token").
		Where("id IN (?) AND share_token IS NOT NULL", bun.List(roots)).Scan(ctx, &rows); err != nil {
		return err
	}
	for _, r := range rows {
		for _, s := range ss {
			if !s.Shared && s.RootID == r.ID {
				s.Shared, s.ShareToken = true, r.ShareToken
			}
		}
	}
	return nil
}

// Thread returns every session of the conversation whose first turn is
// rootID, oldest first, with their texts; ENotFound when there is none.
func (d *DB) Thread(ctx context.Context, rootID string) ([]*playground.Session, error) {
	var rows []*sessionRow
	if err := d.db.NewSelect().Model(&rows).Where("root_id = ?", rootID).
		OrderExpr("created_at ASC, id ASC").Scan(ctx); err != nil {
		return nil, fmt.Errorf("db: thread: %w", err)
	}
	if len(rows) == 0 {
		return nil, notFound("Session")
	}
	ss, err := d.withResponses(ctx, rows, true)
	if err != nil {
		return nil, fmt.Errorf("db: thread: %w", err)
	}
	return ss, nil
}

// ListSessions returns up to limit of the user's conversations (their
// first turns, each with its Turns), newest first,
// starting after cursor (empty for the first page), without response
// texts, and the cursor of the next page ("" on the last). A limit out of
// 1..MaxSessionsListed is clamped.
func (d *DB) ListSessions(ctx context.Context, userID, cursor string, limit int) ([]*playground.Session, string, error) {
	if limit < 1 {
		limit = 20
	}
	if limit > playground.MaxSessionsListed {
		limit = playground.MaxSessionsListed
	}
	var rows []*sessionRow
	q := d.db.NewSelect().Model(&rows).Where("user_id = ? AND kind = ?", userID, playground.KindNew).
		OrderExpr("created_at DESC, id DESC").
		Limit(int64(limit) + 1) // one more than asked: is there a next page?
	if cursor != "" {
		at, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		// A row-value comparison walks sessions_user_created_idx.
		q = q.Where("(created_at, id) < (?, ?)", at, id)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, "", fail("list sessions", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1]
		next = encodeCursor(last.CreatedAt, last.ID)
	}
	ss, err := d.withResponses(ctx, rows, false)
	if err != nil {
		return nil, "", fail("list sessions", err)
	}
	if err := d.countTurns(ctx, ss); err != nil {
		return nil, "", fmt.Errorf("db: list sessions: %w", err)
	}
	return ss, next, nil
}

// countTurns sets each first turn's Turns: how many sessions its
// conversation holds, itself included.
func (d *DB) countTurns(ctx context.Context, ss []*playground.Session) error {
	if len(ss) == 0 {
		return nil
	}
	byRoot := make(map[string]*playground.Session, len(ss))
	ids := make([]string, len(ss))
	for i, s := range ss {
		byRoot[s.ID], ids[i] = s, s.ID
	}
	var counts []struct {
		RootID string `bun:"root_id"`
		N      int    `bun:"n"`
	}
	err := d.db.NewSelect().Table("sessions").ColumnExpr("root_id, COUNT(*) AS n").
		Where("root_id IN (?)", bun.List(ids)).Group("root_id").Scan(ctx, &counts)
	if err != nil {
		return err
	}
	for _, c := range counts {
		byRoot[c.RootID].Turns = c.N
	}
	return nil
}

// encodeCursor makes the opaque page cursor: the (created_at, id) of the
// last session of a page.
func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + " " + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	bad := playground.Invalid("cursor", "The cursor is not valid.")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	ts, id, ok := strings.Cut(string(b), " ")
	if !ok || id == "" {
		return time.Time{}, "", bad
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return time.Time{}, "", bad
	}
	return at.UTC(), id, nil
}

// SetShareToken sets the share token of the session's conversation, or
// clears it with "". The token is kept on the first turn, so it covers every
// turn; a token the session holds of its own (a turn shared on its own
// before conversations existed) is set or cleared in place.
func (d *DB) SetShareToken(ctx context.Context, id, token string) error {
	var tok *string
	if token != "" {
		tok = &token
	}
	var res sql.Result
	err := d.writing(ctx, func() (err error) {
		res, err = d.db.NewUpdate().Table("sessions").Set("share_token = ?", tok).
			Where("id = (SELECT CASE WHEN s.share_token IS NOT NULL THEN s.id ELSE s.root_id END FROM sessions s WHERE s.id = ?)", id).Exec(ctx)
		return err
	})
	if err != nil {
		return fail("set share token", err)
	}
	return mustAffect(res, "Session")
}

// Checkpoint writes the running state of responses that have not ended,
// and the session's last seq while it runs, in one transaction. Text and
// reasoning are appended as a chunk at their offsets (see
// playground.ResponseCheckpoint); status, next index and attempts are
// small and set in place. An ended response is never written: its final
// row came from FinishResponse.
func (d *DB) Checkpoint(ctx context.Context, sessionID string, lastSeq int64, rs []playground.ResponseCheckpoint) error {
	err := d.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		for _, c := range rs {
			// The update comes first: on PostgreSQL it locks the row, so a
			// retry waits for an earlier attempt still in flight.
			n, err := d.hot.Affected(ctx, &tx, checkpointResponseSQL, c.Status, c.NextIndex, c.Attempts, c.ID, sessionID)
			if err != nil {
				return err
			}
			if n == 0 || (c.Text == "" && c.Reasoning == "") {
				continue
			}
			if _, err := d.hot.Exec(ctx, &tx, appendChunkSQL, c.ID, c.TextFrom, c.ReasoningFrom, c.Text, c.Reasoning); err != nil {
				return err
			}
		}
		_, err := d.hot.Exec(ctx, &tx, checkpointSessionSQL, lastSeq, sessionID)
		return err
	})
	if err != nil {
		return fail("checkpoint", err)
	}
	return nil
}

// The statements of Checkpoint (see hotQueries).
const (
	// checkpointResponseSQL sets status $1, next index $2 and attempts $3
	// of response $4 of session $5, unless it has ended.
	checkpointResponseSQL = "UPDATE responses SET status = $1, next_index = $2, attempts = $3" +
		" WHERE id = $4 AND session_id = $5 AND status IN " + runningStatuses
	// appendChunkSQL stores a chunk of response $1 starting at text offset
	// $2 and reasoning offset $3; a chunk retried at the same offsets
	// replaces the row.
	appendChunkSQL = "INSERT INTO response_chunks (response_id, text_from, reasoning_from, text, reasoning)" +
		" VALUES ($1, $2, $3, $4, $5) ON CONFLICT (response_id, text_from, reasoning_from)" +
		" DO UPDATE SET text = excluded.text, reasoning = excluded.reasoning"
	// checkpointSessionSQL sets last seq $1 of session $2 while it runs.
	checkpointSessionSQL = "UPDATE sessions SET last_seq = $1 WHERE id = $2 AND status = 'running'"
)

// chunkRow is a row of response_chunks.
type chunkRow struct {
	ResponseID    string `bun:"response_id"`
	TextFrom      int    `bun:"text_from"`
	ReasoningFrom int    `bun:"reasoning_from"`
	Text          string `bun:"text"`
	Reasoning     string `bun:"reasoning"`
}

// withChunks gives each running response the text and reasoning its
// checkpoints appended so far.
func (d *DB) withChunks(ctx context.Context, running map[string]*playground.Response) error {
	if len(running) == 0 {
		return nil
	}
	ids := make([]string, 0, len(running))
	for id := range running {
		ids = append(ids, id)
	}
	var rows []chunkRow
	if err := d.db.NewSelect().Table("response_chunks").
		Column("response_id", "text_from", "reasoning_from", "text", "reasoning").
		Where("response_id IN (?)", bun.List(ids)).
		Order("response_id", "text_from", "reasoning_from").Scan(ctx, &rows); err != nil {
		return err
	}
	var text, reasoning strings.Builder
	flush := func(id string) {
		if r := running[id]; r != nil {
			r.Text, r.Reasoning = text.String(), reasoning.String()
		}
		text, reasoning = strings.Builder{}, strings.Builder{}
	}
	for i, c := range rows {
		if i > 0 && rows[i-1].ResponseID != c.ResponseID {
			flush(rows[i-1].ResponseID)
		}
		appendAt(&text, c.TextFrom, c.Text)
		appendAt(&reasoning, c.ReasoningFrom, c.Reasoning)
	}
	if len(rows) > 0 {
		flush(rows[len(rows)-1].ResponseID)
	}
	return nil
}

// appendAt lays part, which starts at byte from of the whole, over b:
// the part of it b already holds (a chunk rewritten longer at the same
// offset, read with its older neighbour) is not added twice.
func appendAt(b *strings.Builder, from int, part string) {
	if skip := b.Len() - from; skip > 0 {
		if skip >= len(part) {
			return
		}
		part = part[skip:]
	}
	b.WriteString(part)
}

// FinishResponse writes r's final row, once: a response that has ended
// already keeps the row it ended with, and the call changes nothing (the
// owner of a session and another instance's recovery may both try, after
// a database outage). With refund set, the run goes back to the session
// owner's quota in the same transaction as the final row. r.Refunded is
// set when the unit has been given back (now or before).
func (d *DB) FinishResponse(ctx context.Context, sessionID string, r *playground.Response, refund bool) error {
	row := &responseRow{Text: r.Text, Reasoning: r.Reasoning, Status: r.Status, NextIndex: r.NextIndex, Attempts: r.Attempts}
	if r.Error != nil {
		b, err := json.Marshal(r.Error)
		if err != nil {
			return fail("finish response", err)
		}
		row.Error = new(string(b))
	}
	if m := r.Metrics; m != nil {
		row.TTFTMs, row.PromptTokens, row.CompletionTokens = m.TTFTMs, m.PromptTokens, m.CompletionTokens
		row.ReasoningTokens, row.CachedTokens = m.ReasoningTokens, m.CachedTokens
		row.CostUSD, row.TokensPerSecond = m.CostUSD, m.TokensPerSecond
		row.DurationMs = &m.DurationMs
		if m.FinishReason != "" {
			row.FinishReason = &m.FinishReason
		}
		row.Attempts = max(row.Attempts, m.Attempts)
	}
	var endedAt *time.Time
	if r.Ended() {
		endedAt = new(d.now())
	}

	refunded := false
	err := d.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		n, err := d.hot.Affected(ctx, &tx, finishResponseSQL,
			row.Status, row.Text, row.Reasoning, row.Error, row.TTFTMs, row.DurationMs,
			row.PromptTokens, row.CompletionTokens, row.ReasoningTokens, row.CachedTokens,
			row.CostUSD, row.TokensPerSecond, row.FinishReason, row.NextIndex, row.Attempts,
			dbTimePtr(endedAt), r.ID, sessionID)
		if err != nil {
			return err
		}
		if n == 0 {
			// Ended before (or not this session's): report what was stored.
			return tx.NewSelect().Table("responses").Column("refunded").
				Where("id = ? AND session_id = ?", r.ID, sessionID).Scan(ctx, &refunded)
		}
		// The final row holds the whole text: the chunks are done with.
		if _, err := d.hot.Exec(ctx, &tx, dropChunksSQL, r.ID); err != nil {
			return err
		}
		if !refund {
			return nil
		}
		res, err := tx.NewUpdate().Table("responses").Set("refunded = ?", true).
			Where("id = ? AND refunded = ?", r.ID, false).Exec(ctx)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			refunded = true // given back by an earlier call
			return nil
		}
		refunded = true
		_, err = tx.NewRaw("UPDATE users SET quota_remaining = quota_remaining + 1"+
			" WHERE id = (SELECT user_id FROM sessions WHERE id = ?)", sessionID).Exec(ctx)
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("Response")
	} else if err := txFail("finish response", err); err != nil {
		return err
	}
	if refunded {
		r.Refunded = true
	}
	return nil
}

// The statements of FinishResponse (see hotQueries).
const (
	// finishResponseSQL writes the final row of response $17 of session
	// $18, unless it has ended already.
	finishResponseSQL = "UPDATE responses SET status = $1, text = $2, reasoning = $3, error = $4," +
		" ttft_ms = $5, duration_ms = $6, prompt_tokens = $7, completion_tokens = $8," +
		" reasoning_tokens = $9, cached_tokens = $10, cost_usd = $11, tokens_per_second = $12," +
		" finish_reason = $13, next_index = $14, attempts = $15, ended_at = $16" +
		" WHERE id = $17 AND session_id = $18 AND status IN " + runningStatuses
	dropChunksSQL = "DELETE FROM response_chunks WHERE response_id = $1"
)

// ErrResponsesRunning is FinishSession's refusal to end a session while
// one of its responses has no final row yet.
var ErrResponsesRunning = errors.New("db: finish session: a response has not ended")

// FinishSession commits the session's final status and last seq, once: a
// session that has ended already keeps its ending, and the call changes
// nothing. A session is never stored ended while one of its responses is
// not: that is ErrResponsesRunning, and nothing is written.
func (d *DB) FinishSession(ctx context.Context, sessionID, status string, lastSeq int64) error {
	var n int64
	if err := d.writing(ctx, func() (err error) {
		n, err = d.hot.Affected(ctx, nil, finishSessionSQL, status, lastSeq, sessionID)
		return err
	}); err != nil {
		return fail("finish session", err)
	} else if n > 0 {
		return nil
	}
	var current string
	if err := d.db.NewSelect().Table("sessions").Column("status").Where("id = ?", sessionID).Scan(ctx, &current); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return notFound("Session")
		}
		return fail("finish session", err)
	}
	if current == playground.SessionRunning {
		return ErrResponsesRunning
	}
	return nil
}

// finishSessionSQL ends session $3 with status $1 and last seq $2, while
// it runs and none of its responses does (see hotQueries).
const finishSessionSQL = "UPDATE sessions SET status = $1, last_seq = $2" +
	" WHERE id = $3 AND status = 'running'" +
	" AND NOT EXISTS (SELECT 1 FROM responses WHERE session_id = $3 AND status NOT IN " + endedStatuses + ")"

// RunningSessions lists the sessions still marked running, with their
// responses, oldest first: at start, those no instance runs any more are
// marked interrupted.
func (d *DB) RunningSessions(ctx context.Context) ([]*playground.Session, error) {
	var rows []*sessionRow
	if err := d.db.NewSelect().Model(&rows).Where("status = 'running'").
		OrderExpr("created_at, id").Scan(ctx); err != nil {
		return nil, fail("running sessions", err)
	}
	ss, err := d.withResponses(ctx, rows, true)
	if err != nil {
		return nil, fail("running sessions", err)
	}
	return ss, nil
}

// SetRating records the owner's score (-1, 0 or 1) of an ended response
// and returns the updated response. A response of another session is
// ENotFound; one still running is EInvalid.
func (d *DB) SetRating(ctx context.Context, sessionID, responseID string, score int) (*playground.Response, error) {
	if score < -1 || score > 1 {
		return nil, playground.Invalid("score", "Score must be -1, 0 or 1.")
	}
	var out *playground.Response
	err := d.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		row := new(responseRow)
		if err := tx.NewSelect().Model(row).
			Where("id = ? AND session_id = ?", responseID, sessionID).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("Response")
			}
			return err
		}
		r, err := toResponse(row)
		if err != nil {
			return err
		}
		if !r.Ended() {
			return playground.Errorf(playground.EInvalid, "A response can be rated once it has ended.")
		}
		if _, err := tx.NewUpdate().Table("responses").Set("rating = ?", score).
			Where("id = ?", responseID).Exec(ctx); err != nil {
			return err
		}
		r.Rating = score
		out = r
		return nil
	})
	if err := txFail("set rating", err); err != nil {
		return nil, err
	}
	return out, nil
}

// mustAffect turns an update that matched no row into ENotFound.
func mustAffect(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fail("rows affected", err)
	}
	if n == 0 {
		return notFound(what)
	}
	return nil
}
