package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
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
	c, _, resp, err := exchange(ctx, d, addr, method, path, http.Header{"Accept": {"text/event-stream"}}, header, body, http.StatusOK, "sse")
	if err != nil {
		return nil, err
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
