package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/playground-dev/playground"
)

// maxBodyBytes is docs/api.md's body limit: anything larger is 413.
const maxBodyBytes = 1 << 20

// Retry-After defaults when the error itself does not say how long to wait.
const (
	retryAfterUnavailable = 5 * time.Second
	retryAfterRateLimited = 60 * time.Second
)

// errorBody is the one error shape of docs/api.md.
type errorBody struct {
	Error errorPayload `json:"error"`
}

type errorPayload struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details"`
}

// writeJSON writes v as the JSON body with the given status. Encoding
// errors can only be programming errors (every body type marshals); they
// are logged because the status line has already gone out.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		s.log.Error("api: encode response", "err", err)
		data = []byte(`{"error":{"code":"internal","message":"Internal error.","details":{}}}`)
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(data, '\n'))
}

// writeError writes err in the coded shape with the status of its code.
// Anything that is not a *playground.Error is an internal error: its text
// goes to the log with the request, and the client sees only "Internal
// error.". 429 and 503 carry Retry-After (details.retryAfter, in seconds,
// when the error names a wait; else a default).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := playground.ErrorCode(err)
	status := playground.HTTPStatus(code)
	switch {
	case code == playground.EInternal:
		if errors.Is(err, errClientGone) {
			// The client went away mid-request: nobody reads this answer.
			s.log.Debug("api: client gone", "method", r.Method, "path", r.URL.Path)
		} else {
			s.log.Error("api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	case status >= 500:
		s.log.Warn("api: dependency error", "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	details := playground.ErrorDetails(err)
	switch status {
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", retryAfterSeconds(details, retryAfterRateLimited))
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", retryAfterSeconds(details, retryAfterUnavailable))
	}
	s.writeJSON(w, status, errorBody{Error: errorPayload{
		Code:    code,
		Message: playground.ErrorMessage(err),
		Details: details,
	}})
}

// errClientGone marks a request whose context ended because the client left.
var errClientGone = errors.New("api: client gone")

func retryAfterSeconds(details map[string]any, def time.Duration) string {
	if v, ok := details["retryAfter"].(int); ok && v > 0 {
		return strconv.Itoa(v)
	}
	return strconv.Itoa(int(def / time.Second))
}

// rateLimited is the 429 with the wait in details.retryAfter (whole
// seconds, rounded up, at least 1), which writeError copies to Retry-After.
func rateLimited(retryAfter time.Duration, format string, args ...any) error {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return playground.Errorf(playground.ERateLimited, format, args...).WithDetail("retryAfter", secs)
}

// unavailable is the 503 for a dependency that did not answer; the cause
// is kept for the log only.
func unavailable(cause error, format string, args ...any) error {
	return playground.Unavailable(cause, format, args...)
}

// methodNotAllowed answers a known path asked with the wrong method. docs/api.md
// lists no code for it, so the answer is HTTP 405 (with Allow, as RFC 9110
// asks) carrying the nearest code of the table, invalid_request: the
// request is wrong, not the resource missing.
func (s *Server) methodNotAllowed(w http.ResponseWriter, allow string) {
	if allow != "" {
		w.Header().Set("Allow", allow)
	}
	s.writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: errorPayload{
		Code:    playground.EInvalid,
		Message: "Method not allowed on this path.",
		Details: map[string]any{"allow": allow},
	}})
}

// notFound is the JSON 404 for a path no route serves.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, playground.Errorf(playground.ENotFound, "No such endpoint."))
}

// decode reads a JSON request body into v, which must point to a struct.
//
// It enforces the contract's rules in its order: a body over 1 MiB is 413;
// then malformed JSON, a value of the wrong type, an unknown field (matched
// exactly, not with encoding/json's case folding) or anything after the
// value is 400 invalid_request, with details.field naming the field as a
// JSON path (params.temperature) when there is one.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return playground.Errorf(playground.EInvalid, "A JSON request body is required.")
	}
	// Unknown fields are found first, with their path: encoding/json
	// names only the key and accepts keys in any case.
	if err := json.Unmarshal(body, new(any)); err != nil {
		return decodeError(err)
	}
	if path := unknownMember(body, reflect.TypeOf(v).Elem()); path != "" {
		return playground.Invalid(path, "Unknown field %q.", path)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return playground.Errorf(playground.EInvalid, "Request body must hold a single JSON value.")
	}
	return nil
}

// decodeError turns an encoding/json error into the coded 400.
func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return playground.Errorf(playground.EInvalid, "Malformed JSON at byte %d.", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return playground.Errorf(playground.EInvalid, "Request body must be a JSON object.")
		}
		return playground.Invalid(typ.Field, "Field %q must be %s.", typ.Field, jsonKind(typ.Type))
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return playground.Errorf(playground.EInvalid, "Malformed JSON: unexpected end of input.")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// Only reachable when unknownField missed a case; keep the name.
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return playground.Invalid(name, "Unknown field %q.", name)
	}
	return playground.Errorf(playground.EInvalid, "Malformed JSON.")
}

// jsonKind names a Go type the way a JSON client thinks of it.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
}

// unknownMember reports the JSON path (params.temperature, models[2].model)
// of the first member of body, in document order, that t has no field
// for, or "". Names must match the json tags exactly, as the contract's
// field names are case-sensitive. jsonv2 finds the member and names it by
// JSON Pointer; anything else it finds wrong is left to the decoder, which
// reports it with its type.
func unknownMember(body []byte, t reflect.Type) string {
	err := jsonv2.Unmarshal(body, reflect.New(t).Interface(), jsonv2.RejectUnknownMembers(true))
	var se *jsonv2.SemanticError
	if !errors.As(err, &se) || !errors.Is(se.Err, jsonv2.ErrUnknownName) {
		return ""
	}
	return pointerPath(se.JSONPointer)
}

// pointerPath writes a JSON Pointer (/models/2/model) as the contract's
// JSON path (models[2].model): a token of digits is an array index, since
// no request field is named by digits.
func pointerPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.ParseUint(tok, 10, 64); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}
