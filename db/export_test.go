package db

import (
	"context"
	"fmt"

	"github.com/uptrace/bun/migrate"
)

// UndoLastMigration takes the schema one migration back, as a database
// written by the previous release has it, so that a test can write rows
// the old way and migrate them forward.
func UndoLastMigration(ctx context.Context, d *DB) error {
	ms := migrations(d.dialect).Sorted()
	last := ms[len(ms)-1]
	m := migrate.NewMigrator(d.db, migrations(d.dialect))
	if err := last.Down(ctx, m, &last); err != nil {
		return fmt.Errorf("undo %s: %w", last.Name, err)
	}
	_, err := d.db.NewDelete().Table("bun_migrations").Where("name = ?", last.Name).Exec(ctx)
	return err
}
