// Package providers implements playground.Provider for every upstream
// Playground can compare (openai, openrouter, anthropic, gemini, local and
// the built-in demo), the model catalogue, and the Registry that implements
// playground.Catalog.
//
// Each SDK-based provider turns its SDK's stream into playground.Delta values
// and classifies every failure into a *playground.ProviderError with one
// function (ClassifyHTTP), on the HTTP status, headers and body the upstream
// sent. Retries are never made here: every SDK is configured to send exactly
// one request per Stream call, and the model actor decides what to retry.
// Timeouts are the caller's too: no http.Client timeout is set, the context
// governs.
//
// SDK clients are always built from the explicit key and base URL of
// config.Config, never from the SDKs' own environment lookups
// (OPENAI_*, ANTHROPIC_*, GOOGLE_*/GEMINI_*): see newOpenAICompat,
// NewAnthropic and NewGemini for how each SDK is kept away from them.
package providers
