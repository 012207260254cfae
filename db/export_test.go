package db

import (
	"context"
	"fmt"

	"github.com/uptrace/bun/migrate"
)

// UndoMigrations takes the schema n migrations back, newest first, as a
// database written by an earlier release has it, so that a test can write
// rows the old way and migrate them forward.
func UndoMigrations(ctx context.Context, d *DB, n int) error {
	ms := migrations(d.dialect).Sorted()
	for i := len(ms) - 1; i >= len(ms)-n; i-- {
		last := ms[i]
		m := migrate.NewMigrator(d.db, migrations(d.dialect))
		if err := last.Down(ctx, m, &last); err != nil {
			return fmt.Errorf("undo %s: %w", last.Name, err)
		}
		if _, err := d.db.NewDelete().Table("bun_migrations").Where("name = ?", last.Name).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}
