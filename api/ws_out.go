package api

import (
	"bufio"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/playground-dev/playground"
)

// A WebSocket viewer spends almost all of its life idle, waiting for the
// next chunk, and then receives the same small frame as every other viewer
// of the session. Two things follow.
//
// Memory: net/http hands a hijacked connection over with a 4 KiB read
// buffer and a 4 KiB write buffer, which coder/websocket keeps for the
// connection's whole life: 8 KiB per idle viewer, more than everything
// else a viewer costs. leanHijack swaps them for small ones before the
// library sees them. Clients send a few small frames (subscribe, ping), so
// a 16-byte read buffer costs a read call or two per frame and nothing
// while idle. The library's own writes (pongs, close frames: at most 127
// bytes) fit whole in a 256-byte write buffer, so each reaches wsOut as
// one piece.
//
// Time: our event frames do not go through the library. wsOut frames each
// message itself (a server's frames are not masked: two to ten bytes of
// header) and writes it with one call; the library's control frames go
// through the same lock, so frames never interleave. A message can also be
// written without waiting for the socket (writeNowLocked): the producer that
// pushes a frame to an idle viewer's queue sends it on the spot when the
// socket takes it, which it almost always does, and no goroutine is
// started or woken for it. Only what the socket would not take waits for
// the connection's writer goroutine.

// leanHijack wraps the ResponseWriter of a WebSocket upgrade.
type leanHijack struct {
	http.ResponseWriter
	out *wsOut // set by Hijack
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (h *leanHijack) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// Hijack takes the connection over with small buffers. Bytes the client
// sent after its handshake and net/http already buffered (a client that
// did not wait for the 101) keep their original reader.
func (h *leanHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	r := brw.Reader
	if r.Buffered() == 0 {
		r = bufio.NewReaderSize(conn, 16)
	}
	h.out = &wsOut{conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		h.out.raw, _ = sc.SyscallConn()
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(h.out, 256)), nil
}

// errCloseSent: the library sent a close frame; nothing may follow it.
var errCloseSent = errors.New("ws: close frame sent")

// wsOut is everything written to one WebSocket's socket. Its lock orders
// whole frames: our messages and the library's control frames. The first
// failed write is kept: every later one returns it.
type wsOut struct {
	mu        sync.Mutex
	conn      net.Conn
	raw       syscall.RawConn // for writes that must not wait; nil: none
	rest      []byte          // the unwritten end of a message writeNowLocked began
	restBuf   *[]byte         // the pooled buffer rest lies in
	closeSent bool
	err       error
}

// Write is the library's way out (via its bufio.Writer): a whole control
// frame, written after the end of any message still under way.
func (o *wsOut) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.finishLocked(); err != nil {
		return 0, err
	}
	if len(p) > 0 && p[0]&0x0f == 0x8 {
		o.closeSent = true
	}
	n, err := o.conn.Write(p)
	o.fail(err)
	return n, err
}

func (o *wsOut) fail(err error) {
	if err != nil && o.err == nil {
		o.err = err
	}
}

// finishLocked writes, waiting as long as it takes, what writeNowLocked
// left. The caller holds o.mu.
func (o *wsOut) finishLocked() error {
	if o.err != nil || o.rest == nil {
		return o.err
	}
	_, err := o.conn.Write(o.rest)
	o.fail(err)
	o.rest = nil
	putSendBuf(o.restBuf)
	o.restBuf = nil
	return o.err
}

// canWriteNow reports whether writeNowLocked may be tried: a socket to
// try it on, and nothing ahead of it. The caller holds o.mu.
func (o *wsOut) canWriteNow() bool {
	return o.raw != nil && o.rest == nil && o.err == nil && !o.closeSent
}

// writeNowLocked frames frames as one text message and writes what the
// socket takes without waiting for it; what it would not take is kept for
// finishLocked. It reports whether the whole message went out. The caller
// holds o.mu and has checked canWriteNow.
func (o *wsOut) writeNowLocked(frames []playground.Frame) bool {
	buf := frameText(frames)
	msg := *buf
	n := 0
	var werr error
	if err := o.raw.Write(func(fd uintptr) bool {
		for n < len(msg) {
			m, err := writeFD(fd, msg[n:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				if err != syscall.EAGAIN {
					werr = err
				}
				break
			}
			n += m
		}
		return true // never wait here: what is left waits for the writer
	}); err != nil && werr == nil {
		werr = err
	}
	o.fail(werr)
	if werr != nil || n == len(msg) {
		putSendBuf(buf)
		return werr == nil
	}
	o.rest, o.restBuf = msg[n:], buf
	return false
}

// sendFramesLocked writes frames as one text message (their JSON objects
// separated by "\n") after what writeNowLocked left, waiting as long as
// the socket needs (the caller bounds that). The frames' bytes are not
// copied: header, frames and line breaks go to the socket with writev, so
// a viewer catching up on a thousand chunks costs no megabyte of copying.
// The caller holds o.mu.
func (o *wsOut) sendFramesLocked(frames []playground.Frame) error {
	if err := o.finishLocked(); err != nil {
		return err
	}
	if o.closeSent {
		return errCloseSent
	}
	bufs := make(net.Buffers, 0, 2*len(frames))
	bufs = append(bufs, appendTextHeader(make([]byte, 0, 10), textLen(frames)))
	for i, f := range frames {
		if i > 0 {
			bufs = append(bufs, lineBreak)
		}
		bufs = append(bufs, f.Data)
	}
	_, err := bufs.WriteTo(o.conn)
	o.fail(err)
	return o.err
}

// frameText returns frames as one final, unmasked text frame (their JSON
// objects separated by "\n"), copied once into a pooled buffer.
func frameText(frames []playground.Frame) *[]byte {
	buf := getSendBuf()
	b := appendTextHeader(*buf, textLen(frames))
	for i, f := range frames {
		if i > 0 {
			b = append(b, lineBreak...)
		}
		b = append(b, f.Data...)
	}
	*buf = b
	return buf
}

// textLen is the length of frames as one message: their JSON objects and
// the line breaks between them.
func textLen(frames []playground.Frame) int {
	n := len(frames) - 1
	for _, f := range frames {
		n += len(f.Data)
	}
	return n
}

// appendTextHeader appends the header of a final, unmasked text frame of
// n bytes.
func appendTextHeader(b []byte, n int) []byte {
	b = append(b, 0x81) // FIN, text
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
