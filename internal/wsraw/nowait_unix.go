//go:build unix

package wsraw

import "syscall"

// writeNoWait writes what the socket takes of b without waiting for it:
// the socket is non-blocking under the Go runtime, so a full send buffer
// is EAGAIN, and the rest is left for a writer that may wait.
func writeNoWait(raw syscall.RawConn, b []byte) (n int, err error) {
	var werr error
	if err := raw.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, err := syscall.Write(int(fd), b[n:])
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
	return n, werr
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
