// Package chatchunk decodes the chunks of a Chat Completions stream: the few
// fields the playground reads, exactly as encoding/json.Unmarshal decodes
// them into Chunk, without its reflection.
//
// encoding/json was a fifth of the server's CPU at 64 concurrent streams
// (playbench gateway -profile): it scans each chunk twice (once to check
// it, once to decode) and reflects over Chunk for every field. Decode checks
// the chunk with gjson's validator, walks it with gjson, and assigns the
// fields directly. Whatever it does not handle itself (a chunk that is not
// JSON, a field of the wrong type, a chunk too large to rule out a nesting
// deeper than encoding/json allows) it hands to encoding/json, so that the
// error, and its text, are encoding/json's.
package chatchunk

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"
)

// Chunk is what the playground reads of a Chat Completions chunk.
type Chunk struct {
	Choices []Choice `json:"choices"`
	// Usage is the usage object as sent (null included), for the SDK's
	// CompletionUsage, whose presence flags tell an omitted count from 0.
	Usage json.RawMessage `json:"usage"`
}

// Choice is one element of a chunk's choices.
type Choice struct {
	Index        int64  `json:"index"`
	Delta        Delta  `json:"delta"`
	FinishReason string `json:"finish_reason"`
}

// Delta is the text a choice adds.
type Delta struct {
	Content string `json:"content"`
	Refusal string `json:"refusal"`
	// Visible thinking: reasoning_content from DeepSeek, vLLM and
	// llama.cpp; reasoning from OpenRouter and Ollama.
	ReasoningContent string `json:"reasoning_content"`
	Reasoning        string `json:"reasoning"`
}

// maxLen is the longest chunk Decode reads itself. encoding/json refuses
// a nesting deeper than 10 000 levels, which takes more bytes than that;
// gjson's validator has no such limit.
const maxLen = 10000

// Decode returns the chunk data holds, and the error encoding/json.Unmarshal
// returns for it into a Chunk. Where Unmarshal succeeds, the Chunk is the one
// it decodes, down to its quirks: keys match field names case-insensitively
// (Unicode folding included), a duplicated key is decoded again over the
// earlier value (a null leaves it as it was, an array decodes over the
// elements already there), strings are unescaped with invalid UTF-8 and
// lone surrogates replaced by U+FFFD. Nothing returned shares memory with
// data.
func Decode(data []byte) (Chunk, error) {
	if c, ok := decodeValid(data); ok {
		return c, nil
	}
	var c Chunk
	err := json.Unmarshal(data, &c)
	return c, err
}

// decodeValid decodes what Decode reads itself: valid JSON of at most maxLen
// bytes whose fields have the types of Chunk's. false: anything else.
func decodeValid(data []byte) (Chunk, bool) {
	var c Chunk
	if len(data) > maxLen || !gjson.ValidBytes(data) {
		return c, false
	}
	// A view of data rather than a copy: every string and the usage taken
	// from it are copied out.
	if !c.read(gjson.Parse(unsafe.String(unsafe.SliceData(data), len(data)))) {
		return Chunk{}, false
	}
	return c, true
}

// read decodes v over c; false: v holds a type encoding/json would refuse.
func (c *Chunk) read(v gjson.Result) bool {
	return readObject(v, func(key string, v gjson.Result) bool {
		switch {
		case is(key, "choices"):
			return c.readChoices(v)
		case is(key, "usage"):
			// json.RawMessage keeps any value, null as "null".
			c.Usage = append(c.Usage[:0], v.Raw...)
		}
		return true
	})
}

// readChoices decodes an array over c.Choices as encoding/json decodes into
// a slice: elements already within its capacity are decoded over, not
// zeroed; the slice is cut to the array's length; an empty array gives an
// empty slice, not nil.
func (c *Chunk) readChoices(v gjson.Result) bool {
	if v.Type == gjson.Null {
		c.Choices = nil
		return true
	}
	if v.Type != gjson.JSON || v.Raw[0] != '[' {
		return false
	}
	s, i, ok := c.Choices, 0, true
	v.ForEach(func(_, e gjson.Result) bool {
		if i == len(s) {
			if i < cap(s) {
				s = s[:i+1]
			} else {
				s = append(s, Choice{})
			}
		}
		ok = s[i].read(e)
		i++
		return ok
	})
	if !ok {
		return false
	}
	if i == 0 {
		s = []Choice{}
	}
	c.Choices = s[:i]
	return true
}

func (ch *Choice) read(v gjson.Result) bool {
	return readObject(v, func(key string, v gjson.Result) bool {
		switch {
		case is(key, "index"):
			return readInt(v, &ch.Index)
		case is(key, "delta"):
			return ch.Delta.read(v)
		case is(key, "finish_reason"):
			return readString(v, &ch.FinishReason)
		}
		return true
	})
}

func (d *Delta) read(v gjson.Result) bool {
	return readObject(v, func(key string, v gjson.Result) bool {
		switch {
		case is(key, "content"):
			return readString(v, &d.Content)
		case is(key, "refusal"):
			return readString(v, &d.Refusal)
		case is(key, "reasoning_content"):
			return readString(v, &d.ReasoningContent)
		case is(key, "reasoning"):
			return readString(v, &d.Reasoning)
		}
		return true
	})
}

// readObject decodes v as encoding/json decodes into a struct: null leaves
// it as it was, anything but an object is refused (false), and each member
// goes to field under its key as encoding/json reads it, in order, until
// field refuses one.
func readObject(v gjson.Result, field func(key string, v gjson.Result) bool) bool {
	if v.Type == gjson.Null {
		return true
	}
	if !isObject(v) {
		return false
	}
	ok := true
	v.ForEach(func(k, v gjson.Result) bool {
		ok = field(keyOf(k), v)
		return ok
	})
	return ok
}

func isObject(v gjson.Result) bool { return v.Type == gjson.JSON && v.Raw[0] == '{' }

// is reports whether encoding/json decodes the key into the field named
// name: an exact match, else a match under Unicode case folding (its
// foldName equality is bytes.EqualFold's).
func is(key, name string) bool { return key == name || strings.EqualFold(key, name) }

// keyOf is an object key as encoding/json reads it.
func keyOf(k gjson.Result) string {
	raw := k.Raw[1 : len(k.Raw)-1]
	if strings.IndexByte(raw, '\\') < 0 {
		// Invalid UTF-8 would be replaced by U+FFFD, which folds to no
		// field name, as the invalid byte itself does not.
		return raw
	}
	return unquote(raw)
}

// readInt decodes a number into an int64 field, null leaving it as it is;
// false for anything encoding/json refuses (a fraction, an exponent, an
// overflow, another type).
func readInt(v gjson.Result, dst *int64) bool {
	switch v.Type {
	case gjson.Null:
		return true
	case gjson.Number:
		n, err := strconv.ParseInt(v.Raw, 10, 64)
		if err != nil {
			return false
		}
		*dst = n
		return true
	}
	return false
}

// readString decodes a string into a string field, null leaving it as it
// is; false for any other type.
func readString(v gjson.Result, dst *string) bool {
	switch v.Type {
	case gjson.Null:
		return true
	case gjson.String:
		*dst = unquote(v.Raw[1 : len(v.Raw)-1])
		return true
	}
	return false
}

// unquote is the text of a valid JSON string's contents (between its
// quotes), as encoding/json's unquote makes it: escapes decoded, a
// surrogate that is not half of a valid pair and each byte of invalid
// UTF-8 replaced by U+FFFD. The result is always a copy.
func unquote(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '\\' {
			break
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	if i == len(s) {
		return strings.Clone(s)
	}
	var b strings.Builder
	b.Grow(len(s) + utf8.UTFMax)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\\':
			// The string is valid JSON: an escape is complete.
			switch e := s[i+1]; e {
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r := getu4(s[i:])
				i += 6
				if utf16.IsSurrogate(r) {
					if dec := utf16.DecodeRune(r, getu4(s[i:])); dec != unicode.ReplacementChar {
						b.WriteRune(dec)
						i += 6
						continue
					}
					r = unicode.ReplacementChar
				}
				b.WriteRune(r)
				continue
			default: // " \ /
				b.WriteByte(e)
			}
			i += 2
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			b.WriteRune(r) // utf8.RuneError for an invalid byte
			i += size
		}
	}
	return b.String()
}

// getu4 decodes the \uXXXX escape at the start of s, or returns -1.
func getu4(s string) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	n, err := strconv.ParseUint(s[2:6], 16, 32)
	if err != nil {
		return -1
	}
	return rune(n)
}
