package api

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/playground-dev/playground"
)

// Defaults of the HTTP server's limits (Options; README "Settings").
const (
	defaultMaxConns           = 10_000
	defaultMaxConnsPerAddress = 256
	defaultReadHeaderTimeout  = 10 * time.Second
	defaultBodyTimeout        = 10 * time.Second
	defaultIdleTimeout        = 60 * time.Second
	defaultWSSubscribeTimeout = 10 * time.Second

	// maxRefusing bounds the connections over a cap that are being
	// answered (429 or 503) at once; past it, a new one is closed without
	// an answer, so a flood cannot hold more descriptors than the caps
	// plus this many, each for at most the header timeout.
	maxRefusing = 128
	// refusedRetryAfter is the Retry-After of a refused connection.
	refusedRetryAfter = 5 * time.Second
)

// HTTPServer returns the http.Server that serves s on ln, and ln wrapped
// with the connection caps; the caller runs srv.Serve(l) and, to stop,
// srv.Shutdown. It is the one place the server's timeouts are set, for
// serve, the benchmarks and the tests alike:
//
//   - ReadHeaderTimeout: a request's headers must arrive within it;
//   - a request body must arrive within BodyTimeout of its headers (a
//     body trickled slowly is cut: 400 invalid_request);
//   - IdleTimeout: a keep-alive connection idle that long is closed.
//
// Over MaxConns open connections, a new one is answered 503 unavailable
// with Retry-After; over MaxConnsPerAddress from one client address, 429
// rate_limited. Either answer closes the connection. GET /healthz is
// served even then: a process that is full is still alive.
func (s *Server) HTTPServer(ln net.Listener) (*http.Server, net.Listener) {
	cl := &connLimiter{total: s.opts.MaxConns, perAddr: s.opts.MaxConnsPerAddress, trusted: s.trusted,
		byAddr: map[netip.Addr]int{}, log: s.log}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if lc, ok := c.(*limitedConn); ok {
				return context.WithValue(ctx, connKey{}, lc)
			}
			return ctx
		},
	}
	return srv, &limitedListener{Listener: ln, l: cl}
}

// connKey is the context key of a request's *limitedConn.
type connKey struct{}

// refusal is why a connection over a cap is refused (none: it is not).
type refusal int

const (
	admitted refusal = iota
	overTotal
	overAddress
)

// connLimiter counts the open connections, in all and per client
// address (the peer's; a trusted proxy's connections are counted only in
// all, since it speaks for many clients). Hijacked WebSockets and SSE
// streams count until they close.
type connLimiter struct {
	total, perAddr int
	trusted        func(netip.Addr) bool
	log            *slog.Logger

	mu       sync.Mutex
	open     int
	byAddr   map[netip.Addr]int
	refusing int
}

// admit decides on a new connection: counted (admitted), to be answered
// with a refusal, or (ok false) to be closed at once.
func (l *connLimiter) admit(c net.Conn) (lc *limitedConn, ok bool) {
	addr := netip.Addr{}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		addr = ap.Addr().Unmap()
	}
	perAddr := !l.trusted(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	why := admitted
	switch {
	case l.open >= l.total:
		why = overTotal
	case perAddr && l.byAddr[addr] >= l.perAddr:
		why = overAddress
	}
	if why != admitted {
		if l.refusing >= maxRefusing {
			return nil, false
		}
		l.refusing++
		return &limitedConn{Conn: c, l: l, refused: why}, true
	}
	l.open++
	if perAddr {
		l.byAddr[addr]++
	}
	return &limitedConn{Conn: c, l: l, addr: addr, perAddr: perAddr}, true
}

// release forgets a closed connection.
func (l *connLimiter) release(lc *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if lc.refused != admitted {
		l.refusing--
		return
	}
	l.open--
	if lc.perAddr {
		if l.byAddr[lc.addr]--; l.byAddr[lc.addr] <= 0 {
			delete(l.byAddr, lc.addr)
		}
	}
}

// limitedListener applies a connLimiter to what it accepts.
type limitedListener struct {
	net.Listener
	l *connLimiter
}

// Accept returns the next connection within the caps, or over them and
// to be refused; one past even that is closed here and never returned.
func (ll *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc, ok := ll.l.admit(c); ok {
			return lc, nil
		}
		ll.l.log.Warn("http: connection closed unanswered: over the connection cap", "peer", c.RemoteAddr().String())
		c.Close()
	}
}

// limitedConn is a counted connection; Close uncounts it, once.
type limitedConn struct {
	net.Conn
	l       *connLimiter
	addr    netip.Addr
	perAddr bool
	refused refusal
	once    sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.release(c) })
	return c.Conn.Close()
}

// SyscallConn reaches the socket beneath (the WebSocket writer uses it to
// write without waiting).
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// refuseOverCap answers a request that came on a connection over a cap,
// and closes the connection after the answer. It reports whether it
// answered. GET /healthz is always served.
func (s *Server) refuseOverCap(w http.ResponseWriter, r *http.Request) bool {
	lc, _ := r.Context().Value(connKey{}).(*limitedConn)
	if lc == nil || lc.refused == admitted || r.URL.Path == "/healthz" {
		return false
	}
	w.Header().Set("Connection", "close")
	s.metrics.connsRefused.WithLabelValues(lc.refused.String()).Inc()
	if lc.refused == overAddress {
		s.writeError(w, r, rateLimited(refusedRetryAfter, "Too many connections from this address; close some and try again."))
		return true
	}
	s.writeError(w, r, playground.Errorf(playground.EUnavailable, "The server is at its connection limit; try again shortly.").
		WithDetail("retryAfter", int(refusedRetryAfter/time.Second)))
	return true
}

func (r refusal) String() string {
	switch r {
	case overTotal:
		return "total"
	case overAddress:
		return "address"
	}
	return "admitted"
}

// bodyDeadline gives a request that has a body BodyTimeout to send it:
// a client trickling one byte at a time cannot hold a connection and a
// handler for ever. The deadline is lifted once the body is in, because
// net/http then watches the connection for the client leaving and must
// not mistake the deadline for that; a body nobody reads keeps it, so
// that net/http's discarding of it after the handler is bounded too.
func (s *Server) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(s.opts.BodyTimeout)) == nil {
		r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
	}
}

// deadlineBody lifts the connection's read deadline at the body's end.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// readBody reads a request body of at most maxBodyBytes. Every way a body
// can fail to arrive is the client's: too large (413), too slow or
// malformed, such as broken chunked framing (400 invalid_request, and the
// connection is closed after the answer), or the client left.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err == nil {
		return body, nil
	}
	var mbe *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &mbe):
		return nil, playground.Errorf(playground.EPayloadTooLarge, "Request body must be at most 1 MiB.")
	case errors.As(err, &ne) && ne.Timeout():
		// net/http has cancelled the request's context by now (a failed
		// read ends it), but the client may well be there to read this.
		w.Header().Set("Connection", "close")
		return nil, playground.Errorf(playground.EInvalid, "The request body did not arrive within %s.", s.opts.BodyTimeout)
	case r.Context().Err() != nil:
		return nil, errors.Join(errClientGone, err)
	}
	w.Header().Set("Connection", "close")
	return nil, playground.Errorf(playground.EInvalid, "The request body could not be read: %s.", bodyFault(err))
}

// bodyFault names what was wrong with a body net/http could not read,
// without echoing its internals.
func bodyFault(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ended early"
	}
	return "its framing is malformed"
}
