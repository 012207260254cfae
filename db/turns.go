package db

import (
	"context"
	"errors"
	"time"

	"github.com/uptrace/bun"
)

// writeTurns queues this instance's writes to an SQLite file, first come
// first served. SQLite takes one writer at a time, and its busy timeout
// does not queue the others: each polls for the lock, sleeping up to
// 100 ms between tries, so a writer that has just committed takes the
// lock again at once while one that sleeps keeps missing it. With seven
// comparisons checkpointing, a person starting an eighth waited behind
// hundreds of checkpoints, and under load past the busy timeout ("database
// is locked"). Here a write waits for the ones that asked before it: the
// channel's one slot is handed to the sender that has waited longest.
//
// The busy timeout still covers other processes writing to the same file.
// DB.turns is nil on PostgreSQL, whose writers lock only the rows they
// change.
type writeTurns struct {
	slot chan struct{}
	wait time.Duration // at most, for a turn: the busy timeout
}

func newWriteTurns() *writeTurns {
	return &writeTurns{slot: make(chan struct{}, 1), wait: sqliteBusyTimeout}
}

// errNoTurn is a write that waited the busy timeout for its turn: the
// database is unavailable to it, as "database is locked" would have said.
var errNoTurn = errors.New("no turn to write within the busy timeout: the database is busy")

// take waits for the turn, at most w.wait and while ctx lasts.
func (w *writeTurns) take(ctx context.Context) error {
	if w == nil {
		return nil
	}
	select {
	case w.slot <- struct{}{}:
		return nil
	default:
	}
	wait := time.NewTimer(w.wait)
	defer wait.Stop()
	select {
	case w.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-wait.C:
		return errNoTurn
	}
}

// give hands the turn to the next write.
func (w *writeTurns) give() {
	if w != nil {
		<-w.slot
	}
}

// inTx runs fn in a transaction, in this instance's turn to write.
func (d *DB) inTx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if err := d.turns.take(ctx); err != nil {
		return err
	}
	defer d.turns.give()
	return d.db.RunInTx(ctx, nil, fn)
}

// writing runs fn, writes outside a transaction, in this instance's turn
// to write.
func (d *DB) writing(ctx context.Context, fn func() error) error {
	if err := d.turns.take(ctx); err != nil {
		return err
	}
	defer d.turns.give()
	return fn()
}
