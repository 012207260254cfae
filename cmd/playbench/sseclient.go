package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sseClient reads one Server-Sent Events response over a connection of
// its own: no http.Transport goroutines, the same lean reader for every
// system (Playground's stream, the upstream directly, the reverse proxy).
type sseClient struct {
	c       net.Conn
	body    io.ReadCloser
	buf     []byte
	pending []byte
}

// openSSE sends method path (with body, if any) to addr and reads the
// response header; the status must be 200.
func openSSE(ctx context.Context, d *dialer, addr, method, path string, header http.Header, body []byte) (*sseClient, error) {
	c, err := d.dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n", method, path, addr)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if body != nil {
		b.WriteString("Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	b.WriteString("\r\n")
	msg := append([]byte(b.String()), body...)
	if _, err := c.Write(msg); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("sse: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.Close()
		return nil, fmt.Errorf("sse: %s: %s", resp.Status, msg)
	}
	_ = c.SetDeadline(time.Time{})
	return &sseClient{c: c, body: resp.Body, buf: make([]byte, 16<<10)}, nil
}

// Next reads what has arrived and calls fn with the data of every
// complete event in it. It returns io.EOF when the stream ends.
func (s *sseClient) Next(fn func(data []byte)) error {
	n, err := s.body.Read(s.buf)
	if n > 0 {
		s.pending = append(s.pending, s.buf[:n]...)
		end := bytes.LastIndex(s.pending, []byte("\n\n"))
		if end >= 0 {
			events := s.pending[:end+1]
			for len(events) > 0 {
				i := bytes.IndexByte(events, '\n')
				line := events[:i]
				events = events[i+1:]
				if rest, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
					fn(rest)
				}
			}
			s.pending = append(s.pending[:0], s.pending[end+2:]...)
		}
	}
	return err
}

func (s *sseClient) Close() error { return s.c.Close() }
