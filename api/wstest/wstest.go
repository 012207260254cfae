// Package wstest speaks the WebSocket wire format by hand, for tests that
// need what a library client hides: frames sent before the handshake's
// answer, control frames at chosen moments, and the exact frames the
// server wrote.
package wstest

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"testing"
)

// ClientFrame encodes one masked, final frame, as a client sends it.
func ClientFrame(op byte, p []byte) []byte { return MaskedFrame(true, op, p) }

// MaskedFrame encodes one masked frame of any length, final or a fragment
// (RFC 6455 5.2, 5.3), as a client sends it.
func MaskedFrame(fin bool, op byte, p []byte) []byte {
	b := make([]byte, 0, 14+len(p))
	if fin {
		op |= 0x80
	}
	b = append(b, op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i, c := range p {
		b = append(b, c^mask[i%4])
	}
	return b
}

// ReadServerFrame reads one frame as a server must send it, final and
// unmasked, and fails the test otherwise.
func ReadServerFrame(t testing.TB, r io.Reader) (op byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		t.Fatalf("frame header %x: want final and unmasked", h)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(r, e[:]); err != nil {
			t.Fatalf("read frame length: %v", err)
		}
		n = int(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(r, e[:]); err != nil {
			t.Fatalf("read frame length: %v", err)
		}
		n = int(binary.BigEndian.Uint64(e[:]))
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, payload
}
