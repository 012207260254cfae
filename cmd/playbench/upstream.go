package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// upstream is a fake OpenAI-compatible Chat Completions server that
// streams open-loop: chunk i of a stream is due at start + i/rate whatever
// the reader does, and carries its creation time (UnixNano) at the start
// of its text, padded with 'x' to the chunk size. Streams are set up
// beforehand under a key, which the request's last message names (the
// session's prompt), and wait for their gate before sending anything.
//
// A chunk built more than a millisecond after it was due (the generator
// itself fell behind, or a write blocked because the reader stopped
// reading) is stamped with its due time instead, so that a stall shows as
// latency rather than as a slower, on-time-looking stream.
type upstream struct {
	srv *http.Server
	ln  net.Listener
	url string

	mu      sync.Mutex
	streams map[string]*stream
}

// stream is one planned response of the upstream.
type stream struct {
	key   string
	every time.Duration // gap between chunks (0: back to back)
	count int           // chunks to send; 0: until stop
	size  int           // text bytes per chunk
	gate  chan struct{} // closed to start
	stop  chan struct{} // closed to finish (count 0)

	once     sync.Once
	stopOnce sync.Once
	mu       sync.Mutex
	created  []int64 // creation stamps of the chunks sent
	started  chan struct{}
	finished chan struct{}
}

func newUpstream() (*upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &upstream{ln: ln, url: "http://" + ln.Addr().String(), streams: map[string]*stream{}}
	u.srv = &http.Server{Handler: http.HandlerFunc(u.serve), ReadHeaderTimeout: 10 * time.Second}
	go u.srv.Serve(ln)
	return u, nil
}

func (u *upstream) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := u.srv.Shutdown(ctx); err != nil {
		return u.srv.Close()
	}
	return nil
}

// plan registers a stream under key; rate 0 means back to back.
func (u *upstream) plan(key string, every time.Duration, count, size int) *stream {
	s := &stream{key: key, every: every, count: count, size: size, gate: make(chan struct{}),
		stop: make(chan struct{}), started: make(chan struct{}), finished: make(chan struct{})}
	u.mu.Lock()
	u.streams[key] = s
	u.mu.Unlock()
	return s
}

func (u *upstream) forget(key string) {
	u.mu.Lock()
	delete(u.streams, key)
	u.mu.Unlock()
}

// open lets the stream start; safe to call twice.
func (s *stream) open() { s.once.Do(func() { close(s.gate) }) }

// finish ends an endless stream; safe to call twice.
func (s *stream) finish() { s.stopOnce.Do(func() { close(s.stop) }) }

// countIn is how many chunks were created in [t0, t1).
func (s *stream) countIn(t0, t1 int64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return countCreated(s.created, t0, t1)
}

// countCreated is how many creation stamps fall in [t0, t1).
func countCreated(created []int64, t0, t1 int64) int64 {
	var n int64
	for _, c := range created {
		if c >= t0 && c < t1 {
			n++
		}
	}
	return n
}

func (s *stream) sent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.created)
}

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Content string `json:"content"`
	} `json:"messages"`
}

const chunkHead = `data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1764100800,"model":"bench","choices":[{"index":0,"delta":{`
const chunkTail = `},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n"

// appendChunk appends one content chunk whose text is the stamp padded to size.
func appendChunk(b []byte, stamp int64, size int) []byte {
	b = append(b, chunkHead...)
	b = append(b, `"content":"`...)
	n := len(b)
	b = strconv.AppendInt(b, stamp, 10)
	b = append(b, ' ')
	for len(b)-n < size {
		b = append(b, 'x')
	}
	b = append(b, '"')
	return append(b, chunkTail...)
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
		http.Error(w, `{"error":{"message":"bad request"}}`, http.StatusBadRequest)
		return
	}
	key := req.Messages[len(req.Messages)-1].Content
	u.mu.Lock()
	s := u.streams[key]
	u.mu.Unlock()
	if s == nil {
		http.Error(w, `{"error":{"message":"no such stream planned"}}`, http.StatusBadRequest)
		return
	}
	select {
	case <-s.gate:
	case <-r.Context().Done():
		return
	}
	defer close(s.finished)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte(chunkHead + `"role":"assistant","content":""` + chunkTail)) {
		return
	}
	close(s.started)
	buf := make([]byte, 0, s.size+512)
	start := time.Now()
	var t *time.Timer
loop:
	for i := 0; s.count == 0 || i < s.count; i++ {
		due := start.Add(time.Duration(i+1) * s.every)
		if d := time.Until(due); d > 0 {
			if t == nil {
				t = time.NewTimer(d)
			} else {
				t.Reset(d)
			}
			select {
			case <-t.C:
			case <-s.stop:
				break loop
			case <-r.Context().Done():
				return
			}
		} else {
			select {
			case <-s.stop:
				break loop
			default:
			}
		}
		now := time.Now()
		stamp := now.UnixNano()
		if now.Sub(due) > time.Millisecond && s.every > 0 {
			stamp = due.UnixNano()
		}
		buf = appendChunk(buf[:0], stamp, s.size)
		s.mu.Lock()
		s.created = append(s.created, stamp)
		s.mu.Unlock()
		if !write(buf) {
			return
		}
	}
	n := s.sent()
	write([]byte(chunkHead + `},"logprobs":null,"finish_reason":"stop"}],"usage":null}` + "\n\n"))
	write(fmt.Appendf(nil, "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1764100800,\"model\":\"bench\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\ndata: [DONE]\n\n", n, n+1))
}
