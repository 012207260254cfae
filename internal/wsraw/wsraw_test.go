package wsraw

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/playground-dev/playground/api/wstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// server is one upgraded connection, as the handler of a real net/http
// server sees it: the library's Conn for reads and control frames, and
// ours for messages. The library reads on its own goroutine (which is
// how it answers pings and the close handshake); what it read lands on
// msgs, and why it stopped on readErr.
type server struct {
	ws      *websocket.Conn
	out     *Conn
	msgs    chan string
	readErr chan error
	writes  *recorder // every write to the socket, when recording
}

// client is the peer, speaking the wire format by hand.
type client struct {
	net.Conn
	r *bufio.Reader
}

// setup starts a server and connects a client to it. sendBuf > 0 shrinks
// the server socket's send buffer (and the client's receive buffer), so
// that a client that does not read backs the server up after a few KiB.
func setup(t *testing.T, sendBuf int, record bool) (*server, *client) {
	t.Helper()
	got := make(chan *server, 1)
	rec := &recorder{}
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj := &Hijacker{ResponseWriter: w}
		ws, err := websocket.Accept(hj, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		s := &server{ws: ws, out: hj.Conn, msgs: make(chan string, 16), readErr: make(chan error, 1), writes: rec}
		go func() {
			for {
				_, p, err := ws.Read(context.Background())
				if err != nil {
					s.readErr <- err
					return
				}
				s.msgs <- string(p)
			}
		}()
		got <- s
	}))
	hs.Listener = tuneListener{Listener: hs.Listener, sendBuf: sendBuf, rec: map[bool]*recorder{true: rec}[record]}
	hs.Start()
	t.Cleanup(hs.Close)

	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if sendBuf > 0 {
		_ = conn.(*net.TCPConn).SetReadBuffer(sendBuf)
	}
	t.Cleanup(func() { conn.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", hs.Listener.Addr(), base64.StdEncoding.EncodeToString(key))
	c := &client{Conn: conn, r: bufio.NewReader(conn)}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	s := <-got
	t.Cleanup(func() { s.ws.CloseNow() })
	return s, c
}

type tuneListener struct {
	net.Listener
	sendBuf int
	rec     *recorder
}

func (l tuneListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if l.sendBuf > 0 {
		_ = c.(*net.TCPConn).SetWriteBuffer(l.sendBuf)
	}
	if l.rec != nil {
		return &recordingConn{Conn: c, rec: l.rec}, nil
	}
	return c, nil
}

// recorder keeps each write to a socket as one piece.
type recorder struct {
	mu     sync.Mutex
	writes [][]byte
}

func (r *recorder) all() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.writes...)
}

// recordingConn hides the socket's syscall.Conn, so WriteNow cannot try:
// every message then goes through Flush, which the recording still sees.
type recordingConn struct {
	net.Conn
	rec *recorder
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.rec.mu.Lock()
	c.rec.writes = append(c.rec.writes, bytes.Clone(p))
	c.rec.mu.Unlock()
	return c.Conn.Write(p)
}

// frame is one frame as read off the wire.
type frame struct {
	fin     bool
	op      byte
	hdrLen  int
	payload []byte
}

// readFrame reads one server frame and holds it to RFC 6455 5.2 and 5.1:
// no reserved bits (no extension was negotiated), unmasked, its length in
// the shortest form, control frames final and at most 125 bytes.
func (c *client) readFrame(t *testing.T) frame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	f := frame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f, hdrLen: 2}
	if h[0]&0x70 != 0 {
		t.Fatalf("reserved bits set: %#x", h[0])
	}
	if h[1]&0x80 != 0 {
		t.Fatal("a server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(c.r, e[:]); err != nil {
			t.Fatal(err)
		}
		n, f.hdrLen = uint64(binary.BigEndian.Uint16(e[:])), 4
		if n < 126 {
			t.Fatalf("length %d in the 16-bit form", n)
		}
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(c.r, e[:]); err != nil {
			t.Fatal(err)
		}
		n, f.hdrLen = binary.BigEndian.Uint64(e[:]), 10
		if n <= 0xffff || n>>63 != 0 {
			t.Fatalf("length %d in the 64-bit form", n)
		}
	}
	if f.op >= 0x8 && (!f.fin || n > 125) {
		t.Fatalf("control frame %#x: fin %v, %d bytes", f.op, f.fin, n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(c.r, f.payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return f
}

// send writes one masked frame, as a client must (RFC 6455 5.3).
func (c *client) send(t *testing.T, fin bool, op byte, p []byte) {
	t.Helper()
	if _, err := c.Write(wstest.MaskedFrame(fin, op, p)); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

// message sends parts as one message: on the spot if the socket takes
// it, else through Flush, as a server's writer does.
func message(out *Conn, parts ...[]byte) error {
	tried := false
	if out.WriteNow(func() [][]byte { tried = true; return parts }) {
		return nil
	}
	if tried {
		return out.Flush(nil)
	}
	return out.Flush(parts)
}

// TestPayloadLengths: each length at and around the boundaries of the
// three length forms arrives whole, final, as text, with its length in
// the shortest form; sent on the spot and through Flush, whole and in
// parts.
func TestPayloadLengths(t *testing.T) {
	s, c := setup(t, 0, false)
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'a' + byte(n%26)}, n)
		wantHdr := map[bool]int{true: 2, false: 4}[n < 126]
		if n > 0xffff {
			wantHdr = 10
		}
		half := n / 2
		for name, send := range map[string]func() error{
			"now":      func() error { return message(s.out, payload) },
			"in parts": func() error { return message(s.out, payload[:half], payload[half:]) },
			"flush":    func() error { return s.out.Flush([][]byte{payload[:half], payload[half:]}) },
		} {
			if err := send(); err != nil {
				t.Fatalf("%d bytes %s: %v", n, name, err)
			}
			f := c.readFrame(t)
			if !f.fin || f.op != opText || f.hdrLen != wantHdr || !bytes.Equal(f.payload, payload) {
				t.Errorf("%d bytes %s: fin %v op %#x header %d (want %d), payload %d bytes", n, name, f.fin, f.op, f.hdrLen, wantHdr, len(f.payload))
			}
		}
	}
}

// TestFragmentedMaskedClientFrames: a client's message in three masked
// fragments, a ping between two of them, reaches the server whole, the
// ping answered with its payload, through the 16-byte read buffer.
func TestFragmentedMaskedClientFrames(t *testing.T) {
	s, c := setup(t, 0, false)
	c.send(t, false, 0x1, []byte("a message longer "))
	c.send(t, true, 0x9, []byte("still there?"))
	c.send(t, false, 0x0, []byte("than the read buffer, "))
	c.send(t, true, 0x0, []byte("in three fragments"))
	if f := c.readFrame(t); f.op != 0xA || string(f.payload) != "still there?" {
		t.Fatalf("answer to the ping: op %#x %q", f.op, f.payload)
	}
	select {
	case m := <-s.msgs:
		if m != "a message longer than the read buffer, in three fragments" {
			t.Fatalf("server read %q", m)
		}
	case err := <-s.readErr:
		t.Fatalf("server read: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the message never arrived")
	}
}

// TestCloseFromServer: the library's close frame goes out whole after any
// message under way, nothing of ours follows it, and the handshake ends
// when the client answers.
func TestCloseFromServer(t *testing.T) {
	s, c := setup(t, 0, false)
	closed := make(chan error, 1)
	go func() { closed <- s.ws.Close(websocket.StatusGoingAway, "bye") }()
	f := c.readFrame(t)
	if f.op != opClose || binary.BigEndian.Uint16(f.payload) != 1001 || string(f.payload[2:]) != "bye" {
		t.Fatalf("close frame: op %#x %q", f.op, f.payload)
	}
	if s.out.WriteNow(func() [][]byte { t.Error("WriteNow tried after the close frame"); return nil }) {
		t.Error("WriteNow after the close frame reported success")
	}
	if err := s.out.Flush([][]byte{[]byte("late")}); !errors.Is(err, ErrCloseSent) {
		t.Errorf("Flush after the close frame: %v, want ErrCloseSent", err)
	}
	c.send(t, true, opClose, f.payload[:2])
	if err := <-closed; err != nil {
		t.Errorf("close handshake: %v", err)
	}
	wantEOF(t, c)
}

// TestCloseFromClient: the library answers a client's close with its
// own, echoing the code, and nothing of ours follows it.
func TestCloseFromClient(t *testing.T) {
	s, c := setup(t, 0, false)
	c.send(t, true, opClose, append(binary.BigEndian.AppendUint16(nil, 1000), "done"...))
	f := c.readFrame(t)
	if f.op != opClose || len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != 1000 {
		t.Fatalf("answer to the close: op %#x %q", f.op, f.payload)
	}
	var ce websocket.CloseError
	if err := <-s.readErr; !errors.As(err, &ce) || ce.Code != websocket.StatusNormalClosure {
		t.Errorf("server read ended with %v", err)
	}
	if err := s.out.Flush([][]byte{[]byte("late")}); err == nil {
		t.Error("Flush after the close handshake succeeded")
	}
	wantEOF(t, c)
}

func wantEOF(t *testing.T, c *client) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := c.r.ReadByte(); err == nil {
		t.Fatalf("byte %#x after the close frame", b)
	}
}

// fill writes messages on the spot until the socket takes only part of
// one (the client is not reading); it returns how many it began.
func fill(t *testing.T, out *Conn, payload []byte) int {
	t.Helper()
	for sent := 1; sent < 10000; sent++ {
		if !out.WriteNow(func() [][]byte { return [][]byte{payload} }) {
			return sent
		}
	}
	t.Fatal("the socket never filled")
	return 0
}

// TestWSOutKeepsFramesWhole: when the socket takes only part of a message
// (the viewer is not reading), the rest goes out before anything else, be
// it the library's pong or our next message, and the viewer reads whole
// frames in order once it reads again.
func TestWSOutKeepsFramesWhole(t *testing.T) {
	s, c := setup(t, 8<<10, false)
	payload := bytes.Repeat([]byte("x"), 3000)
	sent := fill(t, s.out, payload)

	// A pong and one more message, while the viewer is still not reading.
	done := make(chan error, 2)
	go func() {
		_, err := s.out.Write([]byte{0x8A, 4, 'p', 'o', 'n', 'g'})
		done <- err
		done <- s.out.Flush([][]byte{[]byte("la"), []byte("\n"), []byte("st")})
	}()
	for i := range sent {
		if f := c.readFrame(t); f.op != opText || !bytes.Equal(f.payload, payload) {
			t.Fatalf("frame %d of %d: opcode %#x, %d bytes", i+1, sent, f.op, len(f.payload))
		}
	}
	if f := c.readFrame(t); f.op != 0xA || string(f.payload) != "pong" {
		t.Fatalf("after the messages: opcode %#x %q, want the pong", f.op, f.payload)
	}
	if f := c.readFrame(t); f.op != opText || string(f.payload) != "la\nst" {
		t.Fatalf("last: opcode %#x %q", f.op, f.payload)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestWSSlowReaderGetsEveryFrameWhole: a client that pings while a backlog
// it has not read waits gets its pong between two whole messages, and
// every message, in order, as the backlog drains.
func TestWSSlowReaderGetsEveryFrameWhole(t *testing.T) {
	s, c := setup(t, 8<<10, false)
	msg := func(i int) []byte { return fmt.Appendf(bytes.Repeat([]byte("y"), 2000), "#%d", i) }
	sent := 0
	for {
		sent++
		if !s.out.WriteNow(func() [][]byte { return [][]byte{msg(sent)} }) {
			break
		}
	}
	c.send(t, true, 0x9, []byte("ping during backlog"))
	const more = 50
	flushed := make(chan error, 1)
	go func() {
		var err error
		for i := sent + 1; i <= sent+more && err == nil; i++ {
			err = s.out.Flush([][]byte{msg(i)})
		}
		flushed <- err
	}()
	next, pongs := 1, 0
	for next <= sent+more {
		f := c.readFrame(t)
		switch f.op {
		case 0xA:
			if string(f.payload) != "ping during backlog" {
				t.Fatalf("pong carries %q", f.payload)
			}
			pongs++
		case opText:
			if !bytes.Equal(f.payload, msg(next)) {
				t.Fatalf("message %d: %d bytes ending %q", next, len(f.payload), f.payload[max(0, len(f.payload)-8):])
			}
			next++
		default:
			t.Fatalf("unexpected opcode %#x", f.op)
		}
		time.Sleep(time.Millisecond) // a slow reader
	}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if pongs != 1 {
		// The pong may trail the last message only if the library had not
		// read the ping yet; it must come, once.
		if f := c.readFrame(t); f.op != 0xA || pongs != 0 {
			t.Fatalf("%d pongs, then opcode %#x", pongs, f.op)
		}
	}
}

// TestWriteNowAllocatesNothing: a message the socket takes on the spot
// (the common case, once per viewer for every event of a session) costs
// no allocation: the frame's buffer is pooled, and so is the write the
// runtime is handed.
func TestWriteNowAllocatesNothing(t *testing.T) {
	s, c := setup(t, 0, false)
	payload := [][]byte{[]byte(`{"type":"chunk","seq":1}`)}
	next := func() [][]byte { return payload }
	read := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c)
		read <- err
	}()
	if !s.out.WriteNow(next) {
		t.Fatal("the first message did not go out on the spot")
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if !s.out.WriteNow(next) {
			t.Fatal("a message did not go out on the spot")
		}
	})
	// Under the race detector the pools drop some of what is put back:
	// about one buffer a message is made anew, never the three of a
	// write that allocated its own.
	if limit := map[bool]float64{false: 0, true: 1}[raceEnabled]; allocs > limit {
		t.Errorf("a message written on the spot costs %.1f allocations, want at most %.0f", allocs, limit)
	}
	c.Close()
	<-read
}

// TestLibraryContract pins what this package relies on in coder/websocket
// (see the package comment). If an upgrade of the library fails it, Conn
// can no longer keep frames whole or stop after the close frame: rethink
// the package before upgrading.
func TestLibraryContract(t *testing.T) {
	s, c := setup(t, 0, true)
	before := len(s.writes.all()) // the handshake's answer
	c.send(t, true, 0x9, []byte("pin"))
	if f := c.readFrame(t); f.op != 0xA {
		t.Fatalf("ping answered with opcode %#x", f.op)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.ws.Close(websocket.StatusNormalClosure, "") }()
	f := c.readFrame(t)
	if f.op != opClose {
		t.Fatalf("close: opcode %#x", f.op)
	}
	// The library's writes reached the socket through Conn (it saw the
	// close frame by its opcode), each control frame in one piece.
	if err := s.out.Flush([][]byte{[]byte("after")}); !errors.Is(err, ErrCloseSent) {
		t.Errorf("the library's close frame did not pass through Conn.Write: Flush says %v", err)
	}
	writes := s.writes.all()[before:]
	if len(writes) != 2 {
		t.Fatalf("the library wrote %d pieces for a pong and a close frame, want 2: %x", len(writes), writes)
	}
	for i, wantOp := range []byte{0xA, opClose} {
		w := writes[i]
		if len(w) < 2 || w[0] != 0x80|wantOp || int(w[1]&0x7f)+2 != len(w) {
			t.Errorf("write %d: %x, want one whole frame of opcode %#x", i, w, wantOp)
		}
	}
	c.send(t, true, opClose, f.payload)
	<-closed
}

// accepted starts a server whose handler only upgrades: nothing reads
// until the test does. It returns the library's Conn, ours and a client.
func accepted(t *testing.T) (*websocket.Conn, *Conn, *client) {
	t.Helper()
	type up struct {
		ws  *websocket.Conn
		out *Conn
	}
	got := make(chan up, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hj := &Hijacker{ResponseWriter: w}
		ws, err := websocket.Accept(hj, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		got <- up{ws, hj.Conn}
	}))
	t.Cleanup(hs.Close)
	conn, err := net.Dial("tcp", hs.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	c := &client{Conn: conn, r: bufio.NewReader(conn)}
	if resp, err := http.ReadResponse(c.r, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	u := <-got
	t.Cleanup(func() { u.ws.CloseNow() })
	return u.ws, u.out, c
}

// parkOut parks out and returns a channel that receives once resume runs.
// Where parking is not available (it needs epoll), the test resumes at
// once, as a server's reader would go on reading itself.
func parkOut(t *testing.T, out *Conn) chan struct{} {
	t.Helper()
	resumed := make(chan struct{}, 1)
	resume := func() { resumed <- struct{}{} }
	if ok := out.Park(resume); ok != (runtime.GOOS == "linux") {
		t.Fatalf("Park reported %v on %s", ok, runtime.GOOS)
	} else if !ok {
		go resume()
	}
	return resumed
}

func waitResumed(t *testing.T, resumed chan struct{}, why string) {
	t.Helper()
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatalf("not resumed after %s", why)
	}
}

// TestParkedConnectionResumes: a parked connection holds no goroutine
// while the client is silent, and resumes when it sends a frame (which
// the library then reads whole), when the server closes the socket, and
// when the client goes away.
func TestParkedConnectionResumes(t *testing.T) {
	ws, out, c := accepted(t)
	before := runtime.NumGoroutine()
	resumed := parkOut(t, out)
	if runtime.GOOS == "linux" {
		select {
		case <-resumed:
			t.Fatal("resumed while the client sent nothing")
		case <-time.After(100 * time.Millisecond):
		}
		// The poller is the only goroutine added, whatever the number parked.
		if n := runtime.NumGoroutine(); n > before+1 {
			t.Errorf("%d goroutines with one connection parked, %d before", n, before)
		}
	}
	c.send(t, true, opText, []byte("subscribe"))
	waitResumed(t, resumed, "a frame")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, p, err := ws.Read(ctx); err != nil || string(p) != "subscribe" {
		t.Fatalf("read after resume: %q %v", p, err)
	}

	// A ping while parked: resumed, the library answers it in the read.
	resumed = parkOut(t, out)
	c.send(t, true, 0x9, []byte("idle?"))
	waitResumed(t, resumed, "a ping")
	read := make(chan error, 1)
	go func() { _, _, err := ws.Read(context.Background()); read <- err }()
	if f := c.readFrame(t); f.op != 0xA || string(f.payload) != "idle?" {
		t.Fatalf("answer to the ping: op %#x %q", f.op, f.payload)
	}
	// The client goes away while the server reads: the read ends.
	c.Close()
	if err := <-read; err == nil {
		t.Fatal("read succeeded after the client left")
	}
}

// TestParkedConnectionClosedByServer: closing the socket of a parked
// connection resumes it, and its read then fails.
func TestParkedConnectionClosedByServer(t *testing.T) {
	ws, out, _ := accepted(t)
	resumed := parkOut(t, out)
	ws.CloseNow()
	waitResumed(t, resumed, "the server closed the socket")
	if _, _, err := ws.Read(context.Background()); err == nil {
		t.Fatal("read succeeded on a closed connection")
	}
	if out.Park(func() { t.Error("resumed a closed connection") }) {
		t.Error("a closed connection parked")
	}
}

// TestParkedConnectionClientLeaves: a client that goes away resumes its
// parked connection, whose read then fails.
func TestParkedConnectionClientLeaves(t *testing.T) {
	ws, out, c := accepted(t)
	resumed := parkOut(t, out)
	c.Close()
	waitResumed(t, resumed, "the client left")
	if _, _, err := ws.Read(context.Background()); err == nil {
		t.Fatal("read succeeded after the client left")
	}
}

// TestParkedCloseHandshake: the server's close handshake on a parked
// connection completes when the client answers, and the connection
// resumes to find it closed.
func TestParkedCloseHandshake(t *testing.T) {
	ws, out, c := accepted(t)
	resumed := parkOut(t, out)
	closed := make(chan error, 1)
	go func() { closed <- ws.Close(websocket.StatusGoingAway, "bye") }()
	f := c.readFrame(t)
	if f.op != opClose || binary.BigEndian.Uint16(f.payload) != 1001 {
		t.Fatalf("close frame: op %#x %q", f.op, f.payload)
	}
	c.send(t, true, opClose, f.payload[:2])
	if err := <-closed; err != nil {
		t.Errorf("close handshake: %v", err)
	}
	waitResumed(t, resumed, "the close handshake")
	if _, _, err := ws.Read(context.Background()); err == nil {
		t.Fatal("read succeeded after the close handshake")
	}
}
