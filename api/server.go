// Package api is Playground's HTTP surface: the routes of docs/api.md, the
// middleware in front of them (cross-site checks, credentials, body limits,
// CORS), the WebSocket and SSE endpoints that carry live events, and the
// embedded web page. Handlers are thin: decode, validate, call the domain,
// write through one helper.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/auth"
	"github.com/playground-dev/playground/hub"
)

// Options are what the server needs; cmd/playground fills them from config.
type Options struct {
	Users    playground.UserService
	Sessions playground.SessionService
	Votes    playground.VoteService
	Tokens   playground.TokenService
	Catalog  playground.Catalog
	Runner   playground.Runner
	Hub      *hub.Hub
	Logger   *slog.Logger
	// Registry receives the server's Prometheus metrics (nil: a new one).
	Registry *prometheus.Registry

	JWTSecret       []byte
	JWTTTL          time.Duration
	Production      bool // Secure cookies
	FrontendURL     string
	TrustedProxies  []netip.Prefix
	RegisterPerHour int
	Plans           playground.Plans

	// Ready reports whether the database (and broker) answer, for /readyz.
	Ready func(ctx context.Context) error
	// Revoked is told of every logout so that open WebSockets holding that
	// token close with 4401 on every instance (nil: this instance only).
	Revoked func(ctx context.Context, jti string, expiresAt time.Time)
	// NewLimiter makes the login and registration limiters (nil: in
	// memory, this instance only); with Redis they count across instances.
	NewLimiter func(name string, limit int, window time.Duration) auth.Limiter
	// Now is the clock (nil: time.Now).
	Now func() time.Time

	// WriteTimeout bounds every write to a viewer (default 10 s).
	WriteTimeout time.Duration
	// QueueSize is how many frames a viewer may have waiting before it is
	// dropped as too slow (default hub.DefaultQueueSize).
	QueueSize int
	// QueueBytes is how many bytes of events (a replay aside) a viewer may
	// have waiting before it is dropped as too slow (default
	// hub.DefaultQueueBytes).
	QueueBytes int
	// SSEHeartbeat is the idle comment interval of SSE streams (default 15 s).
	SSEHeartbeat time.Duration
	// PasswordMemoryKiB and PasswordPasses set argon2id's cost for new
	// password hashes (zero: OWASP's minimum, 19 MiB and 2 passes, which
	// serve always uses). A stored hash carries its own cost, so a login
	// is checked at the cost its password was stored with. Only the tests
	// lower them: under the race detector one sign-up at the real cost
	// takes seconds of CPU.
	PasswordMemoryKiB uint32
	PasswordPasses    uint32

	// The HTTP server's limits (HTTPServer; zero: the defaults in
	// conns.go): open connections in all and per client address, the
	// time a request's headers and then its body may take to arrive, how
	// long a keep-alive connection may idle, and how long a WebSocket may
	// stay open without a subscription.
	MaxConns           int
	MaxConnsPerAddress int
	ReadHeaderTimeout  time.Duration
	BodyTimeout        time.Duration
	IdleTimeout        time.Duration
	WSSubscribeTimeout time.Duration
}

// Server holds the routes and their dependencies.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	handler http.Handler
	metrics *metrics
	auth    *authState
	live    liveState
	boards  leaderboards

	// beforeWatch, when set (by tests), runs after a live connection's
	// request was authenticated and before its credentials are watched.
	beforeWatch func(*Principal)
}

// New builds the server and its route table.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = hub.DefaultQueueSize
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = hub.DefaultQueueBytes
	}
	if opts.SSEHeartbeat <= 0 {
		opts.SSEHeartbeat = 15 * time.Second
	}
	defaults := []struct {
		v *time.Duration
		d time.Duration
	}{
		{&opts.ReadHeaderTimeout, defaultReadHeaderTimeout}, {&opts.BodyTimeout, defaultBodyTimeout},
		{&opts.IdleTimeout, defaultIdleTimeout}, {&opts.WSSubscribeTimeout, defaultWSSubscribeTimeout},
	}
	for _, d := range defaults {
		if *d.v <= 0 {
			*d.v = d.d
		}
	}
	if opts.MaxConns <= 0 {
		opts.MaxConns = defaultMaxConns
	}
	if opts.MaxConnsPerAddress <= 0 {
		opts.MaxConnsPerAddress = defaultMaxConnsPerAddress
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	s := &Server{opts: opts, log: opts.Logger, now: opts.Now}
	s.live.closing, s.live.close = context.WithCancel(context.Background())
	s.live.lookups = newLookupQueue()
	s.metrics = newMetrics(opts.Registry)
	s.auth = newAuthState(s)
	s.handler = s.routes()
	return s
}

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }
