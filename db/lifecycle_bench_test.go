package db_test

import (
	"fmt"
	"testing"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/db"
	"github.com/playground-dev/playground/db/dbtest"
)

// BenchmarkSessionLifecycle is the database work of one one-model
// comparison, as the server does it: create (quota charge and inserts),
// the checkpoint that marks the response streaming, a later checkpoint,
// the final row and the session's end. Serial, on each dialect under test,
// and with 8 comparisons at once ("parallel"), where writers queue. It
// reports the process's CPU time per comparison beside the wall time.
func BenchmarkSessionLifecycle(b *testing.B) {
	for _, dialect := range dbtest.Dialects() {
		for _, par := range []bool{false, true} {
			name := dialect
			if par {
				name += "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				d := dbtest.MustOpenDB(b, dialect, db.Options{Plans: playground.Plans{FreePerDay: 1 << 30}, Logger: quiet})
				u := mustCreateUser(b, d, "bench@example.com")
				b.ReportAllocs()
				// CPU time per comparison is what a busy server runs out
				// of; wall time also counts waits (PostgreSQL's commits).
				b.ResetTimer()
				cpu0 := cpuTime()
				defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op") }()
				if !par {
					for range b.N {
						if err := lifecycle(d, u.ID); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism(4) // 8 goroutines on two cores
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := lifecycle(d, u.ID); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// lifecycle runs one comparison's writes against d.
func lifecycle(d *db.DB, userID string) error {
	s := newSession(userID, "openai/bench")
	if err := d.CreateSession(ctx, s); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	r := s.Responses[0]
	first := "Conflict-free replicated data types "
	if err := d.Checkpoint(ctx, s.ID, 2, []playground.ResponseCheckpoint{
		{ID: r.ID, Status: playground.StatusStreaming, Text: first, NextIndex: 1},
	}); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := d.Checkpoint(ctx, s.ID, 40, []playground.ResponseCheckpoint{
		{ID: r.ID, Status: playground.StatusStreaming, TextFrom: len(first), Text: "let replicas merge.", NextIndex: 38},
	}); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	r.Status, r.Text, r.NextIndex = playground.StatusComplete, first+"let replicas merge.", 50
	r.Metrics = &playground.Metrics{TTFTMs: ptr(int64(12)), DurationMs: 80, CompletionTokens: ptr(int64(50)), FinishReason: playground.FinishStop}
	if err := d.FinishResponse(ctx, s.ID, r, false); err != nil {
		return fmt.Errorf("finish response: %w", err)
	}
	if err := d.FinishSession(ctx, s.ID, playground.SessionComplete, 53); err != nil {
		return fmt.Errorf("finish session: %w", err)
	}
	return nil
}
