// Package wsraw writes a WebSocket server's text messages straight to the
// socket, beside coder/websocket, which keeps the handshake, the reads and
// the control frames (pongs, the close handshake).
//
// Why go beneath the library: a viewer spends almost all of its life idle,
// and then receives the same small message as every other viewer of a
// session. Through the library each message costs a context, a write
// goroutine handoff and a copy; here it is framed once (a server's frames
// are not masked: two to ten bytes of header) and, when the socket takes
// it without waiting, which it almost always does, written on the spot by
// the producer that has it: no goroutine is started or woken for it. Only
// what the socket would not take waits for a writer that may block. A
// plain Conn (NewPlainConn) does the same for a bare byte stream: an SSE
// response whose connection the server took over.
//
// Memory: net/http hands a hijacked connection over with a 4 KiB read
// buffer and a 4 KiB write buffer, which the library keeps for the
// connection's whole life: 8 KiB per idle viewer, more than everything
// else a viewer costs. Hijacker swaps them for small ones before the
// library sees them. And an idle viewer's reader need not wait in a
// goroutine of its own: Park hands the wait to one poller for all of
// them (on Linux), and the reader runs again once the client sends.
//
// What this package relies on in coder/websocket (pinned by
// TestLibraryContract, so that an upgrade that changes it fails loudly):
// the library writes through the bufio.Writer that Hijack returns, never
// to the net.Conn directly; it flushes each control frame whole, and one
// fits in the 256-byte buffer, so each reaches Conn.Write as one piece;
// and its close frame is the frame whose opcode is 0x8. Conn orders those
// control frames and our messages under one lock, so that frames never
// interleave, and after the library's close frame it writes nothing more
// (RFC 6455 5.5.1).
package wsraw

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// ErrCloseSent is the error of a write after the close frame: nothing may
// follow it on the wire.
var ErrCloseSent = errors.New("wsraw: close frame sent")

// Hijacker wraps the ResponseWriter of a WebSocket upgrade; hand it to
// websocket.Accept. Once the upgrade is done, Conn is the connection's
// write side.
type Hijacker struct {
	http.ResponseWriter
	Conn *Conn // set by Hijack
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (h *Hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Hijack takes the connection over with small buffers: 16 bytes to read
// (clients send a few small frames; a read call or two per frame, nothing
// while idle) and 256 to write (the library's control frames, at most 127
// bytes each). Bytes the client sent after its handshake and net/http
// already buffered (a client that did not wait for the 101) keep their
// original reader.
func (h *Hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	r := brw.Reader
	if r.Buffered() == 0 {
		r = bufio.NewReaderSize(conn, 16)
	}
	h.Conn = NewConn(conn)
	if r != brw.Reader {
		h.Conn.in = r // bytes read early sit in the library's own reader, where WaitRead cannot see them
	}
	return parkedCloser{conn, h.Conn}, bufio.NewReadWriter(r, bufio.NewWriterSize(h.Conn, 256)), nil
}

// parkedCloser is the socket as the library holds it: its Close (the
// library's only way to close it) takes it off the idle poller first.
type parkedCloser struct {
	net.Conn
	c *Conn
}

func (p parkedCloser) Close() error {
	closing(p.c)
	return p.Conn.Close()
}

// Conn is everything written to one WebSocket's socket: our text messages
// and, through Write, the library's control frames. Its lock orders whole
// frames. The first failed write is kept: every later one returns it.
//
// A message is given as parts whose concatenation is its payload; the
// parts are not kept after the call returns.
type Conn struct {
	mu        sync.Mutex
	conn      net.Conn
	raw       syscall.RawConn // for writes that must not wait; nil: none
	rest      []byte          // the unwritten end of a message WriteNow began
	restBuf   *[]byte         // the pooled buffer rest lies in
	closeSent bool
	err       error
	plain     bool // a bare byte stream: messages go out unframed

	// The read side, for WaitRead: the library's reader, which it reads
	// under its own lock; the close frame's write (readDone) is the last
	// moment before the library may read it from a second goroutine.
	in       *bufio.Reader
	rmu      sync.Mutex
	readDone bool

	// Parked with the idle poller (park_linux.go), under its lock.
	fd      int32
	resume  func() // non-nil while parked
	closing bool   // the socket is closing: no parking any more
}

// NewConn returns the write side of conn. Hijacker makes one; tests and
// servers that upgrade by other means may too.
func NewConn(conn net.Conn) *Conn {
	c := &Conn{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	return c
}

// NewPlainConn returns the write side of a connection that carries a
// bare byte stream, such as a hijacked Server-Sent Events response: a
// message is its parts, written one after the other with no framing. The
// on-the-spot write and the waiting Flush work as for a WebSocket.
func NewPlainConn(conn net.Conn) *Conn {
	c := NewConn(conn)
	c.plain = true
	return c
}

// Write is the library's way out (via its bufio.Writer): a whole control
// frame, written after the end of any message still under way.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.finishLocked(); err != nil {
		return 0, err
	}
	if c.closeSent {
		return 0, ErrCloseSent
	}
	if !c.plain && len(p) > 0 && p[0]&0x0f == opClose {
		c.closeSent = true
		c.rmu.Lock()
		c.readDone = true // the library now waits for the client's close itself
		c.rmu.Unlock()
	}
	n, err := c.conn.Write(p)
	c.fail(err)
	return n, err
}

// Park hands the wait for the client's next frame to the idle poller: it
// reports true when resume will run, in a goroutine of its own, once the
// client has sent something or the connection has ended, and the caller
// may return; an idle viewer then costs no goroutine at all. False: the
// caller must read (after WaitRead) itself, as it must where there is no
// epoll, or when the library holds bytes it has not handed out yet.
func (c *Conn) Park(resume func()) bool {
	if c.in == nil || c.raw == nil {
		return false
	}
	c.rmu.Lock()
	ready := c.readDone || c.in.Buffered() > 0
	c.rmu.Unlock()
	return !ready && park(c, resume)
}

// WaitRead returns when the client has sent something the library has not
// read yet, or the connection has ended, without reading it: the caller
// then reads the next message, which takes a much deeper stack. A reader
// goroutine that waits here for a client that sends nothing (an idle
// viewer) keeps the few hundred bytes of stack a fresh goroutine needs,
// not the 4 KiB of one parked inside the library's read. It returns at
// once where it cannot wait so (no Hijacker, a platform without it, bytes
// the client sent before the upgrade's answer).
func (c *Conn) WaitRead() {
	if c.in == nil || c.raw == nil {
		return
	}
	c.rmu.Lock()
	ready := c.readDone || c.in.Buffered() > 0
	c.rmu.Unlock()
	if !ready {
		_ = c.raw.Read(readable) // an error is the read's to report
	}
}

// WriteNow sends one text message without waiting for the socket. next is
// called with the lock held and returns the message's parts (nil: nothing
// to send), so that whoever drains a queue into it does so in the order
// the messages go out.
//
// WriteNow reports true when the message went out whole (or there was
// none); false when the socket took only part of it, or WriteNow could not
// try (the lock is busy, a message is unfinished, the platform cannot
// write without waiting): then a goroutine that may wait must call Flush.
// next is not called when WriteNow cannot try.
func (c *Conn) WriteNow(next func() [][]byte) bool {
	if !c.mu.TryLock() {
		return false
	}
	defer c.mu.Unlock()
	if c.raw == nil || c.rest != nil || c.err != nil || c.closeSent {
		return false
	}
	parts := next()
	if parts == nil {
		return true
	}
	buf := c.frame(parts)
	msg := *buf
	n, err := writeNoWait(c.raw, msg)
	c.fail(err)
	if err != nil || n == len(msg) {
		putSendBuf(buf)
		return err == nil
	}
	c.rest, c.restBuf = msg[n:], buf
	return false
}

// Flush writes the end of a message WriteNow began, then parts as one
// text message (none: nil), waiting as long as the socket needs: the
// caller bounds that, by closing the socket or with a write deadline. The
// parts are not copied: header and parts go to the socket with writev, so
// a viewer catching up on a thousand messages costs no megabyte of copying.
func (c *Conn) Flush(parts [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.finishLocked(); err != nil || parts == nil {
		return err
	}
	if c.closeSent {
		return ErrCloseSent
	}
	bufs := make(net.Buffers, 0, 1+len(parts))
	if !c.plain {
		bufs = append(bufs, appendTextHeader(make([]byte, 0, 10), partsLen(parts)))
	}
	bufs = append(bufs, parts...)
	_, err := bufs.WriteTo(c.conn)
	c.fail(err)
	return c.err
}

func (c *Conn) fail(err error) {
	if err != nil && c.err == nil {
		c.err = err
	}
}

// finishLocked writes, waiting as long as it takes, what WriteNow left.
// The caller holds c.mu.
func (c *Conn) finishLocked() error {
	if c.err != nil || c.rest == nil {
		return c.err
	}
	_, err := c.conn.Write(c.rest)
	c.fail(err)
	c.rest = nil
	putSendBuf(c.restBuf)
	c.restBuf = nil
	return c.err
}

// Frame opcodes (RFC 6455 5.2).
const (
	opText  = 0x1
	opClose = 0x8
)

// frame returns parts as one final, unmasked text frame (on a plain
// connection: as they are), copied once into a pooled buffer.
func (c *Conn) frame(parts [][]byte) *[]byte {
	buf := getSendBuf()
	b := *buf
	if !c.plain {
		b = appendTextHeader(b, partsLen(parts))
	}
	for _, p := range parts {
		b = append(b, p...)
	}
	*buf = b
	return buf
}

func partsLen(parts [][]byte) int {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	return n
}

// appendTextHeader appends the header of a final, unmasked text frame of
// n bytes, its length in the shortest form (RFC 6455 5.2).
func appendTextHeader(b []byte, n int) []byte {
	b = append(b, 0x80|opText) // FIN, text
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126)
		return binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

// sendBufs holds the buffers that messages are framed in while they are
// written, shared by every connection.
var sendBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func getSendBuf() *[]byte { return sendBufs.Get().(*[]byte) }

func putSendBuf(b *[]byte) {
	if cap(*b) > 64<<10 {
		return // a burst's buffer is not kept for the next small message
	}
	*b = (*b)[:0]
	sendBufs.Put(b)
}
