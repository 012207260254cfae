//go:build unix

package wsraw

import (
	"sync"
	"syscall"
)

// writeNoWait writes what the socket takes of b without waiting for it:
// the socket is non-blocking under the Go runtime, so a full send buffer
// is EAGAIN, and the rest is left for a writer that may wait.
func writeNoWait(raw syscall.RawConn, b []byte) (int, error) {
	w := noWaitWrites.Get().(*noWaitWrite)
	w.b, w.n, w.err = b, 0, nil
	err := raw.Write(w.fn)
	n, werr := w.n, w.err
	w.b = nil
	noWaitWrites.Put(w)
	if err != nil && werr == nil {
		werr = err
	}
	return n, werr
}

// noWaitWrite is one write that must not wait. RawConn.Write takes a
// function, and a closure over the message and its results escapes: three
// allocations for every message to every viewer. This one's function is
// bound once, when the pool makes it.
type noWaitWrite struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var noWaitWrites = sync.Pool{New: func() any {
	w := &noWaitWrite{}
	w.fn = w.write
	return w
}}

func (w *noWaitWrite) write(fd uintptr) bool {
	for w.n < len(w.b) {
		m, err := syscall.Write(int(fd), w.b[w.n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if err != syscall.EAGAIN {
				w.err = err
			}
			break
		}
		w.n += m
	}
	return true // never wait here: what is left waits for the writer
}

// readable reports whether the socket has bytes to read, or has reached
// its end or failed, without taking anything: false makes the runtime
// park the caller until the socket is readable, and ask again.
func readable(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		if err == syscall.EINTR {
			continue
		}
		return err != syscall.EAGAIN
	}
}
