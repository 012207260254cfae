package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/playground-dev/playground"
)

const (
	// maxRawBytes bounds the upstream text a ProviderError keeps for the log.
	maxRawBytes = 4 << 10
	// maxErrorBody bounds how much of an error response is read at all.
	maxErrorBody = 1 << 20
	// maxRetryAfter caps a wait an upstream asks for, so a silly header
	// cannot overflow a time.Duration; the model actor applies its own,
	// much shorter, budget.
	maxRetryAfter = 24 * time.Hour
	// maxUpstreamMessage bounds the upstream's own words quoted in a
	// message for a 400 (the only case where they help the person).
	maxUpstreamMessage = 300
)

// providerTitles are the names people know the upstreams by, for messages.
var providerTitles = map[string]string{
	playground.ProviderOpenAI:     "OpenAI",
	playground.ProviderOpenRouter: "OpenRouter",
	playground.ProviderAnthropic:  "Anthropic",
	playground.ProviderGemini:     "Gemini",
	playground.ProviderLocal:      "The local model server",
	playground.ProviderDemo:       "The demo provider",
}

// inSentence is title for use after the start of a sentence.
func inSentence(provider string) string {
	t := title(provider)
	if strings.HasPrefix(t, "The ") {
		return "the " + t[4:]
	}
	return t
}

func title(provider string) string {
	if t, ok := providerTitles[provider]; ok {
		return t
	}
	return provider
}

// errorInfo is what the error bodies of the upstreams have in common:
//
//	OpenAI:     {"error":{"message","type","code":"insufficient_quota"}}
//	OpenRouter: {"error":{"code":402,"message"}}
//	Anthropic:  {"type":"error","error":{"type":"overloaded_error","message"}}
//	Gemini:     {"error":{"code":429,"message","status":"RESOURCE_EXHAUSTED","details":[…]}}
//	Ollama:     {"error":"model 'x' not found"}
type errorInfo struct {
	Type       string // error.type
	Code       string // error.code, as text whether it was a string or a number
	Message    string // error.message (or error itself when it is a string)
	Status     string // error.status (Google's canonical code name)
	RetryDelay time.Duration
	Reasons    []string // error.details[].reason (Google)
}

func parseErrorBody(body []byte) errorInfo {
	var info errorInfo
	var top struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(bytes.TrimSpace(body), &top) != nil {
		return info
	}
	info.Message = top.Message
	var s string
	if json.Unmarshal(top.Error, &s) == nil {
		info.Message = s
		return info
	}
	var obj struct {
		Type    string          `json:"type"`
		Code    json.RawMessage `json:"code"`
		Message string          `json:"message"`
		Status  string          `json:"status"`
		Details []struct {
			Type       string `json:"@type"`
			Reason     string `json:"reason"`
			RetryDelay string `json:"retryDelay"`
		} `json:"details"`
	}
	if json.Unmarshal(top.Error, &obj) != nil {
		return info
	}
	info.Type, info.Status = obj.Type, obj.Status
	if obj.Message != "" {
		info.Message = obj.Message
	}
	if json.Unmarshal(obj.Code, &s) == nil {
		info.Code = s
	} else if n, err := strconv.ParseFloat(string(obj.Code), 64); err == nil {
		info.Code = strconv.FormatFloat(n, 'f', -1, 64)
	}
	for _, d := range obj.Details {
		if d.Reason != "" {
			info.Reasons = append(info.Reasons, d.Reason)
		}
		if d.RetryDelay != "" {
			if dur, err := time.ParseDuration(d.RetryDelay); err == nil && dur > 0 {
				info.RetryDelay = min(dur, maxRetryAfter)
			}
		}
	}
	return info
}

func (i errorInfo) insufficientQuota() bool {
	return i.Code == "insufficient_quota" || i.Type == "insufficient_quota" || i.Type == "billing_error" ||
		strings.Contains(strings.ToLower(i.Message), "credit balance is too low")
}

func (i errorInfo) invalidKey() bool {
	for _, r := range i.Reasons {
		if r == "API_KEY_INVALID" {
			return true
		}
	}
	return i.Type == "authentication_error" || i.Status == "UNAUTHENTICATED"
}

// ClassifyHTTP turns an upstream's error answer (status 400 and above) into
// a ProviderError following docs/api.md's failure table. The message is written
// for the person comparing models; the body goes into Raw, for the log only.
func ClassifyHTTP(provider string, status int, header http.Header, body []byte) *playground.ProviderError {
	info := parseErrorBody(body)
	name := title(provider)
	pe := &playground.ProviderError{Status: status, Raw: rawText(status, body)}
	set := func(code string, retryable bool, format string, args ...any) *playground.ProviderError {
		pe.Code, pe.Retryable, pe.Message = code, retryable, fmt.Sprintf(format, args...)
		return pe
	}
	switch {
	case status == http.StatusPaymentRequired || info.insufficientQuota():
		// Checked before 429: OpenAI's "insufficient_quota" is a 429 that no
		// wait will fix.
		return set(playground.RErrInsufficientCredits, false,
			"%s says the account behind this server is out of credits or quota; the operator needs to top it up.", name)
	case status == http.StatusTooManyRequests:
		pe.RetryAfter = retryAfter(header, info, time.Now())
		return set(playground.RErrRateLimited, true, "%s is rate limiting this server's requests; try again shortly.", name)
	case status == http.StatusUnauthorized || status == http.StatusForbidden || info.invalidKey():
		if provider == playground.ProviderOpenRouter && status == http.StatusForbidden && moderationFlagged(info) {
			return set(playground.RErrContentFilter, false, "%s's moderation flagged this prompt for the chosen model.", name)
		}
		return set(playground.RErrAuthFailed, false,
			"%s refused this server's API key; the operator needs to check the key configured for it.", name)
	case status == http.StatusNotFound:
		return set(playground.RErrModelNotFound, false,
			"%s does not offer this model, or this server's key may not use it.", name)
	case status == http.StatusRequestTimeout:
		return set(playground.RErrTimeout, true, "%s timed out before answering.", name)
	case status == 529 || info.Type == "overloaded_error":
		pe.RetryAfter = retryAfter(header, info, time.Now())
		return set(playground.RErrProviderError, true, "%s is overloaded right now; try again in a moment.", name)
	case status >= 500 || status == http.StatusConflict:
		pe.RetryAfter = retryAfter(header, info, time.Now())
		return set(playground.RErrProviderError, true, "%s had a server error (HTTP %d); try again in a moment.", name, status)
	}
	// 400, 413, 422 and the rest of 4xx: the request itself was refused,
	// and sending it again will not change that. The upstream's own words
	// usually say which parameter it disliked, so they are quoted.
	if m := quote(info.Message); m != "" {
		return set(playground.RErrProviderError, false, "%s rejected the request: %s", name, m)
	}
	return set(playground.RErrProviderError, false, "%s rejected the request (HTTP %d).", name, status)
}

// ClassifyStreamError classifies an error that arrived inside a stream that
// had already begun (HTTP 200): an Anthropic `error` event, an OpenRouter
// chunk with an `error` object, a Gemini `error` payload. docs/api.md makes these
// provider_error and retryable unless the error's type says otherwise.
func ClassifyStreamError(provider string, data []byte) *playground.ProviderError {
	info := parseErrorBody(data)
	name := title(provider)
	pe := &playground.ProviderError{Raw: rawText(0, data)}
	set := func(code string, retryable bool, format string, args ...any) *playground.ProviderError {
		pe.Code, pe.Retryable, pe.Message = code, retryable, fmt.Sprintf(format, args...)
		return pe
	}
	kind := info.Type
	if kind == "" {
		kind = info.Status
	}
	if kind == "" {
		kind = info.Code
	}
	switch kind {
	case "rate_limit_error", "rate_limit_exceeded", "RESOURCE_EXHAUSTED", "429":
		return set(playground.RErrRateLimited, true, "%s hit a rate limit while answering.", name)
	case "authentication_error", "permission_error", "UNAUTHENTICATED", "PERMISSION_DENIED", "401", "403":
		return set(playground.RErrAuthFailed, false,
			"%s refused this server's API key; the operator needs to check the key configured for it.", name)
	case "billing_error", "insufficient_quota", "402":
		return set(playground.RErrInsufficientCredits, false,
			"%s says the account behind this server is out of credits or quota; the operator needs to top it up.", name)
	case "not_found_error", "NOT_FOUND", "404":
		return set(playground.RErrModelNotFound, false, "%s does not offer this model.", name)
	case "timeout_error", "DEADLINE_EXCEEDED", "408":
		return set(playground.RErrTimeout, true, "%s timed out while answering.", name)
	case "invalid_request_error", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "400":
		if m := quote(info.Message); m != "" {
			return set(playground.RErrProviderError, false, "%s rejected the request: %s", name, m)
		}
		return set(playground.RErrProviderError, false, "%s rejected the request.", name)
	case "overloaded_error", "529":
		return set(playground.RErrProviderError, true, "%s became overloaded while answering; try again in a moment.", name)
	}
	return set(playground.RErrProviderError, true, "%s failed while answering; try again in a moment.", name)
}

// classifyTransport classifies a failure with no HTTP answer: connection
// refused or reset, a body cut off, a DNS failure. The caller has already
// passed context errors through.
func classifyTransport(provider string, err error, started bool) *playground.ProviderError {
	pe := &playground.ProviderError{Code: playground.RErrProviderError, Err: err, Raw: truncate(err.Error())}
	var netErr net.Error
	var urlErr *url.Error
	retryable := errors.As(err, &netErr) || errors.As(err, &urlErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
	pe.Retryable = retryable || started // a failure inside a begun stream is retryable (docs/api.md)
	switch {
	case started && retryable:
		pe.Message = fmt.Sprintf("The connection to %s broke while it was answering.", inSentence(provider))
	case started:
		pe.Message = fmt.Sprintf("%s sent part of its answer in a form that could not be read.", title(provider))
	case retryable:
		pe.Message = fmt.Sprintf("Could not reach %s; try again in a moment.", inSentence(provider))
	default:
		pe.Message = fmt.Sprintf("The request to %s failed.", inSentence(provider))
	}
	return pe
}

// truncatedStream is the error of a stream that ended (the connection
// closed cleanly) before the upstream said the answer was finished.
func truncatedStream(provider string) *playground.ProviderError {
	return &playground.ProviderError{
		Code:      playground.RErrProviderError,
		Retryable: true,
		Message:   fmt.Sprintf("%s ended the stream before the answer was finished.", title(provider)),
	}
}

// ParseRetryAfter reads the wait an upstream asked for: `Retry-After-Ms`
// (OpenAI and Anthropic send it), else `Retry-After` in seconds (decimals
// allowed) or as an HTTP date relative to now. It returns 0 when neither is
// present or parseable, and never more than 24 hours.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil {
			return clampWait(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		return clampWait(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return clampWait(float64(t.Sub(now)))
	}
	return 0
}

func clampWait(ns float64) time.Duration {
	switch {
	case math.IsNaN(ns) || ns <= 0:
		return 0
	case ns >= float64(maxRetryAfter):
		return maxRetryAfter
	}
	return time.Duration(ns)
}

// retryAfter is ParseRetryAfter with the fallbacks some upstreams use
// instead of the standard header: Google's RetryInfo in the body, and
// OpenAI's x-ratelimit-reset-* for whichever limit is exhausted.
func retryAfter(h http.Header, info errorInfo, now time.Time) time.Duration {
	if d := ParseRetryAfter(h, now); d > 0 {
		return d
	}
	if info.RetryDelay > 0 {
		return info.RetryDelay
	}
	for _, kind := range []string{"requests", "tokens"} {
		if h.Get("X-Ratelimit-Remaining-"+kind) == "0" {
			if d, err := time.ParseDuration(h.Get("X-Ratelimit-Reset-" + kind)); err == nil && d > 0 {
				return min(d, maxRetryAfter)
			}
		}
	}
	return 0
}

func moderationFlagged(info errorInfo) bool {
	m := strings.ToLower(info.Message)
	return strings.Contains(m, "moderation") || strings.Contains(m, "flagged")
}

// quote returns an upstream message fit to show: one line, bounded, valid UTF-8.
func quote(msg string) string {
	msg = strings.Join(strings.Fields(strings.ToValidUTF8(msg, "")), " ")
	if len(msg) > maxUpstreamMessage {
		cut := maxUpstreamMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

func rawText(status int, body []byte) string {
	s := truncate(string(body))
	if status != 0 {
		s = fmt.Sprintf("HTTP %d: %s", status, s)
	}
	return s
}

func truncate(s string) string {
	if len(s) > maxRawBytes {
		s = s[:maxRawBytes] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// streamErr is how every provider's Stream and Recv finish an error: the
// caller's context error passes through unchanged (the actor turns it into
// cancelled or timeout), an HTTP error answer is classified by ClassifyHTTP,
// anything else is a transport failure.
func streamErr(ctx context.Context, provider string, err error, c *httpCapture, started bool) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The SDK saw a context end that was not the caller's: ours, from
		// Close. Report it as a cancellation all the same.
		return context.Canceled
	}
	if pe, ok := playground.AsProviderError(err); ok {
		return pe
	}
	if c != nil {
		if status, header, body, ok := c.get(); ok {
			pe := ClassifyHTTP(provider, status, header, body)
			pe.Err = err
			return pe
		}
	}
	return classifyTransport(provider, err, started)
}

// httpCapture records the error answer of one upstream request, whatever
// the SDK later makes of it: SDKs differ in what their error types keep
// (openai-go loses the status of a non-JSON body, genai drops the headers),
// and classification wants the status, headers and body as sent.
type httpCapture struct {
	mu     sync.Mutex
	ok     bool
	status int
	header http.Header
	body   []byte
}

func (c *httpCapture) get() (int, http.Header, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.header, c.body, c.ok
}

type captureKey struct{}

// withCapture returns a context under which captureTransport records the
// error answer of the request into the returned capture.
func withCapture(ctx context.Context) (context.Context, *httpCapture) {
	c := &httpCapture{}
	return context.WithValue(ctx, captureKey{}, c), c
}

// captureTransport wraps the shared transport of every SDK client. For a
// request made under withCapture that is answered with a status of 400 or
// more, it reads the body (bounded), records status, headers and body, and
// hands the SDK an identical, re-readable body.
type captureTransport struct{ next http.RoundTripper }

func (t captureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	c, ok := req.Context().Value(captureKey{}).(*httpCapture)
	if !ok {
		return resp, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	c.mu.Lock()
	c.ok, c.status, c.header, c.body = true, resp.StatusCode, resp.Header.Clone(), body
	c.mu.Unlock()
	return resp, nil
}

// sdkHTTPClient returns a copy of hc whose transport records error answers.
// The copy shares hc's transport, so connections are pooled as before.
func sdkHTTPClient(hc *http.Client) *http.Client {
	if hc == nil {
		hc = &http.Client{}
	}
	c := *hc
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = captureTransport{next: next}
	return &c
}
