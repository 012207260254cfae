package db

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// migrationLockKey is the first half of the PostgreSQL advisory lock key
// taken while migrating; the second half is a hash of the schema, so that
// deployments (and tests) in different schemas of one database do not wait
// for each other.
const migrationLockKey = 0x706c6179 // "play"

// migrations lists the schema changes in order. They are Go migrations so
// that one definition yields the right types for each dialect.
func migrations(dialect string) *migrate.Migrations {
	ms := migrate.NewMigrations()
	for _, m := range []struct {
		name, comment string
		up, down      []string
	}{
		{"20250101000001", "initial_schema", initialSchema(dialect), []string{
			"DROP TABLE IF EXISTS settings",
			"DROP TABLE IF EXISTS revoked_tokens",
			"DROP TABLE IF EXISTS responses",
			"DROP TABLE IF EXISTS sessions",
			"DROP TABLE IF EXISTS users",
		}},
		{"20261206000001", "conversations", conversationSchema(), []string{
			"DROP INDEX IF EXISTS sessions_root_idx",
			"ALTER TABLE responses DROP COLUMN reasoning",
			"ALTER TABLE responses DROP COLUMN continues",
			"ALTER TABLE responses DROP COLUMN system",
			"ALTER TABLE responses DROP COLUMN params",
			"ALTER TABLE sessions DROP COLUMN root_id",
			"ALTER TABLE sessions DROP COLUMN kind",
		}},
		{"20261207000001", "blind_votes", blindSchema(dialect), []string{
			"DROP TABLE IF EXISTS votes",
			"ALTER TABLE sessions DROP COLUMN revealed",
			"ALTER TABLE sessions DROP COLUMN blind",
		}},
		{"20261207000002", "response_chunks", chunkSchema(), []string{
			"DROP TABLE IF EXISTS response_chunks",
		}},
	} {
		ms.Add(migrate.Migration{Name: m.name, Comment: m.comment, Up: ddlMigration(m.up), Down: ddlMigration(m.down)})
	}
	return ms
}

// blindSchema adds blind comparisons: a session's blind and revealed
// flags (rows written before it are plain sessions, revealed), and the
// votes on them, one per account and session.
func blindSchema(dialect string) []string {
	ts := "TIMESTAMPTZ"
	if dialect == DialectSQLite {
		ts = "TEXT"
	}
	return []string{
		`ALTER TABLE sessions ADD COLUMN blind BOOLEAN NOT NULL DEFAULT FALSE`,
		`ALTER TABLE sessions ADD COLUMN revealed BOOLEAN NOT NULL DEFAULT TRUE`,
		`CREATE TABLE IF NOT EXISTS votes (
			session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
			user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
			choice TEXT NOT NULL,
			identity_leak BOOLEAN NOT NULL DEFAULT FALSE,
			cast_at ` + ts + ` NOT NULL,
			PRIMARY KEY (session_id, user_id)
		)`,
		// The leaderboard of one account reads its votes.
		`CREATE INDEX IF NOT EXISTS votes_user_idx ON votes (user_id)`,
	}
}

// chunkSchema holds the text of running responses as it arrives: each
// checkpoint appends a row with what the last one did not carry, keyed by
// the byte offsets it starts at, so a retried write at the same offsets
// replaces its row instead of doubling it. The final row of a response
// (responses.text, written once when it ends) replaces its chunks, which
// are then deleted. Responses still running from before this table read
// the text of their last whole-text checkpoint, as before.
func chunkSchema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS response_chunks (
			response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,
			text_from BIGINT NOT NULL,
			reasoning_from BIGINT NOT NULL,
			text TEXT NOT NULL,
			reasoning TEXT NOT NULL,
			PRIMARY KEY (response_id, text_from, reasoning_from)
		)`,
	}
}

// conversationSchema links sessions into conversations (kind, root_id) and
// gives each response its own params, system prompt, thread link
// (continues) and visible thinking (reasoning). Rows written before it are
// read as first turns: a session with a parent was a rerun, its root is
// the first session up its parent chain, and each response ran with its
// session's params and system prompt.
func conversationSchema() []string {
	return []string{
		`ALTER TABLE sessions ADD COLUMN kind TEXT NOT NULL DEFAULT 'new'`,
		`ALTER TABLE sessions ADD COLUMN root_id TEXT`,
		`UPDATE sessions SET kind = 'rerun' WHERE parent_id IS NOT NULL`,
		`WITH RECURSIVE chain (id, root) AS (
			SELECT id, id FROM sessions WHERE parent_id IS NULL
			UNION ALL
			SELECT s.id, c.root FROM sessions s JOIN chain c ON s.parent_id = c.id
		)
		UPDATE sessions SET root_id = (SELECT root FROM chain WHERE chain.id = sessions.id)`,
		// A conversation's turns, oldest first (GET /sessions/{id}/thread,
		// and the turn count of the list).
		`CREATE INDEX IF NOT EXISTS sessions_root_idx ON sessions (root_id, created_at)`,

		`ALTER TABLE responses ADD COLUMN params TEXT NOT NULL DEFAULT '{}'`,
		`ALTER TABLE responses ADD COLUMN system TEXT`,
		`ALTER TABLE responses ADD COLUMN continues TEXT`,
		`ALTER TABLE responses ADD COLUMN reasoning TEXT NOT NULL DEFAULT ''`,
		`UPDATE responses SET
			params = (SELECT s.params FROM sessions s WHERE s.id = responses.session_id),
			system = (SELECT s.system FROM sessions s WHERE s.id = responses.session_id)`,
	}
}

// ddlMigration runs statements in one transaction: both databases have
// transactional DDL, so a failed migration leaves nothing half done.
func ddlMigration(stmts []string) func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
	return func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
		return m.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, s := range stmts {
				if _, err := tx.ExecContext(ctx, s); err != nil {
					return fmt.Errorf("%s: %w", firstLine(s), err)
				}
			}
			return nil
		})
	}
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// initialSchema is the first version of the schema for dialect.
//
// Timestamps are TIMESTAMPTZ on PostgreSQL and TEXT on SQLite, where bun
// writes them as UTC "2006-01-02 15:04:05.999999+00:00": that form sorts
// lexicographically in time order, so comparisons and ORDER BY work on
// the text.
func initialSchema(dialect string) []string {
	ts, big, real, boolean := "TIMESTAMPTZ", "BIGINT", "DOUBLE PRECISION", "BOOLEAN"
	if dialect == DialectSQLite {
		ts, big, real, boolean = "TEXT", "INTEGER", "REAL", "BOOLEAN"
	}
	r := strings.NewReplacer("$TS", ts, "$BIG", big, "$REAL", real, "$BOOL", boolean)
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS users (
			id TEXT PRIMARY KEY,
			email TEXT NOT NULL,
			password_hash TEXT NOT NULL,
			plan TEXT NOT NULL DEFAULT 'free',
			role TEXT NOT NULL DEFAULT 'user',
			quota_remaining INTEGER NOT NULL CHECK (quota_remaining >= 0),
			quota_period_start $TS NOT NULL,
			created_at $TS NOT NULL
		)`,
		// Emails are stored lower-cased, so a plain unique index makes
		// them unique regardless of case.
		`CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (email)`,

		`CREATE TABLE IF NOT EXISTS sessions (
			id TEXT PRIMARY KEY,
			user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
			prompt TEXT NOT NULL,
			system TEXT,
			params TEXT NOT NULL DEFAULT '{}',
			share_token TEXT UNIQUE,
			parent_id TEXT REFERENCES sessions (id) ON DELETE SET NULL,
			created_at $TS NOT NULL,
			status TEXT NOT NULL,
			last_seq $BIG NOT NULL DEFAULT 0,
			owner TEXT NOT NULL DEFAULT ''
		)`,
		// Listing a user's sessions newest first, paged by (created_at, id).
		`CREATE INDEX IF NOT EXISTS sessions_user_created_idx ON sessions (user_id, created_at DESC, id DESC)`,
		// Recovery at start looks for the few sessions still running.
		`CREATE INDEX IF NOT EXISTS sessions_running_idx ON sessions (status) WHERE status = 'running'`,
		`CREATE INDEX IF NOT EXISTS sessions_parent_idx ON sessions (parent_id) WHERE parent_id IS NOT NULL`,

		`CREATE TABLE IF NOT EXISTS responses (
			id TEXT PRIMARY KEY,
			session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
			position INTEGER NOT NULL,
			model TEXT NOT NULL,
			text TEXT NOT NULL DEFAULT '',
			status TEXT NOT NULL,
			error TEXT,
			ttft_ms $BIG,
			duration_ms $BIG,
			prompt_tokens $BIG,
			completion_tokens $BIG,
			reasoning_tokens $BIG,
			cached_tokens $BIG,
			cost_usd $REAL,
			tokens_per_second $REAL,
			finish_reason TEXT,
			attempts INTEGER NOT NULL DEFAULT 0,
			next_index INTEGER NOT NULL DEFAULT 0,
			refunded $BOOL NOT NULL DEFAULT FALSE,
			rating INTEGER NOT NULL DEFAULT 0 CHECK (rating IN (-1, 0, 1)),
			ended_at $TS,
			UNIQUE (session_id, position)
		)`,

		`CREATE TABLE IF NOT EXISTS revoked_tokens (
			jti TEXT PRIMARY KEY,
			expires_at $TS NOT NULL
		)`,
		// Purging expired revocations scans by expiry.
		`CREATE INDEX IF NOT EXISTS revoked_tokens_expires_idx ON revoked_tokens (expires_at)`,

		`CREATE TABLE IF NOT EXISTS settings (
			key TEXT PRIMARY KEY,
			value TEXT NOT NULL
		)`,
	}
	for i, s := range stmts {
		stmts[i] = r.Replace(s)
	}
	return stmts
}

// Migrate brings the schema up to date. Several instances may call it at
// once: on PostgreSQL they queue on a session-level advisory lock held on
// a dedicated connection (bun's own lock row fails at once when taken, and
// a crash would leave it behind; an advisory lock dies with its
// connection). On SQLite the file belongs to one process, and the DDL is
// idempotent (IF NOT EXISTS) should two ever race. It then prepares the
// statements every comparison runs (see hotQueries) against the schema as it
// now stands.
func (d *DB) Migrate(ctx context.Context) error {
	if d.dialect == DialectPostgres {
		conn, err := d.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("db: migrate: %w", err)
		}
		defer conn.Close()
		const key = "SELECT pg_advisory_lock(?, hashtext(current_schema()))"
		if _, err := conn.ExecContext(ctx, key, migrationLockKey); err != nil {
			return fmt.Errorf("db: migrate: lock: %w", err)
		}
		defer func() {
			// A fresh context: the unlock must run even if ctx ended; if
			// it fails, closing the connection releases the lock anyway.
			if _, err := conn.ExecContext(context.WithoutCancel(ctx),
				"SELECT pg_advisory_unlock(?, hashtext(current_schema()))", migrationLockKey); err != nil {
				d.log.Warn("db: migrate: unlock", "err", err)
				_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // discard the conn
			}
		}()
	}

	// Applied only once its transaction committed, so a failed migration
	// is retried on the next start rather than recorded as done.
	m := migrate.NewMigrator(d.db, migrations(d.dialect), migrate.WithMarkAppliedOnSuccess(true))
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("db: migrate: init: %w", err)
	}
	group, err := m.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	if !group.IsZero() {
		d.log.Info("db: migrated", "dialect", d.dialect, "group", group.ID, "migrations", group.Migrations.String())
	}
	if err := d.hot.Prepare(ctx, hotQueries...); err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	return nil
}
