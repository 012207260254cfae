package main

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/playground-dev/playground/internal/listenfd"
)

// The floor is the cost no server on this machine can go below: a bare
// program (`playbench _floor`) on the server's core, GOMAXPROCS=1, that
// writes each frame it is fed, as the same WebSocket frame Playground
// sends, to every viewer's loopback socket from one goroutine, with
// nothing else (no session, no queue, no JSON, no HTTP). Its viewers and
// its timing are the fan-out cell's own, so our p99 and CPU per delivery
// divide by its figures of the same run.
type floorTarget struct {
	b    *bench
	proc *process
	addr string // viewers
	feed string // the publisher
}

func (t *floorTarget) name() string { return "floor" }

func (t *floorTarget) start(ctx context.Context) error {
	if t.b.opt.inproc { // the smoke test
		lns, err := listenLoopback(2)
		if err != nil {
			return err
		}
		vln, fln := lns[0], lns[1]
		t.addr, t.feed = vln.Addr().String(), fln.Addr().String()
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- serveFloorOn(fctx, vln, fln) }()
		t.proc = &process{name: "floor", stopFn: func() { cancel(); <-done }}
		return nil
	}
	t.b.runs++
	log := filepath.Join(t.b.tmp, fmt.Sprintf("floor-%d.log", t.b.runs))
	lns, err := listenLoopback(2)
	if err != nil {
		return err
	}
	defer closeListeners(lns)
	t.addr, t.feed = lns[0].Addr().String(), lns[1].Addr().String()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	t.proc, err = startProcess("floor", pinned(ctx, serverCPU, self, "_floor"), log, lns...)
	return err
}

func (t *floorTarget) pids() []int { return []int{t.proc.pid()} }

func (t *floorTarget) connect(ctx context.Context, _ int) (viewer, error) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ws, err := dialWS(cctx, t.b.dial, t.addr, "/ws", nil)
	if err != nil {
		return nil, err
	}
	v := &floorViewer{}
	v.start(ws, v.line)
	return v, nil
}

func (t *floorTarget) prepare(ctx context.Context, rate, size int) (feed, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", t.feed)
	if err != nil {
		return nil, err
	}
	return &floorFeed{loopFeed: newLoopFeed(rate), conn: c, size: size}, nil
}

func (t *floorTarget) stop() { t.proc.stop() }

// floorViewer reads the floor's frames: Playground's chunk events, with
// no subscription to wait for.
type floorViewer struct{ wsLines }

func (v *floorViewer) line(s *sink, line []byte, at time.Time) {
	if s != nil {
		if st, ok := stampAfter(line, keyText); ok {
			s.chunk(st, at)
		}
	}
}

func (v *floorViewer) watch(_ context.Context, _ feed, s *sink) error {
	v.cur.Store(s)
	s.ready.Add(1)
	return nil
}

// floorFeed sends the floor open-loop chunk events shaped as
// Playground's, one a line, over one loopback connection.
type floorFeed struct {
	loopFeed
	conn net.Conn
	size int
}

func (f *floorFeed) session() string { return "floor" }

func (f *floorFeed) start() {
	var b []byte
	f.run(func(i int, stamp int64) bool {
		b = appendFloorEvent(b[:0], i, stamp, f.size)
		_, err := f.conn.Write(b)
		return err == nil
	})
}

func (f *floorFeed) stop() { f.halt(func() { f.conn.Close() }) }

// appendFloorEvent appends a chunk event as Playground encodes one, and
// a newline.
func appendFloorEvent(b []byte, i int, stamp int64, size int) []byte {
	b = append(b, `{"type":"chunk","sessionId":"s_00000000-0000-0000-0000-000000000000","seq":`...)
	b = strconv.AppendInt(b, int64(i+2), 10)
	b = append(b, `,"responseId":"r_00000000-0000-0000-0000-000000000000","model":"openai/bench","index":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `,"text":"`...)
	n := len(b)
	b = strconv.AppendInt(b, stamp, 10)
	b = append(b, ' ')
	for len(b)-n < size {
		b = append(b, 'x')
	}
	return append(b, "\"}\n"...)
}

// serveFloor is `playbench _floor`: viewers on the first inherited
// socket, the feed on the second.
func serveFloor(ctx context.Context) error {
	lns, err := listenfd.Inherited(os.Getenv)
	if err != nil {
		return err
	}
	if len(lns) != 2 {
		closeListeners(lns)
		return fmt.Errorf("_floor: want 2 inherited sockets, have %d", len(lns))
	}
	return serveFloorOn(ctx, lns[0], lns[1])
}

// serveFloorOn answers each viewer's WebSocket handshake, then never
// reads from it again. Each event line fed is framed once and written to
// every viewer in turn by the one goroutine that reads the feed; a viewer
// whose write fails is dropped. It returns, with every socket closed,
// once ctx ends.
func serveFloorOn(ctx context.Context, viewersLn, feedLn net.Listener) error {
	var (
		mu      sync.Mutex
		viewers []net.Conn
		conns   = map[net.Conn]bool{} // every open socket, closed at the end
		wg      sync.WaitGroup
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return false
		}
		conns[c] = true
		return true
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		viewersLn.Close()
		feedLn.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := viewersLn.Accept()
			if err != nil {
				return
			}
			if !track(c) {
				c.Close()
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if floorHandshake(c) != nil {
					c.Close()
					return
				}
				mu.Lock()
				viewers = append(viewers, c)
				mu.Unlock()
			}()
		}
	}()
	defer wg.Wait()
	for {
		c, err := feedLn.Accept()
		if err != nil {
			return nil
		}
		if !track(c) {
			c.Close()
			return nil
		}
		r := bufio.NewReaderSize(c, 64<<10)
		var frame []byte
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				break
			}
			frame = appendWSText(frame[:0], line[:len(line)-1])
			mu.Lock()
			vs := viewers
			mu.Unlock()
			for i, v := range vs {
				if v == nil {
					continue
				}
				if _, err := v.Write(frame); err != nil {
					v.Close()
					vs[i] = nil
				}
			}
		}
		c.Close()
	}
}

// floorHandshake answers a WebSocket upgrade without looking further
// than the key.
func floorHandshake(c net.Conn) error {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return err
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(h[:]))
	_ = c.SetDeadline(time.Time{})
	return err
}

// appendWSText appends p as one unmasked WebSocket text frame.
func appendWSText(b, p []byte) []byte {
	switch n := len(p); {
	case n <= 125:
		b = append(b, 0x81, byte(n))
	case n <= 0xffff:
		b = append(b, 0x81, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x81, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}
