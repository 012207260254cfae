package auth

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryLimiter(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewMemoryLimiter(2, time.Minute, func() time.Time { return now })
	for i := 0; i < 2; i++ {
		if ok, _, _ := l.Hit(ctx, "k"); !ok {
			t.Fatalf("hit %d refused", i)
		}
	}
	ok, after, _ := l.Hit(ctx, "k")
	if ok || after != time.Minute {
		t.Errorf("over the limit: ok=%v after=%v", ok, after)
	}
	// Taking back the refused hit leaves the key at its limit.
	_ = l.Undo(ctx, "k")
	now = now.Add(30 * time.Second)
	if ok, after, _ := l.Hit(ctx, "k"); ok || after != 30*time.Second {
		t.Errorf("at the limit: ok=%v, retry after = %v", ok, after)
	}
	// Taking back two hits makes room for one.
	_ = l.Undo(ctx, "k")
	_ = l.Undo(ctx, "k")
	if ok, _, _ := l.Hit(ctx, "k"); !ok {
		t.Error("refused after an undo")
	}
	// Undo never goes below zero, and does not create a key.
	_ = l.Undo(ctx, "absent")
	if ok, _, _ := l.Hit(ctx, "absent"); !ok {
		t.Error("absent key refused")
	}
	_ = l.Reset(ctx, "absent")
	now = now.Add(30 * time.Second)
	if ok, _, _ := l.Hit(ctx, "k"); !ok {
		t.Error("not allowed after the window")
	}
	_ = l.Reset(ctx, "k")
	if l.size() != 0 {
		t.Errorf("size after reset = %d", l.size())
	}
	// Idle keys are swept.
	for i := 0; i < 100; i++ {
		_, _, _ = l.Hit(ctx, strconv.Itoa(i))
	}
	now = now.Add(2 * time.Minute)
	_, _, _ = l.Hit(ctx, "new")
	if l.size() != 1 {
		t.Errorf("size after sweep = %d, want 1", l.size())
	}
}
