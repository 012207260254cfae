package db

import "github.com/playground-dev/playground/internal/stmtcache"

// The statements every comparison runs: charging quota, inserting the
// session and its responses, checkpoints, the final rows. They run
// prepared (see stmtcache): as bun's SQL text, with the values written in,
// SQLite parsed and planned every one again, a tenth of the server's CPU
// with many comparisons at once.

// hotQueries are the statements Migrate prepares.
var hotQueries = []string{
	chargeSQL, insertSessionSQL, insertResponseSQL,
	checkpointResponseSQL, appendChunkSQL, checkpointSessionSQL,
	finishResponseSQL, dropChunksSQL, finishSessionSQL,
}

// dbTime and dbTimePtr write times as bun does (see stmtcache.Time).
var (
	dbTime    = stmtcache.Time
	dbTimePtr = stmtcache.TimePtr
)
