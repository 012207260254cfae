package api

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/playground-dev/playground"
)

// CORS answers for FRONTEND_URL: what a preflight may ask for.
const (
	corsAllowMethods = "GET, POST, PUT, DELETE"
	corsAllowHeaders = "Content-Type, Authorization"
	corsMaxAge       = "600"
)

// middleware wraps the route table with what every request goes through,
// outermost first:
//
//  1. access log and request metrics (so they see the final status, panics included);
//  2. panic recovery, answering the coded 500;
//  3. CORS for FRONTEND_URL (a preflight is answered here and goes no further);
//  4. cross-site protection: docs/api.md's first check, before credentials;
//  5. JSON 404/405 for paths and methods no route serves (except the page's GET /).
//
// h is normally the *http.ServeMux of routes; the route pattern it would
// choose is looked up once, up front, for the metrics label and step 5.
func (s *Server) middleware(h http.Handler) http.Handler {
	mux, _ := h.(*http.ServeMux)
	cop := http.NewCrossOriginProtection()
	if s.opts.FrontendURL != "" {
		if err := cop.AddTrustedOrigin(s.opts.FrontendURL); err != nil {
			// config.Load normalised it already; a bad value here is a wiring bug.
			s.log.Error("api: FRONTEND_URL not usable as a trusted origin", "err", err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, playground.Errorf(playground.EForbidden, "Cross-site request refused."))
	}))
	protected := cop.Handler(s.routeFallback(mux, h))

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		route := "unmatched"
		if mux != nil {
			if _, p := mux.Handler(r); p != "" {
				route = p
			}
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			// Recovery sits inside the log and metrics so that a panic is
			// counted and logged as the 500 it became.
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v) // net/http's own way to abort a response: let it through
				}
				s.log.Error("api: panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wroteHeader {
					s.writeError(rec, r, fmt.Errorf("api: panic: %v", v))
				}
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := s.now().Sub(start)
			s.metrics.observeRequest(route, r.Method, status, elapsed)
			s.log.Info("http request", "method", r.Method, "path", r.URL.Path, "route", route,
				"status", status, "bytes", rec.bytes, "duration", elapsed, "ip", s.clientIP(r).String())
		}()
		if s.refuseOverCap(rec, r) {
			return
		}
		s.bodyDeadline(rec, r)
		if s.cors(rec, r) {
			return
		}
		if crossSiteChecked(r) {
			protected.ServeHTTP(rec, r)
			return
		}
		s.routeFallback(mux, h).ServeHTTP(rec, r)
	})
}

// crossSiteChecked reports whether a request goes through the cross-site
// check. docs/api.md defines a cross-site request as one that "carries the
// cookie": a bearer token cannot be sent by another site's page, so a
// request with no cookie cannot be forged in the user's name. Login and
// register are checked as well, cookie or not, because they set the cookie
// (a forged login would sign the victim into the attacker's account).
func crossSiteChecked(r *http.Request) bool {
	if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
		return true
	}
	return r.URL.Path == "/auth/login" || r.URL.Path == "/auth/register"
}

// cors sets the CORS headers for FRONTEND_URL (the only origin allowed to
// read answers with credentials) and answers its preflights. It reports
// whether the request has been answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.FrontendURL == "" {
		return false
	}
	// Answers differ by Origin whenever a frontend is configured, so caches
	// must key on it even when this request's origin is not allowed.
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || origin != s.opts.FrontendURL {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", corsAllowMethods)
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	h.Set("Access-Control-Expose-Headers", "Retry-After, Content-Disposition")
	return false
}

// routeFallback answers JSON where the mux would answer plain text: 404 for
// a path no route serves and 405 for a known path asked with another
// method. The page's "GET /" pattern matches every path for GET, so the mux
// itself reports a POST to an unknown path as 405 (Allow: GET, HEAD); such
// a path is really unknown and gets 404.
func (s *Server) routeFallback(mux *http.ServeMux, h http.Handler) http.Handler {
	if mux == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		// No route for this method. Find what the mux would allow by
		// letting its own fallback write into a recorder.
		probe := &headerProbe{header: http.Header{}}
		mux.ServeHTTP(probe, r)
		if probe.status != http.StatusMethodNotAllowed {
			s.notFound(w, r)
			return
		}
		allow := probe.header.Get("Allow")
		if pageOnly(allow) {
			s.notFound(w, r)
			return
		}
		s.methodNotAllowed(w, allow)
	})
}

// pageOnly reports whether an Allow list holds only what the page's
// catch-all GET serves (GET and its implied HEAD).
func pageOnly(allow string) bool {
	for _, m := range strings.Split(allow, ",") {
		if m = strings.TrimSpace(m); m != http.MethodGet && m != http.MethodHead {
			return false
		}
	}
	return true
}

// headerProbe captures the status and headers of the mux's own 404/405
// handlers, which write nothing of interest besides them.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header { return p.header }
func (p *headerProbe) WriteHeader(code int) {
	if p.status == 0 {
		p.status = code
	}
}
func (p *headerProbe) Write(b []byte) (int, error) {
	if p.status == 0 {
		p.status = http.StatusOK
	}
	return len(b), nil
}

// statusRecorder remembers the status and size of an answer for the access
// log and metrics. It passes Flush and Hijack through (SSE and WebSocket
// need them) and unwraps for http.ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status = code
		r.wroteHeader = code >= 200 || code == http.StatusSwitchingProtocols
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush passes through to the underlying writer when it can flush.
func (r *statusRecorder) Flush() { _ = r.FlushError() }

// FlushError is Flush reporting failure, for http.ResponseController.
func (r *statusRecorder) FlushError() error {
	if !r.wroteHeader {
		r.status, r.wroteHeader = http.StatusOK, true
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

// Hijack passes through for the WebSocket upgrade; the status is 101.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil {
		r.status, r.wroteHeader = http.StatusSwitchingProtocols, true
	}
	return conn, rw, err
}

// recordHijackedStatus notes, for the access log and metrics, the status
// of an answer written on a connection taken over (a hijacked SSE
// stream's 200), where the recorder would otherwise note 101.
func recordHijackedStatus(w http.ResponseWriter, code int) {
	for {
		if r, ok := w.(*statusRecorder); ok {
			r.status = code
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// routeLabel is the metrics label of a pattern: the path part only (the
// method is its own label), so label values stay few.
func routeLabel(pattern string) string {
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}
