package main

import (
	"strings"
	"testing"
)

// TestExtraKind: the report tells a viewer text that repeats the stored
// tail (chunks applied twice) from one that holds text the stored answer
// lacks (the stored text is short).
func TestExtraKind(t *testing.T) {
	for _, c := range []struct{ viewer, stored, want string }{
		{"one two three three ", "one two three ", "repeat the stored tail"},
		{"one two three one ", "one two three ", "repeat earlier stored text"},
		{"one two three four ", "one two three ", "are new text"},
		{"one two four ", "one two three ", "not an extension"},
		{"one two ", "one two three ", "not an extension"},
	} {
		if got := extraKind(c.viewer, c.stored); !strings.Contains(got, c.want) {
			t.Errorf("extraKind(%q, %q) = %q, want it to say %q", c.viewer, c.stored, got, c.want)
		}
	}
}
