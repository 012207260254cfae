package db

import (
	"context"
	"database/sql"
	"errors"

	"github.com/playground-dev/playground"
)

// FindSessionAccess returns the session's owner and the share token that
// covers it, by one query: its own token, else its conversation's (the
// first turn's), as FindSession gives them; ENotFound for an unknown id.
func (d *DB) FindSessionAccess(ctx context.Context, id string) (playground.SessionAccess, error) {
	var row struct {
		UserID     string  `bun:"user_id"`
		ShareToken *string `bun:"share_token"`
	}
	err := d.db.NewSelect().TableExpr("sessions AS s").
		Join("LEFT JOIN sessions AS r ON r.id = s.root_id").
		ColumnExpr("s.user_id, COALESCE(s.share_token, r.share_token) AS share_token").
		Where("s.id = ?", id).Scan(ctx, &row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return playground.SessionAccess{}, notFound("Session")
	case err != nil:
		return playground.SessionAccess{}, fail("find session access", err)
	}
	a := playground.SessionAccess{UserID: row.UserID}
	if row.ShareToken != nil {
		a.ShareToken = *row.ShareToken
	}
	return a, nil
}
