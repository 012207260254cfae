package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/playground-dev/playground"
)

// TestWSFirstFrameWithHandshake: a client that does not wait for the 101
// and sends its subscribe frame and a WebSocket ping in the same packet
// as its handshake is served like any other. The server reads a
// connection's frames through its own small buffer after the upgrade;
// what net/http had already read must not be lost on the way.
func TestWSFirstFrameWithHandshake(t *testing.T) {
	up := newFakeOpenAI(t, 5, time.Millisecond)
	ts := startServer(t, "sqlite", up.env("openai/gpt-a"), nil)
	owner := ts.client(t).register()
	s := owner.createSession("hello", "openai/gpt-a")

	c := dialRaw(t, ts, 10*time.Second)
	var out bytes.Buffer
	out.Write(upgradeRequest(c, owner.token))
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	out.Write(clientFrame(0x1, sub))
	out.Write(clientFrame(0x9, []byte("are you there")))
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
		op, payload := serverFrame(t, br)
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

// clientFrame encodes one masked, final frame, as a client sends it.
func clientFrame(op byte, p []byte) []byte {
	b := []byte{0x80 | op}
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, c := range p {
		b = append(b, c^mask[i%4])
	}
	return b
}

// serverFrame reads one unmasked, final frame.
func serverFrame(t *testing.T, r io.Reader) (op byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		t.Fatalf("frame header %x: want final and unmasked", h)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		_, _ = io.ReadFull(r, e[:])
		n = int(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		_, _ = io.ReadFull(r, e[:])
		n = int(binary.BigEndian.Uint64(e[:]))
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, payload
}

// TestWSSlowReaderGetsEveryFrameWhole: a viewer whose socket fills up
// (a small kernel send buffer on the server, a reader that dawdles) and who pings all the
// while still gets every event, whole and in order, and every pong. The
// server writes what the socket takes without waiting and leaves the rest
// to the connection's writer; the pongs the WebSocket library sends must
// never land inside one of those half-written frames.
func TestWSSlowReaderGetsEveryFrameWhole(t *testing.T) {
	up := newFakeOpenAI(t, 300, time.Millisecond)
	up.size = 1 << 10
	smallBuffers[t.Name()] = true
	ts := startServer(t, "sqlite", up.env("openai/gpt-a"), nil)
	owner := ts.client(t).register()
	s := owner.createSession("a long answer", "openai/gpt-a")

	c := dialRaw(t, ts, 60*time.Second)
	_ = c.(*net.TCPConn).SetReadBuffer(32 << 10)
	if _, err := c.Write(upgradeRequest(c, owner.token)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "sessionId": s.ID, "since": 0})
	if _, err := c.Write(clientFrame(0x1, sub)); err != nil {
		t.Fatal(err)
	}
	// The upstream opens once the viewer holds the session's snapshot.
	for snapshot := false; !snapshot; {
		if op, payload := serverFrame(t, br); op != 0x1 || !bytes.Contains(payload, []byte(`"type":"snapshot"`)) {
			if op != 0x1 {
				t.Fatalf("opcode %#x before the snapshot", op)
			}
		} else {
			snapshot = true
		}
	}
	up.open()

	var lastSeq int64
	pings, pongs, frames, chunks := 0, 0, 0, 0
	for done := false; !done; {
		op, payload := serverFrame(t, br)
		switch op {
		case 0xA:
			if want := fmt.Sprintf("ping %d", pongs); string(payload) != want {
				t.Fatalf("pong %q, want %q", payload, want)
			}
			pongs++
			continue
		case 0x1:
		default:
			t.Fatalf("frame opcode %#x in the middle of the stream", op)
		}
		frames++
		for _, line := range bytes.Split(payload, []byte{'\n'}) {
			var ev playground.WireEvent
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("event %q is not whole: %v", line, err)
			}
			if ev.Seq > 0 {
				if ev.Seq != lastSeq+1 {
					t.Fatalf("seq %d after %d", ev.Seq, lastSeq)
				}
				lastSeq = ev.Seq
			}
			done = done || ev.Type == playground.EventDone
			if ev.Type == playground.EventChunk {
				chunks++
			}
		}
		if frames%3 == 0 {
			if _, err := c.Write(clientFrame(0x9, fmt.Appendf(nil, "ping %d", pings))); err != nil {
				t.Fatal(err)
			}
			pings++
		}
		if frames == 1 {
			time.Sleep(200 * time.Millisecond) // let the server's socket fill
		}
	}
	for pongs < pings {
		if op, payload := serverFrame(t, br); op != 0xA {
			t.Fatalf("after done: opcode %#x %q", op, payload)
		}
		pongs++
	}
	if chunks != 300 {
		t.Fatalf("%d chunks arrived, the upstream sent 300", chunks)
	}
	t.Logf("%d frames up to seq %d, %d pings answered", frames, lastSeq, pongs)
}
