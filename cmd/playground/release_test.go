package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/playground-dev/playground"
)

// The release test: the binary the Dockerfile ships (built by `make
// static`, the Dockerfile's own build step) runs from an empty directory
// with an empty environment, as in a bare container, and serves a whole
// comparison. Container images cannot be built here; everything they rely
// on is this binary, its defaults and its healthcheck.

// repoRoot is the module root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildStatic runs `make static` into a temporary directory and returns
// the binary's path.
func buildStatic(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "playground")
	cmd := exec.Command("make", "--no-print-directory", "-C", repoRoot(t), "static", "STATIC="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make static: %v\n%s", err, out)
	}
	return bin
}

// servingURL matches the line serve logs once it accepts connections.
var servingURL = regexp.MustCompile(`msg="playground is serving" url=(http://\S+)`)

func TestStaticBinaryServesWithEmptyEnvironment(t *testing.T) {
	t.Parallel()
	bin := buildStatic(t)
	dir := t.TempDir()

	// The same command as the Dockerfile's, with --listen for a free port.
	srv := exec.Command(bin, "serve", "--listen", "127.0.0.1:0")
	srv.Dir = dir
	srv.Env = []string{}
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.Write([]byte(sc.Text() + "\n"))
			if m := servingURL.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case urls <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
		exited <- srv.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			srv.Process.Kill()
			<-exited
		}
	})

	var base string
	select {
	case base = <-urls:
	case err := <-exited:
		stopped = true
		t.Fatalf("serve exited before serving: %v\n%s", err, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not report its address within 60 s\n%s", log.String())
	}

	// /healthz: 200, and it names the same build as `playground version`.
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status  string `json:"status"`
		Version string `json:"version"`
	}
	err = json.NewDecoder(res.Body).Decode(&health)
	res.Body.Close()
	if res.StatusCode != 200 || err != nil || health.Status != "ok" {
		t.Fatalf("healthz: %d %+v %v", res.StatusCode, health, err)
	}
	version, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("playground version: %v", err)
	}
	if !strings.HasPrefix(string(version), health.Version+"\n") && !strings.HasPrefix(string(version), health.Version+" ") {
		t.Errorf("playground version says %q, /healthz says version %q", version, health.Version)
	}

	// The image's HEALTHCHECK: `playground healthcheck` with only PORT set.
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	check := exec.Command(bin, "healthcheck")
	check.Env = []string{"PORT=" + port}
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("healthcheck against a running server: %v\n%s", err, out)
	}

	// A whole comparison on the built-in demo model, watched over SSE.
	c := &client{t: t, base: base, hc: &http.Client{Timeout: 30 * time.Second}}
	c.register()
	s := c.createSession("Say hello from an empty container", "demo/fast")
	events, code := c.readSSE("/sessions/"+s.ID+"/stream", nil, 0)
	if code != 200 || len(events) == 0 {
		t.Fatalf("stream: %d, %d events", code, len(events))
	}
	last := events[len(events)-1]
	if last.Event != "done" || last.Data.Status != "complete" {
		t.Fatalf("last event %q with status %q, want done with complete", last.Event, last.Data.Status)
	}
	var text strings.Builder
	for _, ev := range events {
		if ev.Event == string(playground.EventChunk) {
			text.WriteString(ev.Data.Text)
		}
	}
	if got := c.session(s.ID); got.Status != "complete" || got.Responses[0].Text != text.String() || text.Len() == 0 {
		t.Errorf("stored session %s, text %q; streamed text %q", got.Status, got.Responses[0].Text, text.String())
	}

	// Stop as a container runtime does; the data stayed in the working directory.
	if err := srv.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("serve exited with %v after the signal\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30 s of the signal\n%s", log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "playground.db")); err != nil {
		t.Errorf("the SQLite file is not in the working directory: %v", err)
	}
	check = exec.Command(bin, "healthcheck")
	check.Env = []string{"PORT=" + port}
	if err := check.Run(); err == nil {
		t.Error("healthcheck succeeded with the server stopped")
	}
}

// TestDockerfileBuildsWithMakeStatic keeps one recipe for the release
// binary: the Dockerfile must build through `make static` (which the test
// above runs), never with a `go build` line of its own whose flags could
// drift.
func TestDockerfileBuildsWithMakeStatic(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var runsMakeStatic bool
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.Contains(line, "go build") || strings.Contains(line, "go install") {
			t.Errorf("Dockerfile builds on its own: %q; use make static", line)
		}
		if regexp.MustCompile(`^RUN\s+make\s+static\b`).MatchString(line) {
			runsMakeStatic = true
		}
	}
	if !runsMakeStatic {
		t.Error("Dockerfile does not build with `RUN make static`")
	}
	for _, want := range []string{`HEALTHCHECK`, `"/playground", "healthcheck"`, "EXPOSE 8080", "VOLUME /data", "WORKDIR /data", "USER 65532"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

func TestVersionAndHealthcheckCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var out bytes.Buffer
	if err := run(ctx, []string{"version"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if want := playground.BuildVersion().String() + "\n"; out.String() != want {
		t.Errorf("version printed %q, want %q", out.String(), want)
	}

	status := http.StatusOK
	var mu sync.Mutex
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, `{"status":"ok"}`)
	}))
	t.Cleanup(up.Close)
	_, port, _ := net.SplitHostPort(up.Listener.Addr().String())
	env := func(k string) string {
		if k == "PORT" {
			return port
		}
		return ""
	}
	if err := run(ctx, []string{"healthcheck"}, env, io.Discard, io.Discard); err != nil {
		t.Errorf("healthcheck on 127.0.0.1:$PORT answering 200: %v", err)
	}
	mu.Lock()
	status = http.StatusServiceUnavailable
	mu.Unlock()
	if err := run(ctx, []string{"healthcheck"}, env, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck passed on a 503")
	}
	if err := run(ctx, []string{"healthcheck", "--url", "http://127.0.0.1:1/healthz"}, env, io.Discard, io.Discard); err == nil {
		t.Error("healthcheck passed with nothing listening")
	}
}
