//go:build !unix

package main

import (
	"errors"
	"os/exec"
)

// Stand-ins for sys_unix.go where there is no exec, no process group and
// no file limit to raise: playbench builds and runs there unpinned.

func execSelf(path string, argv, env []string) error {
	return errors.New("replacing the process is not supported on this system")
}

func setOwnProcessGroup(cmd *exec.Cmd) {}

// raiseFileLimit reports 0: the limit is unknown here.
func raiseFileLimit() uint64 { return 0 }
