package db

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/uptrace/bun"

	"github.com/playground-dev/playground"
)

// voteRow is a row of votes: one account's verdict on one blind session.
type voteRow struct {
	bun.BaseModel `bun:"table:votes,alias:v"`

	SessionID    string    `bun:"session_id,pk"`
	UserID       string    `bun:"user_id,pk"`
	Choice       string    `bun:"choice"`
	IdentityLeak bool      `bun:"identity_leak"`
	CastAt       time.Time `bun:"cast_at"`
}

// Votes returns d as a playground.VoteService.
func (d *DB) Votes() playground.VoteService { return d }

// CastVote stores v, replacing the account's earlier vote on the session,
// in one transaction that first locks the session's row and checks it is
// still hidden: a reveal that commits first makes the vote a conflict,
// and nothing is written.
func (d *DB) CastVote(ctx context.Context, v *playground.Vote) error {
	v.At = v.At.UTC().Truncate(time.Microsecond)
	err := d.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
		q := tx.NewSelect().Table("sessions").Column("blind", "revealed").Where("id = ?", v.SessionID)
		if d.dialect == DialectPostgres {
			q = q.For("UPDATE")
		}
		var blind, revealed bool
		if err := q.Scan(ctx, &blind, &revealed); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return notFound("Session")
			}
			return err
		}
		if !blind || revealed {
			return playground.Errorf(playground.EConflict, "Votes are closed: the comparison has been revealed.")
		}
		row := &voteRow{SessionID: v.SessionID, UserID: v.UserID, Choice: v.Choice, IdentityLeak: v.IdentityLeak, CastAt: v.At}
		_, err := tx.NewInsert().Model(row).
			On("CONFLICT (session_id, user_id) DO UPDATE").
			Set("choice = EXCLUDED.choice, identity_leak = EXCLUDED.identity_leak, cast_at = EXCLUDED.cast_at").
			Exec(ctx)
		return err
	})
	return txFail("cast vote", err)
}

// Reveal marks a blind session revealed, once.
func (d *DB) Reveal(ctx context.Context, sessionID string) (bool, error) {
	var res sql.Result
	err := d.writing(ctx, func() (err error) {
		res, err = d.db.NewUpdate().Table("sessions").Set("revealed = ?", true).
			Where("id = ? AND blind = ? AND revealed = ?", sessionID, true, false).Exec(ctx)
		return err
	})
	if err != nil {
		return false, fail("reveal", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("reveal", err)
	}
	return n == 1, nil
}

// Tally counts a session's votes by choice.
func (d *DB) Tally(ctx context.Context, sessionID string) (map[string]int, error) {
	var rows []struct {
		Choice string `bun:"choice"`
		N      int    `bun:"n"`
	}
	if err := d.db.NewSelect().Table("votes").ColumnExpr("choice, COUNT(*) AS n").
		Where("session_id = ?", sessionID).Group("choice").Scan(ctx, &rows); err != nil {
		return nil, fail("tally", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Choice] = r.N
	}
	return out, nil
}

// CountedVotes reads the votes on revealed blind sessions (of userID, or
// of everyone for ""), with the models of each session's complete
// responses, by two queries.
func (d *DB) CountedVotes(ctx context.Context, userID string) ([]playground.CountedVote, error) {
	var votes []voteRow
	q := d.db.NewSelect().Model(&votes).ColumnExpr("v.*").
		Join("JOIN sessions AS s ON s.id = v.session_id").
		Where("s.blind = ? AND s.revealed = ?", true, true).
		OrderExpr("v.session_id, v.user_id")
	if userID != "" {
		q = q.Where("v.user_id = ?", userID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fail("counted votes", err)
	}
	if len(votes) == 0 {
		return []playground.CountedVote{}, nil
	}
	ids := make([]string, 0, len(votes))
	seen := map[string]bool{}
	for _, v := range votes {
		if !seen[v.SessionID] {
			seen[v.SessionID] = true
			ids = append(ids, v.SessionID)
		}
	}
	var resps []struct {
		ID        string `bun:"id"`
		SessionID string `bun:"session_id"`
		Model     string `bun:"model"`
	}
	if err := d.db.NewSelect().Table("responses").Column("id", "session_id", "model").
		Where("session_id IN (?) AND status = ?", bun.List(ids), playground.StatusComplete).
		Order("session_id", "position").Scan(ctx, &resps); err != nil {
		return nil, fail("counted votes", err)
	}
	models := map[string][]string{}
	modelOf := map[string]string{}
	for _, r := range resps {
		models[r.SessionID] = append(models[r.SessionID], r.Model)
		modelOf[r.ID] = r.Model
	}
	out := make([]playground.CountedVote, 0, len(votes))
	for _, v := range votes {
		cv := playground.CountedVote{UserID: v.UserID, Models: models[v.SessionID], IdentityLeak: v.IdentityLeak}
		if v.Choice != playground.ChoiceTie && v.Choice != playground.ChoiceAllBad {
			if cv.Winner = modelOf[v.Choice]; cv.Winner == "" {
				continue // the answer chosen did not complete: it beat nothing
			}
		}
		out = append(out, cv)
	}
	return out, nil
}
