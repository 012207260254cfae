package listenfd

import (
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as the child process of TestPassToChild: with
// LISTENFD_CHILD set, it takes its inherited listener, answers one
// connection with a greeting, and exits.
func TestMain(m *testing.M) {
	if os.Getenv("LISTENFD_CHILD") != "" {
		lns, err := Inherited(os.Getenv)
		if err != nil || len(lns) != 1 {
			os.Stderr.WriteString("child: no listener: " + strconv.Itoa(len(lns)) + " " + errString(err))
			os.Exit(2)
		}
		c, err := lns[0].Accept()
		if err != nil {
			os.Exit(3)
		}
		io.WriteString(c, "hello from "+strconv.Itoa(os.Getpid()))
		c.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// startWithListener starts cmd holding a socket listening on a port of
// 127.0.0.1, which this process then closes: cmd is its only holder. It
// returns the socket's address.
func startWithListener(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release, err := Pass(cmd, ln)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	release()
	ln.Close()
	return ln.Addr().String()
}

// TestPassToChild: the child serves on the socket the parent bound, at the
// address the parent knew before the child started, and the parent's
// copies can be closed at once.
func TestPassToChild(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LISTENFD_CHILD=1")
	addr := startWithListener(t, cmd)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial the passed socket: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	c.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if want := "hello from " + strconv.Itoa(cmd.Process.Pid); string(got) != want {
		t.Errorf("read %q, want %q", got, want)
	}
}

// TestPassToChildThatDies: once the child is gone, a connection to the
// port is refused rather than left waiting.
func TestPassToChildThatDies(t *testing.T) {
	cmd := exec.Command("true")
	addr := startWithListener(t, cmd)
	_ = cmd.Wait()
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("dialled %s after its only holder exited", addr)
	}
}

func TestInheritedIgnoresOthersAndRejectsNonsense(t *testing.T) {
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	if lns, err := Inherited(env(nil)); lns != nil || err != nil {
		t.Errorf("no LISTEN_FDS: %v, %v", lns, err)
	}
	other := strconv.Itoa(os.Getpid() + 1)
	if lns, err := Inherited(env(map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": other})); lns != nil || err != nil {
		t.Errorf("LISTEN_PID of another process: %v, %v", lns, err)
	}
	for _, v := range []string{"0", "-1", "two"} {
		if _, err := Inherited(env(map[string]string{"LISTEN_FDS": v})); err == nil || !strings.Contains(err.Error(), "LISTEN_FDS") {
			t.Errorf("LISTEN_FDS=%s: %v", v, err)
		}
	}
}
