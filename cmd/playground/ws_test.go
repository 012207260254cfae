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
	ts := startServer(t, "sqlite", up.env("openai/gpt-a"), nil)
	owner := ts.client(t).register()
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
