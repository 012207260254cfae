package api

import (
	"bufio"
	"bytes"
	"net"
	"syscall"
	"testing"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/api/wstest"
)

// TestWSOutKeepsFramesWhole: when the socket takes only part of a message
// (the viewer is not reading), the rest goes out before anything else, be
// it the library's pong or our next message, and the viewer reads whole
// frames in order once it reads again.
func TestWSOutKeepsFramesWhole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	_ = server.(*net.TCPConn).SetWriteBuffer(8 << 10)
	_ = client.(*net.TCPConn).SetReadBuffer(8 << 10)
	o := &wsOut{conn: server}
	o.raw, _ = server.(syscall.Conn).SyscallConn()

	// Messages go out without waiting until the socket is full.
	payload := bytes.Repeat([]byte("x"), 3000)
	sent := 0
	for {
		o.mu.Lock()
		if !o.canWriteNow() {
			o.mu.Unlock()
			break
		}
		whole := o.writeNowLocked([]playground.Frame{{Data: payload}})
		o.mu.Unlock()
		sent++
		if !whole {
			break
		}
		if sent > 10000 {
			t.Fatal("the socket never filled")
		}
	}
	if o.rest == nil {
		t.Fatal("no message was left half-written")
	}

	// A pong and one more message, while the viewer is still not reading.
	pong := []byte{0x8A, 4, 'p', 'o', 'n', 'g'}
	done := make(chan error, 2)
	go func() {
		_, err := o.Write(pong)
		done <- err
		o.mu.Lock()
		done <- o.sendFramesLocked([]playground.Frame{{Data: []byte("la")}, {Data: []byte("st")}})
		o.mu.Unlock()
	}()

	r := bufio.NewReader(client)
	for i := range sent {
		op, p := wstest.ReadServerFrame(t, r)
		if op != 0x1 || !bytes.Equal(p, payload) {
			t.Fatalf("frame %d of %d: opcode %#x, %d bytes", i+1, sent, op, len(p))
		}
	}
	if op, p := wstest.ReadServerFrame(t, r); op != 0xA || string(p) != "pong" {
		t.Fatalf("after the messages: opcode %#x %q, want the pong", op, p)
	}
	if op, p := wstest.ReadServerFrame(t, r); op != 0x1 || string(p) != "la\nst" {
		t.Fatalf("last: opcode %#x %q", op, p)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
