package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/playground-dev/playground/app"
	"github.com/playground-dev/playground/config"
)

// serve runs the server until ctx ends, then shuts down as the contract
// says: stop accepting, let comparisons finish for up to 10 s, save what
// they have, close WebSockets with 1001. ln, when set, is the socket to
// serve on (--listen); without it, app.New takes LISTEN_FDS or PORT.
func serve(ctx context.Context, getenv func(string) string, logger *slog.Logger, ln net.Listener) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, app.Options{Logger: logger, Listener: ln, Getenv: getenv})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
