package api

import (
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"

	"github.com/playground-dev/playground"
)

// Diff operations of GET /sessions/{id}/diff.
const (
	opEqual  = "equal"
	opInsert = "insert"
	opDelete = "delete"
)

// diffOp is one step from a's text to b's.
type diffOp struct {
	Op   string `json:"op"`
	Text string `json:"text"`
}

// handleDiff answers a word-level diff between two responses of a session
// (owner or share holder). Missing a or b is 400 (details.field), an id
// not in the session 404.
func (s *Server) handleDiff(w http.ResponseWriter, r *http.Request) error {
	// docs/api.md's order: credentials, then the query, then visibility.
	c, share, err := s.requestCaller(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	for _, f := range []string{"a", "b"} {
		if q.Get(f) == "" {
			return playground.Invalid(f, "Query parameter %q (a response id) is required.", f)
		}
	}
	sess, _, err := s.liveSession(r.Context(), c, r.PathValue("id"), share, toSee)
	if err != nil {
		return err
	}
	a, b := sess.Response(q.Get("a")), sess.Response(q.Get("b"))
	if a == nil || b == nil {
		return playground.Errorf(playground.ENotFound, "No such response in this comparison.")
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"a": a.ID, "b": b.ID, "ops": wordDiff(a.Text, b.Text)})
	return nil
}

// wordDiff diffs two texts word by word. Each text is cut into tokens
// (maximal runs of whitespace, and maximal runs of anything else); each
// distinct token is given one rune, so diffmatchpatch's character diff of
// the rune strings is a diff of tokens (the trick of DiffLinesToRunes,
// with words for lines); the runes are then mapped back. Concatenating
// the equal and delete texts gives a, the equal and insert texts b.
func wordDiff(a, b string) []diffOp {
	tokens := []string{}
	index := map[string]rune{}
	encode := func(text string) ([]rune, bool) {
		var out []rune
		for _, tok := range splitWords(text) {
			rn, ok := index[tok]
			if !ok {
				rn, ok = tokenRune(len(tokens))
				if !ok {
					return nil, false
				}
				index[tok] = rn
				tokens = append(tokens, tok)
			}
			out = append(out, rn)
		}
		return out, true
	}
	ra, okA := encode(a)
	rb, okB := encode(b)
	if !okA || !okB {
		// More distinct words than there are runes: too big to diff by
		// words; answer the whole change, which is still exact.
		return coalesce([]diffOp{{opDelete, a}, {opInsert, b}})
	}
	decode := func(s string) string {
		var out []byte
		for _, rn := range s {
			out = append(out, tokens[runeToken(rn)]...)
		}
		return string(out)
	}
	dmp := diffmatchpatch.New()
	ops := []diffOp{}
	for _, d := range dmp.DiffMainRunes(ra, rb, false) {
		op := opEqual
		switch d.Type {
		case diffmatchpatch.DiffInsert:
			op = opInsert
		case diffmatchpatch.DiffDelete:
			op = opDelete
		}
		ops = append(ops, diffOp{Op: op, Text: decode(d.Text)})
	}
	return coalesce(ops)
}

// tokenRune maps the i-th distinct token to a valid rune (the surrogate
// block is skipped: such runes would not survive a string conversion).
func tokenRune(i int) (rune, bool) {
	r := rune(i + 1)
	if r >= 0xD800 {
		r += 0x800
	}
	return r, r <= utf8.MaxRune
}

func runeToken(r rune) int {
	if r >= 0xE000 {
		r -= 0x800
	}
	return int(r - 1)
}

// splitWords cuts text into maximal runs of whitespace and of non-whitespace.
func splitWords(text string) []string {
	var out []string
	start := 0
	prevSpace := false
	for i, r := range text {
		sp := unicode.IsSpace(r)
		if i > start && sp != prevSpace {
			out = append(out, text[start:i])
			start = i
		}
		prevSpace = sp
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

// coalesce drops empty steps and joins neighbours of the same kind.
func coalesce(ops []diffOp) []diffOp {
	out := make([]diffOp, 0, len(ops))
	for _, o := range ops {
		if o.Text == "" {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Op == o.Op {
			out[n-1].Text += o.Text
			continue
		}
		out = append(out, o)
	}
	return out
}
