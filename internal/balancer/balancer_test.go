package balancer

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// The HTTP client's idle keep-alive connections.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

func named(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) }))
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// TestRoundRobinAndFailover: requests alternate between the instances,
// and once one is gone every request still gets an answer, from the other.
func TestRoundRobinAndFailover(t *testing.T) {
	a, b := named("a"), named("b")
	defer a.Close()
	n, err := Start(context.Background(), Options{Upstreams: []string{a.Listener.Addr().String(), b.Listener.Addr().String()}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	seen := map[string]int{}
	for range 10 {
		seen[get(t, n.URL)]++
	}
	if seen["a"] != 5 || seen["b"] != 5 {
		t.Errorf("ten requests went %v, want five to each instance", seen)
	}
	b.Close()
	for range 10 {
		if got := get(t, n.URL); got != "a" {
			t.Errorf("with b gone, a request was answered by %q", got)
		}
	}
}

// TestConfig: the configuration proxies WebSocket upgrades, streams
// unbuffered and lists every instance.
func TestConfig(t *testing.T) {
	conf, err := Config("127.0.0.1:9", Options{Upstreams: []string{"127.0.0.1:1", "127.0.0.1:2"}, Dir: "/x", Connections: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"server 127.0.0.1:1 ", "server 127.0.0.1:2 ", "proxy_set_header Upgrade $http_upgrade;",
		"proxy_set_header Connection $connection_upgrade;", "proxy_buffering off;", "worker_connections 2064;", "listen 127.0.0.1:9 "} {
		if !strings.Contains(conf, want) {
			t.Errorf("configuration lacks %q:\n%s", want, conf)
		}
	}
	if _, err := Config("127.0.0.1:9", Options{Dir: "/x"}); err == nil {
		t.Error("a configuration with no instance was written")
	}
}
