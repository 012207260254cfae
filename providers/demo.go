package providers

import (
	"context"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/playground-dev/playground"
)

// DemoOptions tunes the demo provider.
type DemoOptions struct {
	// Speed scales the pace: 2 streams twice as fast, 0 (the zero value)
	// means 1, the human pace described in demoModels. Tests use 1000 or so.
	Speed float64
}

// demoModel is one model of the demo provider. Words count as tokens.
type demoModel struct {
	name       string // upstream name: the id is demo/<name>
	display    string
	interval   time.Duration // between chunks, ±40 %
	startDelay time.Duration // before the first chunk
	minWords   int
	maxWords   int
	fail       bool // fails before its first chunk, every time
	// intro opens every answer: demo/introduce names itself, as a model
	// that gives its identity away in a blind comparison would.
	intro string
}

// demoModels are the ids of the demo provider:
//
//	demo/fast    ~15 ms between chunks, 60–120 words (a few more: the
//	             Markdown of a list, a code block and math has a floor)
//	demo/steady  ~40 ms between chunks, 80–160 words
//	demo/slow    ~90 ms between chunks after ~400 ms, 50–100 words
//	demo/introduce  like demo/fast, but every answer opens by naming itself
//	             ("I am Demo introduce, …"): an identity leak to test blind votes with
//	demo/error   fails after ~250 ms with a non-retryable provider_error
//	             "The demo model failed on purpose." (browser tests use it
//	             to show an error column)
//
// Any other demo/<name> (MODELS may list one) streams like demo/steady.
//
// With reasoningEffort low, medium or high, every model but demo/error
// first "thinks": about 12, 24 or 40 words (whole sentences) of visible reasoning, streamed as
// reasoning deltas, before the same answer it gives without thinking.
var demoModels = []demoModel{
	{name: "fast", display: "Demo fast", interval: 15 * time.Millisecond, startDelay: 60 * time.Millisecond, minWords: 60, maxWords: 120},
	{name: "steady", display: "Demo steady", interval: 40 * time.Millisecond, startDelay: 150 * time.Millisecond, minWords: 80, maxWords: 160},
	{name: "slow", display: "Demo slow", interval: 90 * time.Millisecond, startDelay: 400 * time.Millisecond, minWords: 50, maxWords: 100},
	{name: "introduce", display: "Demo introduce", interval: 15 * time.Millisecond, startDelay: 60 * time.Millisecond, minWords: 60, maxWords: 120,
		intro: "I am Demo introduce, a model of the demo provider. "},
	{name: "error", display: "Demo error (always fails)", startDelay: 250 * time.Millisecond, fail: true},
}

// DemoErrorMessage is the message of demo/error's failure.
const DemoErrorMessage = "The demo model failed on purpose."

func demoModelNamed(name string) demoModel {
	for _, m := range demoModels {
		if m.name == name {
			return m
		}
	}
	m := demoModels[1]
	m.name = name
	return m
}

// Demo is the provider that needs no key and no network: it streams
// generated prose about the prompt at a human pace, so a fresh checkout
// shows a live comparison. The text depends only on the model, the prompt
// and the system prompt (a PCG seeded from their hash), so tests can
// predict it.
type Demo struct {
	speed float64
}

// NewDemo returns the demo provider.
func NewDemo(opts DemoOptions) *Demo {
	speed := opts.Speed
	if speed <= 0 {
		speed = 1
	}
	return &Demo{speed: speed}
}

// Name returns "demo".
func (p *Demo) Name() string { return playground.ProviderDemo }

func (p *Demo) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) / p.speed)
}

// Stream starts a generated answer. demo/error waits its start delay and
// fails; every other model returns at once, and Recv paces the chunks.
func (p *Demo) Stream(ctx context.Context, req playground.ProviderRequest) (playground.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m := demoModelNamed(req.Model)
	rng := demoRand(req)
	if m.fail {
		if err := sleepCtx(ctx, nil, p.scale(m.startDelay)); err != nil {
			return nil, err
		}
		return nil, &playground.ProviderError{
			Code:    playground.RErrProviderError,
			Message: DemoErrorMessage,
			Raw:     "demo/" + req.Model + " always fails",
		}
	}
	words := DemoText(rng, req.Prompt, m.minWords+rng.IntN(m.maxWords-m.minWords+1))
	if m.intro != "" {
		words = append(strings.SplitAfter(m.intro, " ")[:len(strings.Fields(m.intro))], words...)
	}
	finish := playground.FinishStop
	if mt := req.Params.MaxTokens; mt != nil && *mt < len(words) {
		words, finish = words[:*mt], playground.FinishLength
	}
	// Chunks of one to three words, each with its own delay, all decided
	// now so a stream is the same every time. The thinking comes from a
	// generator of its own, so the answer does not depend on it.
	var chunks []string
	var delays []time.Duration
	// cut appends ws as chunks of one to three words, the first after the
	// model's start delay (thinking, then the answer, each start after one).
	cut := func(ws []string) {
		for i := 0; i < len(ws); {
			n := min(1+rng.IntN(3), len(ws)-i)
			chunks = append(chunks, strings.Join(ws[i:i+n], ""))
			d := m.interval * time.Duration(60+rng.IntN(81)) / 100
			if i == 0 {
				d = m.startDelay
			}
			delays = append(delays, p.scale(d))
			i += n
		}
	}
	thought := demoThinking(req)
	cut(thought)
	thinking := len(chunks)
	cut(words)
	return &demoStream{
		ctx: ctx, done: make(chan struct{}),
		chunks: chunks, delays: delays, thinking: thinking, finish: finish,
		promptTokens: demoPromptTokens(req),
		words:        int64(len(words)), thoughtWords: int64(len(thought)),
	}, nil
}

// demoThinking is the visible thinking of a request: none unless
// reasoningEffort is low, medium or high.
func demoThinking(req playground.ProviderRequest) []string {
	n := map[string]int{playground.EffortLow: 12, playground.EffortMedium: 24, playground.EffortHigh: 40}
	e := req.Params.ReasoningEffort
	if e == nil || n[*e] == 0 {
		return nil
	}
	think := req
	think.Model += "\x00thinking"
	return DemoText(demoRand(think), req.Prompt, n[*e])
}

// demoStream hands out the prepared chunks. Recv waits on a timer, the
// caller's context and done (closed by Close), so no goroutine is needed.
type demoStream struct {
	ctx       context.Context
	done      chan struct{}
	closeOnce sync.Once

	chunks       []string
	delays       []time.Duration
	thinking     int // the first chunks are reasoning
	next         int
	finish       string
	promptTokens int64
	words        int64
	thoughtWords int64
	sentFinal    bool
}

func (s *demoStream) Recv() (playground.Delta, error) {
	if s.next < len(s.chunks) {
		if err := sleepCtx(s.ctx, s.done, s.delays[s.next]); err != nil {
			return playground.Delta{}, err
		}
		s.next++
		if s.next <= s.thinking {
			return playground.Delta{Reasoning: s.chunks[s.next-1]}, nil
		}
		return playground.Delta{Text: s.chunks[s.next-1]}, nil
	}
	select {
	case <-s.done:
		return playground.Delta{}, context.Canceled
	default:
	}
	if s.sentFinal {
		return playground.Delta{}, io.EOF
	}
	s.sentFinal = true
	// Thinking counts as completion tokens, as upstreams bill it.
	u := &playground.Usage{PromptTokens: ptr(s.promptTokens), CompletionTokens: ptr(s.words + s.thoughtWords)}
	if s.thinking > 0 {
		u.ReasoningTokens = ptr(s.thoughtWords)
	}
	return playground.Delta{FinishReason: s.finish, Usage: u}, nil
}

func (s *demoStream) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

// sleepCtx waits d, or until ctx ends (its error) or done closes.
func sleepCtx(ctx context.Context, done <-chan struct{}, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return context.Canceled
	case <-t.C:
		return nil
	}
}

func demoRand(req playground.ProviderRequest) *rand.Rand {
	h := fnv.New64a()
	for _, s := range []string{req.Model, req.System, req.Prompt} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	sum := h.Sum64()
	return rand.New(rand.NewPCG(sum, sum*0x9E3779B97F4A7C15+1))
}

func countWords(s string) int { return len(strings.Fields(s)) }

// demoPromptTokens counts the words the demo "model" was sent: the system
// prompt, the thread's earlier prompts and answers, and the prompt.
func demoPromptTokens(req playground.ProviderRequest) int64 {
	n := countWords(req.Prompt) + countWords(req.System)
	for _, x := range req.History {
		n += countWords(x.Prompt) + countWords(x.Answer)
	}
	return int64(n)
}

var (
	demoNouns = []string{"state", "latency", "trade-off", "replica", "boundary", "signal", "cache",
		"pipeline", "system", "budget", "edge case", "invariant", "workflow", "feedback loop",
		"interface", "failure mode", "rollout", "baseline", "café-sized example", "résumé of the facts"}
	demoAdjectives = []string{"simple", "robust", "subtle", "practical", "surprising", "predictable",
		"elegant", "fragile", "consistent", "naïve", "careful", "pragmatic"}
	demoVerbs = []string{"shapes", "balances", "absorbs", "exposes", "reconciles", "simplifies",
		"protects", "merges", "tracks", "reframes"}
	demoOpeners = []string{
		"Here is a short take on {t}.",
		"Good question — {t} is worth a careful look.",
		"Let's start with what {t} is really about.",
		"In a nutshell, {t} is about the {n}.",
	}
	demoClosers = []string{
		"In short, {t} rewards a {a} approach.",
		"So the {a} answer is: watch the {n}, and {t} follows.",
		"That is the gist of {t}; the details depend on your {n}.",
	}
	demoTemplates = []string{
		"{T} is best understood as a {a} {n} that {v} the {n2}.",
		"In practice, {t} {v} the {n} without a central {n2}.",
		"A useful way to think about {t} is through its {n}.",
		"Most of the {a} cases come down to how {t} handles the {n}.",
		"That said, {t} is no silver bullet — the {n} still matters.",
		"Consider a {a} {n}: {t} {v} it, and the outcome is {a2}.",
		"The short answer is that {t} trades some {n} for a {a} {n2}.",
		"Teams often pair {t} with a {a} {n} to keep the {n2} under control.",
		"Step by step → the {n} {v} the {n2}, and then {t} settles.",
		"On balance, {t} gives you a {a} {n} at the cost of some {n2}.",
		"It helps to separate the {n} from the {n2} before judging {t}.",
		"Seen from the outside, {t} looks {a}; from the inside, it is mostly about the {n}.",
	}
	demoStopwords = map[string]bool{"about": true, "after": true, "again": true, "also": true,
		"been": true, "before": true, "being": true, "could": true, "does": true, "each": true,
		"explain": true, "from": true, "have": true, "into": true, "just": true, "like": true,
		"make": true, "more": true, "most": true, "much": true, "only": true, "other": true,
		"please": true, "same": true, "should": true, "some": true, "such": true, "than": true,
		"that": true, "their": true, "them": true, "then": true, "there": true, "these": true,
		"they": true, "this": true, "those": true, "through": true, "very": true, "what": true,
		"when": true, "where": true, "which": true, "while": true, "with": true, "would": true,
		"your": true, "sentences": true, "sentence": true, "words": true, "write": true, "tell": true,
		"describe": true, "briefly": true, "short": true, "answer": true, "how": true, "why": true,
		"who": true, "the": true, "and": true, "for": true, "are": true, "was": true, "can": true,
		"you": true, "compare": true, "compared": true, "difference": true, "differences": true,
		"between": true, "work": true, "works": true, "give": true, "two": true,
		"three": true, "paragraphs": true, "paragraph": true, "summarize": true, "summary": true,
		"versus": true, "using": true, "use": true, "its": true, "not": true, "but": true, "all": true}
)

// DemoText generates about n words of Markdown about the prompt, as tokens
// that each carry their leading space, line or paragraph break, so joining
// them gives the text and each token is one word. It uses a few words of the
// prompt as topics and ends on a whole sentence, so it may run a little past
// n. An answer of more than 24 words has the shape of a real one: a short
// paragraph, a bulleted list, more prose, a code block, a sentence with
// math, and a closing sentence, so the page shows what it renders.
func DemoText(rng *rand.Rand, prompt string, n int) []string {
	topics := demoTopics(prompt)
	rich := n > 24
	var out []string
	var order []int // templates in a shuffled order, so none repeats soon
	add := func(sep string, words []string) {
		for i, w := range words {
			switch {
			case len(out) == 0:
			case i == 0:
				w = sep + w
			default:
				w = " " + w
			}
			out = append(out, w)
		}
	}
	sentence := func(tpl string) []string {
		topic := topics[rng.IntN(len(topics))]
		s := strings.NewReplacer(
			"{T}", upperFirst(topic), "{t}", topic,
			"{a2}", pick(rng, demoAdjectives), "{a}", pick(rng, demoAdjectives),
			"{n2}", pick(rng, demoNouns), "{n}", pick(rng, demoNouns),
			"{v}", pick(rng, demoVerbs),
		).Replace(tpl)
		return fixArticles(strings.Fields(upperFirst(s)))
	}
	next := func() string {
		if len(order) == 0 {
			order = rng.Perm(len(demoTemplates))
		}
		tpl := demoTemplates[order[0]]
		order = order[1:]
		return tpl
	}
	add("", sentence(pick(rng, demoOpeners)))
	if rich {
		add("\n\n", strings.Fields(pick(rng, demoListIntros)))
		for i := range 2 {
			sep := "\n"
			if i == 0 {
				sep = "\n\n"
			}
			add(sep, append([]string{"-"}, sentence(next())...))
		}
	}
	for sentences := 0; rich && len(out) < n/2 || !rich && len(out) < n; sentences++ {
		sep := " "
		if sentences == 0 || sentences%4 == 3 && rng.IntN(2) == 0 {
			sep = "\n\n"
		}
		add(sep, sentence(next()))
	}
	if !rich {
		return out
	}
	// A code block: a comment naming the topic, then a merge of two maps.
	add("\n\n", []string{"```python"})
	add("\n", append([]string{"#"}, strings.Fields(topics[0])...))
	for _, line := range demoCode {
		add("\n"+line[0], strings.Fields(line[1]))
	}
	add("\n", []string{"```"})
	add("\n\n", sentence(pick(rng, demoMath)))
	closer := sentence(pick(rng, demoClosers))
	for len(out)+len(closer) < n {
		add(" ", sentence(next()))
	}
	add(" ", closer)
	return out
}

var (
	demoListIntros = []string{"Two things stand out:", "The main points:", "What to keep in mind:"}
	// demoCode is the code block's lines after its comment: indentation, then the words.
	demoCode = [][2]string{
		{"", "def merge(a, b):"},
		{"    ", "keys = a.keys() | b.keys()"},
		{"    ", "return {k: max(a.get(k, 0), b.get(k, 0)) for k in keys}"},
	}
	demoMath = []string{
		"With $n$ replicas the merge costs $O(n \\log n)$, and the {n} stays {a}.",
		"The state converges when $\\forall i: s_i = \\bigsqcup_j s_j$, whatever the {n}.",
		"A rough budget is $t \\approx \\frac{k}{r}$ for the {n}, which keeps {t} {a}.",
	}
)

// fixArticles turns "a" into "an" before a vowel sound (near enough).
func fixArticles(words []string) []string {
	for i := 0; i+1 < len(words); i++ {
		if (words[i] == "a" || words[i] == "A") && strings.ContainsAny(words[i+1][:1], "aeioAEIO") {
			words[i] += "n"
		}
	}
	return words
}

// demoTopics picks up to four topics from the prompt: runs of up to three
// distinctive words ("vector clocks", "Lamport timestamps"), in order.
func demoTopics(prompt string) []string {
	var topics, run []string
	seen := map[string]bool{}
	flush := func() {
		if len(run) > 0 && len(topics) < 4 {
			t := strings.Join(run, " ")
			if k := strings.ToLower(t); !seen[k] {
				seen[k] = true
				topics = append(topics, t)
			}
		}
		run = run[:0]
	}
	first := true
	for _, f := range strings.Fields(prompt) {
		w := strings.TrimFunc(f, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
		lw := strings.ToLower(w)
		if len([]rune(w)) < 3 || demoStopwords[lw] || strings.IndexFunc(w, unicode.IsLetter) < 0 {
			flush()
		} else {
			if first || !hasInnerUpper(w) && !unicode.IsUpper([]rune(w)[0]) {
				w = lw // keep acronyms and names (CRDTs, Lamport) as written
			}
			if hasInnerUpper(f) {
				w = strings.TrimFunc(f, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
			}
			run = append(run, w)
			if len(run) == 3 || w != f { // punctuation ends a phrase
				flush()
			}
		}
		first = false
	}
	flush()
	if len(topics) == 0 {
		topics = []string{"the question", "this idea"}
	}
	return topics
}

func hasInnerUpper(w string) bool {
	for i, r := range w {
		if i > 0 && unicode.IsUpper(r) {
			return true
		}
	}
	return false
}

func upperFirst(s string) string {
	for i, r := range s {
		return string(unicode.ToUpper(r)) + s[i+len(string(r)):]
	}
	return s
}

func pick(rng *rand.Rand, words []string) string { return words[rng.IntN(len(words))] }
