//go:build unix

package app

import "syscall"

// raiseFileLimit raises the soft limit on open files to the hard limit,
// where the OS allows, and returns the soft limit in force (0: unknown).
// Every connection holds a descriptor: the limit bounds how many clients
// one process can hold, and MAX_CONNECTIONS is kept under it.
func raiseFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = l.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			l = want
		}
	}
	return uint64(l.Cur)
}
