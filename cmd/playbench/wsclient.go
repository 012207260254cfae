package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/playground-dev/playground/api/wstest"
)

// wsClient is a minimal RFC 6455 client, enough for the benchmark's
// viewers and the same for every system: no extensions, text messages,
// pings answered, one reader goroutine per connection. It is deliberately
// lean so that one load-generator core can drive thousands of viewers.
type wsClient struct {
	c   net.Conn
	br  *bufio.Reader
	wmu sync.Mutex
	msg []byte // the message being read, reused
}

// closeError is a close frame from the server.
type closeError struct{ code int }

func (e closeError) Error() string { return fmt.Sprintf("websocket closed with %d", e.code) }

// dialer spreads connections over several loopback source addresses so
// that tens of thousands of them do not run out of ephemeral ports.
type dialer struct {
	mu sync.Mutex
	n  int
}

func (d *dialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.n++
	src := net.IPv4(127, 0, 0, byte(1+d.n%8))
	d.mu.Unlock()
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}}
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		// Fall back to the default source address.
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	return c, err
}

// exchange dials addr on d, writes a request (its headers: head, the
// kind's own, then header; a body is JSON) and reads the answer's head,
// all under ctx's deadline. An answer other than want closes the
// connection and is an error that begins with what.
func exchange(ctx context.Context, d *dialer, addr, method, path string, head, header http.Header, body []byte, want int, what string) (net.Conn, *bufio.Reader, *http.Response, error) {
	c, err := d.dial(ctx, addr)
	if err != nil {
		return nil, nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, addr)
	for _, h := range []http.Header{head, header} {
		for k, vs := range h {
			for _, v := range vs {
				fmt.Fprintf(&b, "%s: %s\r\n", k, v)
			}
		}
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	if _, err := c.Write(append([]byte(b.String()), body...)); err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		c.Close()
		return nil, nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.Close()
		return nil, nil, nil, fmt.Errorf("%s: %s: %s", what, resp.Status, msg)
	}
	return c, br, resp, nil
}

// dialWS opens a WebSocket to ws://addr/path with extra headers.
func dialWS(ctx context.Context, d *dialer, addr, path string, header http.Header) (*wsClient, error) {
	var kb [16]byte
	_, _ = rand.Read(kb[:])
	key := base64.StdEncoding.EncodeToString(kb[:])
	head := http.Header{"Upgrade": {"websocket"}, "Connection": {"Upgrade"}, "Sec-WebSocket-Key": {key}, "Sec-WebSocket-Version": {"13"}}
	c, br, resp, err := exchange(ctx, d, addr, "GET", path, head, header, nil, http.StatusSwitchingProtocols, "ws handshake")
	if err != nil {
		return nil, err
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(h[:]) {
		c.Close()
		return nil, errors.New("ws handshake: wrong Sec-WebSocket-Accept")
	}
	_ = c.SetDeadline(time.Time{})
	return &wsClient{c: c, br: br}, nil
}

// writeFrame sends one masked frame.
func (w *wsClient) writeFrame(op byte, p []byte) error {
	frame := wstest.MaskedFrame(true, op, p)
	w.wmu.Lock()
	defer w.wmu.Unlock()
	_, err := w.c.Write(frame)
	return err
}

// WriteText sends one text message.
func (w *wsClient) WriteText(p []byte) error { return w.writeFrame(0x1, p) }

// Read returns the next text (or binary) message; the slice is valid until
// the next call. Pings are answered; a close frame ends with closeError.
func (w *wsClient) Read() ([]byte, error) {
	w.msg = w.msg[:0]
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return nil, err
		}
		fin, op := h[0]&0x80 != 0, h[0]&0x0f
		n := int64(h[1] & 0x7f)
		switch n {
		case 126:
			var e [2]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return nil, err
			}
			n = int64(binary.BigEndian.Uint16(e[:]))
		case 127:
			var e [8]byte
			if _, err := io.ReadFull(w.br, e[:]); err != nil {
				return nil, err
			}
			n = int64(binary.BigEndian.Uint64(e[:]))
		}
		if h[1]&0x80 != 0 {
			return nil, errors.New("ws: masked frame from server")
		}
		if n > 64<<20 {
			return nil, errors.New("ws: frame too large")
		}
		start := len(w.msg)
		w.msg = slices.Grow(w.msg, int(n))[:start+int(n)]
		if _, err := io.ReadFull(w.br, w.msg[start:]); err != nil {
			return nil, err
		}
		switch op {
		case 0x8: // close
			code := 1005
			if n >= 2 {
				code = int(binary.BigEndian.Uint16(w.msg[start:]))
			}
			_ = w.writeFrame(0x8, w.msg[start:start+min(int(n), 2)])
			return nil, closeError{code}
		case 0x9: // ping
			payload := append([]byte(nil), w.msg[start:]...)
			w.msg = w.msg[:start]
			if err := w.writeFrame(0xA, payload); err != nil {
				return nil, err
			}
			continue
		case 0xA: // pong
			w.msg = w.msg[:start]
			continue
		}
		if fin {
			return w.msg, nil
		}
	}
}

func (w *wsClient) Close() error { return w.c.Close() }
