package playground

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Plan names. A plan sets how many model runs a user may start per period.
const (
	PlanFree = "free"
	PlanPro  = "pro"
)

// Roles. Admins may change other users' quota.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// QuotaPeriod is the only period plans use: a UTC calendar day.
const QuotaPeriod = "day"

// User is an account. PasswordHash never leaves the server.
type User struct {
	ID               string    `json:"id"`
	Email            string    `json:"email"`
	PasswordHash     string    `json:"-"`
	Plan             string    `json:"plan"`
	Role             string    `json:"role"`
	CreatedAt        time.Time `json:"createdAt"`
	QuotaRemaining   int       `json:"-"`
	QuotaPeriodStart time.Time `json:"-"`
	Quota            Quota     `json:"quota"`
}

// Quota is what a user may still start, as the client sees it.
type Quota struct {
	Remaining int       `json:"remaining"`
	Limit     int       `json:"limit"`
	Period    string    `json:"period"`
	ResetsAt  time.Time `json:"resetsAt"`
}

// Plans holds each plan's limit per period (QUOTA_FREE_PER_DAY, QUOTA_PRO_PER_DAY).
type Plans struct {
	FreePerDay int
	ProPerDay  int
}

// Limit returns the plan's runs per period; an unknown plan gets the free limit.
func (p Plans) Limit(plan string) int {
	if plan == PlanPro {
		return p.ProPerDay
	}
	return p.FreePerDay
}

// ValidPlan reports whether plan names a plan.
func ValidPlan(plan string) bool { return plan == PlanFree || plan == PlanPro }

// PeriodStart is the start of the quota period that contains t: its UTC midnight.
func PeriodStart(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// FillQuota computes u.Quota from the stored counters as of now. A period
// that has turned shows the plan's full limit; the stored row is brought up
// to date lazily by the next charge (UserService.Charge).
func (u *User) FillQuota(plans Plans, now time.Time) {
	limit := plans.Limit(u.Plan)
	cur := PeriodStart(now)
	remaining := u.QuotaRemaining
	if u.QuotaPeriodStart.Before(cur) {
		remaining = limit
	}
	u.Quota = Quota{Remaining: remaining, Limit: limit, Period: QuotaPeriod, ResetsAt: cur.Add(24 * time.Hour)}
}

// NormalizeEmail trims and lower-cases an address and checks that it is a
// plain local@domain address of at most 254 characters.
func NormalizeEmail(s string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(s))
	if e == "" {
		return "", Invalid("email", "Email is required.")
	}
	if utf8.RuneCountInString(e) > 254 {
		return "", Invalid("email", "Email must be at most 254 characters.")
	}
	a, err := mail.ParseAddress(e)
	at := strings.LastIndexByte(e, '@')
	if err != nil || a.Address != e || at < 1 || at == len(e)-1 || strings.ContainsAny(e, " <>") {
		return "", Invalid("email", "Email must be an address like name@example.com.")
	}
	return e, nil
}

// ValidatePassword checks the length rule: 8 to 128 characters.
func ValidatePassword(p string) error {
	n := utf8.RuneCountInString(p)
	if n < 8 || n > 128 {
		return Invalid("password", "Password must be 8 to 128 characters.")
	}
	return nil
}

// UserService stores accounts and their quota.
//
// Not found is a *Error with ENotFound; a duplicate email is EEmailTaken.
type UserService interface {
	CreateUser(ctx context.Context, u *User) error
	FindUserByID(ctx context.Context, id string) (*User, error)
	FindUserByEmail(ctx context.Context, email string) (*User, error)
	// AddQuota adds n runs to the current period's remaining quota (after a
	// lazy period reset) and returns the updated user.
	AddQuota(ctx context.Context, id string, n int) (*User, error)
	// SetPlan changes the plan; remaining is set to the new plan's limit
	// minus what was already used this period (never below 0).
	SetPlan(ctx context.Context, id, plan string) (*User, error)
	SetRole(ctx context.Context, id, role string) (*User, error)
}

// TokenService records revoked access tokens (by jti) until they expire.
type TokenService interface {
	RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error
	// IsTokenRevoked reports whether a token issued to userID may no
	// longer be used: its jti was revoked, or the account is gone.
	IsTokenRevoked(ctx context.Context, jti, userID string) (bool, error)
}

// SettingService keeps small server-wide values, such as the generated
// development JWT secret that every instance must share.
type SettingService interface {
	// EnsureSetting stores value under key unless a value is already there,
	// and returns the stored one.
	EnsureSetting(ctx context.Context, key, value string) (string, error)
}
