package backoff

import (
	"testing"
	"time"
)

func TestDelayDoublesToTwoSeconds(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		0: 100 * time.Millisecond, 1: 200 * time.Millisecond, 4: 1600 * time.Millisecond,
		5: 2 * time.Second, 6: 2 * time.Second, 1000: 2 * time.Second,
	} {
		if got := Delay(failures); got != want {
			t.Errorf("Delay(%d) = %v, want %v", failures, got, want)
		}
	}
}

func TestWaitEndsWhenStopped(t *testing.T) {
	if !Sleep(make(chan struct{}), time.Millisecond) {
		t.Fatal("a wait nobody stopped reported a stop")
	}
	stop := make(chan struct{})
	close(stop)
	start := time.Now()
	if Wait(stop, 1000) {
		t.Fatal("a stopped wait reported that it waited")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a stopped wait took %v", took)
	}
}
