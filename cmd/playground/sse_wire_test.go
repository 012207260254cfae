package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/playground-dev/playground"
)

// TestSSEOverHTTP11IsCloseDelimited: over HTTP/1.1 an SSE answer is read
// byte for byte as a plain client sees it on the socket: status 200, the
// event-stream headers with Connection: close and neither Content-Length
// nor chunked encoding; then every event as "id: <seq>", "event: <type>",
// "data: <JSON>" and a blank line (no id on presence), the seqs without a
// gap, done last, and the server closes the connection right after it.
func TestSSEOverHTTP11IsCloseDelimited(t *testing.T) {
	t.Parallel()
	up := newFakeOpenAI(t, 30, 2*time.Millisecond)
	ts := startServer(t, "sqlite", up.env(threeModels...), nil)
	owner := ts.client(t).register()
	s := owner.createSession("on the wire", threeModels...)
	u, _ := url.Parse(ts.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	req := "GET /sessions/" + s.ID + "/stream HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + owner.token + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	up.open()
	all, err := io.ReadAll(conn) // ends only when the server closes
	if err != nil {
		t.Fatalf("read: %v (after %d bytes)", err, len(all))
	}
	head, body, ok := strings.Cut(string(all), "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of head in %q", all)
	}
	lines := strings.Split(head, "\r\n")
	if lines[0] != "HTTP/1.1 200 OK" {
		t.Fatalf("status line %q", lines[0])
	}
	got := map[string]string{}
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ": ")
		got[strings.ToLower(k)] = v
	}
	for k, v := range map[string]string{"content-type": "text/event-stream", "cache-control": "no-cache",
		"x-accel-buffering": "no", "connection": "close"} {
		if got[k] != v {
			t.Errorf("header %s: %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"content-length", "transfer-encoding"} {
		if v, ok := got[k]; ok {
			t.Errorf("header %s: %q on a close-delimited body", k, v)
		}
	}

	var seq int64 = -1
	var last string
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sc.Split(splitEvents)
	n := 0
	for sc.Scan() {
		block := sc.Text()
		if strings.HasPrefix(block, ":") {
			continue // a keep-alive comment
		}
		n++
		fields := strings.Split(block, "\n")
		id := ""
		if strings.HasPrefix(fields[0], "id: ") {
			id, fields = strings.TrimPrefix(fields[0], "id: "), fields[1:]
		}
		if len(fields) != 2 || !strings.HasPrefix(fields[0], "event: ") || !strings.HasPrefix(fields[1], "data: ") {
			t.Fatalf("event %d is not id/event/data: %q", n, block)
		}
		typ := strings.TrimPrefix(fields[0], "event: ")
		var ev playground.WireEvent
		if err := json.Unmarshal([]byte(strings.TrimPrefix(fields[1], "data: ")), &ev); err != nil {
			t.Fatalf("event %d data: %v", n, err)
		}
		if string(ev.Type) != typ {
			t.Fatalf("event %d: line says %s, data says %s", n, typ, ev.Type)
		}
		switch {
		case typ == string(playground.EventPresence):
			if id != "" {
				t.Fatalf("presence with id %q", id)
			}
		case seq < 0: // the first log event: the snapshot, at the seq it covers
			if typ != string(playground.EventSnapshot) || id != strconv.FormatInt(ev.Seq, 10) {
				t.Fatalf("first event %s id %q seq %d", typ, id, ev.Seq)
			}
			seq = ev.Seq
		default:
			if ev.Seq != seq+1 || id != strconv.FormatInt(ev.Seq, 10) {
				t.Fatalf("event %d (%s) id %q seq %d after %d", n, typ, id, ev.Seq, seq)
			}
			seq = ev.Seq
		}
		last = typ
	}
	if last != string(playground.EventDone) || !strings.HasSuffix(body, "\n\n") {
		t.Fatalf("the stream ended after %s, not done, or mid-event (%d events)", last, n)
	}
}

// splitEvents splits an SSE body at its blank lines.
func splitEvents(data []byte, atEOF bool) (int, []byte, error) {
	if i := strings.Index(string(data), "\n\n"); i >= 0 {
		return i + 2, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}
