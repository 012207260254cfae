package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/playground-dev/playground/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// OpenCensus (a dependency of the Gemini SDK) starts a worker in init.
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// testConfig is make run's configuration with the database in dir.
func testConfig(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	vars := map[string]string{"DATABASE_URL": filepath.Join(t.TempDir(), "playground.db")}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newApp builds make run's server on a socket of the test's own, which it
// returns too.
func newApp(t *testing.T) (*App, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(t.Context(), testConfig(t, nil), Options{Listener: ln})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	return a, ln
}

// TestServeAndShutdown: the app built by New answers once started, and
// Shutdown ends every goroutine it started (TestMain's leak check) and
// closes its socket; a second Shutdown returns the first one's result.
func TestServeAndShutdown(t *testing.T) {
	a, _ := newApp(t)
	a.Start()
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	res, err := hc.Get(a.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct{ Status string }
	err = json.NewDecoder(res.Body).Decode(&health)
	res.Body.Close()
	if res.StatusCode != 200 || err != nil || health.Status != "ok" {
		t.Fatalf("healthz: %d %+v %v", res.StatusCode, health, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := a.Shutdown(ctx); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
	select {
	case <-a.Done():
	default:
		t.Fatal("Done is open after Shutdown")
	}
	if a.Err() != nil {
		t.Errorf("Err after a Shutdown = %v, want nil", a.Err())
	}
	if c, err := net.DialTimeout("tcp", a.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the socket still accepts after Shutdown")
	}
}

// TestShutdownWithoutStart: an app built but never started closes what
// New opened (the socket among them).
func TestShutdownWithoutStart(t *testing.T) {
	a, err := New(t.Context(), testConfig(t, map[string]string{"PORT": "0"}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", a.Addr(), time.Second); err == nil {
		c.Close()
		t.Error("the socket still accepts after Shutdown")
	}
}

// TestPortTakenFailsAtOnce: PORT held by another socket fails New at
// once, saying so, before it opens anything else.
func TestPortTakenFailsAtOnce(t *testing.T) {
	held, err := net.Listen("tcp", ":0") // every address, as the server binds
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := held.Addr().(*net.TCPAddr).Port
	dbFile := filepath.Join(t.TempDir(), "never.db")
	start := time.Now()
	a, err := New(t.Context(), testConfig(t, map[string]string{"PORT": fmt.Sprint(port), "DATABASE_URL": dbFile}), Options{})
	if err == nil {
		a.Shutdown(t.Context())
		t.Fatalf("the server started on port %d, which another socket holds", port)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %s, want at once", took)
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("the error does not say why: %v", err)
	}
	if _, serr := os.Stat(dbFile); serr == nil {
		t.Error("the database was opened before the port was known to be free")
	}
}

// TestServingFailureIsReported: when the socket fails under a running
// server, Done is closed at once and Err says why, and Run, which serves
// until told to stop, returns that error having shut down.
func TestServingFailureIsReported(t *testing.T) {
	a, ln := newApp(t)
	a.Start()
	ln.Close()
	select {
	case <-a.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done is still open 10 s after the socket failed")
	}
	if !errors.Is(a.Err(), net.ErrClosed) {
		t.Errorf("Err = %v, want the closed socket's error", a.Err())
	}
	if err := a.Run(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Run returned %v, want the closed socket's error", err)
	}
}
