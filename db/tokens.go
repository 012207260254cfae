package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RevokeToken records that the access token jti may not be used again
// until it expires. Revoking twice keeps the later expiry. Expired
// revocations are purged on the way: nobody can present those tokens any
// more, so the table only ever holds live ones.
func (d *DB) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	expiresAt = expiresAt.UTC().Truncate(time.Microsecond)
	err := d.writing(ctx, func() error {
		if _, err := d.db.NewRaw("INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?)"+
			" ON CONFLICT (jti) DO UPDATE SET expires_at = CASE WHEN excluded.expires_at > revoked_tokens.expires_at"+
			" THEN excluded.expires_at ELSE revoked_tokens.expires_at END",
			jti, expiresAt).Exec(ctx); err != nil {
			return err
		}
		// Opportunistic purge: a failure costs nothing but space.
		if _, err := d.db.NewDelete().Table("revoked_tokens").
			Where("expires_at <= ?", d.now()).Exec(ctx); err != nil {
			d.log.Warn("db: purge revoked tokens", "err", err)
		}
		return nil
	})
	if err != nil {
		return fail("revoke token", err)
	}
	return nil
}

// IsTokenRevoked reports whether a token issued to userID may no longer
// be used: its jti was revoked and has not expired yet, or the account no
// longer exists. One round trip answers both.
func (d *DB) IsTokenRevoked(ctx context.Context, jti, userID string) (bool, error) {
	var revoked, userExists bool
	if err := d.db.NewRaw("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = ? AND expires_at > ?),"+
		" EXISTS (SELECT 1 FROM users WHERE id = ?)", jti, d.now(), userID).Scan(ctx, &revoked, &userExists); err != nil {
		return false, fail("is token revoked", err)
	}
	return revoked || !userExists, nil
}

// EnsureSetting stores value under key unless a value is already there,
// and returns the stored one. Instances racing to store their own value
// all end up with the first one written: the insert does nothing on a
// conflict, and the read that follows sees the winner.
func (d *DB) EnsureSetting(ctx context.Context, key, value string) (string, error) {
	if err := d.writing(ctx, func() error {
		_, err := d.db.NewRaw("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
			key, value).Exec(ctx)
		return err
	}); err != nil {
		return "", fail("ensure setting", err)
	}
	var stored string
	if err := d.db.NewRaw("SELECT value FROM settings WHERE key = ?", key).Scan(ctx, &stored); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("db: ensure setting %q: vanished after insert", key)
		}
		return "", fail("ensure setting", err)
	}
	return stored, nil
}
