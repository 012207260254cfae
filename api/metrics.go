package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series. Handlers and the live
// endpoints bump the counters and gauges directly; the middleware observes
// every request.
type metrics struct {
	reg *prometheus.Registry

	httpRequests *prometheus.CounterVec   // route, method, status
	httpDuration *prometheus.HistogramVec // route, method

	// sessionsStarted counts comparisons started (POST /sessions and rerun).
	sessionsStarted prometheus.Counter
	// liveViewers is how many WebSocket subscriptions and SSE streams this
	// instance serves now (the live endpoints Inc and Dec it).
	liveViewers prometheus.Gauge
	// loginFailures counts failed logins; rateLimited counts 429s by what
	// was limited ("login", "register").
	loginFailures prometheus.Counter
	rateLimited   *prometheus.CounterVec
	// connsRefused counts connections answered 503 or 429 for being over
	// the connection caps, by cap ("total", "address").
	connsRefused *prometheus.CounterVec
}

// newMetrics registers the server's series in reg. Registering twice in
// the same registry (two servers in one test process) reuses the series
// already there instead of panicking.
func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{reg: reg}
	m.httpRequests = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playground_http_requests_total",
		Help: "HTTP requests by route pattern, method and status.",
	}, []string{"route", "method", "status"}))
	m.httpDuration = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "playground_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests (live streams: their whole life).",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "method"}))
	m.sessionsStarted = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playground_sessions_started_total",
		Help: "Comparisons started.",
	}))
	m.liveViewers = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "playground_live_viewers",
		Help: "WebSocket subscriptions and SSE streams served by this instance.",
	}))
	m.loginFailures = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "playground_login_failures_total",
		Help: "Logins refused for a wrong email or password.",
	}))
	m.connsRefused = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playground_connections_refused_total",
		Help: "Connections refused for being over MAX_CONNECTIONS (total) or MAX_CONNECTIONS_PER_ADDRESS (address).",
	}, []string{"cap"}))
	m.rateLimited = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "playground_rate_limited_total",
		Help: "Requests answered 429, by what was limited.",
	}, []string{"what"}))
	register(reg, collectors.NewGoCollector())
	register(reg, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// register adds c to reg, or returns the equal collector already there.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Only a name clash with a different kind of series gets here: a
		// programming error worth failing loudly at start-up.
		panic("api: register metrics: " + err.Error())
	}
	return c
}

// observeRequest records one answered request.
func (m *metrics) observeRequest(pattern, method string, status int, d time.Duration) {
	route := routeLabel(pattern)
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// metricsHandler serves GET /metrics in the Prometheus text format.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{})
}
