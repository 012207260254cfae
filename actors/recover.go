package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/hub"
)

// Recover ends the sessions that are still marked running but whose owner
// is gone (a crash, a kill): every response that had not ended becomes
// error "interrupted", keeping the text of its last checkpoint; a response
// that had produced nothing gives its unit back; the session is finished
// and its closing events are published, so viewers elsewhere are told
// rather than left hanging. orphan decides which sessions are ownerless
// (with one instance, all of them at start-up). It returns how many
// sessions it ended.
func (e *Engine) Recover(ctx context.Context, orphan func(context.Context, *playground.Session) bool) (int, error) {
	running, err := e.store.RunningSessions(ctx)
	if err != nil {
		return 0, fmt.Errorf("actors: recover: %w", err)
	}
	n := 0
	for _, s := range running {
		// A session running here, or whose endings wait in this
		// instance's outbox, is not an orphan.
		if _, local := e.hub.Lookup(s.ID); local || e.outbox.holds(s.ID) || !orphan(ctx, s) {
			continue
		}
		if err := e.interrupt(ctx, s); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Watch runs Recover every interval until the engine shuts down: with
// several instances, a session whose owner died is ended by whichever
// instance notices first. The goroutine is started here and ends with
// Shutdown, which waits for it.
func (e *Engine) Watch(every time.Duration, orphan func(context.Context, *playground.Session) bool) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				// A pass may take longer than its interval on a loaded
				// database: the next tick waits for it.
				ctx, cancel := context.WithTimeout(context.Background(), max(every, 10*time.Second))
				if _, err := e.Recover(ctx, orphan); err != nil {
					e.log.Warn("actors: recover orphaned sessions", "err", err)
				}
				cancel()
			case <-e.stop:
				return
			}
		}
	}()
}

// RecoveryMarker is a Publisher that must hear of a recovery before it
// publishes: the session's events after seq come from the instance ending
// it, not from its owner (see redishub.Broker.Recovered).
type RecoveryMarker interface {
	Recovered(ctx context.Context, sessionID string, seq int64) error
}

// interrupt ends an orphaned session. The event log (the Redis stream,
// never trimmed while a session runs) is read from its start and laid over
// the last checkpoint, so that text newer than the checkpoint is kept and
// endings the owner told viewers of but could not commit (the database was
// down) are committed as told: a response the log shows ended gets the
// final row its events describe, and a session whose done is in the log
// is stored with that done's status and seq, and no second done is sent.
// Only what had not ended becomes error "interrupted", announced to
// viewers with the seqs that follow the log's last.
func (e *Engine) interrupt(ctx context.Context, s *playground.Session) error {
	storedEnded := map[string]bool{}
	for _, r := range s.Responses {
		storedEnded[r.ID] = r.Ended()
	}
	if e.tail != nil {
		if frames, err := e.tail(ctx, s.ID, 0); err == nil {
			for _, f := range frames {
				hub.Apply(s, f)
			}
		} else {
			e.log.Warn("actors: recover: read the event log", "session", s.ID, "err", err)
		}
	}
	doneLogged := s.Status != playground.SessionRunning
	seq := s.LastSeq
	if m, ok := e.publisher.(RecoveryMarker); ok && !doneLogged {
		// Before the first event of ours: a viewer of the dead owner may
		// have seen events after seq that neither the log nor the
		// database got, and ours take their seqs.
		if err := m.Recovered(ctx, s.ID, seq); err != nil {
			e.log.Warn("actors: recover: mark the log", "session", s.ID, "err", err)
		}
	}
	for _, r := range s.Responses {
		if storedEnded[r.ID] {
			continue
		}
		if r.Ended() {
			// Ended as the log says: the row the owner could not write.
			refund := r.Status != playground.StatusComplete && (r.Metrics == nil || r.Metrics.TTFTMs == nil)
			if err := e.store.FinishResponse(ctx, s.ID, r, refund); err != nil {
				return fmt.Errorf("actors: recover %s: %w", s.ID, err)
			}
			continue
		}
		r.Status = playground.StatusError
		r.Error = &playground.ResponseError{Code: playground.RErrInterrupted, Retryable: true,
			Message: "The server running this response stopped before it finished."}
		sendMetrics := r.Metrics == nil // exactly one metrics event per response
		if sendMetrics {
			r.Metrics = &playground.Metrics{Attempts: r.Attempts, FinishReason: playground.FinishError}
		}
		refund := r.Text == ""
		if err := e.store.FinishResponse(ctx, s.ID, r, refund); err != nil {
			return fmt.Errorf("actors: interrupt %s: %w", s.ID, err)
		}
		if doneLogged {
			continue // nothing is sent after done
		}
		v := s.ViewOf(r)
		if sendMetrics {
			seq++
			e.publish(s.ID, playground.MetricsFrame(s.ID, seq, playground.MetricsEvent{ResponseID: r.ID, Model: playground.ModelRef(v.Model), Metrics: v.Metrics}))
		}
		seq++
		e.publish(s.ID, playground.StatusFrame(s.ID, seq, playground.StatusEvent{ResponseID: r.ID, Model: playground.ModelRef(v.Model),
			Status: v.Status, Error: v.Error}))
	}
	if doneLogged {
		if err := e.store.FinishSession(ctx, s.ID, s.Status, seq); err != nil {
			return fmt.Errorf("actors: recover %s: %w", s.ID, err)
		}
		return nil
	}
	status := s.FinalStatus()
	seq++
	if err := e.store.FinishSession(ctx, s.ID, status, seq); err != nil {
		return fmt.Errorf("actors: interrupt %s: %w", s.ID, err)
	}
	e.publish(s.ID, playground.DoneFrame(s.ID, seq, status))
	return nil
}
