package chatchunk

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// sameAsEncodingJSON fails unless Decode returns for data what
// encoding/json.Unmarshal into a Chunk does: the same Chunk, or an error
// with the same text.
func sameAsEncodingJSON(t testing.TB, data []byte) {
	t.Helper()
	var want Chunk
	wantErr := json.Unmarshal(data, &want)
	if _, ok := decodeValid(data); ok != (wantErr == nil && len(data) <= maxLen) {
		// Decode would hand encoding/json what it should read itself, or
		// read itself what encoding/json refuses.
		t.Fatalf("decodeValid(%q): ok %v, encoding/json error: %v", data, ok, wantErr)
	}
	got, err := Decode(data)
	switch {
	case wantErr != nil && (err == nil || err.Error() != wantErr.Error()):
		t.Fatalf("Decode(%q): error %v, encoding/json: %v", data, err, wantErr)
	case wantErr == nil && err != nil:
		t.Fatalf("Decode(%q): error %v, encoding/json decodes it", data, err)
	case wantErr == nil && !reflect.DeepEqual(got, want):
		t.Fatalf("Decode(%q)\n got %#v\nwant %#v (encoding/json)", data, got, want)
	}
}

// edgeCases are chunks that differ from a plain one where a decoder could
// differ from encoding/json.
var edgeCases = []string{
	`{"choices":[{"index":0,"delta":{"content":"a \"quoted\" \\ \/ \b\f\n\r\t line"},"finish_reason":null}]}`,
	`{"choices":[{"index":0,"delta":{"content":"nul \u0000 and \u00e9 \u4e2d"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"pair \ud83d\ude00, lone \ud83d, low \ude00, high+text \ud83dx, high+bmp \ud83d\u0041"}}]}`,
	"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"bad utf-8 \xff\xfe \xe2\x82 ok \xe2\x82\xac\"}}]}",
	"{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"escape then bad utf-8 \\n \xff\"}}]}",
	`{"choices":[{"index":"0","delta":{"content":"index as a string"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":5}}]}`,
	`{"choices":[{"index":0,"delta":{"content":true}}]}`,
	`{"choices":[{"index":0,"delta":{"content":["a"]}}]}`,
	`{"choices":[{"index":1.0,"delta":{"content":"x"}}]}`,
	`{"choices":[{"index":1e0}]}`,
	`{"choices":[{"index":-0}]}`,
	`{"choices":[{"index":9223372036854775807}]}`,
	`{"choices":[{"index":9223372036854775808}]}`,
	`{"choices":[{"index":-9223372036854775809}]}`,
	`{"choices":[{"index":0,"delta":{"content":"first"},"delta":{"refusal":"second"}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"kept"}}],"choices":[{"delta":{"content":null}}]}`,
	`{"choices":[{"index":0,"delta":{"content":"a"}},{"index":1,"delta":{"content":"b"}}],"choices":[{"index":2}],"choices":[{},{}]}`,
	`{"choices":[{"index":0}],"choices":[]}`,
	`{"choices":[{"index":0}],"choices":null}`,
	`{"choices":[{"index":0}],"choices":[null]}`,
	`{"choices":[null,{"index":1,"delta":null,"finish_reason":null}]}`,
	`{"choices":{}}`,
	`{"choices":"x"}`,
	`{"choices":[5]}`,
	`{"choices":[[]]}`,
	`{"choices":[{"delta":[]}]}`,
	`{"choices":[{"delta":"x"}]}`,
	`{"choices":[{"finish_reason":1}]}`,
	`{"usage":null}`,
	`{"usage":{"prompt_tokens":1},"usage":null}`,
	`{"usage":null,"usage":{"prompt_tokens":1}}`,
	`{"usage": 5 }`,
	`{"usage":{ "prompt_tokens" : 1 , "completion_tokens":2 }}`,
	`{"Choices":[{"INDEX":0,"Delta":{"Content":"folded keys","REASONING_content":"r"},"Finish_Reason":"stop"}]}`,
	"{\"choice\u017f\":[{\"delta\":{\"content\":\"long s folds to s\"}}]}",
	"{\"choices\":[{\"\u212aindex\":0,\"delta\":{\"\u212a\":\"kelvin\"}}]}",
	"{\"choices\":[{\"f\u0130nish_reason\":\"dotted I folds to itself\"}]}",
	`{"\u0063hoices":[{"delta":{"con\u0074ent":"escaped keys"}}]}`,
	`{"choices\u0000":[{"delta":{"content":"key with NUL"}}]}`,
	`{"choices":[{"delta":{"reasoning_content":"","reasoning":"both"}}]}`,
	`{"error":{"message":"x"},"choices":[]}`,
	`{"unknown":{"deep":[1,2,{"a":null}]},"choices":[{"logprobs":null,"delta":{"role":"assistant","tool_calls":[{"index":0}]}}]}`,
	` {"choices":[]} `,
	`null`,
	` null `,
	`{}`,
	`[]`,
	`[{"choices":[]}]`,
	`"string"`,
	`5`,
	`true`,
	``,
	` `,
	`{`,
	`{"choices":[}`,
	`{"choices":[{"index":01}]}`,
	`{"choices":[{"index":0,}]}`,
	`{"choices":[]} {}`,
	`{"choices":[{"delta":{"content":"\x"}}]}`,
	`{"choices":[{"delta":{"content":"\u12"}}]}`,
	"{\"choices\":[{\"delta\":{\"content\":\"raw\tcontrol\"}}]}",
	`{"a":1}x`,
	"\ufeff{}",
	`{"choices":[{"index":0,"delta":{"content":"` + strings.Repeat("long ", 3000) + `"}}]}`,
	`{"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, c := range edgeCases {
		sameAsEncodingJSON(t, []byte(c))
	}
	for _, data := range fixtureChunks(t) {
		sameAsEncodingJSON(t, data)
	}
}

func TestDecodeReadsTheFieldsThePlaygroundUses(t *testing.T) {
	c, err := Decode([]byte(`{"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi \"there\"\n","refusal":"no","reasoning_content":"think","reasoning":"alt"},"finish_reason":"length"}],"usage":{"prompt_tokens":3}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Chunk{
		Choices: []Choice{{Delta: Delta{Content: "Hi \"there\"\n", Refusal: "no", ReasoningContent: "think", Reasoning: "alt"}, FinishReason: "length"}},
		Usage:   json.RawMessage(`{"prompt_tokens":3}`),
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got %#v\nwant %#v", c, want)
	}
}

func TestDecodeKeepsNothingOfItsInput(t *testing.T) {
	data := []byte(`{"choices":[{"delta":{"content":"text","reasoning":"thought"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1}}`)
	c, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'X'
	}
	d := c.Choices[0]
	if d.Delta.Content != "text" || d.Delta.Reasoning != "thought" || d.FinishReason != "stop" || string(c.Usage) != `{"prompt_tokens":1}` {
		t.Fatalf("the chunk changed with its input: %#v", c)
	}
}

func TestDecodeRefusesWhatEncodingJSONRefuses(t *testing.T) {
	for _, data := range []string{`{"choices":[{"delta":{"content":5}}]}`, `{"choices":`, `[]`, `{"choices":[{"index":1.5}]}`} {
		if _, err := Decode([]byte(data)); err == nil {
			t.Errorf("Decode(%s): no error", data)
		}
	}
}

// FuzzChatChunkDecode checks Decode against encoding/json on any input.
func FuzzChatChunkDecode(f *testing.F) {
	for _, c := range edgeCases {
		if len(c) < 1000 {
			f.Add([]byte(c))
		}
	}
	for _, data := range fixtureChunks(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsEncodingJSON(t, data)
	})
}

// fixtureChunks is the data of every event of the providers' recorded
// streams (Chat Completions and the others: any JSON is a fair input).
func fixtureChunks(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "*.sse"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		for line := range bytes.Lines(b) {
			if data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data:")); ok {
				out = append(out, bytes.TrimPrefix(data, []byte(" ")))
			}
		}
	}
	return out
}

// chunk20 is a typical chunk: 20 bytes of content, OpenAI's other fields.
var chunk20 = []byte(`{"id":"chatcmpl-BwQ2Jm1mGz0dXq5d9Hn1r7aZkP3sT","object":"chat.completion.chunk","created":1764100800,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_560af6e559","choices":[{"index":0,"delta":{"content":" twenty bytes of it."},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"x1Yz"}`)

func BenchmarkDecode(b *testing.B) {
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var c Chunk
			if err := json.Unmarshal(chunk20, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chatchunk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(chunk20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("validate-only", func(b *testing.B) {
		for b.Loop() {
			if !gjsonValid(chunk20) {
				b.Fatal("invalid")
			}
		}
	})
}
