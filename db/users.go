package db

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/playground-dev/playground"
)

// userRow is a row of users.
type userRow struct {
	bun.BaseModel `bun:"table:users"`

	ID               string    `bun:"id,pk"`
	Email            string    `bun:"email"`
	PasswordHash     string    `bun:"password_hash"`
	Plan             string    `bun:"plan"`
	Role             string    `bun:"role"`
	QuotaRemaining   int       `bun:"quota_remaining"`
	QuotaPeriodStart time.Time `bun:"quota_period_start"`
	CreatedAt        time.Time `bun:"created_at"`
}

func (d *DB) toUser(r *userRow) *playground.User {
	u := &playground.User{
		ID:               r.ID,
		Email:            r.Email,
		PasswordHash:     r.PasswordHash,
		Plan:             r.Plan,
		Role:             r.Role,
		CreatedAt:        r.CreatedAt.UTC(),
		QuotaRemaining:   r.QuotaRemaining,
		QuotaPeriodStart: r.QuotaPeriodStart.UTC(),
	}
	u.FillQuota(d.plans, d.nowFn())
	return u
}

// CreateUser inserts u. It sets u.ID when empty, u.CreatedAt, and the email
// in lower case; Plan and Role default to free and user. When
// u.QuotaPeriodStart is zero the quota starts full: QuotaRemaining is the
// plan's limit for the current period. A taken email is EEmailTaken.
func (d *DB) CreateUser(ctx context.Context, u *playground.User) error {
	now := d.now()
	if u.ID == "" {
		u.ID = NewID(UserIDPrefix)
	}
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	if u.Plan == "" {
		u.Plan = playground.PlanFree
	}
	if u.Role == "" {
		u.Role = playground.RoleUser
	}
	u.CreatedAt = now
	if u.QuotaPeriodStart.IsZero() {
		u.QuotaPeriodStart = playground.PeriodStart(now)
		u.QuotaRemaining = d.plans.Limit(u.Plan)
	}
	row := &userRow{
		ID:               u.ID,
		Email:            u.Email,
		PasswordHash:     u.PasswordHash,
		Plan:             u.Plan,
		Role:             u.Role,
		QuotaRemaining:   u.QuotaRemaining,
		QuotaPeriodStart: u.QuotaPeriodStart.UTC(),
		CreatedAt:        now,
	}
	if err := d.writing(ctx, func() error {
		_, err := d.db.NewInsert().Model(row).Exec(ctx)
		return err
	}); err != nil {
		if isUniqueViolation(err) {
			return playground.Errorf(playground.EEmailTaken, "This email is already registered.")
		}
		return fail("create user", err)
	}
	u.FillQuota(d.plans, d.nowFn())
	return nil
}

// FindUserByID returns the user with the given id, or ENotFound.
func (d *DB) FindUserByID(ctx context.Context, id string) (*playground.User, error) {
	return d.findUser(ctx, "id = ?", id)
}

// FindUserByEmail returns the user with the given email, whatever its
// case, or ENotFound.
func (d *DB) FindUserByEmail(ctx context.Context, email string) (*playground.User, error) {
	return d.findUser(ctx, "email = ?", strings.ToLower(strings.TrimSpace(email)))
}

func (d *DB) findUser(ctx context.Context, where string, arg any) (*playground.User, error) {
	row, err := findRow[userRow](ctx, d.db, "User", where, arg)
	if err != nil {
		return nil, err
	}
	return d.toUser(row), nil
}

// AddQuota adds n runs (n may be negative; the result never goes below 0)
// to the current period's remaining quota, after the lazy period reset.
func (d *DB) AddQuota(ctx context.Context, id string, n int) (*playground.User, error) {
	period := playground.PeriodStart(d.now())
	eff, effArgs := d.effectiveRemainingSQL(period)
	q := "UPDATE users SET quota_remaining = CASE WHEN " + eff + " + ? < 0 THEN 0 ELSE " + eff + " + ? END," +
		" quota_period_start = ? WHERE id = ? RETURNING *"
	args := append(append(append([]any{}, effArgs...), n), effArgs...)
	args = append(args, n, period, id)
	return d.updateUser(ctx, "add quota", q, args)
}

// SetPlan changes the plan. What was used this period (the old limit minus
// the effective remaining) stays used: remaining becomes the new limit
// minus it, never below 0. One statement, so a concurrent charge is
// either before or after it, never lost.
func (d *DB) SetPlan(ctx context.Context, id, plan string) (*playground.User, error) {
	if !playground.ValidPlan(plan) {
		return nil, playground.Invalid("plan", "Plan must be %q or %q.", playground.PlanFree, playground.PlanPro)
	}
	period := playground.PeriodStart(d.now())
	eff, effArgs := d.effectiveRemainingSQL(period)
	oldLimit, limitArgs := d.planLimitSQL("plan")
	// newRemaining = newLimit - (oldLimit - eff). SET expressions see the
	// row as it was before the update, on both databases.
	remaining := "? - (" + oldLimit + " - " + eff + ")"
	remArgs := append(append([]any{d.plans.Limit(plan)}, limitArgs...), effArgs...)
	q := "UPDATE users SET plan = ?, quota_remaining = CASE WHEN " + remaining + " < 0 THEN 0 ELSE " + remaining + " END," +
		" quota_period_start = ? WHERE id = ? RETURNING *"
	args := append([]any{plan}, remArgs...)
	args = append(args, remArgs...)
	args = append(args, period, id)
	return d.updateUser(ctx, "set plan", q, args)
}

// SetRole changes the user's role (user or admin).
func (d *DB) SetRole(ctx context.Context, id, role string) (*playground.User, error) {
	if role != playground.RoleUser && role != playground.RoleAdmin {
		return nil, playground.Invalid("role", "Role must be %q or %q.", playground.RoleUser, playground.RoleAdmin)
	}
	return d.updateUser(ctx, "set role", "UPDATE users SET role = ? WHERE id = ? RETURNING *", []any{role, id})
}

// updateUser runs an UPDATE ... RETURNING * on one user.
func (d *DB) updateUser(ctx context.Context, op, query string, args []any) (*playground.User, error) {
	row := new(userRow)
	if err := d.writing(ctx, func() error { return d.db.NewRaw(query, args...).Scan(ctx, row) }); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, notFound("User")
		}
		return nil, fail(op, err)
	}
	return d.toUser(row), nil
}
