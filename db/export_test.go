package db

import (
	"context"
	"fmt"

	"github.com/uptrace/bun/migrate"
)

// UndoMigrationsFrom takes the schema back to before the migration named
// from, newest first, as a database written by an older release has it,
// so that a test can write rows the old way and migrate them forward.
func UndoMigrationsFrom(ctx context.Context, d *DB, from string) error {
	ms := migrations(d.dialect).Sorted()
	m := migrate.NewMigrator(d.db, migrations(d.dialect))
	for i := len(ms) - 1; i >= 0 && ms[i].Name >= from; i-- {
		mig := ms[i]
		if err := mig.Down(ctx, m, &mig); err != nil {
			return fmt.Errorf("undo %s: %w", mig.Name, err)
		}
		if _, err := d.db.NewDelete().Table("bun_migrations").Where("name = ?", mig.Name).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}
