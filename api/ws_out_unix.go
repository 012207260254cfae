//go:build unix

package api

import "syscall"

// writeFD writes to a socket's descriptor without waiting: a full socket
// answers EAGAIN.
func writeFD(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
