package providers

import (
	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/config"
)

// CatalogEntry is one known model: its id, display name and list price.
type CatalogEntry struct {
	ID      string
	Name    string
	Pricing *playground.Pricing // nil when unknown (or free, as for demo)
}

func price(in, out float64) *playground.Pricing {
	return &playground.Pricing{InputPerMillionUSD: in, OutputPerMillionUSD: out}
}

// builtinCatalog lists well-known models, in display order, with list prices
// in US dollars per million input and output tokens (standard tier, no
// caching discount, short-context rates). Prices change: the config file's
// `catalog` overrides any entry by id.
var builtinCatalog = []CatalogEntry{
	{"openai/gpt-4o-mini", "GPT-4o mini", price(0.15, 0.60)},
	{"openai/gpt-4o", "GPT-4o", price(2.50, 10.00)},
	{"openai/gpt-4.1", "GPT-4.1", price(2.00, 8.00)},
	{"openai/gpt-4.1-mini", "GPT-4.1 mini", price(0.40, 1.60)},
	{"openai/gpt-4.1-nano", "GPT-4.1 nano", price(0.10, 0.40)},
	{"openai/o4-mini", "o4-mini", price(1.10, 4.40)},

	{"openrouter/meta-llama/llama-3.1-8b-instruct", "Llama 3.1 8B Instruct (OpenRouter)", price(0.02, 0.03)},
	{"openrouter/anthropic/claude-3.5-haiku", "Claude 3.5 Haiku (OpenRouter)", price(0.80, 4.00)},
	{"openrouter/google/gemini-2.0-flash-001", "Gemini 2.0 Flash (OpenRouter)", price(0.10, 0.40)},

	{"anthropic/claude-sonnet-4-5", "Claude Sonnet 4.5", price(3.00, 15.00)},
	{"anthropic/claude-haiku-4-5", "Claude Haiku 4.5", price(1.00, 5.00)},
	{"anthropic/claude-opus-4-1", "Claude Opus 4.1", price(15.00, 75.00)},

	{"gemini/gemini-2.5-flash", "Gemini 2.5 Flash", price(0.30, 2.50)},
	{"gemini/gemini-2.5-pro", "Gemini 2.5 Pro", price(1.25, 10.00)},
	{"gemini/gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", price(0.10, 0.40)},
	{"gemini/gemini-2.0-flash", "Gemini 2.0 Flash", price(0.10, 0.40)},
}

// BuiltinCatalog returns a copy of the built-in catalogue, demo models
// included (their pricing is nil).
func BuiltinCatalog() []CatalogEntry {
	out := make([]CatalogEntry, 0, len(builtinCatalog)+len(demoModels))
	for _, e := range builtinCatalog {
		if e.Pricing != nil {
			p := *e.Pricing
			e.Pricing = &p
		}
		out = append(out, e)
	}
	for _, m := range demoModels {
		out = append(out, CatalogEntry{ID: playground.ProviderDemo + "/" + m.name, Name: m.display})
	}
	return out
}

// mergeCatalog applies the config file's entries to the built-in list: an
// entry with a known id overrides the fields it sets, any other is added at
// the end. A price needs both figures; an entry giving only one keeps the
// built-in pricing (or none).
func mergeCatalog(base []CatalogEntry, extra []config.CatalogEntry) []CatalogEntry {
	index := make(map[string]int, len(base))
	for i, e := range base {
		index[e.ID] = i
	}
	for _, x := range extra {
		i, ok := index[x.ID]
		if !ok {
			_, name, _ := playground.SplitModelID(x.ID)
			base = append(base, CatalogEntry{ID: x.ID, Name: name})
			i = len(base) - 1
			index[x.ID] = i
		}
		if x.Name != "" {
			base[i].Name = x.Name
		}
		if x.InputPerMillionUSD != nil && x.OutputPerMillionUSD != nil {
			base[i].Pricing = price(*x.InputPerMillionUSD, *x.OutputPerMillionUSD)
		}
	}
	return base
}
