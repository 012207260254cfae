//go:build !unix

package wsraw

import "syscall"

// writeNoWait writes nothing where the socket cannot be written without
// waiting through the standard library: every message "would block" and
// goes out through Flush, from the connection's writer goroutine. Slower
// (a goroutine per burst), never wrong.
func writeNoWait(syscall.RawConn, []byte) (int, error) { return 0, nil }

// readable does not wait where the socket cannot be peeked at through
// the standard library: WaitRead returns at once and the library's read
// waits instead.
func readable(uintptr) bool { return true }
