package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/playground-dev/playground"
)

// The subcommands an operator and a container runtime use around serve:
// where to listen, which build this is, and whether a server answers.

// serveCmd is `playground serve [--listen ADDR]`. --listen takes
// precedence over PORT; with port 0 the system picks a free port, and the
// "playground is serving" log line names it (how the release test finds a
// server started with an empty environment).
func serveCmd(ctx context.Context, args []string, getenv func(string) string, logger *slog.Logger) error {
	var listen string
	if err := flags("serve", args, func(fs *flag.FlagSet) {
		fs.StringVar(&listen, "listen", "", "host:port to listen on instead of :PORT")
	}); err != nil {
		return err
	}
	var ln net.Listener
	if listen != "" {
		var err error
		if ln, err = net.Listen("tcp", listen); err != nil {
			return fmt.Errorf("serve: --listen: %w", err)
		}
		defer ln.Close() // serve closes it on a normal stop; this covers an early error
	}
	return serve(ctx, getenv, logger, ln)
}

// versionCmd is `playground version`: the build, on one line.
func versionCmd(stdout io.Writer) error {
	_, err := fmt.Fprintln(stdout, playground.BuildVersion())
	return err
}

// healthTimeout bounds `playground healthcheck`, below a container
// runtime's usual probe timeout.
const healthTimeout = 3 * time.Second

// healthcheckCmd is `playground healthcheck [--url URL]`: it asks
// http://127.0.0.1:$PORT/healthz (or URL) and fails unless the answer is
// 200, for container images that have no curl (the Dockerfile's
// HEALTHCHECK).
func healthcheckCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	port := getenv("PORT")
	if port == "" {
		port = "8080"
	}
	url := "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz"
	if err := flags("healthcheck", args, func(fs *flag.FlagSet) {
		fs.StringVar(&url, "url", url, "the health endpoint to ask")
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", url, res.Status)
	}
	_, err = fmt.Fprintf(stdout, "%s", body)
	return err
}
