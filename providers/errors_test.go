package providers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/providers"
)

var responseCodes = map[string]bool{
	playground.RErrRateLimited: true, playground.RErrTimeout: true, playground.RErrProviderError: true,
	playground.RErrAuthFailed: true, playground.RErrInsufficientCredits: true,
	playground.RErrModelNotFound: true, playground.RErrContentFilter: true,
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		header map[string]string
		want   time.Duration
	}{
		{map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond},
		{map[string]string{"Retry-After": now.Add(30 * time.Second).Format(http.TimeFormat)}, 30 * time.Second},
		{map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{map[string]string{"retry-after-ms": "250", "Retry-After": "9"}, 250 * time.Millisecond},
		{map[string]string{"Retry-After": "soon"}, 0},
		{map[string]string{"Retry-After": "-3"}, 0},
		{map[string]string{"Retry-After": "1e300"}, 24 * time.Hour},
		{map[string]string{}, 0},
	}
	for _, c := range cases {
		h := http.Header{}
		for k, v := range c.header {
			h.Set(k, v)
		}
		if got := providers.ParseRetryAfter(h, now); got != c.want {
			t.Errorf("ParseRetryAfter(%v) = %v, want %v", c.header, got, c.want)
		}
	}
}

func TestClassifyHTTP(t *testing.T) {
	cases := []struct {
		provider  string
		status    int
		body      string
		code      string
		retryable bool
	}{
		{"openai", 429, `{"error":{"code":"rate_limit_exceeded"}}`, playground.RErrRateLimited, true},
		{"openai", 429, `{"error":{"type":"insufficient_quota"}}`, playground.RErrInsufficientCredits, false},
		{"openrouter", 402, `{"error":{"code":402,"message":"Insufficient credits"}}`, playground.RErrInsufficientCredits, false},
		{"openrouter", 403, `{"error":{"code":403,"message":"Your chosen model requires moderation and your input was flagged"}}`, playground.RErrContentFilter, false},
		{"openai", 401, ``, playground.RErrAuthFailed, false},
		{"gemini", 403, `{"error":{"code":403,"status":"PERMISSION_DENIED"}}`, playground.RErrAuthFailed, false},
		{"openai", 404, `not json`, playground.RErrModelNotFound, false},
		{"local", 404, `{"error":"model 'x' not found"}`, playground.RErrModelNotFound, false},
		{"openai", 408, ``, playground.RErrTimeout, true},
		{"openai", 400, `{"error":{"message":"bad"}}`, playground.RErrProviderError, false},
		{"openai", 422, ``, playground.RErrProviderError, false},
		{"openai", 409, ``, playground.RErrProviderError, true},
		{"anthropic", 529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, playground.RErrProviderError, true},
		{"openai", 502, `<html>`, playground.RErrProviderError, true},
	}
	for _, c := range cases {
		pe := providers.ClassifyHTTP(c.provider, c.status, http.Header{}, []byte(c.body))
		if pe.Code != c.code || pe.Retryable != c.retryable || pe.Status != c.status {
			t.Errorf("%s %d %s: got %s retryable=%v status=%d", c.provider, c.status, c.body, pe.Code, pe.Retryable, pe.Status)
		}
	}
	// A 400's message quotes the upstream, bounded; other messages do not.
	pe := providers.ClassifyHTTP("openai", 400, nil, []byte(`{"error":{"message":"Unsupported value: 'temperature' does not support 0.2 with this model."}}`))
	if pe.Message != "OpenAI rejected the request: Unsupported value: 'temperature' does not support 0.2 with this model." {
		t.Errorf("message = %q", pe.Message)
	}
	pe = providers.ClassifyHTTP("openai", 429, nil, []byte(`{"error":{"message":"Rate limit reached for gpt-4o-mini in organization org-secret"}}`))
	if pe.Raw == "" || strings.Contains(pe.Message, "org-secret") {
		t.Errorf("message = %q, raw = %q", pe.Message, pe.Raw)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"2", "0.25", "-1", "NaN", "Inf", "1e309", "Wed, 21 Oct 2015 07:28:00 GMT", "", "  7 ", "0x10"} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, retryAfter, retryAfterMs string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("Retry-After-Ms", retryAfterMs)
		d := providers.ParseRetryAfter(h, time.Now())
		if d < 0 || d > 24*time.Hour {
			t.Fatalf("ParseRetryAfter(%q, %q) = %v", retryAfter, retryAfterMs, d)
		}
	})
}

func FuzzClassifyHTTP(f *testing.F) {
	seeds := []string{
		`{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
		`{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
		`{"error":{"code":402,"message":"Insufficient credits."}}`,
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		`{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"13s"}]}}`,
		`{"error":"model not found"}`, `{"error":null}`, `{"error":{"code":1e999}}`, `[]`, ``, "\xff\xfe",
	}
	for i, s := range seeds {
		f.Add(400+i*13%200, s, "2")
	}
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		if status < 400 || status > 599 {
			status = 400 + ((status%200)+200)%200
		}
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		pe := providers.ClassifyHTTP("openai", status, h, []byte(body))
		if !responseCodes[pe.Code] || pe.Message == "" || pe.RetryAfter < 0 || pe.RetryAfter > 24*time.Hour {
			t.Fatalf("ClassifyHTTP(%d, %q) = %+v", status, body, pe)
		}
		if !utf8.ValidString(pe.Message) || !utf8.ValidString(pe.Raw) || len(pe.Raw) > 5000 {
			t.Fatalf("message or raw not fit for display/log: %q / %d bytes", pe.Message, len(pe.Raw))
		}
		if pe.Retryable && pe.Code != playground.RErrRateLimited && pe.Code != playground.RErrProviderError && pe.Code != playground.RErrTimeout {
			t.Fatalf("%s marked retryable", pe.Code)
		}
	})
}

func FuzzClassifyStreamError(f *testing.F) {
	for _, s := range []string{
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		`{"id":"gen-1","error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[]}`,
		`{"error":{"code":500,"message":"Internal error","status":"INTERNAL"}}`,
		`{"error":{"type":"rate_limit_error"}}`, `{"error":{"code":429}}`, `garbage`, ``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		pe := providers.ClassifyStreamError("openrouter", []byte(data))
		if !responseCodes[pe.Code] || pe.Message == "" || !utf8.ValidString(pe.Raw) {
			t.Fatalf("ClassifyStreamError(%q) = %+v", data, pe)
		}
	})
}
