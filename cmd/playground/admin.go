package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/api"
	"github.com/playground-dev/playground/app"
	"github.com/playground-dev/playground/config"
	"github.com/playground-dev/playground/db"
)

// withDB loads the settings and opens the migrated database for a
// one-shot command.
func withDB(ctx context.Context, getenv func(string) string, logger *slog.Logger, fn func(*config.Config, *db.DB) error) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	d, err := app.OpenDB(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(cfg, d)
}

func migrateCmd(ctx context.Context, getenv func(string) string, logger *slog.Logger, out io.Writer) error {
	return withDB(ctx, getenv, logger, func(_ *config.Config, d *db.DB) error {
		fmt.Fprintf(out, "database schema is up to date (%s)\n", d.Dialect())
		return nil
	})
}

const seedEmail = "demo@example.com"

// seedCmd creates the demo user on the pro plan with a fresh password and
// prints it; run again, it says the user exists.
func seedCmd(ctx context.Context, getenv func(string) string, logger *slog.Logger, out io.Writer) error {
	return withDB(ctx, getenv, logger, func(cfg *config.Config, d *db.DB) error {
		if _, err := d.Users().FindUserByEmail(ctx, seedEmail); err == nil {
			fmt.Fprintf(out, "%s already exists (use `playground quota` to change its plan)\n", seedEmail)
			return nil
		} else if playground.ErrorCode(err) != playground.ENotFound {
			return err
		}
		password := rand.Text()[:16]
		hash, err := api.HashPassword(password)
		if err != nil {
			return err
		}
		u := &playground.User{Email: seedEmail, PasswordHash: hash, Plan: playground.PlanPro, Role: playground.RoleUser}
		if err := d.Users().CreateUser(ctx, u); err != nil {
			return err
		}
		u.FillQuota(cfg.Plans, time.Now())
		fmt.Fprintf(out, "created %s on the pro plan (%d runs a day)\npassword: %s\n", seedEmail, u.Quota.Limit, password)
		return nil
	})
}

// findUser looks a user up by email for the admin commands.
func findUser(ctx context.Context, d *db.DB, email string) (*playground.User, error) {
	e, err := playground.NormalizeEmail(email)
	if err != nil {
		return nil, fmt.Errorf("--email: %s", playground.ErrorMessage(err))
	}
	u, err := d.Users().FindUserByEmail(ctx, e)
	if playground.ErrorCode(err) == playground.ENotFound {
		return nil, fmt.Errorf("no user with email %s", e)
	}
	return u, err
}

func quotaCmd(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger, out io.Writer) error {
	var email, plan string
	var add int
	if err := flags("quota", args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email")
		fs.IntVar(&add, "add", 0, "runs to add to the current period")
		fs.StringVar(&plan, "plan", "", "the plan to move the user to (free or pro)")
	}); err != nil {
		return err
	}
	if email == "" || (add == 0) == (plan == "") || add < 0 {
		return errors.New("quota: give --email and exactly one of --add N (N ≥ 1) or --plan P\n" + usage)
	}
	if plan != "" && !playground.ValidPlan(plan) {
		return fmt.Errorf("quota: --plan must be free or pro, got %q", plan)
	}
	return withDB(ctx, getenv, logger, func(cfg *config.Config, d *db.DB) error {
		u, err := findUser(ctx, d, email)
		if err != nil {
			return err
		}
		if add > 0 {
			u, err = d.Users().AddQuota(ctx, u.ID, add)
		} else {
			u, err = d.Users().SetPlan(ctx, u.ID, plan)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: plan %s, %d of %d runs left until %s\n", u.Email, u.Plan, u.Quota.Remaining, u.Quota.Limit, u.Quota.ResetsAt.Format(time.RFC3339))
		return nil
	})
}

func userCmd(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger, out io.Writer) error {
	var email, role string
	if err := flags("user", args, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email")
		fs.StringVar(&role, "role", "", "the role to give (admin or user)")
	}); err != nil {
		return err
	}
	if email == "" || (role != playground.RoleAdmin && role != playground.RoleUser) {
		return errors.New("user: give --email E and --role admin (or user)\n" + usage)
	}
	return withDB(ctx, getenv, logger, func(_ *config.Config, d *db.DB) error {
		u, err := findUser(ctx, d, email)
		if err != nil {
			return err
		}
		if u, err = d.Users().SetRole(ctx, u.ID, role); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s now has the role %s\n", u.Email, u.Role)
		return nil
	})
}
