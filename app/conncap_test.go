package app

import (
	"log/slog"
	"testing"
)

// TestConnCap: MAX_CONNECTIONS is kept under the open-file limit, less
// what the process needs besides its clients.
func TestConnCap(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		want  int
		limit uint64
		got   int
	}{
		{10000, 0, 10000}, {10000, 1 << 20, 10000}, {10000, 10000 + fdReserve, 10000},
		{10000, 1024, 1024 - fdReserve}, {10000, 100, 1},
	} {
		if got := connCap(c.want, c.limit, log); got != c.got {
			t.Errorf("connCap(%d, %d) = %d, want %d", c.want, c.limit, got, c.got)
		}
	}
}
