// Package balancer runs Debian's nginx as a load balancer in front of
// local Playground instances, with a configuration of its own: for the
// test that runs the instances behind it and for playbench's load test.
// It round-robins every request, WebSocket upgrades included, with no
// sticky sessions, as deploy/nginx.conf does in production.
package balancer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

// Options configure a balancer.
type Options struct {
	// Upstreams are the instances' host:port addresses.
	Upstreams []string
	// Dir holds the configuration, the logs and nginx's temporary files.
	Dir string
	// Connections is the most client connections nginx holds at once;
	// each also holds one to an instance. 4096 when zero.
	Connections int
}

// Nginx is a running nginx. Stop ends it.
type Nginx struct {
	URL  string // http://127.0.0.1:PORT
	Addr string // 127.0.0.1:PORT
	dir  string
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
	err  error // what Wait returned, once done is closed
	stop sync.Once
}

// Binary finds nginx: on PATH, else where Debian installs it (/usr/sbin,
// which is not on an ordinary user's PATH).
func Binary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("balancer: nginx is not installed (make tools installs it with apt-get)")
}

var confTmpl = template.Must(template.New("nginx.conf").Parse(`# Written by the balancer package: nginx in front of local instances.
{{if .Root}}user root;
{{end}}worker_processes 1;
worker_rlimit_nofile {{.Files}};
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events {
    worker_connections {{.WorkerConns}};
}
http {
    access_log off;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;

    # Round robin, no stickiness. A refused connection (an instance that
    # died) moves the request to the next instance.
    upstream playground {
{{range .Upstreams}}        server {{.}} max_fails=1 fail_timeout=5s;
{{end}}        keepalive 64;
    }

    # A WebSocket upgrade passes Upgrade on; any other request keeps the
    # upstream connection alive.
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      '';
    }

    server {
        listen {{.Listen}} backlog=4096;
        client_max_body_size 2m;

        location / {
            proxy_pass http://playground;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream error timeout http_503;
            proxy_connect_timeout 2s;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            # Which instance answered (the load test tells its viewers apart by it).
            add_header X-Upstream $upstream_addr always;
        }
    }
}
`))

// Config is the nginx configuration for listen (host:port) in front of
// opts.Upstreams.
func Config(listen string, opts Options) (string, error) {
	if len(opts.Upstreams) == 0 {
		return "", errors.New("balancer: no upstreams")
	}
	conns := opts.Connections
	if conns <= 0 {
		conns = 4096
	}
	var b strings.Builder
	err := confTmpl.Execute(&b, map[string]any{
		"Root": os.Geteuid() == 0, "Dir": opts.Dir, "Listen": listen, "Upstreams": opts.Upstreams,
		// A client connection and its upstream connection each.
		"WorkerConns": 2*conns + 64, "Files": 2*conns + 256,
	})
	return b.String(), err
}

// Start runs nginx in front of opts.Upstreams on a free local port and
// waits until it answers. nginx binds its port itself, so a port taken
// between choosing and binding makes it try another.
func Start(ctx context.Context, opts Options) (*Nginx, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("balancer: Options.Dir is empty")
	}
	var last error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		n, err := start(ctx, bin, fmt.Sprintf("127.0.0.1:%d", port), opts)
		if err == nil {
			return n, nil
		}
		last = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, last
}

func start(ctx context.Context, bin, listen string, opts Options) (*Nginx, error) {
	conf, err := Config(listen, opts)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(opts.Dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	n := &Nginx{URL: "http://" + listen, Addr: listen, dir: opts.Dir, done: make(chan struct{})}
	// -e: the error log before the configuration is read (Debian's default
	// is /var/log/nginx, which an ordinary user cannot write).
	n.cmd = exec.Command(bin, "-p", opts.Dir, "-c", path, "-e", filepath.Join(opts.Dir, "error.log"), "-g", "daemon off;")
	n.cmd.Stdout, n.cmd.Stderr = &n.out, &n.out
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("balancer: start nginx: %w", err)
	}
	go func() { // owned by the Nginx: ends when nginx exits, which Stop brings about
		n.err = n.cmd.Wait()
		close(n.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-n.done:
			return nil, fmt.Errorf("balancer: nginx exited: %v\n%s%s", n.err, n.out.String(), n.errorLog())
		default:
		}
		if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			c.Close()
			return n, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			n.Stop()
			return nil, fmt.Errorf("balancer: nginx did not listen on %s\n%s", listen, n.errorLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *Nginx) errorLog() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

// Stop ends nginx at once (SIGTERM: its fast shutdown, every connection
// closed) and waits for it; calling it again only waits.
func (n *Nginx) Stop() {
	n.stop.Do(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM) // the master ends its workers
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
		}
	})
	<-n.done
}

// freePort is a port the kernel has just handed out and taken back.
func freePort() (int, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}
