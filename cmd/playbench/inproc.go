package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/playground-dev/playground/actors"
	"github.com/playground-dev/playground/api"
	"github.com/playground-dev/playground/config"
	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/hub"
	"github.com/playground-dev/playground/providers"
)

// inprocServer is Playground wired the way `playground serve` wires it
// with one instance (no Redis), inside this process: for the smoke test,
// which must run in seconds under the race detector, and for profiling,
// where `playbench _serve` runs it pinned like the real binary with a
// pprof listener beside it. The benchmark proper runs the real binary.
type inprocServer struct {
	URL    string
	srv    *http.Server
	engine *actors.Engine
	api    *api.Server
	hub    *hub.Hub
	reg    *providers.Registry
	db     *db.DB
	served chan error
}

// startInproc serves on ln with the settings in getenv.
func startInproc(ctx context.Context, getenv func(string) string, ln net.Listener, logger *slog.Logger) (*inprocServer, error) {
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	d, err := db.Open(ctx, cfg.DatabaseURL, db.Options{Plans: cfg.Plans, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	s := &inprocServer{db: d, served: make(chan error, 1)}
	breakers := actors.NewBreakers(cfg.BreakerFailures, cfg.BreakerCooldown, nil)
	if s.reg, err = providers.NewRegistry(cfg, providers.RegistryOptions{Logger: logger, Cooling: breakers.Cooling}); err != nil {
		d.Close()
		return nil, err
	}
	policy := actors.DefaultPolicy()
	policy.FirstByte, policy.Idle, policy.Total = cfg.FirstByteTimeout, cfg.IdleTimeout, cfg.TotalTimeout
	s.hub = hub.New(hub.Options{Store: d.Sessions(), Logger: logger})
	s.engine = actors.New(actors.Options{Store: d.Sessions(), Breakers: breakers, Policy: policy, Logger: logger,
		Hub: s.hub, Catalog: s.reg})
	s.api = api.New(api.Options{
		Users: d.Users(), Sessions: d.Sessions(), Tokens: d.Tokens(), Logger: logger,
		JWTSecret: []byte(rand.Text() + rand.Text()), JWTTTL: cfg.JWTTTL, RegisterPerHour: cfg.RegisterPerHour,
		Plans: cfg.Plans, Ready: d.Ping, Catalog: s.reg, Runner: s.engine, Hub: s.hub,
		Revoked:  func(_ context.Context, jti string, _ time.Time) { s.hub.RevokeToken(jti) },
		MaxConns: cfg.MaxConns, MaxConnsPerAddress: cfg.MaxConnsPerAddress, WSSubscribeTimeout: cfg.WSSubscribeTimeout,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout, BodyTimeout: cfg.BodyTimeout, IdleTimeout: cfg.HTTPIdleTimeout,
	})
	s.URL = "http://" + ln.Addr().String()
	s.srv, ln = s.api.HTTPServer(ln)
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// Close shuts down as serve does, without the drain wait.
func (s *inprocServer) Close() error {
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.srv.Shutdown(ctx)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.engine.Shutdown(ctx)
	s.api.CloseLive()
	err := <-shut
	if e := <-s.served; !errors.Is(e, http.ErrServerClosed) && e != nil {
		err = errors.Join(err, e)
	}
	s.hub.Close()
	s.reg.Close()
	s.db.Close()
	if err != nil {
		return fmt.Errorf("inproc: %w", err)
	}
	return nil
}
