// Package playground is the domain of Playground: comparisons of AI models
// streamed side by side. It holds the types every other package speaks
// (users, sessions, responses, live events, coded errors) and the interfaces
// that db, providers, actors, hub and api implement or consume. It imports
// none of them; cmd/playground wires them together.
package playground

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes of the wire contract (docs/api.md, "Errors"). Every error a client
// sees carries exactly one of these.
const (
	EInvalid          = "invalid_request"
	EUnknownModel     = "unknown_model"
	EModelUnavailable = "model_unavailable"
	EUnauthorized     = "unauthorized"
	EQuotaExceeded    = "quota_exceeded"
	EForbidden        = "forbidden"
	ENotFound         = "not_found"
	EEmailTaken       = "email_taken"
	EConflict         = "conflict"
	EPayloadTooLarge  = "payload_too_large"
	ERateLimited      = "rate_limited"
	EUnavailable      = "unavailable"
	EInternal         = "internal"
)

// Error is the one coded error type of the application. Message is written
// for the person reading it; Details carries the machine-readable extras the
// contract names (details.field, details.model, details.remaining, ...).
// Anything else (wrapped driver errors, upstream bodies) never reaches a
// client: it stays in the log.
type Error struct {
	Code    string
	Message string
	Details map[string]any
}

func (e *Error) Error() string {
	return fmt.Sprintf("playground error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns a coded error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns e with details[key] = value set.
func (e *Error) WithDetail(key string, value any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[key] = value
	return e
}

// Unavailable is the EUnavailable error of a dependency that did not
// answer (a 503 with Retry-After at the API's edge). cause is kept for
// the log, in Error and for errors.Is and errors.As; a client sees only
// the message.
func Unavailable(cause error, format string, args ...any) error {
	return &causedError{coded: Errorf(EUnavailable, format, args...), cause: cause}
}

// causedError is a coded error that remembers its internal cause.
// errors.As finds the coded error; the cause never reaches a client.
type causedError struct {
	coded *Error
	cause error
}

func (e *causedError) Error() string   { return e.coded.Error() + ": " + fmt.Sprint(e.cause) }
func (e *causedError) Unwrap() []error { return []error{e.coded, e.cause} }

// Invalid is the 400 for a bad field; field is its JSON path.
func Invalid(field, format string, args ...any) *Error {
	return Errorf(EInvalid, format, args...).WithDetail("field", field)
}

// ErrorCode returns the code of an application error, or EInternal for any
// other non-nil error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of an application error, or a generic
// message for any other error, so internal text never leaks.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorDetails returns the details of an application error (never nil).
func ErrorDetails(err error) map[string]any {
	var e *Error
	if errors.As(err, &e) && e.Details != nil {
		return e.Details
	}
	return map[string]any{}
}

var codeStatus = map[string]int{
	EInvalid:          http.StatusBadRequest,
	EUnknownModel:     http.StatusBadRequest,
	EModelUnavailable: http.StatusBadRequest,
	EUnauthorized:     http.StatusUnauthorized,
	EQuotaExceeded:    http.StatusPaymentRequired,
	EForbidden:        http.StatusForbidden,
	ENotFound:         http.StatusNotFound,
	EEmailTaken:       http.StatusConflict,
	EConflict:         http.StatusConflict,
	EPayloadTooLarge:  http.StatusRequestEntityTooLarge,
	ERateLimited:      http.StatusTooManyRequests,
	EUnavailable:      http.StatusServiceUnavailable,
	EInternal:         http.StatusInternalServerError,
}

// HTTPStatus maps a code of the contract to its HTTP status.
func HTTPStatus(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
