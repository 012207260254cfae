package playground

import "strings"

// IDKind is a kind of identifier a client may name: each stored kind has
// its prefix ("s_" for sessions), share tokens have none.
type IDKind string

// The kinds of identifier, as their prefixes.
const (
	IDUser       IDKind = "u_"
	IDSession    IDKind = "s_"
	IDResponse   IDKind = "r_"
	IDShareToken IDKind = ""
)

// maxIDBody bounds what follows an id's prefix: a UUID is 36 characters,
// a share token 32; the margin keeps ids made by hand (tests, imports)
// valid.
const maxIDBody = 64

// CouldBeID reports whether s has the shape of an identifier of kind: its
// prefix, then 1 to 64 ASCII letters, digits, '-' or '_'. Every id the
// server makes has that shape, so one that does not names nothing: the
// API answers 404 without asking the database, which could not even be
// asked about some of them (PostgreSQL text cannot hold a NUL byte).
func CouldBeID(kind IDKind, s string) bool {
	body, ok := strings.CutPrefix(s, string(kind))
	if !ok || len(body) == 0 || len(body) > maxIDBody {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// noNUL returns an invalid_request error naming field when text holds a
// NUL byte, which PostgreSQL text cannot store; nil otherwise.
func noNUL(field, text string) error {
	if strings.IndexByte(text, 0) >= 0 {
		return Invalid(field, "%s must not contain a NUL character (U+0000).", field)
	}
	return nil
}
