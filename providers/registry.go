package providers

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/config"
)

// DefaultLocalRefresh is how often the local server's models are listed again.
const DefaultLocalRefresh = time.Minute

// localDiscoveryTimeout bounds one listing of the local server's models, so
// a server that is down does not hold up start-up.
const localDiscoveryTimeout = 5 * time.Second

// RegistryOptions are the collaborators of a Registry.
type RegistryOptions struct {
	// HTTPClient is shared by every SDK client (nil: a plain &http.Client{}).
	// Give it no Timeout: each request's context governs.
	HTTPClient *http.Client
	// Logger receives discovery failures (nil: slog.Default()).
	Logger *slog.Logger
	// Cooling reports whether a provider's breaker is open (nil: never).
	// The breaker lives with the model actors; the registry only asks.
	Cooling func(provider string) bool
	// Demo tunes the demo provider's pace (a zero Speed: cfg.DemoSpeed).
	Demo DemoOptions
	// LocalRefresh is how often local models are rediscovered
	// (0: DefaultLocalRefresh).
	LocalRefresh time.Duration
}

// Registry is the catalogue of offered models and the providers serving
// them; it implements playground.Catalog. Its methods are safe for
// concurrent use.
type Registry struct {
	cooling   func(string) bool
	log       *slog.Logger
	providers map[string]playground.Provider // configured providers only
	// listed are the entries listed whatever discovery finds: MODELS when
	// set, else the built-in catalogue merged with the config file's.
	listed     []CatalogEntry
	restricted bool // MODELS is set: list exactly those ids
	local      *Local

	mu          sync.RWMutex
	localModels []string // discovered upstream names, when not restricted

	cancel context.CancelFunc // ends the refresh goroutine
	wg     sync.WaitGroup
}

// NewRegistry builds a provider for every upstream configured in cfg (a key,
// or OLLAMA_BASE_URL for local; demo always) and the list of offered models.
// Without MODELS and with OLLAMA_BASE_URL set, it lists the local server's
// models once before returning (waiting at most 5 s; a failure is logged and
// the list stays empty until the next refresh) and starts the refresh
// goroutine, which Close stops.
func NewRegistry(cfg *config.Config, opts RegistryOptions) (*Registry, error) {
	r := &Registry{
		cooling:    opts.Cooling,
		log:        opts.Logger,
		providers:  map[string]playground.Provider{},
		restricted: len(cfg.Models) > 0,
	}
	if r.cooling == nil {
		r.cooling = func(string) bool { return false }
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}

	if cfg.OpenAIKey != "" {
		r.providers[playground.ProviderOpenAI] = NewOpenAI(cfg.OpenAIKey, cfg.OpenAIBaseURL, hc)
	}
	if cfg.OpenRouterKey != "" {
		r.providers[playground.ProviderOpenRouter] = NewOpenRouter(cfg.OpenRouterKey, cfg.OpenRouterBaseURL, hc)
	}
	if cfg.AnthropicKey != "" {
		r.providers[playground.ProviderAnthropic] = NewAnthropic(cfg.AnthropicKey, cfg.AnthropicBaseURL, hc)
	}
	if cfg.GeminiKey != "" {
		g, err := NewGemini(cfg.GeminiKey, cfg.GeminiBaseURL, hc)
		if err != nil {
			return nil, err
		}
		r.providers[playground.ProviderGemini] = g
	}
	if cfg.OllamaBaseURL != "" {
		r.local = NewLocal(cfg.OllamaBaseURL, hc)
		r.providers[playground.ProviderLocal] = r.local
	}
	demo := opts.Demo
	if demo.Speed == 0 {
		demo.Speed = cfg.DemoSpeed
	}
	r.providers[playground.ProviderDemo] = NewDemo(demo)

	catalog := mergeCatalog(BuiltinCatalog(), cfg.Catalog)
	if r.restricted {
		byID := make(map[string]CatalogEntry, len(catalog))
		for _, e := range catalog {
			byID[e.ID] = e
		}
		for _, id := range cfg.Models {
			e, ok := byID[id]
			if !ok {
				_, name, _ := playground.SplitModelID(id)
				e = CatalogEntry{ID: id, Name: name}
			}
			r.listed = append(r.listed, e)
		}
	} else {
		r.listed = catalog
	}

	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if r.local != nil && !r.restricted {
		r.discover(ctx)
		every := opts.LocalRefresh
		if every <= 0 {
			every = DefaultLocalRefresh
		}
		r.wg.Add(1)
		go r.refreshLocal(ctx, every)
	}
	return r, nil
}

// refreshLocal keeps the local server's model list fresh. NewRegistry starts
// it; Close ends it (cancelling ctx, which also aborts a listing under way)
// and waits for it.
func (r *Registry) refreshLocal(ctx context.Context, every time.Duration) {
	defer r.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.discover(ctx)
		}
	}
}

// discover lists the local server's models once. On failure the previous
// list stays: a server that restarts should not empty the page.
func (r *Registry) discover(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, localDiscoveryTimeout)
	defer cancel()
	ids, err := r.local.DiscoverModels(ctx)
	if err != nil {
		if parent.Err() == nil { // not Close cutting it short
			r.log.Warn("providers: local model discovery failed", "err", err)
		}
		return
	}
	r.mu.Lock()
	r.localModels = ids
	r.mu.Unlock()
}

// Close stops local model discovery and waits for it. It is safe to call
// more than once.
func (r *Registry) Close() error {
	r.cancel()
	r.wg.Wait()
	return nil
}

// entries is every listed entry as of now: the fixed list, then the
// discovered local models the fixed list does not already name.
func (r *Registry) entries() []CatalogEntry {
	r.mu.RLock()
	local := r.localModels
	r.mu.RUnlock()
	if len(local) == 0 {
		return r.listed
	}
	out := slices.Clone(r.listed)
	for _, name := range local {
		id := playground.ProviderLocal + "/" + name
		if !slices.ContainsFunc(out, func(e CatalogEntry) bool { return e.ID == id }) {
			out = append(out, CatalogEntry{ID: id, Name: name})
		}
	}
	return out
}

func (r *Registry) model(e CatalogEntry) playground.Model {
	provider, _, _ := playground.SplitModelID(e.ID)
	m := playground.Model{ID: e.ID, Provider: provider, Name: e.Name, Available: true}
	if e.Pricing != nil {
		p := *e.Pricing
		m.Pricing = &p
	}
	var reason string
	if _, ok := r.providers[provider]; !ok {
		reason = playground.UnavailableNoKey
	} else if r.cooling(provider) {
		reason = playground.UnavailableCoolingDown
	}
	if reason != "" {
		m.Available, m.UnavailableReason = false, &reason
	}
	return m
}

// Models lists every offered model with its availability as of now, in
// catalogue order (the order of MODELS when it is set).
func (r *Registry) Models() []playground.Model {
	entries := r.entries()
	out := make([]playground.Model, len(entries))
	for i, e := range entries {
		out[i] = r.model(e)
	}
	return out
}

// Lookup returns a listed, available model and its provider. An id that is
// not listed is EUnknownModel; a listed model whose provider has no key or
// is cooling down is EModelUnavailable. Both carry details.model.
func (r *Registry) Lookup(id string) (playground.Model, playground.Provider, error) {
	for _, e := range r.entries() {
		if e.ID != id {
			continue
		}
		m := r.model(e)
		if !m.Available {
			var err *playground.Error
			if *m.UnavailableReason == playground.UnavailableCoolingDown {
				err = playground.Errorf(playground.EModelUnavailable,
					"Model %s is unavailable for now: its provider is cooling down after repeated failures. Try again shortly.", id)
			} else {
				err = playground.Errorf(playground.EModelUnavailable,
					"Model %s is unavailable: this server has no API key for its provider.", id)
			}
			return playground.Model{}, nil, err.WithDetail("model", id)
		}
		return m, r.providers[m.Provider], nil
	}
	return playground.Model{}, nil, playground.Errorf(playground.EUnknownModel,
		"Model %s is not offered here; GET /models lists those that are.", id).WithDetail("model", id)
}

// Pricing returns the catalogue price of a listed model, or nil when it has
// none (demo models, ids outside the catalogue, discovered local models).
func (r *Registry) Pricing(id string) *playground.Pricing {
	for _, e := range r.entries() {
		if e.ID == id && e.Pricing != nil {
			p := *e.Pricing
			return &p
		}
	}
	return nil
}
