package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// sink gathers what every viewer receives during one cell: the latency of
// each chunk created inside the measured window [t0, t1), how many viewers
// confirmed their subscription, and how many were cut off.
type sink struct {
	t0, t1      atomic.Int64 // the window, in UnixNano; t1 0 means open
	h           hist
	ready       atomic.Int64
	disconnects atomic.Int64
	closeCodes  sync.Map // close code → *atomic.Int64
	firstErr    atomic.Pointer[string]
}

func newSink() *sink {
	s := &sink{}
	s.t0.Store(1<<62 + 1) // nothing counts until the window opens
	return s
}

// chunk records one chunk's latency if it was created in the window.
func (s *sink) chunk(stamp int64, at time.Time) {
	t0, t1 := s.t0.Load(), s.t1.Load()
	if stamp < t0 || (t1 != 0 && stamp >= t1) {
		return
	}
	s.h.Record(time.Duration(at.UnixNano() - stamp))
}

// take counts one of our events that every kind of viewer counts alike,
// received at at: a chunk (its latency) or a snapshot (a viewer ready). It
// reports whether event was one of them.
func (s *sink) take(event []byte, at time.Time) bool {
	switch {
	case bytes.HasPrefix(event, ourChunk):
		if stamp, ok := stampAfter(event, keyText); ok {
			s.chunk(stamp, at)
		}
	case bytes.HasPrefix(event, ourSnap):
		s.ready.Add(1)
	default:
		return false
	}
	return true
}

func (s *sink) cutOff(err error) {
	s.disconnects.Add(1)
	code := 0
	var ce closeError
	if errors.As(err, &ce) {
		code = ce.code
	}
	v, _ := s.closeCodes.LoadOrStore(code, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	s.noteErr(err)
}

func (s *sink) noteErr(err error) {
	msg := err.Error()
	s.firstErr.CompareAndSwap(nil, &msg)
}

func (s *sink) codes() string {
	var b bytes.Buffer
	s.closeCodes.Range(func(k, v any) bool {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d×%d", v.(*atomic.Int64).Load(), k.(int))
		return true
	})
	return b.String()
}

// stampAfter parses the creation stamp that starts the JSON string after
// key in line ("…"key"1764…  xxx").
func stampAfter(line, key []byte) (int64, bool) {
	i := bytes.Index(line, key)
	if i < 0 {
		return 0, false
	}
	var v int64
	n := 0
	for _, c := range line[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
		n++
	}
	return v, n > 0
}

var (
	keyText    = []byte(`"text":"`)
	keyContent = []byte(`"content":"`)
	ourChunk   = []byte(`{"type":"chunk"`)
	ourSnap    = []byte(`{"type":"snapshot"`)
	ourDone    = []byte(`{"type":"done"`)
	ourError   = []byte(`{"type":"error"`)
)

// viewer is one connected watcher of a fan-out cell.
type viewer interface {
	// watch subscribes to the feed (replacing the previous one) and
	// reports to s from now on; the subscription's confirmation counts
	// in s.ready.
	watch(ctx context.Context, f feed, s *sink) error
	// alive reports whether the connection still stands.
	alive() bool
	close()
}

// wsLines is a viewer's WebSocket, read by one goroutine: every message
// is split into its lines, and each goes to the viewer's handler with the
// sink of the current cell (nil before the first). The connection's end
// is a cut-off in that sink, unless the viewer closed it.
type wsLines struct {
	ws      *wsClient
	cur     atomic.Pointer[sink]
	dead    atomic.Bool
	closing atomic.Bool
	done    chan struct{}
}

// start starts the reader goroutine; close waits for it.
func (v *wsLines) start(ws *wsClient, handle func(s *sink, line []byte, at time.Time)) {
	v.ws, v.done = ws, make(chan struct{})
	go v.read(handle)
}

func (v *wsLines) read(handle func(s *sink, line []byte, at time.Time)) {
	defer close(v.done)
	for {
		msg, err := v.ws.Read()
		at := time.Now()
		if err != nil {
			v.dead.Store(true)
			if s := v.cur.Load(); s != nil && !v.closing.Load() {
				s.cutOff(err)
			}
			return
		}
		s := v.cur.Load()
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			handle(s, line, at)
		}
	}
}

func (v *wsLines) alive() bool { return !v.dead.Load() }

func (v *wsLines) close() {
	v.closing.Store(true)
	v.ws.Close()
	<-v.done
}

// wsViewer watches Playground sessions over one WebSocket.
type wsViewer struct {
	wsLines
	session string
}

func dialWSViewer(ctx context.Context, d *dialer, c *pgClient) (*wsViewer, error) {
	ws, err := dialWS(ctx, d, c.addr(), "/ws", c.authHeader())
	if err != nil {
		return nil, err
	}
	v := &wsViewer{}
	v.start(ws, v.line)
	return v, nil
}

// line handles one event of ours.
func (v *wsViewer) line(s *sink, line []byte, at time.Time) {
	if s == nil {
		return
	}
	if !s.take(line, at) && bytes.HasPrefix(line, ourError) {
		s.noteErr(errors.New(string(line)))
	}
}

func (v *wsViewer) watch(_ context.Context, f feed, s *sink) error {
	v.cur.Store(s)
	if v.session != "" {
		if err := v.ws.WriteText([]byte(`{"type":"unsubscribe","sessionId":"` + v.session + `"}`)); err != nil {
			return err
		}
	}
	v.session = f.session()
	return v.ws.WriteText([]byte(`{"type":"subscribe","sessionId":"` + v.session + `","since":0}`))
}

// sseViewer watches Playground sessions over SSE: one stream per session.
type sseViewer struct {
	d       *dialer
	c       *pgClient
	stream  *sseClient
	done    chan struct{}
	dead    atomic.Bool
	closing atomic.Bool
}

func newSSEViewer(d *dialer, c *pgClient) *sseViewer { return &sseViewer{d: d, c: c} }

func (v *sseViewer) watch(ctx context.Context, f feed, s *sink) error {
	v.stop()
	st, err := openSSE(ctx, v.d, v.c.addr(), "GET", "/sessions/"+f.session()+"/stream?since=0", v.c.authHeader(), nil)
	if err != nil {
		v.dead.Store(true)
		return err
	}
	v.stream, v.done = st, make(chan struct{})
	v.dead.Store(false)
	v.closing.Store(false)
	go v.read(st, s, v.done)
	return nil
}

// read is the stream's reader goroutine; stop waits for it.
func (v *sseViewer) read(st *sseClient, s *sink, done chan struct{}) {
	defer close(done)
	ended := false
	for {
		var at time.Time
		err := st.Next(func(data []byte) {
			if at.IsZero() {
				at = time.Now()
			}
			if !s.take(data, at) && bytes.HasPrefix(data, ourDone) {
				ended = true
			}
		})
		if err != nil {
			if !ended && !v.closing.Load() {
				v.dead.Store(true)
				if errors.Is(err, io.EOF) {
					err = errors.New("sse: stream ended before done")
				}
				s.cutOff(err)
			}
			return
		}
	}
}

func (v *sseViewer) stop() {
	if v.stream != nil {
		v.closing.Store(true)
		v.stream.Close()
		<-v.done
		v.stream = nil
	}
}

func (v *sseViewer) alive() bool { return !v.dead.Load() }
func (v *sseViewer) close()      { v.stop() }

// cfViewer watches a Centrifugo channel over one WebSocket with the JSON
// protocol: connect, subscribe, then publications as pushes.
type cfViewer struct {
	wsLines
	subbed bool
}

var (
	cfPush     = []byte(`{"push":`)
	cfSubReply = []byte(`{"id":2,`)
	cfPing     = []byte(`{}`)
)

func dialCFViewer(ctx context.Context, d *dialer, addr string) (*cfViewer, error) {
	ws, err := dialWS(ctx, d, addr, "/connection/websocket", nil)
	if err != nil {
		return nil, err
	}
	if err := ws.WriteText([]byte(`{"id":1,"connect":{}}`)); err != nil {
		ws.Close()
		return nil, err
	}
	v := &cfViewer{}
	v.start(ws, v.line)
	return v, nil
}

// line handles one frame of Centrifugo's: its pings are answered even
// before the first cell.
func (v *cfViewer) line(s *sink, line []byte, at time.Time) {
	switch {
	case bytes.HasPrefix(line, cfPush):
		if st, ok := stampAfter(line, keyText); ok && s != nil {
			s.chunk(st, at)
		}
	case bytes.Equal(line, cfPing):
		_ = v.ws.WriteText(cfPing) // pong
	case bytes.HasPrefix(line, cfSubReply):
		if s != nil {
			if bytes.Contains(line, []byte(`"error"`)) {
				s.noteErr(errors.New(string(line)))
			} else {
				s.ready.Add(1)
			}
		}
	}
}

// watch subscribes once; later cells publish into the same channel, so
// the subscription stands and counts as ready at once.
func (v *cfViewer) watch(_ context.Context, _ feed, s *sink) error {
	v.cur.Store(s)
	if v.subbed {
		s.ready.Add(1)
		return nil
	}
	v.subbed = true
	return v.ws.WriteText([]byte(`{"id":2,"subscribe":{"channel":"bench"}}`))
}

// itoa is strconv.Itoa, short.
func itoa(i int) string { return strconv.Itoa(i) }
