// Package listenfd hands listening sockets from a parent process to a
// child, in the way systemd's socket activation does: the child finds
// LISTEN_FDS=n in its environment and n listeners at file descriptors 3,
// 4, … . A parent that binds the socket itself knows the address before
// the child starts, and no other process can take the port in between,
// which a port that is found free, closed and handed over by number
// cannot promise.
//
// The tests and cmd/playbench start servers this way (Pass); `playground
// serve` and playbench's own helpers accept them (Inherited).
package listenfd

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
)

// firstFD is the first inherited descriptor, after stdin, stdout and stderr.
const firstFD = 3

// Inherited returns the listeners passed to this process, none when
// LISTEN_FDS is unset. LISTEN_PID, when set (systemd sets it), must name
// this process: otherwise the variables were meant for another one and
// are ignored. Each listener is taken once; the descriptors are closed.
func Inherited(getenv func(string) string) ([]net.Listener, error) {
	v := getenv("LISTEN_FDS")
	if v == "" {
		return nil, nil
	}
	if pid := getenv("LISTEN_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("listenfd: LISTEN_FDS=%q is not a positive count", v)
	}
	lns := make([]net.Listener, 0, n)
	for fd := firstFD; fd < firstFD+n; fd++ {
		f := os.NewFile(uintptr(fd), "listen-fd-"+strconv.Itoa(fd))
		ln, err := net.FileListener(f) // a duplicate of fd
		f.Close()
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, fmt.Errorf("listenfd: descriptor %d (LISTEN_FDS=%s): %w", fd, v, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// Pass arranges for cmd's process to inherit lns, in order, and adds
// LISTEN_FDS to its environment (os.Environ when cmd.Env is nil). Once
// cmd has started, the caller calls release and closes its own
// listeners: the child's copies keep the sockets open, and connections
// made before the child accepts wait in the backlog. If the child dies,
// the sockets close with it and waiting connections are refused, so
// nobody waits on a dead port.
func Pass(cmd *exec.Cmd, lns ...net.Listener) (release func(), err error) {
	if len(cmd.ExtraFiles) > 0 {
		return nil, fmt.Errorf("listenfd: the command already passes other descriptors")
	}
	release = func() {
		for _, f := range cmd.ExtraFiles {
			f.Close()
		}
	}
	for _, ln := range lns {
		fl, ok := ln.(interface{ File() (*os.File, error) })
		if !ok {
			release()
			return nil, fmt.Errorf("listenfd: %T has no descriptor to pass", ln)
		}
		f, err := fl.File() // a duplicate, closed by release
		if err != nil {
			release()
			return nil, fmt.Errorf("listenfd: %w", err)
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "LISTEN_FDS="+strconv.Itoa(len(lns)))
	return release, nil
}
