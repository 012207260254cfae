package actors

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/playground-dev/playground"
)

// modelMsgKind says what a model actor reports.
type modelMsgKind int

const (
	msgStatus    modelMsgKind = iota // status changed (streaming), or a retry is announced
	msgChunk                         // a piece of text
	msgReasoning                     // a piece of visible thinking
	msgEnd                           // the response ended; its final row is committed
)

// modelMsg is what a model actor sends its session actor.
type modelMsg struct {
	idx      int
	kind     modelMsgKind
	status   string
	retrying *playground.Retrying
	text     string
	final    *playground.Response
}

// modelActor streams one model's response of one session. It is started
// by its session actor (one goroutine each), ends when the response ends
// (completion, failure, cancel of its context, or the total time limit),
// and always delivers exactly one msgEnd, after committing the final row.
// The session actor waits for that message from every model actor before
// it finishes the session.
type modelActor struct {
	idx       int
	sessionID string
	resp      playground.Response // id and model
	provider  playground.Provider
	pricing   *playground.Pricing
	req       playground.ProviderRequest
	policy    Policy
	breakers  *Breakers
	commit    func(context.Context, pendingEnd) bool // the final row, now or once the database is back
	onEnd     func(status, errCode string)           // metrics, tests
	out       chan<- modelMsg
	now       func() time.Time
	log       *slog.Logger
}

// attemptState is what a response has gathered across its attempts.
type attemptState struct {
	text      strings.Builder
	reasoning strings.Builder
	// streamed: something (answer or thinking) has reached viewers, so
	// another attempt would repeat it.
	streamed  bool
	nextIndex int
	usage     playground.Usage
	finish    string
	ttft      *int64
	attempts  int
}

func (m *modelActor) send(msg modelMsg) {
	msg.idx = m.idx
	m.out <- msg // the session actor reads until every model actor has ended
}

// run is the model actor's goroutine body. ctx is cancelled (with a cause)
// by the session actor to cancel the response or to shut down.
func (m *modelActor) run(ctx context.Context) {
	start := m.now()
	totalCtx, cancelTotal := context.WithTimeoutCause(ctx, m.policy.Total, errTotalTimeout)
	defer cancelTotal()

	st := &attemptState{}
	var rerr *playground.ResponseError
	for {
		if m.breakers != nil && m.breakers.Cooling(m.provider.Name()) {
			rerr = &playground.ResponseError{Code: playground.RErrProviderUnavailable, Retryable: true,
				Message: "The provider is cooling down after repeated failures; try again shortly."}
			break
		}
		st.attempts++
		err := m.attempt(ctx, totalCtx, st, start)
		if err == nil {
			break
		}
		var retryable bool
		var retryAfter time.Duration
		rerr, retryable, retryAfter = classify(ctx, totalCtx, err)
		if st.streamed || !retryable || st.attempts >= m.policy.MaxAttempts {
			break
		}
		delay := retryAfter
		if delay <= 0 {
			delay = m.policy.Backoff(st.attempts + 1)
		}
		if dl, ok := totalCtx.Deadline(); ok && m.now().Add(delay).After(dl) {
			break // the wait asked for does not fit in the time left: end now, honestly
		}
		m.send(modelMsg{kind: msgStatus, status: playground.StatusPending, retrying: &playground.Retrying{
			Attempt: st.attempts + 1, DelayMs: delay.Milliseconds(), Reason: rerr.Code}})
		t := time.NewTimer(delay)
		select {
		case <-t.C:
			rerr = nil
			continue
		case <-totalCtx.Done():
			t.Stop()
			rerr, _, _ = classify(ctx, totalCtx, context.Cause(totalCtx))
		}
		break
	}
	m.finish(ctx, st, rerr, start)
}

// attempt makes one upstream request and streams it into st. It returns
// nil when the stream ended cleanly.
func (m *modelActor) attempt(ctx, totalCtx context.Context, st *attemptState, start time.Time) error {
	actx, cancel := context.WithCancelCause(totalCtx)
	defer cancel(nil)
	firstByte := time.AfterFunc(m.policy.FirstByte, func() { cancel(errFirstByteTimeout) })
	defer firstByte.Stop()
	var idle *time.Timer
	defer func() {
		if idle != nil {
			idle.Stop()
		}
	}()

	stream, err := m.provider.Stream(actx, m.req)
	if err != nil {
		return causeOr(actx, err)
	}
	defer stream.Close()
	for {
		d, err := stream.Recv()
		if idle == nil {
			firstByte.Stop()
			idle = time.AfterFunc(m.policy.Idle, func() { cancel(errIdleTimeout) })
		} else {
			idle.Reset(m.policy.Idle)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return causeOr(actx, err)
		}
		st.usage.Merge(d.Usage)
		if d.FinishReason != "" {
			st.finish = d.FinishReason
		}
		if (d.Text != "" || d.Reasoning != "") && !st.streamed {
			st.streamed = true
			m.send(modelMsg{kind: msgStatus, status: playground.StatusStreaming})
		}
		if d.Reasoning != "" {
			st.reasoning.WriteString(d.Reasoning)
			m.send(modelMsg{kind: msgReasoning, text: d.Reasoning})
		}
		if d.Text == "" {
			continue
		}
		if st.ttft == nil {
			// To the answer's first chunk: thinking before it is not counted.
			ms := m.now().Sub(start).Milliseconds()
			st.ttft = &ms
		}
		st.text.WriteString(d.Text)
		st.nextIndex++
		m.send(modelMsg{kind: msgChunk, text: d.Text})
	}
}

// causeOr prefers the reason the attempt's context was cancelled (a
// timeout of ours) over the transport error it produced.
func causeOr(actx context.Context, err error) error {
	if actx.Err() != nil {
		if c := context.Cause(actx); c != nil {
			return c
		}
	}
	return err
}

// classify turns an attempt's failure into a response error and a retry
// decision.
func classify(ctx, totalCtx context.Context, err error) (rerr *playground.ResponseError, retryable bool, retryAfter time.Duration) {
	if ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errShutdown) {
			return &playground.ResponseError{Code: playground.RErrInterrupted, Retryable: true,
				Message: "The server restarted while this response was running."}, false, 0
		}
		return nil, false, 0 // cancelled: no error
	}
	switch {
	case errors.Is(err, errTotalTimeout) || errors.Is(context.Cause(totalCtx), errTotalTimeout):
		return &playground.ResponseError{Code: playground.RErrTimeout, Retryable: true,
			Message: "The response took longer than the server's total time limit."}, false, 0
	case errors.Is(err, errFirstByteTimeout):
		return &playground.ResponseError{Code: playground.RErrTimeout, Retryable: true,
			Message: "The provider did not start answering in time."}, true, 0
	case errors.Is(err, errIdleTimeout):
		return &playground.ResponseError{Code: playground.RErrTimeout, Retryable: true,
			Message: "The provider stopped sending text mid-answer."}, true, 0
	}
	if pe, ok := playground.AsProviderError(err); ok {
		return &playground.ResponseError{Code: pe.Code, Message: pe.Message, Retryable: pe.Retryable}, pe.Retryable, pe.RetryAfter
	}
	return &playground.ResponseError{Code: playground.RErrProviderError, Retryable: true,
		Message: "The connection to the provider failed."}, true, 0
}

// finish computes the metrics, commits the final row (and the refund of a
// response that produced nothing), feeds the breaker, and reports the end.
func (m *modelActor) finish(ctx context.Context, st *attemptState, rerr *playground.ResponseError, start time.Time) {
	r := m.resp
	r.Text = st.text.String()
	r.Reasoning = st.reasoning.String()
	r.NextIndex = st.nextIndex
	r.Attempts = st.attempts
	finish := st.finish
	switch {
	case rerr != nil:
		r.Status, r.Error, finish = playground.StatusError, rerr, playground.FinishError
	case ctx.Err() != nil:
		r.Status, finish = playground.StatusCancelled, playground.FinishCancelled
	case finish == playground.FinishContentFilter:
		r.Status = playground.StatusError
		r.Error = &playground.ResponseError{Code: playground.RErrContentFilter, Retryable: false,
			Message: "The provider withheld the answer under its content policy."}
	default:
		r.Status = playground.StatusComplete
		if finish == "" {
			finish = playground.FinishStop
		}
	}
	if r.Status == playground.StatusError && r.Error.Code == playground.RErrContentFilter {
		finish = playground.FinishContentFilter
	}
	dur := m.now().Sub(start)
	mt := &playground.Metrics{
		TTFTMs: st.ttft, DurationMs: dur.Milliseconds(), Attempts: st.attempts, FinishReason: finish,
		PromptTokens: st.usage.PromptTokens, CompletionTokens: st.usage.CompletionTokens,
		ReasoningTokens: st.usage.ReasoningTokens, CachedTokens: st.usage.CachedTokens,
		CostUSD: st.usage.CostUSD,
	}
	if mt.CostUSD == nil {
		mt.CostUSD = m.pricing.Cost(mt.PromptTokens, mt.CompletionTokens)
	}
	if mt.CompletionTokens != nil && st.ttft != nil {
		gen := dur - time.Duration(*st.ttft)*time.Millisecond
		if gen > 0 && *mt.CompletionTokens > 0 {
			tps := float64(*mt.CompletionTokens) / gen.Seconds()
			tps = float64(int64(tps*10+0.5)) / 10
			mt.TokensPerSecond = &tps
		}
	}
	r.Metrics = mt
	refund := r.Status != playground.StatusComplete && st.ttft == nil
	r.Refunded = refund

	// The final row is committed before viewers hear of the ending, with a
	// context of its own: the response's may already be cancelled. When
	// the database does not answer, viewers hear of it all the same and
	// the engine's outbox commits the row once the database is back.
	dbctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	m.commit(dbctx, pendingEnd{sessionID: m.sessionID, resp: &r, refund: refund})
	code := ""
	if r.Error != nil {
		code = r.Error.Code
	}
	if m.breakers != nil {
		m.breakers.Record(m.provider.Name(), r.Status, code)
	}
	if m.onEnd != nil {
		m.onEnd(r.Status, code)
	}
	m.send(modelMsg{kind: msgEnd, final: &r})
}
