package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/playground-dev/playground/app"
	"github.com/playground-dev/playground/config"
)

// inprocServer is Playground built by app.New, as `playground serve`
// builds it, inside this process: for the smoke test, which must run in
// seconds under the race detector, and for profiling, where `playbench
// _serve` runs it pinned like the real binary with a pprof listener
// beside it. The benchmark proper runs the real binary.
type inprocServer struct {
	URL string
	app *app.App
}

// startInproc serves on ln with the settings in getenv.
func startInproc(ctx context.Context, getenv func(string) string, ln net.Listener, logger *slog.Logger) (*inprocServer, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	a, err := app.New(ctx, cfg, app.Options{Logger: logger, Listener: ln})
	if err != nil {
		return nil, err
	}
	a.Start()
	return &inprocServer{URL: "http://" + a.Addr(), app: a}, nil
}

// Close shuts down as serve does, giving running comparisons a second
// rather than serve's drain.
func (s *inprocServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.app.Shutdown(ctx); err != nil {
		return fmt.Errorf("inproc: %w", err)
	}
	return nil
}
