package db_test

import (
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
)

var plans = playground.Plans{FreePerDay: 5, ProPerDay: 20}

func TestCreateUser(t *testing.T) {
	forEachDBAt(t, plans, time.Date(2025, 3, 10, 15, 4, 5, 123456789, time.UTC), func(t *testing.T, d *db.DB, clk *clock) {
		u := mustCreateUser(t, d, "  Alice@Example.COM ")
		if u.ID[:2] != "u_" || u.Email != "alice@example.com" || u.Plan != playground.PlanFree || u.Role != playground.RoleUser {
			t.Fatalf("created %+v", u)
		}
		want := playground.Quota{Remaining: 5, Limit: 5, Period: "day", ResetsAt: time.Date(2025, 3, 11, 0, 0, 0, 0, time.UTC)}
		if u.Quota != want {
			t.Fatalf("quota %+v, want %+v", u.Quota, want)
		}

		got, err := d.FindUserByEmail(ctx, "ALICE@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || got.PasswordHash != "hash" || !got.CreatedAt.Equal(u.CreatedAt) || got.Quota != want {
			t.Fatalf("found %+v, want %+v", got, u)
		}
		if got.CreatedAt != u.CreatedAt {
			t.Fatalf("CreatedAt %v != %v", got.CreatedAt, u.CreatedAt)
		}
		if got, err = d.FindUserByID(ctx, u.ID); err != nil || got.Email != u.Email {
			t.Fatalf("by id: %+v, %v", got, err)
		}

		// Unique regardless of case.
		err = d.CreateUser(ctx, &playground.User{Email: "ALICE@example.com", PasswordHash: "x"})
		wantCode(t, err, playground.EEmailTaken)

		_, err = d.FindUserByID(ctx, "u_nope")
		wantCode(t, err, playground.ENotFound)
		_, err = d.FindUserByEmail(ctx, "nobody@example.com")
		wantCode(t, err, playground.ENotFound)
	})
}

func TestAddQuotaSetPlanSetRole(t *testing.T) {
	forEachDBAt(t, plans, time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC), func(t *testing.T, d *db.DB, clk *clock) {
		u := mustCreateUser(t, d, "a@example.com")
		mustCreateSession(t, d, u.ID, "demo/a", "demo/b") // 3 left, 2 used

		got, err := d.AddQuota(ctx, u.ID, 10)
		if err != nil || got.Quota.Remaining != 13 {
			t.Fatalf("add quota: %+v, %v", got, err)
		}
		if got, err = d.AddQuota(ctx, u.ID, -100); err != nil || got.Quota.Remaining != 0 {
			t.Fatalf("add -100: %+v, %v", got, err)
		}
		if got, err = d.AddQuota(ctx, u.ID, 3); err != nil || got.Quota.Remaining != 3 {
			t.Fatalf("add 3: %+v, %v", got, err)
		}
		// Used this period: 5 - 3 = 2; pro gives 20 - 2.
		if got, err = d.SetPlan(ctx, u.ID, playground.PlanPro); err != nil || got.Plan != "pro" || got.Quota.Remaining != 18 || got.Quota.Limit != 20 {
			t.Fatalf("set plan pro: %+v, %v", got, err)
		}
		mustCreateSession(t, d, u.ID, "demo/a", "demo/b", "demo/c", "demo/d", "demo/e", "demo/f") // used 8
		if got, err = d.SetPlan(ctx, u.ID, playground.PlanFree); err != nil || got.Quota.Remaining != 0 {
			t.Fatalf("set plan free (used 8 > 5): %+v, %v", got, err)
		}
		_, err = d.SetPlan(ctx, u.ID, "gold")
		wantCode(t, err, playground.EInvalid)

		// Next day: AddQuota starts from the full limit.
		clk.Add(24 * time.Hour)
		if got, err = d.AddQuota(ctx, u.ID, 1); err != nil || got.Quota.Remaining != 6 {
			t.Fatalf("add after period turned: %+v, %v", got, err)
		}
		// SetPlan after the turn: nothing used yet beyond the bonus.
		if got, err = d.SetPlan(ctx, u.ID, playground.PlanPro); err != nil || got.Quota.Remaining != 21 {
			t.Fatalf("set plan pro next day: %+v, %v", got, err)
		}

		if got, err = d.SetRole(ctx, u.ID, playground.RoleAdmin); err != nil || got.Role != "admin" {
			t.Fatalf("set role: %+v, %v", got, err)
		}
		_, err = d.SetRole(ctx, u.ID, "root")
		wantCode(t, err, playground.EInvalid)

		_, err = d.AddQuota(ctx, "u_nope", 1)
		wantCode(t, err, playground.ENotFound)
		_, err = d.SetPlan(ctx, "u_nope", "pro")
		wantCode(t, err, playground.ENotFound)
		_, err = d.SetRole(ctx, "u_nope", "admin")
		wantCode(t, err, playground.ENotFound)
	})
}
