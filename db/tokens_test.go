package db_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/playground-dev/playground/db"
)

func fmtAny(vs ...any) string { return fmt.Sprint(vs...) }

func TestRevokedTokens(t *testing.T) {
	forEachDBAt(t, plans, time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC), func(t *testing.T, d *db.DB, clk *clock) {
		now := clk.Now()
		u := mustCreateUser(t, d, "tokens@example.com")
		revoked := func(jti string) bool {
			t.Helper()
			ok, err := d.IsTokenRevoked(ctx, jti, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if revoked("a") {
			t.Fatal("unknown jti reported revoked")
		}
		// A token of an account that is gone may not be used.
		if gone, err := d.IsTokenRevoked(ctx, "a", "u_gone"); err != nil || !gone {
			t.Fatalf("token of a deleted account: revoked %v, %v", gone, err)
		}
		if err := d.RevokeToken(ctx, "a", now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := d.RevokeToken(ctx, "b", now.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		// Revoking again is an upsert (and never shortens the revocation).
		if err := d.RevokeToken(ctx, "a", now.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := d.RevokeToken(ctx, "b", now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if !revoked("a") || !revoked("b") {
			t.Fatal("revoked tokens not reported")
		}

		clk.Add(150 * time.Minute) // b has expired, a has not
		if !revoked("a") || revoked("b") {
			t.Fatalf("after 2.5h: a=%v b=%v, want true false", revoked("a"), revoked("b"))
		}
		// The next revocation purges b.
		if err := d.RevokeToken(ctx, "c", clk.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := d.Bun().QueryRowContext(ctx, "SELECT count(*) FROM revoked_tokens").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Fatalf("%d rows after purge, want 2 (a, c)", n)
		}
	})
}

func TestEnsureSetting_Race(t *testing.T) {
	forEachDB(t, db.Options{}, func(t *testing.T, d *db.DB) {
		const n = 10
		got := make([]string, n)
		errs := make([]error, n)
		together(n, func(i int) { got[i], errs[i] = d.EnsureSetting(ctx, "jwt_secret", fmt.Sprintf("secret-%d", i)) })
		for i := range n {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if got[i] != got[0] {
				t.Fatalf("instances disagree: %q vs %q", got[i], got[0])
			}
		}
		again, err := d.EnsureSetting(ctx, "jwt_secret", "other")
		if err != nil || again != got[0] {
			t.Fatalf("second ensure: %q, %v; want %q", again, err, got[0])
		}
		other, err := d.EnsureSetting(ctx, "other_key", "v")
		if err != nil || other != "v" {
			t.Fatalf("other key: %q, %v", other, err)
		}
	})
}
