//go:build !linux

package wsraw

// Parking needs epoll: elsewhere a waiting reader keeps its goroutine
// (WaitRead).
func park(*Conn, func()) bool { return false }

func closing(*Conn) {}
