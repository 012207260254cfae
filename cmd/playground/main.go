// Command playground serves Playground and administers its database.
//
//	playground serve [--listen ADDR]          run the server (the default)
//	playground migrate                        bring the database schema up to date
//	playground seed                           create demo@example.com (pro plan) and print its password
//	playground quota --email E --add N        give a user N more runs this period
//	playground quota --email E --plan P       move a user to plan P (free or pro)
//	playground user  --email E --role admin   make a user an admin
//	playground watch [--url U] [--token T | --share S] [--text] SESSION_ID
//	                                          follow a session live, one JSON event a line
//	playground version                        print the build's version
//	playground healthcheck [--url URL]        exit 0 if /healthz answers 200 (for container health checks)
//
// Settings come from the environment (and PLAYGROUND_CONFIG); see README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "playground:", err)
		os.Exit(1)
	}
}

// run is the whole program; main only supplies the process's context,
// arguments, environment and output, so tests call run the same way.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel(getenv("LOG_LEVEL"))}))
	switch cmd {
	case "serve":
		return serveCmd(ctx, args, getenv, logger)
	case "migrate":
		return migrateCmd(ctx, getenv, logger, stdout)
	case "seed":
		return seedCmd(ctx, getenv, logger, stdout)
	case "quota":
		return quotaCmd(ctx, args, getenv, logger, stdout)
	case "user":
		return userCmd(ctx, args, getenv, logger, stdout)
	case "watch":
		return watchCmd(ctx, args, getenv, stdout, stderr)
	case "version":
		return versionCmd(stdout)
	case "healthcheck":
		return healthcheckCmd(ctx, args, getenv, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage: playground <command> [flags]

commands:
  serve [--listen ADDR]          run the server (default); ADDR host:port instead of :PORT, port 0 for any free one
  migrate                        bring the database schema up to date
  seed                           create demo@example.com on the pro plan and print its password
  quota --email E --add N        add N runs to a user's current period
  quota --email E --plan P       move a user to plan P (free or pro)
  user --email E --role admin    give a user the admin role
  watch [--url URL] [--token TOKEN | --share SHARETOKEN] [--text] SESSION_ID
                                 follow one session over the WebSocket, resuming after a drop,
                                 and print its events, one JSON object a line, until done
                                 (--url: PLAYGROUND_URL or http://localhost:8080; --token:
                                 PLAYGROUND_TOKEN; --text: the answers' texts as they grow)
  version                        print the build's version
  healthcheck [--url URL]        exit 0 if http://127.0.0.1:$PORT/healthz (or URL) answers 200
`

func logLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// flags parses a subcommand's flags, reporting errors rather than exiting.
func flags(name string, args []string, define func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, usage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q\n%s", name, fs.Arg(0), usage)
	}
	return nil
}
