package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/api/wstest"
)

// TestWSFirstFrameWithHandshake: a client that does not wait for the 101
// and sends its subscribe frame and a WebSocket ping in the same packet
// as its handshake is served like any other. The server reads a
// connection's frames through its own small buffer after the upgrade;
// what net/http had already read must not be lost on the way.
func TestWSFirstFrameWithHandshake(t *testing.T) {
	t.Parallel()
	up := newFakeOpenAI(t, 5, time.Millisecond)
	ts, owner := serveOwner(t, up)
	s := owner.createSession("hello", "openai/gpt-a")

	c := dialRaw(t, ts, 10*time.Second)
	var out bytes.Buffer
	out.Write(upgradeRequest(c, owner.token))
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	out.Write(wstest.ClientFrame(0x1, sub))
	out.Write(wstest.ClientFrame(0x9, []byte("are you there")))
	if _, err := c.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}

	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	var types []playground.EventType
	pong := false
	for !pong || len(types) < 2 {
		op, payload := wstest.ReadServerFrame(t, br)
		switch op {
		case 0xA:
			if string(payload) != "are you there" {
				t.Fatalf("pong carries %q", payload)
			}
			pong = true
		case 0x1:
			for _, line := range bytes.Split(payload, []byte{'\n'}) {
				var ev playground.WireEvent
				if err := json.Unmarshal(line, &ev); err != nil {
					t.Fatalf("bad event %q: %v", line, err)
				}
				types = append(types, ev.Type)
			}
		default:
			t.Fatalf("unexpected frame opcode %#x: %q", op, payload)
		}
	}
	if types[0] != playground.EventSubscribed || types[1] != playground.EventSnapshot {
		t.Fatalf("events %v, want subscribed then snapshot", types)
	}
	up.open()
}

// dialRaw opens a plain TCP connection to the server, for a client that
// speaks WebSocket by hand; it is closed when the test ends.
func dialRaw(t *testing.T, ts *testServer, timeout time.Duration) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(timeout))
	return c
}

// upgradeRequest is a WebSocket handshake for GET /ws with a bearer token.
func upgradeRequest(c net.Conn, token string) []byte {
	var key [16]byte
	_, _ = rand.Read(key[:])
	return fmt.Appendf(nil, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		c.RemoteAddr(), base64.StdEncoding.EncodeToString(key[:]), token)
}

// TestIdleViewersHoldNoReader: viewers that subscribed and then send
// nothing do not each keep a server goroutine waiting in a WebSocket read
// (on Linux their sockets wait in one epoll set), and every one of them
// is still served: a ping afterwards is answered on each.
func TestIdleViewersHoldNoReader(t *testing.T) {
	t.Parallel()
	up := newFakeOpenAI(t, 5, time.Millisecond)
	ts, owner := serveOwner(t, up)
	s := owner.createSession("hello", "openai/gpt-a")
	const n = 40
	viewers := make([]*wsViewer, n)
	for i := range viewers {
		v := ts.dialWS(t, owner.token, nil)
		v.send(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
		if ev := v.next(10 * time.Second); ev.Type != playground.EventSubscribed {
			t.Fatalf("viewer %d: first event %s, want subscribed", i, ev.Type)
		}
		viewers[i] = v
	}
	// Other tests of this package run beside this one, each with a few
	// connections whose reader may be at work at this moment.
	readers := -1
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		buf := make([]byte, 16<<20)
		readers = strings.Count(string(buf[:runtime.Stack(buf, true)]), "playground/api.(*wsConn).read(")
		if readers < n/2 {
			break
		}
	}
	if runtime.GOOS == "linux" && readers >= n/2 {
		t.Errorf("%d server goroutines wait in a WebSocket read with %d idle viewers", readers, n)
	}
	for _, v := range viewers {
		v.send(map[string]any{"type": "ping"})
		ev := v.next(10 * time.Second)
		for ev.Type != playground.EventPong { // the snapshot and what streams come first
			ev = v.next(10 * time.Second)
		}
	}
	up.open()
}
