//go:build !unix

package api

import "syscall"

// writeFD has no non-blocking write where descriptors are not Unix ones:
// it answers as a full socket would, and the connection's writer
// goroutine sends instead.
func writeFD(uintptr, []byte) (int, error) { return 0, syscall.EAGAIN }
