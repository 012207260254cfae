package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// PGCluster is a PostgreSQL server of a test's own on a free port, so
// that a fault test can stop and start it without touching the
// PostgreSQL every other test shares, nor another fault test's server.
// It is stopped and removed when the test ends.
//
// Its data directory is a copy of one made by initdb once per test
// binary (see RemovePGTemplate): a copy and a start take well under a
// second, where an initdb of its own took seconds of CPU.
type PGCluster struct {
	tb   testing.TB
	dir  string // the data directory
	port int
	url  string
}

// pgTemplate is the data directory every PGCluster of this test binary
// is copied from, made on first use.
var pgTemplate struct {
	once sync.Once
	root string // a directory of its own, holding template/ and the clusters' copies
	bin  string // the directory of initdb and pg_ctl
	err  error
}

// templateSettings are appended to the template's postgresql.conf.
// Nothing in a throwaway cluster needs to survive a crash, so nothing
// waits for the disk; no Unix socket, so no shared socket directory is
// needed.
const templateSettings = `
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
`

// NewPGCluster starts a throwaway PostgreSQL server (trust
// authentication on 127.0.0.1) and returns it running; URL names its
// database postgres.
//
// Like the other real-service tests it runs only when EnvURL is set
// (PostgreSQL is then expected on this machine): without EnvURL it
// skips; with EnvURL set, a missing initdb or a server that does not
// start fails the test with the reason.
func NewPGCluster(tb testing.TB) *PGCluster {
	tb.Helper()
	if os.Getenv(EnvURL) == "" {
		tb.Skipf("%s is not set: the PostgreSQL fault tests need PostgreSQL's server programs", EnvURL)
	}
	pgTemplate.once.Do(func() { pgTemplate.root, pgTemplate.bin, pgTemplate.err = makePGTemplate() })
	if pgTemplate.err != nil {
		tb.Fatalf("dbtest: %s is set but no throwaway PostgreSQL can be made: %v", EnvURL, pgTemplate.err)
	}
	dir, err := os.MkdirTemp(pgTemplate.root, "cluster-")
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	c := &PGCluster{tb: tb, dir: filepath.Join(dir, "data")}
	tb.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(c.dir, "postmaster.pid")); err == nil {
			if out, err := asPostgres(pgTemplate.bin, "pg_ctl", "stop", "-D", c.dir, "-m", "immediate", "-w").CombinedOutput(); err != nil {
				tb.Errorf("dbtest: stop the cluster on port %d: %v\n%s", c.port, err, out)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			tb.Errorf("dbtest: %v", err)
		}
	})
	if err := chownPostgres(dir); err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	c.run("cp", "-a", filepath.Join(pgTemplate.root, "template"), c.dir)
	// The port is free when chosen but might be taken before the server
	// binds it: choose again then.
	for attempt := 1; ; attempt++ {
		c.port = freePort(tb)
		err := c.start()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "Address already in use") {
			tb.Fatalf("dbtest: start a throwaway cluster: %v", err)
		}
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	return c
}

// RemovePGTemplate removes the template data directory the clusters were
// copied from, once no test needs it: a package whose tests make
// clusters calls it after its last test (its TestMain).
func RemovePGTemplate() error {
	if pgTemplate.root == "" {
		return nil
	}
	return os.RemoveAll(pgTemplate.root)
}

// makePGTemplate runs initdb into a new directory and adds the settings
// every throwaway cluster shares.
func makePGTemplate() (root, bin string, err error) {
	if bin, err = pgBinDir(); err != nil {
		return "", "", err
	}
	if root, err = os.MkdirTemp("", "playground-pg-"); err != nil {
		return "", "", err
	}
	if err := chownPostgres(root); err != nil {
		return root, "", err
	}
	tpl := filepath.Join(root, "template")
	if out, err := asPostgres(bin, "initdb", "-D", tpl, "-U", "postgres", "--auth=trust", "--no-sync",
		"--wal-segsize=1", "--no-instructions").CombinedOutput(); err != nil {
		return root, "", fmt.Errorf("initdb: %w\n%s", err, out)
	}
	f, err := os.OpenFile(filepath.Join(tpl, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return root, "", err
	}
	_, err = f.WriteString(templateSettings)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return root, bin, err
}

// pgBinDir finds initdb and pg_ctl: Debian keeps them, per major
// version, under /usr/lib/postgresql (the newest is taken); elsewhere
// they are on PATH.
func pgBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return n
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	p, err := exec.LookPath("initdb")
	if err != nil {
		return "", fmt.Errorf("initdb is not installed (Debian's postgresql package has it): %w", err)
	}
	return filepath.Dir(p), nil
}

// asPostgres prepares one of PostgreSQL's programs in bin (or another
// command, when bin is ""). PostgreSQL refuses to run as root, so as
// root it runs as the postgres user.
func asPostgres(bin, name string, args ...string) *exec.Cmd {
	if bin != "" {
		name = filepath.Join(bin, name)
	}
	if os.Geteuid() == 0 {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// chownPostgres hands dir to the postgres user when running as root.
func chownPostgres(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root, PostgreSQL needs a postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

// URL is the DATABASE_URL of the cluster's database.
func (c *PGCluster) URL() string { return c.url }

// Stop shuts the server down the way an operator's restart does (fast
// mode: open connections are cut off) and returns once it is down.
func (c *PGCluster) Stop() {
	c.tb.Helper()
	c.run(filepath.Join(pgTemplate.bin, "pg_ctl"), "stop", "-D", c.dir, "-m", "fast", "-w")
}

// Start starts the server again and returns once it accepts connections.
func (c *PGCluster) Start() {
	c.tb.Helper()
	if err := c.start(); err != nil {
		c.tb.Fatalf("dbtest: %v", err)
	}
}

// start starts the server on c.port and waits until it answers.
func (c *PGCluster) start() error {
	logFile := filepath.Join(filepath.Dir(c.dir), "log")
	out, err := asPostgres(pgTemplate.bin, "pg_ctl", "start", "-D", c.dir, "-l", logFile, "-w",
		"-o", "-p "+strconv.Itoa(c.port)).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(logFile)
		return fmt.Errorf("pg_ctl start on port %d: %w\n%s%s", c.port, err, out, log)
	}
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(
		fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port))))
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the cluster on port %d does not answer after start: %w", c.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *PGCluster) run(name string, args ...string) {
	c.tb.Helper()
	if out, err := asPostgres("", name, args...).CombinedOutput(); err != nil {
		c.tb.Fatalf("dbtest: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// freePort returns a TCP port nobody listens on right now.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("dbtest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
