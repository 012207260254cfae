// Package app wires Playground's parts into one server: the database, the
// providers, the engine that runs comparisons, the hub of viewers, Redis
// when REDIS_URL is set, and the HTTP API. `playground serve`, playbench
// and the end-to-end and browser tests all build the server here, so there
// is one wiring and one shutdown.
//
// New builds and listens, Start accepts connections, Shutdown stops in
// order; Run is the three for a command that serves until it is told to
// stop. Every goroutine the server starts is ended by Shutdown.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
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

// DrainTimeout is how long Run lets running comparisons go on after it is
// told to stop; what they have then is saved as interrupted.
const DrainTimeout = 10 * time.Second

// Options are what a caller gives New besides the settings.
type Options struct {
	// Logger receives the server's log (nil: nothing is logged).
	Logger *slog.Logger
	// Listener is the socket to serve on. Without one, New takes the one
	// the parent process passed (LISTEN_FDS, as systemd's socket
	// activation, the tests and playbench pass it), else listens on PORT
	// on every address.
	Listener net.Listener
	// Getenv reads LISTEN_FDS and LISTEN_PID (nil: os.Getenv).
	Getenv func(string) string
	// Instance names this instance among those sharing Redis (random
	// when empty).
	Instance string
	// API and Engine, when set, change the HTTP layer's and the engine's
	// options just before those are built: tests shorten queues, write
	// timeouts, heartbeats and retry delays with them.
	API    func(*api.Options)
	Engine func(*actors.Options)
}

// App is the wired server. Its exported parts are for the tests and tools
// that start it in their own process; they are the server's own, not
// copies.
type App struct {
	Config   *config.Config
	DB       *db.DB
	Registry *providers.Registry
	Hub      *hub.Hub
	Engine   *actors.Engine
	API      *api.Server
	// Broker is the Redis fan-out across instances, nil without REDIS_URL;
	// Instance is this instance's name in it.
	Broker   *redishub.Broker
	Instance string

	log    *slog.Logger
	ln     net.Listener
	addr   string
	srv    *http.Server
	closer []func() // what New opened, closed in reverse order by Shutdown

	startOnce sync.Once
	started   bool
	served    chan struct{} // closed when the serving goroutine has returned
	serveErr  error         // why, when it was not Shutdown

	shutOnce sync.Once
	shutErr  error
}

// New opens the database (migrating it), the providers and Redis, builds
// the engine, the hub and the API, ends the sessions a lost server left
// running, and takes its socket, but accepts no connection until Start.
// On an error everything it opened is closed again.
func New(ctx context.Context, cfg *config.Config, opts Options) (*App, error) {
	a := &App{Config: cfg, log: opts.Logger, Instance: opts.Instance, served: make(chan struct{})}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if err := a.build(ctx, opts); err != nil {
		a.closeParts()
		return nil, err
	}
	return a, nil
}

// onClose registers what Shutdown (or a failed New) closes, in reverse
// order of registration.
func (a *App) onClose(f func()) { a.closer = append(a.closer, f) }

func (a *App) closeParts() {
	for i := len(a.closer) - 1; i >= 0; i-- {
		a.closer[i]()
	}
	a.closer = nil
}

func (a *App) build(ctx context.Context, opts Options) error {
	cfg, logger := a.Config, a.log
	// The socket first: a port that is taken fails at once, before any
	// migration or connection.
	ln, err := listen(opts.Getenv, cfg.Port, opts.Listener)
	if err != nil {
		return err
	}
	a.ln, a.addr = ln, ln.Addr().String()
	a.onClose(func() { a.ln.Close() })

	if a.DB, err = OpenDB(ctx, cfg, logger); err != nil {
		return err
	}
	a.onClose(func() { a.DB.Close() })
	secret, err := jwtSecret(ctx, cfg, a.DB.Settings())
	if err != nil {
		return err
	}

	breakers := actors.NewBreakers(cfg.BreakerFailures, cfg.BreakerCooldown, nil)
	if a.Registry, err = providers.NewRegistry(cfg, providers.RegistryOptions{Logger: logger, Cooling: breakers.Cooling}); err != nil {
		return err
	}
	a.onClose(func() { a.Registry.Close() })

	var rdb redis.UniversalClient
	hubOpts := hub.Options{Store: a.DB.Sessions(), Logger: logger}
	if cfg.RedisURL != "" {
		if rdb, err = connectRedis(ctx, cfg); err != nil {
			return err
		}
		a.onClose(func() { rdb.Close() })
		if a.Instance == "" {
			a.Instance = rand.Text()[:12]
		}
		a.Broker = redishub.NewBroker(redishub.Options{Client: rdb, Prefix: cfg.RedisPrefix, Instance: a.Instance,
			Store: a.DB.Sessions(), Logger: logger, Lease: cfg.RedisLease})
		a.onClose(func() { a.Broker.Close() })
		hubOpts.Broker = a.Broker
	}
	a.Hub = hub.New(hubOpts)
	a.onClose(func() { a.Hub.Close() })

	policy := actors.DefaultPolicy()
	policy.FirstByte, policy.Idle, policy.Total = cfg.FirstByteTimeout, cfg.IdleTimeout, cfg.TotalTimeout
	engOpts := actors.Options{Store: a.DB.Sessions(), Breakers: breakers, Policy: policy, Logger: logger,
		Hub: a.Hub, Catalog: a.Registry}
	if a.Broker != nil {
		engOpts.Publisher, engOpts.Remote, engOpts.Viewers, engOpts.Tail = a.Broker, a.Broker, a.Broker.Viewers, a.Broker.Tail
	}
	if opts.Engine != nil {
		opts.Engine(&engOpts)
	}
	a.Engine = actors.New(engOpts)
	// Until Start, nothing runs on the engine; Shutdown stops it either way.
	a.onClose(func() { a.Engine.Shutdown(context.Background()) })
	// Every request's check of its token against the revocations, answered
	// from memory for a token seen lately (auth.RevocationCacheTTL); a
	// logout here or announced by another instance ends that at once.
	tokens := auth.NewTokenCache(a.DB.Tokens(), 0, nil)
	if a.Broker != nil {
		a.Broker.SetControl(redishub.Control{
			Cancel: a.Engine.CancelLocal, Presence: a.Engine.PresenceChanged,
			Revoke: func(jti string) {
				tokens.Forget(jti)
				a.Hub.RevokeToken(jti)
			},
			Unshare: func(sid, token string) {
				a.Engine.UnshareLocal(sid, token)
				a.Hub.CutFollowers(sid, token)
			},
			Next:   a.Hub.DeliverNext,
			Reveal: a.Hub.DeliverReveal,
		})
	}

	// A session still marked running whose server is gone is ended as
	// interrupted: with one instance, all of them at start-up; with Redis,
	// those whose owner's lease has expired, now and whenever one is noticed.
	orphan := func(context.Context, *playground.Session) bool { return true }
	if a.Broker != nil {
		orphan = func(ctx context.Context, s *playground.Session) bool {
			return !a.Broker.OwnerAlive(ctx, s.ID) && a.Broker.ClaimRecovery(ctx, s.ID)
		}
	}
	if n, err := a.Engine.Recover(ctx, orphan); err != nil {
		return err
	} else if n > 0 {
		logger.Info("ended sessions interrupted by a lost server", "sessions", n)
	}
	if a.Broker != nil {
		a.Engine.Watch(cfg.RedisLease/2, orphan)
	}

	apiOpts := api.Options{
		Users: a.DB.Users(), Sessions: a.DB.Sessions(), Votes: a.DB.Votes(), Tokens: tokens, Logger: logger,
		Catalog: a.Registry, Runner: a.Engine, Hub: a.Hub,
		JWTSecret: secret, JWTTTL: cfg.JWTTTL, Production: cfg.Production(), FrontendURL: cfg.FrontendURL,
		TrustedProxies: cfg.TrustedProxies, RegisterPerHour: cfg.RegisterPerHour, Plans: cfg.Plans,
		Ready:    a.DB.Ping,
		MaxConns: connCap(cfg.MaxConns, raiseFileLimit(), logger), MaxConnsPerAddress: cfg.MaxConnsPerAddress,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout, BodyTimeout: cfg.BodyTimeout, IdleTimeout: cfg.HTTPIdleTimeout,
		WSSubscribeTimeout: cfg.WSSubscribeTimeout,
		Revoked:            func(_ context.Context, jti string, _ time.Time) { a.Hub.RevokeToken(jti) },
	}
	if a.Broker != nil {
		apiOpts.Revoked = func(ctx context.Context, jti string, _ time.Time) {
			if err := a.Broker.Revoke(ctx, jti); err != nil {
				logger.Warn("publish a logout to the other instances", "err", err)
			}
		}
		shared := auth.NewRedisTokens(tokens, rdb, cfg.RedisPrefix, logger)
		a.onClose(shared.Close)
		apiOpts.Tokens = shared
		apiOpts.NewLimiter = func(name string, limit int, window time.Duration) auth.Limiter {
			return auth.NewRedisLimiter(rdb, cfg.RedisPrefix+"limit:"+name+":", limit, window)
		}
		apiOpts.Ready = func(ctx context.Context) error {
			if err := a.DB.Ping(ctx); err != nil {
				return err
			}
			return a.Broker.Ping(ctx)
		}
	}
	if opts.API != nil {
		opts.API(&apiOpts)
	}
	a.API = api.New(apiOpts)
	return nil
}

// OpenDB opens the database cfg names and brings its schema up to date:
// for serve, and for the one-shot commands (migrate, seed, quota, user).
func OpenDB(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*db.DB, error) {
	d, err := db.Open(ctx, cfg.DatabaseURL, db.Options{Plans: cfg.Plans, Logger: logger})
	if err != nil {
		return nil, err
	}
	if err := d.Migrate(ctx); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// connectRedis opens REDIS_URL, read as REDIS_MODE says (one node, a
// cluster or a master behind sentinels), and checks that it answers.
func connectRedis(ctx context.Context, cfg *config.Config) (redis.UniversalClient, error) {
	open, err := cfg.RedisClient()
	if err != nil {
		return nil, err
	}
	rdb := open()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis at REDIS_URL does not answer: %w", err)
	}
	return rdb, nil
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

// Addr is the address the server listens on (host:port).
func (a *App) Addr() string { return a.addr }

// URL is the address as a base URL a person or a client can open.
func (a *App) URL() string { return "http://" + displayAddr(a.addr) }

// Start accepts connections and returns at once. The serving goroutine
// belongs to the App: Shutdown ends it and waits for it. If it ends by
// itself (the socket failed), Done is closed and Err says why.
func (a *App) Start() {
	a.startOnce.Do(func() {
		a.started = true
		srv, ln := a.API.HTTPServer(a.ln)
		a.srv = srv
		go func() {
			defer close(a.served)
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				a.serveErr = err
			}
		}()
		a.log.Info("playground is serving", "url", a.URL(), "database", a.DB.Dialect())
	})
}

// Done is closed once the server has stopped accepting connections:
// after Shutdown, or when serving failed by itself.
func (a *App) Done() <-chan struct{} { return a.served }

// Err is why serving stopped by itself, once Done is closed; nil after a
// Shutdown.
func (a *App) Err() error {
	select {
	case <-a.served:
		return a.serveErr
	default:
		return nil
	}
}

// Run starts the server and serves until ctx ends, then shuts down as the
// contract says, letting running comparisons finish for DrainTimeout. It
// returns early, having shut down, if serving fails.
func (a *App) Run(ctx context.Context) error {
	a.Start()
	select {
	case <-a.served:
	case <-ctx.Done():
		a.log.Info("shutting down: letting running comparisons finish", "for", DrainTimeout)
	}
	dctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	err := a.Shutdown(dctx)
	if serr := a.Err(); serr != nil {
		return serr
	}
	if err == nil {
		a.log.Info("stopped")
	}
	return err
}

// Shutdown stops accepting connections, lets running comparisons finish
// until ctx ends, saves what they have as interrupted after that, closes
// WebSockets with 1001 and SSE streams, then closes every part New opened
// and waits for their goroutines. Calling it again returns the first
// call's result.
func (a *App) Shutdown(ctx context.Context) error {
	a.shutOnce.Do(func() { a.shutErr = a.shutdown(ctx) })
	return a.shutErr
}

func (a *App) shutdown(ctx context.Context) error {
	a.startOnce.Do(func() { close(a.served) }) // never started: nothing serves
	var err error
	if a.started {
		// Stop accepting now; srv.Shutdown returns once the last plain
		// request and SSE stream are over, which CloseLive brings about.
		shutdownDone := make(chan error, 1)
		go func() {
			deadline, ok := ctx.Deadline()
			if !ok {
				deadline = time.Now().Add(DrainTimeout)
			}
			sctx, cancel := context.WithDeadline(context.Background(), deadline.Add(5*time.Second))
			defer cancel()
			shutdownDone <- a.srv.Shutdown(sctx)
		}()
		a.Engine.Shutdown(ctx)
		a.API.CloseLive()
		if e := <-shutdownDone; e != nil && !errors.Is(e, context.DeadlineExceeded) {
			err = e
		}
	}
	<-a.served
	a.closeParts()
	return err
}

// listen is the socket the server answers on: the caller's own, else one
// inherited from the parent process (LISTEN_FDS), else PORT on every
// address.
func listen(getenv func(string) string, port int, own net.Listener) (net.Listener, error) {
	if own != nil {
		return own, nil
	}
	if getenv == nil {
		getenv = os.Getenv
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
