package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db/dbtest"
)

// TestNULBytes: a NUL byte, which PostgreSQL text cannot hold, is never a
// 500. An id that cannot exist is 404 before any database call; a text
// field holding one is 400 naming the field.
func TestNULBytes(t *testing.T) {
	t.Parallel()
	for _, dialect := range dbtest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			ts := startServer(t, dialect, nil, nil)
			owner := ts.client(t).register()
			anon := ts.client(t)
			s := owner.createSession("hello", "demo/fast")
			var share struct {
				ShareToken string `json:"shareToken"`
			}
			if code := owner.do("POST", "/sessions/"+s.ID+"/share", nil, &share); code != 200 {
				t.Fatalf("share: %d", code)
			}

			wantCode := func(c *client, method, path string, body any, status int, code, field string) {
				t.Helper()
				var out struct {
					Error struct {
						Code    string         `json:"code"`
						Details map[string]any `json:"details"`
					} `json:"error"`
				}
				got := c.do(method, path, body, &out)
				if got != status || out.Error.Code != code {
					t.Errorf("%s %s: %d %q, want %d %q", method, path, got, out.Error.Code, status, code)
				}
				if field != "" && out.Error.Details["field"] != field {
					t.Errorf("%s %s: details.field %v, want %q", method, path, out.Error.Details["field"], field)
				}
			}
			for _, path := range []string{"/share/a%00b", "/share/" + url.PathEscape(share.ShareToken+"\x00")} {
				wantCode(anon, "GET", path, nil, 404, "not_found", "")
			}
			for _, path := range []string{"/sessions/a%00b", "/sessions/s_%00", "/sessions/" + url.PathEscape(s.ID+"\x00"),
				"/sessions/a%00b/stream", "/sessions/a%00b/export", "/sessions/a%00b/diff?a=r_1&b=r_2"} {
				wantCode(owner, "GET", path, nil, 404, "not_found", "")
				wantCode(anon, "GET", path+sep(path)+"share="+share.ShareToken, nil, 404, "not_found", "")
			}
			wantCode(owner, "POST", "/sessions/a%00b/cancel", nil, 404, "not_found", "")
			// Credentials still come first: no token and no share is 401.
			wantCode(anon, "GET", "/sessions/a%00b", nil, 401, "unauthorized", "")

			wantCode(owner, "POST", "/sessions", map[string]any{"prompt": "a\x00b", "models": []string{"demo/fast"}}, 400, "invalid_request", "prompt")
			wantCode(owner, "POST", "/sessions", map[string]any{"prompt": "ok", "system": "be\x00brief", "models": []string{"demo/fast"}}, 400, "invalid_request", "system")
			wantCode(owner, "POST", "/sessions/estimate", map[string]any{"prompt": "a\x00b", "models": []string{"demo/fast"}}, 400, "invalid_request", "prompt")
			wantCode(owner, "POST", "/sessions/"+s.ID+"/rerun", map[string]any{"models": []string{"demo/fast\x00"}}, 400, "unknown_model", "")
			wantCode(anon, "POST", "/auth/login", map[string]any{"email": "a\x00@example.com", "password": "password123"}, 400, "invalid_request", "email")
			wantCode(anon, "POST", "/auth/register", map[string]any{"email": "a\x00@example.com", "password": "password123"}, 400, "invalid_request", "email")
			wantCode(owner, "GET", "/sessions?cursor="+url.QueryEscape("\x00"), nil, 400, "invalid_request", "cursor")

			// The same over the WebSocket, with and without an account.
			for _, who := range []*client{owner, anon} {
				v := ts.dialWS(t, who.token, nil)
				v.send(map[string]any{"type": "subscribe", "sessionId": "s_\x00", "since": 0, "shareToken": share.ShareToken})
				if ev := v.next(5 * time.Second); ev.Type != playground.EventError || ev.Code != "not_found" {
					t.Errorf("subscribe to s_\\x00: %+v", ev)
				}
				v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0, "shareToken": share.ShareToken + "\x00"})
				if ev := v.next(5 * time.Second); who == anon && (ev.Type != playground.EventError || ev.Code != "not_found") {
					t.Errorf("subscribe with a NUL in the share token: %+v", ev)
				}
			}
			// The server is still whole: the session streams to its end.
			if code := owner.do("GET", "/sessions/"+s.ID, nil, nil); code != 200 {
				t.Fatalf("session after the NULs: %d", code)
			}
		})
	}
}

// sep is the separator before a query parameter added to path.
func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// dialFrom opens a TCP connection to the test server from a loopback
// source address of the test's choosing (127.0.0.2 is another client).
func dialFrom(t *testing.T, ts *testServer, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", ts.app.Addr())
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// clientFrom is an HTTP client whose connections come from src; it keeps
// none alive, so each request is a new connection.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// roundTrip writes a raw request on c and reads the answer.
func roundTrip(t *testing.T, c net.Conn, raw string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return resp
}

// codedError reads the error code of a JSON error answer.
func codedError(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var out struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s: not a JSON error: %v", resp.Status, err)
	}
	return out.Error.Code
}

// healthy asserts that /healthz answers 200 within two seconds from src
// (it takes a millisecond; the margin is for a busy machine under -race).
// It asks on a connection of its own and waits until the server has
// closed it: the server stops counting a connection as it closes it, and
// one it still counts would take a place under the caps a test fills next.
func healthy(t *testing.T, ts *testServer, src string) {
	t.Helper()
	start := time.Now()
	c := dialFrom(t, ts, src)
	resp := roundTrip(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || time.Since(start) > 2*time.Second {
		t.Fatalf("/healthz from %s: %d in %v", src, resp.StatusCode, time.Since(start))
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("/healthz from %s: the server did not close the connection after its answer: %v", src, err)
	}
}

// TestConnectionCaps: one client address cannot hold more than
// MAX_CONNECTIONS_PER_ADDRESS connections (the next is 429 rate_limited),
// nobody more than MAX_CONNECTIONS in all (503 unavailable), both with
// Retry-After; /healthz answers throughout, from anywhere.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "sqlite", map[string]string{"MAX_CONNECTIONS": "8", "MAX_CONNECTIONS_PER_ADDRESS": "5"}, nil)
	// The attacker's idle WebSockets, up to the per-address cap.
	attacker := make([]*wsViewer, 0, 5)
	for range 5 {
		attacker = append(attacker, ts.dialWS(t, "", nil))
	}
	_, resp, err := ts.tryDialWS(t, "", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("6th WebSocket from one address: err %v resp %v", err, resp)
	}
	if resp.Header.Get("Retry-After") == "" || codedError(t, resp) != "rate_limited" {
		t.Errorf("per-address refusal: Retry-After %q", resp.Header.Get("Retry-After"))
	}
	healthy(t, ts, "127.0.0.2")
	healthy(t, ts, "127.0.0.1") // a full address may still ask whether the process lives

	// Other addresses fill the server up to its cap.
	for _, src := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.3"} {
		dialFrom(t, ts, src)
	}
	c := dialFrom(t, ts, "127.0.0.4")
	resp = roundTrip(t, c, "GET /models HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the total cap: %s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
	}
	if code := codedError(t, resp); code != "unavailable" {
		t.Errorf("over the total cap: code %q", code)
	}
	healthy(t, ts, "127.0.0.5")

	// A connection closed makes room.
	attacker[0].c.CloseNow()
	waitFor(t, "a freed connection admitted", func() bool {
		resp, err := clientFrom("127.0.0.6").Get(ts.URL + "/models")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// subscribeTimeout is long enough for a client to register, start a
// comparison and subscribe on a machine busy with the other tests, which
// run beside this one.
const subscribeTimeout = 2 * time.Second

// TestIdleWebSocketClosed: a WebSocket that holds no subscription for
// WS_SUBSCRIBE_TIMEOUT is closed with 4408; one that watches stays.
func TestIdleWebSocketClosed(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "sqlite", map[string]string{"WS_SUBSCRIBE_TIMEOUT": subscribeTimeout.String()}, nil)
	idle := ts.dialWS(t, "", nil)
	owner := ts.client(t).register()
	s := owner.createSession("hello", "demo/slow")
	watching := ts.dialWS(t, owner.token, nil)
	watching.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	if ev := watching.next(5 * time.Second); ev.Type != playground.EventSubscribed {
		t.Fatalf("subscribe: %+v", ev)
	}

	start := time.Now()
	if err := idle.closeReason(5 * time.Second); websocket.CloseStatus(err) != 4408 {
		t.Fatalf("idle WebSocket: closed with %v", err)
	}
	if d := time.Since(start); d > 3*subscribeTimeout {
		t.Errorf("idle WebSocket closed after %v", d)
	}
	// Past the timeout, the watching one still answers.
	time.Sleep(subscribeTimeout + 200*time.Millisecond)
	watching.send(map[string]any{"type": "ping"})
	for ev := watching.next(5 * time.Second); ev.Type != playground.EventPong; ev = watching.next(5 * time.Second) {
	}
	// Its last unsubscribe starts the clock again.
	watching.send(map[string]any{"type": "unsubscribe", "sessionId": s.ID})
	if err := watching.closeReason(5 * time.Second); websocket.CloseStatus(err) != 4408 {
		t.Fatalf("WebSocket after its last unsubscribe: closed with %v", err)
	}
}

// TestSlowAndBrokenRequests: headers or a body trickled in are cut within
// their timeouts, an idle keep-alive connection is closed, and a body
// with broken chunked framing is 400 invalid_request.
func TestSlowAndBrokenRequests(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "sqlite", map[string]string{"HTTP_READ_HEADER_TIMEOUT": "500ms",
		"HTTP_BODY_TIMEOUT": "1s", "HTTP_IDLE_TIMEOUT": "500ms"}, nil)

	t.Run("trickled body", func(t *testing.T) {
		c := dialFrom(t, ts, "127.0.0.1")
		head := "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatal(err)
		}
		// One byte every 200 ms, in the background, until the server answers.
		stop := make(chan struct{})
		trickled := make(chan struct{})
		go func() {
			defer close(trickled)
			for i := 0; i < 100; i++ {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				if _, err := c.Write([]byte{' '}); err != nil {
					return
				}
			}
		}()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		close(stop)
		<-trickled
		if err != nil {
			t.Fatalf("trickled body: no answer within 5 s: %v", err)
		}
		if resp.StatusCode != 400 || codedError(t, resp) != "invalid_request" {
			t.Fatalf("trickled body: %s", resp.Status)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("trickled body cut after %v, timeout 1 s", d)
		}
	})

	t.Run("trickled headers", func(t *testing.T) {
		c := dialFrom(t, ts, "127.0.0.1")
		if _, err := io.WriteString(c, "GET /models HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		closedWithin(t, c, 3*time.Second)
	})

	t.Run("idle keep-alive", func(t *testing.T) {
		c := dialFrom(t, ts, "127.0.0.1")
		resp := roundTrip(t, c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		closedWithin(t, c, 3*time.Second)
	})

	t.Run("malformed chunked body", func(t *testing.T) {
		for _, body := range []string{"zz\r\n{}\r\n0\r\n\r\n", "5\r\n{\"a\":1}\r\n0\r\n\r\n", "2\r\n{}"} {
			c := dialFrom(t, ts, "127.0.0.1")
			resp := roundTrip(t, c, "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"+body)
			if resp.StatusCode != 400 || codedError(t, resp) != "invalid_request" {
				t.Errorf("chunked body %q: %s", body, resp.Status)
			}
		}
	})
	healthy(t, ts, "127.0.0.2")
}

// closedWithin fails unless the server closes c within d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", time.Since(start))
	}
}
