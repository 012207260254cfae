package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/actors"
	"github.com/playground-dev/playground/api"
	"github.com/playground-dev/playground/auth"
	"github.com/playground-dev/playground/config"
	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/hub"
	"github.com/playground-dev/playground/hub/redishub"
	"github.com/playground-dev/playground/internal/listenfd"
	"github.com/playground-dev/playground/providers"
)

// drainTimeout is how long running comparisons may go on after a shutdown
// signal before what they have is saved as interrupted.
const drainTimeout = 10 * time.Second

// serveHooks let tests start the real server on a listener of their own
// and reach its parts; serve itself leaves both empty.
type serveHooks struct {
	Listener net.Listener
	// Configure adjusts the wiring before the server starts.
	Configure func(*app)
	// Started is called once the server accepts connections.
	Started func(*app)
}

// app is the wired server: every long-lived part, so that shutdown can
// stop them in order.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	db       *db.DB
	registry *providers.Registry
	breakers *actors.Breakers
	hub      *hub.Hub
	engine   *actors.Engine
	api      *api.Server
	apiOpts  api.Options
	engOpts  actors.Options
	regOpts  providers.RegistryOptions
	addr     string

	// With REDIS_URL: the client, the broker, this instance's name and the
	// lease of its sessions.
	rdb         redis.UniversalClient
	broker      *redishub.Broker
	redisPrefix string
	instance    string
	lease       time.Duration
}

func (a *app) redisPrefixOrDefault() string {
	if a.redisPrefix == "" {
		return "playground:"
	}
	return a.redisPrefix
}

// connectRedis opens REDIS_URL, read as REDIS_MODE says (one node, a
// cluster or a master behind sentinels), and starts the broker.
func (a *app) connectRedis(ctx context.Context) error {
	open, err := a.cfg.RedisClient()
	if err != nil {
		return err
	}
	a.rdb = open()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.rdb.Ping(pctx).Err(); err != nil {
		a.rdb.Close()
		return fmt.Errorf("redis at REDIS_URL does not answer: %w", err)
	}
	if a.instance == "" {
		a.instance = rand.Text()[:12]
	}
	if a.lease <= 0 {
		a.lease = 10 * time.Second
	}
	a.broker = redishub.NewBroker(redishub.Options{Client: a.rdb, Prefix: a.redisPrefix, Instance: a.instance,
		Store: a.db.Sessions(), Logger: a.log, Lease: a.lease})
	return nil
}

func openDB(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*db.DB, error) {
	url := cfg.DatabaseURL
	if url == "" {
		url = "playground.db"
	}
	d, err := db.Open(ctx, url, db.Options{Plans: cfg.Plans, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// jwtSecret returns JWT_SECRET, or in development the secret generated
// once and kept in the database, so every instance shares it.
func jwtSecret(ctx context.Context, cfg *config.Config, settings playground.SettingService) ([]byte, error) {
	if len(cfg.JWTSecret) > 0 {
		return cfg.JWTSecret, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	v, err := settings.EnsureSetting(ctx, "jwt_secret", hex.EncodeToString(b))
	if err != nil {
		return nil, fmt.Errorf("keep the development JWT secret: %w", err)
	}
	return []byte(v), nil
}

// serve runs the server until ctx ends, then shuts down as the contract
// says: stop accepting, let comparisons finish for up to 10 s, save what
// they have, close WebSockets with 1001.
func serve(ctx context.Context, getenv func(string) string, logger *slog.Logger, hooks serveHooks) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	a := &app{cfg: cfg, log: logger}
	if a.db, err = openDB(ctx, cfg, logger); err != nil {
		return err
	}
	defer a.db.Close()
	secret, err := jwtSecret(ctx, cfg, a.db.Settings())
	if err != nil {
		return err
	}

	a.breakers = actors.NewBreakers(cfg.BreakerFailures, cfg.BreakerCooldown, nil)
	a.regOpts = providers.RegistryOptions{Logger: logger, Cooling: a.breakers.Cooling}
	policy := actors.DefaultPolicy()
	policy.FirstByte, policy.Idle, policy.Total = cfg.FirstByteTimeout, cfg.IdleTimeout, cfg.TotalTimeout
	a.engOpts = actors.Options{Store: a.db.Sessions(), Breakers: a.breakers, Policy: policy, Logger: logger}
	a.apiOpts = api.Options{
		Users: a.db.Users(), Sessions: a.db.Sessions(), Votes: a.db.Votes(), Tokens: a.db.Tokens(), Logger: logger,
		JWTSecret: secret, JWTTTL: cfg.JWTTTL, Production: cfg.Production(), FrontendURL: cfg.FrontendURL,
		TrustedProxies: cfg.TrustedProxies, RegisterPerHour: cfg.RegisterPerHour, Plans: cfg.Plans,
		Ready:    a.db.Ping,
		MaxConns: connCap(cfg.MaxConns, raiseFileLimit(), logger), MaxConnsPerAddress: cfg.MaxConnsPerAddress,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout, BodyTimeout: cfg.BodyTimeout, IdleTimeout: cfg.HTTPIdleTimeout,
		WSSubscribeTimeout: cfg.WSSubscribeTimeout,
	}
	if hooks.Configure != nil {
		hooks.Configure(a)
	}

	if a.registry, err = providers.NewRegistry(cfg, a.regOpts); err != nil {
		return err
	}
	defer a.registry.Close()
	hubOpts := hub.Options{Store: a.db.Sessions(), Logger: logger}
	if cfg.RedisURL != "" {
		if err := a.connectRedis(ctx); err != nil {
			return err
		}
		defer a.rdb.Close()
		defer a.broker.Close()
		hubOpts.Broker = a.broker
	}
	a.hub = hub.New(hubOpts)
	defer a.hub.Close()
	a.engOpts.Hub, a.engOpts.Catalog = a.hub, a.registry
	if a.broker != nil {
		a.engOpts.Publisher, a.engOpts.Remote, a.engOpts.Viewers, a.engOpts.Tail = a.broker, a.broker, a.broker.Viewers, a.broker.Tail
	}
	a.engine = actors.New(a.engOpts)
	if a.broker != nil {
		a.broker.SetControl(redishub.Control{
			Cancel: a.engine.CancelLocal, Revoke: a.hub.RevokeToken, Presence: a.engine.PresenceChanged,
			Unshare: func(sid, token string) {
				a.engine.UnshareLocal(sid, token)
				a.hub.CutFollowers(sid, token)
			},
			Next:   a.hub.DeliverNext,
			Reveal: a.hub.DeliverReveal,
		})
	}

	// A session still marked running whose server is gone is ended as
	// interrupted: with one instance, all of them at start-up; with Redis,
	// those whose owner's lease has expired, now and whenever one is noticed.
	orphan := func(context.Context, *playground.Session) bool { return true }
	if a.broker != nil {
		orphan = func(ctx context.Context, s *playground.Session) bool {
			return !a.broker.OwnerAlive(ctx, s.ID) && a.broker.ClaimRecovery(ctx, s.ID)
		}
	}
	if n, err := a.engine.Recover(ctx, orphan); err != nil {
		return err
	} else if n > 0 {
		logger.Info("ended sessions interrupted by a lost server", "sessions", n)
	}
	if a.broker != nil {
		a.engine.Watch(a.lease/2, orphan)
	}

	a.apiOpts.Catalog, a.apiOpts.Runner, a.apiOpts.Hub = a.registry, a.engine, a.hub
	a.apiOpts.Revoked = func(_ context.Context, jti string, _ time.Time) { a.hub.RevokeToken(jti) }
	if a.broker != nil {
		a.apiOpts.Revoked = func(ctx context.Context, jti string, _ time.Time) {
			if err := a.broker.Revoke(ctx, jti); err != nil {
				logger.Warn("publish a logout to the other instances", "err", err)
			}
		}
		tokens := auth.NewRedisTokens(a.db.Tokens(), a.rdb, a.redisPrefixOrDefault(), logger)
		defer tokens.Close()
		a.apiOpts.Tokens = tokens
		a.apiOpts.NewLimiter = func(name string, limit int, window time.Duration) auth.Limiter {
			return auth.NewRedisLimiter(a.rdb, a.redisPrefixOrDefault()+"limit:"+name+":", limit, window)
		}
		a.apiOpts.Ready = func(ctx context.Context) error {
			if err := a.db.Ping(ctx); err != nil {
				return err
			}
			return a.broker.Ping(ctx)
		}
	}
	a.api = api.New(a.apiOpts)

	ln, err := listener(getenv, cfg.Port, hooks.Listener)
	if err != nil {
		return err
	}
	a.addr = ln.Addr().String()
	srv, ln := a.api.HTTPServer(ln)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("playground is serving", "url", "http://"+displayAddr(a.addr), "database", a.db.Dialect())
	if hooks.Started != nil {
		hooks.Started(a)
	}

	select {
	case err := <-served:
		a.engine.Shutdown(ctx)
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: letting running comparisons finish", "for", drainTimeout)
	// Stop accepting now; Shutdown returns once the last plain request and
	// SSE stream are over, which CloseLive below brings about.
	shutdownDone := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), drainTimeout+5*time.Second)
		defer cancel()
		shutdownDone <- srv.Shutdown(sctx)
	}()
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	a.engine.Shutdown(dctx)
	a.api.CloseLive()
	if err := <-shutdownDone; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// listener is the socket serve answers on: a test's own, else one
// inherited from the parent process (LISTEN_FDS, as systemd's socket
// activation passes it, and as the tests and playbench start the binary),
// else PORT on every address.
func listener(getenv func(string) string, port int, own net.Listener) (net.Listener, error) {
	if own != nil {
		return own, nil
	}
	lns, err := listenfd.Inherited(getenv)
	if err != nil {
		return nil, err
	}
	switch len(lns) {
	case 0:
		return net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
	case 1:
		return lns[0], nil
	}
	for _, l := range lns {
		l.Close()
	}
	return nil, fmt.Errorf("LISTEN_FDS: %d sockets passed, serve takes one", len(lns))
}

// fdReserve is the descriptors kept for what is not a client connection:
// the database and Redis pools, the log, files.
const fdReserve = 256

// connCap is MAX_CONNECTIONS, lowered to fit the process's limit on open
// files (fdLimit, 0 when unknown): past that limit accept fails, and the
// server could answer no one, its health checks included.
func connCap(want int, fdLimit uint64, logger *slog.Logger) int {
	if fdLimit == 0 || uint64(want)+fdReserve <= fdLimit {
		return want
	}
	capped := max(int(fdLimit)-fdReserve, 1)
	logger.Warn("MAX_CONNECTIONS lowered to fit the open-file limit", "MAX_CONNECTIONS", want, "limit", fdLimit, "now", capped)
	return capped
}

// displayAddr turns a listen address such as [::]:8080 into one a person
// can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "::" || host == "0.0.0.0" {
		return "localhost:" + port
	}
	return addr
}
