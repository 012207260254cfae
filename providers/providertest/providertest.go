// Package providertest runs fake upstreams for tests: an httptest server
// that records every request, and handlers that replay the provider wire
// fixtures of providers/testdata byte for byte, so the real SDK
// clients can be tested against what the providers really send. Other
// packages' tests (actors, api) use it to drive the providers end to end.
package providertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Request is one request the fake upstream received.
type Request struct {
	Method string
	Path   string
	Query  string
	Header http.Header
	Body   []byte
}

// Server is a fake upstream. It records every request before handing it to
// its handler; it is closed when the test ends.
type Server struct {
	*httptest.Server

	mu       sync.Mutex
	requests []Request
	handler  http.Handler
}

// NewServer starts a fake upstream serving h (which may be nil and set
// later with Handle). Use s.URL as the provider's base URL (append /v1 for
// the OpenAI-compatible ones) and s.Client() as its HTTP client: its idle
// connections are closed with the server, so goleak stays quiet.
func NewServer(tb testing.TB, h http.Handler) *Server {
	tb.Helper()
	s := &Server{handler: h}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	tb.Cleanup(s.Close)
	return s
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	s.requests = append(s.requests, Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body,
	})
	h := s.handler
	s.mu.Unlock()
	if h == nil {
		http.Error(w, "no handler", http.StatusNotImplemented)
		return
	}
	h.ServeHTTP(w, r)
}

// Handle replaces the server's handler.
func (s *Server) Handle(h http.Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// LastRequest returns the latest request; the test fails if there is none.
func (s *Server) LastRequest(tb testing.TB) Request {
	tb.Helper()
	reqs := s.Requests()
	if len(reqs) == 0 {
		tb.Fatal("providertest: the fake upstream received no request")
	}
	return reqs[len(reqs)-1]
}

// FixtureDir is providers/testdata, the provider wire fixtures (its
// README says what each file is and where its format comes from). It is
// found beside this package's source, so tests of any package (providers,
// actors, api) replay the same files. A missing directory fails the test:
// a fixture test never passes by skipping.
func FixtureDir(tb testing.TB) string {
	tb.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("providertest: cannot locate the provider fixtures: no caller information")
	}
	fixtures := filepath.Join(filepath.Dir(self), "..", "testdata")
	if st, err := os.Stat(fixtures); err != nil || !st.IsDir() {
		tb.Fatalf("providertest: provider fixtures not found at %s", fixtures)
	}
	return fixtures
}

// Fixture returns the bytes of a fixture file.
func Fixture(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(FixtureDir(tb), name))
	if err != nil {
		tb.Fatalf("providertest: %v", err)
	}
	return b
}

// ReplaySSE answers 200 text/event-stream with the fixture's bytes, flushing
// after each event (each blank line), as a streaming upstream does.
func ReplaySSE(tb testing.TB, name string) http.Handler {
	tb.Helper()
	return SSEBytes(splitEvents(Fixture(tb, name))...)
}

// ReplaySSESplit answers like ReplaySSE but writes the fixture in pieces
// of n bytes, flushing after each, so events and multi-byte characters are
// cut across network reads.
func ReplaySSESplit(tb testing.TB, name string, n int) http.Handler {
	tb.Helper()
	b := Fixture(tb, name)
	var parts [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		parts = append(parts, b[:k])
		b = b[k:]
	}
	return SSEBytes(parts...)
}

// SSEBytes answers 200 text/event-stream, writing and flushing each part
// in turn. It stops early if the client goes away.
func SSEBytes(parts ...[]byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		flusher, _ := w.(http.Flusher)
		for _, p := range parts {
			if r.Context().Err() != nil {
				return
			}
			_, _ = w.Write(p)
			if flusher != nil {
				flusher.Flush()
			}
		}
	})
}

func splitEvents(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.Index(b, []byte("\n\n"))
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+2])
		b = b[i+2:]
	}
	return out
}

// ReplayHTTP answers with a raw HTTP fixture (`.http`: a status line,
// headers, a blank line, the body), status, headers and body as written.
func ReplayHTTP(tb testing.TB, name string) http.Handler {
	tb.Helper()
	status, header, body := parseHTTP(tb, name, Fixture(tb, name))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
}

func parseHTTP(tb testing.TB, name string, raw []byte) (int, http.Header, []byte) {
	tb.Helper()
	rd := bufio.NewReader(bytes.NewReader(raw))
	line, err := rd.ReadString('\n')
	if err != nil {
		tb.Fatalf("providertest: %s: no status line", name)
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "HTTP/") {
		tb.Fatalf("providertest: %s: bad status line %q", name, line)
	}
	status, err := strconv.Atoi(fields[1])
	if err != nil {
		tb.Fatalf("providertest: %s: bad status %q", name, fields[1])
	}
	header := http.Header{}
	for {
		line, err := rd.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			tb.Fatalf("providertest: %s: bad header line %q", name, line)
		}
		header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		if err != nil {
			break
		}
	}
	body, _ := io.ReadAll(rd)
	return status, header, body
}

// Hang answers 200 text/event-stream, sends nothing more, and returns when
// the client goes away: an upstream that never sends a first event.
func Hang() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		<-r.Context().Done()
	})
}

// ModelList answers an OpenAI-format model list ({"object":"list","data":[…]})
// with the given ids, as GET {base}/models of a local server does.
func ModelList(ids ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString(`{"object":"list","data":[`)
		for i, id := range ids {
			if i > 0 {
				b.WriteByte(',')
			}
			q, _ := json.Marshal(id)
			b.WriteString(`{"id":` + string(q) + `,"object":"model","created":1764100800,"owned_by":"library"}`)
		}
		b.WriteString(`]}`)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, b.String())
	})
}
