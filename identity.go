package playground

import (
	"regexp"
	"strings"
)

// This file decides whether an answer gives its model away (docs/api.md,
// "Identity leaks"). A vote on a blind session whose answers do is marked
// identityLeak and left out of the leaderboard by default.
//
// The patterns, matched case-insensitively on word boundaries:
//
//  1. Self-identification naming any known model family or maker:
//     "as <X>", "I am <X>", "I'm <X>", "my name is <X>", "this is <X>",
//     "I was made / created / developed / trained / built by <X>",
//     "made by <X>", "developed by <X>", "trained by <X>" (with an
//     optional "a", "an" or "the" before X), where X is a family of
//     knownFamilies or a maker of knownMakers.
//  2. Any mention of a family or maker of the session's own models: the
//     family words found in the model ids (gpt, claude, gemini, llama, …),
//     the makers of those families and of the providers (OpenAI,
//     Anthropic, Google, Meta, …), and each model's display name in the
//     catalogue ("GPT-4o mini", "Demo fast").

// knownFamilies maps a model family word to its maker.
var knownFamilies = map[string]string{
	"gpt": "OpenAI", "chatgpt": "OpenAI", "openai": "OpenAI",
	"claude": "Anthropic",
	"gemini": "Google", "gemma": "Google", "bard": "Google", "palm": "Google",
	"llama":   "Meta",
	"mistral": "Mistral", "mixtral": "Mistral", "codestral": "Mistral",
	"qwen":      "Alibaba",
	"deepseek":  "DeepSeek",
	"phi":       "Microsoft",
	"grok":      "xAI",
	"command-r": "Cohere",
}

// knownMakers are the makers self-identification is checked against.
var knownMakers = []string{"OpenAI", "Anthropic", "Google", "DeepMind", "Meta", "Mistral", "Alibaba", "DeepSeek", "Microsoft", "xAI", "Cohere"}

// providerMakers names the maker behind a provider that makes its own models.
var providerMakers = map[string]string{"openai": "OpenAI", "anthropic": "Anthropic", "gemini": "Google"}

var selfID = func() *regexp.Regexp {
	var names []string
	for f := range knownFamilies {
		names = append(names, regexp.QuoteMeta(f))
	}
	for _, m := range knownMakers {
		names = append(names, regexp.QuoteMeta(strings.ToLower(m)))
	}
	alt := strings.Join(names, "|")
	return regexp.MustCompile(`(?i)\b(?:as|i am|i'm|i’m|my name is|this is|(?:i was |i am |i'm )?(?:made|created|developed|trained|built) by)\s+(?:a |an |the )?(?:` + alt + `)\b`)
}()

// IdentityLeak reports whether text gives away a model: pattern 1 above,
// or a mention of the family, maker or display name of one of models
// (the session's, with their catalogue names in names, by id).
func IdentityLeak(text string, models []string, names map[string]string) bool {
	if selfID.MatchString(text) {
		return true
	}
	lower := strings.ToLower(text)
	for _, w := range sessionWords(models, names) {
		if containsWord(lower, strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// sessionWords are the words of pattern 2 for the session's models.
func sessionWords(models []string, names map[string]string) []string {
	var out []string
	for _, id := range models {
		provider, upstream, _ := strings.Cut(id, "/")
		if m, ok := providerMakers[provider]; ok {
			out = append(out, m)
		}
		lid := strings.ToLower(upstream)
		for f, maker := range knownFamilies {
			if containsWord(lid, f) {
				out = append(out, f, maker)
			}
		}
		if n := names[id]; n != "" {
			out = append(out, n)
		}
	}
	return out
}

// containsWord reports whether w occurs in s with no letter or digit
// just before or after it.
func containsWord(s, w string) bool {
	if w == "" {
		return false
	}
	for i := 0; ; {
		j := strings.Index(s[i:], w)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(w)
		if (start == 0 || !isWordByte(s[start-1])) && (end == len(s) || !isWordByte(s[end])) {
			return true
		}
		i = start + 1
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}
