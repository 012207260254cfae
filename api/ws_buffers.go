package api

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// A WebSocket viewer spends almost all of its life idle, waiting for the
// next chunk. net/http hands a hijacked connection over with a 4 KiB read
// buffer and a 4 KiB write buffer, which coder/websocket keeps for the
// connection's whole life: 8 KiB per idle viewer, more than everything
// else a viewer costs. leanHijack swaps them for 16-byte ones (the
// smallest bufio allows) before the library sees them:
//
//   - reads: clients send a few small frames (subscribe, ping); a tiny
//     buffer costs a read call or two more per frame and nothing while idle.
//   - writes: a corkWriter under the tiny write buffer gathers a message's
//     pieces (frame header, payload) in a pooled buffer while we send one
//     of our messages and writes them with one call when it is done, so a
//     message is still one write to the socket; it holds no buffer between
//     messages.

// leanHijack wraps the ResponseWriter of a WebSocket upgrade.
type leanHijack struct {
	http.ResponseWriter
	cork *corkWriter // set by Hijack
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
	h.cork = &corkWriter{conn: conn}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(h.cork, 16)), nil
}

// corkWriter is the writer under a WebSocket's bufio.Writer. Corked, it
// gathers what it is given; uncork writes it all with one call. Uncorked
// (the library's own pongs and close frames), it writes straight through.
// Its lock also orders those writes after a gathered message still being
// written.
type corkWriter struct {
	mu     sync.Mutex
	conn   net.Conn
	corked bool
	buf    *[]byte
}

// sendBufs holds the buffers that messages are gathered in while they are
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

func (w *corkWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.corked {
		return w.conn.Write(p)
	}
	if w.buf == nil {
		w.buf = getSendBuf()
	}
	*w.buf = append(*w.buf, p...)
	return len(p), nil
}

func (w *corkWriter) cork() {
	w.mu.Lock()
	w.corked = true
	w.mu.Unlock()
}

// uncork writes what was gathered, with one call, and lets the buffer go.
func (w *corkWriter) uncork() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.corked = false
	if w.buf == nil {
		return nil
	}
	_, err := w.conn.Write(*w.buf)
	putSendBuf(w.buf)
	w.buf = nil
	return err
}
