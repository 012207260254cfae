//go:build unix

package db

import (
	"errors"
	"net"
	"syscall"
)

// closedByPeer peeks at an idle connection's socket without blocking: an
// idle connection has nothing to read, so end of file or any pending
// bytes (PostgreSQL's "terminating connection" before it closes) mean the
// server is gone.
func closedByPeer(c net.Conn) bool {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn() // TLS: look at the socket beneath
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n > 0 || (n == 0 && err == nil) ||
			(err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR))
		return true // never wait for the socket
	})
	return err != nil || closed
}
