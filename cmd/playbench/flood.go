package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// runFlood is `playbench flood`: one client address (127.0.0.1) opens -n
// idle WebSockets to a running server and never subscribes, as the
// descriptor-exhaustion attack did; meanwhile another address (127.0.0.2)
// asks /healthz and registers. It prints how many upgrades were accepted
// and refused, the other address's answers and times, and how many idle
// sockets are still open after -wait.
func runFlood(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("playbench flood")
	addr := fs.String("addr", "127.0.0.1:8080", "the server (a loopback address)")
	n := fs.Int("n", 3000, "idle WebSockets to open from 127.0.0.1")
	wait := fs.Duration("wait", 11*time.Second, "how long to hold them before counting the ones still open")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if host, _, err := net.SplitHostPort(*addr); err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("flood: -addr must be a loopback address, got %q", *addr)
	}
	codes := map[string]int{}
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	start := time.Now()
	for i := 0; i < *n && ctx.Err() == nil; i++ {
		c, err := net.DialTimeout("tcp", *addr, 5*time.Second)
		if err != nil {
			codes["dial error"]++
			continue
		}
		fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if f := strings.Fields(line); err != nil || len(f) < 2 {
			codes["no answer"]++
			c.Close()
			continue
		} else {
			codes[f[1]]++
		}
		open = append(open, c)
	}
	fmt.Fprintf(stdout, "%d upgrades from 127.0.0.1 in %v: %v\n", *n, time.Since(start).Round(time.Millisecond), codes)

	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	for range 5 {
		t0 := time.Now()
		resp, err := hc.Get("http://" + *addr + "/healthz")
		if err != nil {
			fmt.Fprintf(stdout, "GET /healthz from 127.0.0.2: %v\n", err)
			continue
		}
		resp.Body.Close()
		fmt.Fprintf(stdout, "GET /healthz from 127.0.0.2: %d in %v\n", resp.StatusCode, time.Since(t0).Round(time.Microsecond))
	}
	t0 := time.Now()
	body := `{"email":"flood-` + strconv.FormatInt(time.Now().UnixNano(), 36) + `@example.com","password":"flood-password"}`
	if resp, err := hc.Post("http://"+*addr+"/auth/register", "application/json", strings.NewReader(body)); err == nil {
		resp.Body.Close()
		fmt.Fprintf(stdout, "POST /auth/register from 127.0.0.2: %d in %v\n", resp.StatusCode, time.Since(t0).Round(time.Millisecond))
	}

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(*wait):
	}
	alive := 0
	buf := make([]byte, 64)
	for _, c := range open {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		// A socket the server has closed, or begun to close (its close
		// frame is waiting), answers at once; an open one times out.
		n, err := c.Read(buf)
		if ne, ok := err.(net.Error); ok && ne.Timeout() && n == 0 {
			alive++
		}
	}
	fmt.Fprintf(stdout, "after %v: %d of %d upgraded sockets still open (neither closed nor closing)\n", *wait, alive, codes["101"])
	return nil
}
