package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/playground-dev/playground"
)

// watchOptions is what `playground watch` was asked to do.
type watchOptions struct {
	URL       string // the server, http:// or https://
	Token     string // a bearer token, or ""
	Share     string // a share token, or ""
	SessionID string
	Text      bool // print the answers' texts as they grow instead of events
	// HTTPClient dials the WebSocket (nil: the default client); tests
	// pass one whose connections they can cut.
	HTTPClient *http.Client
}

// watchRetries is how many connection attempts in a row may fail before
// watch gives up; any attempt that gets as far as a subscription starts
// the count again. With the back-off below, about 20 s of a server away.
const watchRetries = 8

// watchBackoff is the wait before the nth attempt in a row to reconnect.
func watchBackoff(n int) time.Duration {
	return min(250*time.Millisecond<<(n-1), 5*time.Second)
}

// watchCmd is `playground watch [--url URL] [--token TOKEN | --share
// SHARETOKEN] [--text] SESSION_ID`.
func watchCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o := watchOptions{URL: getenv("PLAYGROUND_URL"), Token: getenv("PLAYGROUND_TOKEN")}
	if o.URL == "" {
		o.URL = "http://localhost:8080"
	}
	var token, share string
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.URL, "url", o.URL, "")
	fs.StringVar(&token, "token", "", "")
	fs.StringVar(&share, "share", "", "")
	fs.BoolVar(&o.Text, "text", false, "")
	// Flags may come before or after the session id.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("watch: %w\n%s", err, usage)
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(rest) != 1 {
		return fmt.Errorf("watch: want one SESSION_ID, got %d\n%s", len(rest), usage)
	}
	switch {
	case token != "" && share != "":
		return fmt.Errorf("watch: --token and --share exclude each other\n%s", usage)
	case share != "":
		o.Share, o.Token = share, "" // a share link needs no account
	case token != "":
		o.Token = token
	}
	if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return fmt.Errorf("watch: --url %q: want http://… or https://…", o.URL)
	}
	o.SessionID = rest[0]
	return watch(ctx, o, stdout, stderr)
}

// watch follows one session until its done event, resuming after every
// drop with since = the last seq it printed, so each event is printed
// once. It returns nil after done, or when ctx ends (Ctrl-C); an error
// when the server refuses (no such session, bad credentials) or stays
// away for watchRetries attempts.
func watch(ctx context.Context, o watchOptions, stdout, stderr io.Writer) error {
	w := &watcher{o: o, out: stdout}
	if o.Text {
		w.text = &textPrinter{out: stdout}
	}
	failed := 0
	for {
		w.subscribed = false
		err := w.follow(ctx)
		switch {
		case err == nil:
			return nil // done
		case ctx.Err() != nil:
			return nil
		case errors.As(err, new(*refusal)):
			return fmt.Errorf("watch: %w", err)
		}
		if w.subscribed {
			failed = 0
		}
		failed++
		if failed > watchRetries {
			return fmt.Errorf("watch: gave up after %d attempts: %w", watchRetries, err)
		}
		wait := watchBackoff(failed)
		fmt.Fprintf(stderr, "playground watch: %v; resuming after seq %d in %s\n", err, w.seq, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// refusal is an answer that another attempt would not change.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

// watcher is the state of one watch across its connections.
type watcher struct {
	o          watchOptions
	out        io.Writer
	text       *textPrinter // nil: print events
	seq        int64        // the last seq printed
	subscribed bool         // this connection got as far as a subscription
}

// follow makes one connection, subscribes from w.seq and prints until
// done (nil), or until the connection fails (an error; a *refusal when
// there is no point trying again).
func (w *watcher) follow(ctx context.Context) error {
	h := http.Header{}
	if w.o.Token != "" {
		h.Set("Authorization", "Bearer "+w.o.Token)
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(dctx, "ws"+strings.TrimPrefix(strings.TrimSuffix(w.o.URL, "/"), "http")+"/ws",
		&websocket.DialOptions{HTTPClient: w.o.HTTPClient, HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return &refusal{fmt.Sprintf("the server refused the connection: %s", resp.Status)}
		}
		return fmt.Errorf("connect: %w", err)
	}
	defer c.CloseNow()
	c.SetReadLimit(64 << 20) // a snapshot carries every text so far
	sub := map[string]any{"type": "subscribe", "sessionId": w.o.SessionID, "since": w.seq}
	if w.o.Share != "" {
		sub["shareToken"] = w.o.Share
	}
	frame, _ := json.Marshal(sub)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = c.Write(wctx, websocket.MessageText, frame)
	cancel()
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == 4401 {
				return &refusal{"the server closed the connection: credentials revoked or expired"}
			}
			return fmt.Errorf("connection lost: %w", err)
		}
		// A frame holds one event, or several separated by newlines.
		for line := range bytes.SplitSeq(data, []byte{'\n'}) {
			done, err := w.event(line)
			if err != nil {
				return err
			}
			if done {
				_ = c.Close(websocket.StatusNormalClosure, "")
				return nil
			}
		}
	}
}

// event handles one line from the server; done is true after the
// session's done event.
func (w *watcher) event(line []byte) (done bool, err error) {
	var ev playground.WireEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		return false, fmt.Errorf("the server sent %q: %w", line, err)
	}
	switch ev.Type {
	case playground.EventSubscribed:
		w.subscribed = true
		return false, nil
	case playground.EventPong, playground.EventUnsubscribed:
		return false, nil
	case playground.EventError:
		if ev.SessionID == "" || ev.SessionID == w.o.SessionID {
			return false, &refusal{fmt.Sprintf("%s: %s", ev.Code, ev.Message)}
		}
	}
	if ev.SessionID != w.o.SessionID {
		return false, nil
	}
	// A resume starts after w.seq; an event the server sends again anyway
	// is not printed twice. A snapshot takes no seq of its own.
	if ev.Type != playground.EventSnapshot && ev.Seq > 0 && ev.Seq <= w.seq {
		return false, nil
	}
	if w.text != nil {
		w.text.event(ev)
	} else {
		w.out.Write(append(bytes.TrimSpace(line), '\n'))
	}
	if ev.Seq > w.seq {
		w.seq = ev.Seq
	}
	return ev.Type == playground.EventDone, nil
}

// textPrinter prints the answers' texts as they grow: each run of chunks
// of one model under a "[model]" heading, and how each ended.
type textPrinter struct {
	out     io.Writer
	current string // the response whose text was printed last
}

func (p *textPrinter) heading(responseID, model string) {
	if p.current != responseID {
		if p.current != "" {
			fmt.Fprintln(p.out)
		}
		fmt.Fprintf(p.out, "[%s] ", model)
		p.current = responseID
	}
}

func (p *textPrinter) event(ev playground.WireEvent) {
	switch ev.Type {
	case playground.EventSnapshot:
		for _, r := range ev.Session.Responses {
			if r.Text != "" {
				p.heading(r.ID, r.Model)
				fmt.Fprint(p.out, r.Text)
			}
		}
	case playground.EventChunk:
		p.heading(ev.ResponseID, ev.Model)
		fmt.Fprint(p.out, ev.Text)
	case playground.EventStatus:
		switch ev.Status {
		case string(playground.StatusComplete), string(playground.StatusCancelled), string(playground.StatusError):
			if p.current != "" {
				fmt.Fprintln(p.out)
			}
			p.current = ""
			var e struct{ Message string }
			if json.Unmarshal(ev.Error, &e) == nil && e.Message != "" {
				fmt.Fprintf(p.out, "[%s %s: %s]\n", ev.Model, ev.Status, e.Message)
			} else {
				fmt.Fprintf(p.out, "[%s %s]\n", ev.Model, ev.Status)
			}
		}
	case playground.EventDone:
		if p.current != "" {
			fmt.Fprintln(p.out)
		}
		fmt.Fprintf(p.out, "[done: %s]\n", ev.Status)
	}
}
