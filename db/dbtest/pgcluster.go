package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/pgdriver"
)

// PGCluster is a PostgreSQL server of a test's own, made with Debian's
// pg_createcluster on a free port, so that a fault test can stop and
// start it without touching the PostgreSQL every other test shares. It
// is dropped (stopped first) when the test ends.
type PGCluster struct {
	tb      testing.TB
	version string
	name    string
	port    int
	url     string
}

// pgVersion is the PostgreSQL major version whose cluster tools are used.
const pgVersion = "15"

// NewPGCluster creates and starts a throwaway cluster (trust
// authentication on 127.0.0.1, no fsync: nothing in it needs to survive
// a crash) and returns it running, with an empty database named test.
//
// Like the other real-service tests it runs only when EnvURL is set
// (PostgreSQL is then expected on this machine): without EnvURL it
// skips; with EnvURL set, missing cluster tools or a cluster that does
// not start fail the test with the reason.
func NewPGCluster(tb testing.TB) *PGCluster {
	tb.Helper()
	if os.Getenv(EnvURL) == "" {
		tb.Skipf("%s is not set: the PostgreSQL fault tests need PostgreSQL's cluster tools", EnvURL)
	}
	for _, tool := range []string{"pg_createcluster", "pg_ctlcluster", "pg_dropcluster"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("dbtest: %s is set but %s is not installed (Debian's postgresql-common): %v", EnvURL, tool, err)
		}
	}
	c := &PGCluster{tb: tb, version: pgVersion, name: "pgtest_" + strings.ToLower(rand.Text()[:10]), port: freePort(tb)}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/test?sslmode=disable", c.port)
	c.run("pg_createcluster", c.version, c.name, "-p", strconv.Itoa(c.port), "--start-conf=manual",
		"-o", "fsync=off", "-o", "synchronous_commit=off", "-o", "full_page_writes=off",
		"--", "--auth=trust", "--no-sync")
	tb.Cleanup(func() {
		out, err := exec.Command("pg_dropcluster", c.version, c.name, "--stop").CombinedOutput()
		if err != nil {
			tb.Errorf("dbtest: pg_dropcluster %s: %v\n%s", c.name, err, out)
		}
	})
	c.Start()
	admin := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(
		fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port))))
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE test"); err != nil {
		tb.Fatalf("dbtest: create database in cluster %s: %v", c.name, err)
	}
	return c
}

// URL is the DATABASE_URL of the cluster's test database.
func (c *PGCluster) URL() string { return c.url }

// Stop shuts the server down the way an operator's restart does (fast
// mode: open connections are cut off) and returns once it is down.
func (c *PGCluster) Stop() {
	c.tb.Helper()
	c.run("pg_ctlcluster", c.version, c.name, "stop", "-m", "fast")
}

// Start starts the server and returns once it accepts connections.
func (c *PGCluster) Start() {
	c.tb.Helper()
	c.run("pg_ctlcluster", c.version, c.name, "start")
	db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(
		fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port))))
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("dbtest: cluster %s does not answer after start: %v", c.name, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *PGCluster) run(name string, args ...string) {
	c.tb.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
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
