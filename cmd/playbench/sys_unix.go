//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// The process control playbench relies on for its measurements: pinning
// itself with taskset, giving each process under test a group of its own
// and raising the open-file limit for thousands of viewers. Other systems
// get the stand-ins of sys_other.go, so the module builds everywhere; the
// benchmark report is only ever produced on Linux.

// execSelf replaces playbench with argv (taskset running playbench again).
// It returns only on failure.
func execSelf(path string, argv, env []string) error {
	return syscall.Exec(path, argv, env)
}

// setOwnProcessGroup starts cmd in a process group of its own, so that a
// Ctrl-C at the terminal reaches playbench alone, which then stops its
// children in order.
func setOwnProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// raiseFileLimit lifts the soft open-file limit to the hard one, for
// thousands of viewers.
func raiseFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return uint64(l.Cur)
}
