package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/playground-dev/playground/app"
	"github.com/playground-dev/playground/config"
)

// adjustServe, when set, changes serve's options before the server is
// built. The released program never sets it; the test binary, which the
// browser tests run as `playground serve`, lowers the password hashing
// cost with it (see TestMain).
var adjustServe func(*app.Options)

// serve runs the server until ctx ends, then shuts down as the contract
// says: stop accepting, let comparisons finish for up to 10 s, save what
// they have, close WebSockets with 1001. ln, when set, is the socket to
// serve on (--listen); without it, app.New takes LISTEN_FDS or PORT.
func serve(ctx context.Context, getenv func(string) string, logger *slog.Logger, ln net.Listener) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	opts := app.Options{Logger: logger, Listener: ln, Getenv: getenv}
	if adjustServe != nil {
		adjustServe(&opts)
	}
	a, err := app.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
