package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/playground-dev/playground/internal/listenfd"
)

// clkTck is USER_HZ, which Linux fixes at 100 for /proc/<pid>/stat.
const clkTck = 100

// cpuTime is a process's CPU time, all threads, in nanoseconds: the sum
// of each thread's sum_exec_runtime (/proc/<pid>/task/*/schedstat), far
// finer than the 10 ms ticks of /proc/<pid>/stat, which is the fallback.
// Threads that have exited drop out of the sum; Go rarely ends threads.
func cpuTime(pid int) (time.Duration, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err == nil {
		var sum int64
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				sum += n
			}
		}
		if sum > 0 {
			return time.Duration(sum), nil
		}
	}
	return statCPUTime(pid)
}

// statCPUTime is utime+stime from /proc/<pid>/stat.
func statCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc: odd stat for %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("proc: short stat for %d", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

// rss is a process's resident set size in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("proc: short statm for %d", pid)
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize()), nil
}

// cpuMeter measures one process's CPU use over a window.
type cpuMeter struct {
	pid   int
	cpu0  time.Duration
	wall0 time.Time
}

func startCPU(pid int) cpuMeter {
	c, _ := cpuTime(pid)
	return cpuMeter{pid: pid, cpu0: c, wall0: time.Now()}
}

// stop returns the CPU time used and the share of one core (1 = 100 %).
func (m cpuMeter) stop() (time.Duration, float64) {
	c, _ := cpuTime(m.pid)
	used := c - m.cpu0
	wall := time.Since(m.wall0)
	return used, used.Seconds() / wall.Seconds()
}

// haveTaskset reports whether processes can be pinned to a core.
func haveTaskset() bool {
	_, err := exec.LookPath("taskset")
	return err == nil
}

// pinned returns a command that runs name on cpu (with GOMAXPROCS=1),
// through taskset when there is one.
func pinned(ctx context.Context, cpu int, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if haveTaskset() && cpu >= 0 {
		cmd = exec.CommandContext(ctx, "taskset", append([]string{"-c", strconv.Itoa(cpu), name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	setOwnProcessGroup(cmd)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	return cmd
}

// process is a running system under test (or helper) started by playbench.
type process struct {
	name   string
	stopFn func() // an in-process stand-in (smoke test)
	cmd    *exec.Cmd
	log    string
	done   chan error
}

// startProcess starts cmd with its output in logPath, passing it lns
// (LISTEN_FDS) to serve on; the caller may close its own copies once it
// returns.
func startProcess(name string, cmd *exec.Cmd, logPath string, lns ...net.Listener) (*process, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	release := func() {}
	if len(lns) > 0 {
		if release, err = listenfd.Pass(cmd, lns...); err != nil {
			lf.Close()
			return nil, err
		}
	}
	err = cmd.Start()
	release()
	if err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
		lf.Close()
	}()
	return p, nil
}

// pid is the process's id: taskset execs the program, so it is the same.
func (p *process) pid() int {
	if p.cmd == nil {
		return selfPID
	}
	return p.cmd.Process.Pid
}

// stop sends SIGTERM and waits (SIGKILL after 15 s).
func (p *process) stop() {
	if p == nil {
		return
	}
	if p.stopFn != nil {
		p.stopFn()
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of the process's log, for error messages.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// waitHTTP polls url until it answers 200, the process exits, or timeout.
func waitHTTP(p *process, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited: %v\n%s", p.name, err, p.tail())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s within %s\n%s", p.name, url, timeout, p.tail())
}

// freePort asks the kernel for an unused port, for a program that cannot
// take a socket from us (Centrifugo): the port may be taken again before
// it binds, so its caller retries.
func freePort() (int, error) {
	// On every address, as the servers listen: a port free on 127.0.0.1
	// alone may be held on 127.0.0.2 by a viewer connection of a
	// previous run.
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// listenLoopback binds n sockets on 127.0.0.1, for processes we start to
// inherit.
func listenLoopback(n int) ([]net.Listener, error) {
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			closeListeners(lns)
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeListeners(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// buildPlayground builds ./cmd/playground into dir once.
func buildPlayground(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "playground")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/playground")
	cmd.Dir = moduleRoot()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build playground: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot finds the directory holding go.mod, from the working directory up.
func moduleRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// machineBusy is the CPU time all processes used, both cores, from the
// first line of /proc/stat (ticks of 10 ms): everything but idle and iowait.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user
			break
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clkTck
}
