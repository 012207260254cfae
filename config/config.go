// Package config reads Playground's settings from the environment and an
// optional YAML file (PLAYGROUND_CONFIG) and returns them as a validated,
// typed Config. It is the only package that touches viper; everything else
// receives the values it needs.
package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/playground-dev/playground"
)

// Config is every setting of docs/api.md's "Running" table.
type Config struct {
	Port        int
	Env         string // "development" or "production"
	JWTSecret   []byte // empty in development: generated once and kept in the database
	JWTTTL      time.Duration
	DatabaseURL string // DefaultDatabaseURL unless DATABASE_URL says otherwise
	RedisURL    string
	// RedisMode says how RedisURL reads: "single", "cluster" or
	// "sentinel" (go-redis's ParseURL, ParseClusterURL, ParseFailoverURL).
	RedisMode string
	// RedisPrefix starts every key and channel this deployment uses in
	// Redis, and RedisLease is how long an instance's claim on a running
	// session lasts without renewal. They are not read from the
	// environment: DefaultRedisPrefix and DefaultRedisLease, which tests
	// change to share one Redis and to see a dead instance sooner.
	RedisPrefix string
	RedisLease  time.Duration

	OpenAIKey, OpenAIBaseURL         string
	OpenRouterKey, OpenRouterBaseURL string
	AnthropicKey, AnthropicBaseURL   string
	GeminiKey, GeminiBaseURL         string
	OllamaBaseURL                    string

	// Models restricts the offered models to exactly these ids when set.
	Models []string
	// Catalog adds to or overrides the built-in catalogue (config file only).
	Catalog []CatalogEntry
	// DemoSpeed scales the demo models' pace (DEMO_SPEED): 1 is their human
	// pace, 4 streams four times as fast.
	DemoSpeed float64

	FirstByteTimeout time.Duration
	IdleTimeout      time.Duration
	TotalTimeout     time.Duration
	BreakerFailures  int
	BreakerCooldown  time.Duration

	Plans playground.Plans

	TrustedProxies  []netip.Prefix
	RegisterPerHour int
	FrontendURL     string // normalised scheme://host[:port], or ""

	// What one client may hold of the server: open connections in all
	// and per client address, and how long a request's headers, its body,
	// an idle keep-alive connection and a WebSocket without a
	// subscription may take.
	MaxConns           int
	MaxConnsPerAddress int
	ReadHeaderTimeout  time.Duration
	BodyTimeout        time.Duration
	HTTPIdleTimeout    time.Duration
	WSSubscribeTimeout time.Duration
}

// The defaults that are not a setting's default in Load's table: each is
// decided here and nowhere else.
const (
	// DefaultDatabaseURL is the embedded SQLite file in the working
	// directory, used when DATABASE_URL is empty.
	DefaultDatabaseURL = "playground.db"
	// DefaultRedisPrefix starts every Redis key and channel.
	DefaultRedisPrefix = "playground:"
	// DefaultRedisLease is how long an instance's claim on a running
	// session lasts without renewal: another instance ends the session of
	// an instance that died within about this long.
	DefaultRedisLease = 10 * time.Second
)

// CatalogEntry is one model of the catalogue, from the config file:
//
//	catalog:
//	  - id: openai/gpt-4.1-nano
//	    name: GPT-4.1 nano
//	    inputPerMillionUsd: 0.10
//	    outputPerMillionUsd: 0.40
type CatalogEntry struct {
	ID                  string   `mapstructure:"id"`
	Name                string   `mapstructure:"name"`
	InputPerMillionUSD  *float64 `mapstructure:"inputPerMillionUsd"`
	OutputPerMillionUSD *float64 `mapstructure:"outputPerMillionUsd"`
}

// Production reports whether ENV=production.
func (c *Config) Production() bool { return c.Env == "production" }

// Load reads the settings. getenv is the environment lookup (os.Getenv in
// main, a map in tests), so tests never depend on the process environment.
func Load(getenv func(string) string) (*Config, error) {
	v := viper.New()
	defaults := map[string]any{
		"PORT": 8080, "ENV": "development", "JWT_TTL": "24h",
		"OPENAI_BASE_URL":             "https://api.openai.com/v1",
		"OPENROUTER_BASE_URL":         "https://openrouter.ai/api/v1",
		"ANTHROPIC_BASE_URL":          "https://api.anthropic.com",
		"GEMINI_BASE_URL":             "https://generativelanguage.googleapis.com",
		"PROVIDER_FIRST_BYTE_TIMEOUT": "30s", "PROVIDER_IDLE_TIMEOUT": "20s", "PROVIDER_TOTAL_TIMEOUT": "5m",
		"PROVIDER_BREAKER_FAILURES": 5, "PROVIDER_BREAKER_COOLDOWN": "30s",
		"QUOTA_FREE_PER_DAY": 50, "QUOTA_PRO_PER_DAY": 1000,
		"RATE_LIMIT_REGISTER_PER_HOUR": 100,
		"MAX_CONNECTIONS":              10000, "MAX_CONNECTIONS_PER_ADDRESS": 256,
		"HTTP_READ_HEADER_TIMEOUT": "10s", "HTTP_BODY_TIMEOUT": "10s", "HTTP_IDLE_TIMEOUT": "60s",
		"WS_SUBSCRIBE_TIMEOUT": "10s", "REDIS_MODE": RedisSingle, "DEMO_SPEED": "1",
	}
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	if path := getenv("PLAYGROUND_CONFIG"); path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config: read %s: %w", path, err)
		}
		// Keys in the file may be written in any case; viper lower-cases them.
	}
	keys := []string{"PORT", "ENV", "JWT_SECRET", "JWT_TTL", "DATABASE_URL", "REDIS_URL", "REDIS_MODE",
		"OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL",
		"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY", "GEMINI_BASE_URL",
		"OLLAMA_BASE_URL", "MODELS", "PROVIDER_FIRST_BYTE_TIMEOUT", "PROVIDER_IDLE_TIMEOUT",
		"PROVIDER_TOTAL_TIMEOUT", "PROVIDER_BREAKER_FAILURES", "PROVIDER_BREAKER_COOLDOWN",
		"QUOTA_FREE_PER_DAY", "QUOTA_PRO_PER_DAY", "TRUSTED_PROXIES",
		"RATE_LIMIT_REGISTER_PER_HOUR", "FRONTEND_URL", "MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_ADDRESS",
		"HTTP_READ_HEADER_TIMEOUT", "HTTP_BODY_TIMEOUT", "HTTP_IDLE_TIMEOUT", "WS_SUBSCRIBE_TIMEOUT", "DEMO_SPEED"}
	for _, k := range keys {
		if val := getenv(k); val != "" {
			v.Set(k, val)
		}
	}
	str := func(k string) string { return strings.TrimSpace(v.GetString(k)) }

	c := &Config{
		Env:               str("ENV"),
		JWTSecret:         []byte(v.GetString("JWT_SECRET")),
		DatabaseURL:       str("DATABASE_URL"),
		RedisURL:          str("REDIS_URL"),
		RedisMode:         strings.ToLower(str("REDIS_MODE")),
		OpenAIKey:         str("OPENAI_API_KEY"),
		OpenAIBaseURL:     str("OPENAI_BASE_URL"),
		OpenRouterKey:     str("OPENROUTER_API_KEY"),
		OpenRouterBaseURL: str("OPENROUTER_BASE_URL"),
		AnthropicKey:      str("ANTHROPIC_API_KEY"),
		AnthropicBaseURL:  str("ANTHROPIC_BASE_URL"),
		GeminiKey:         str("GEMINI_API_KEY"),
		GeminiBaseURL:     str("GEMINI_BASE_URL"),
		OllamaBaseURL:     str("OLLAMA_BASE_URL"),
		RedisPrefix:       DefaultRedisPrefix,
		RedisLease:        DefaultRedisLease,
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = DefaultDatabaseURL
	}
	var err error
	ints := []struct {
		key string
		dst *int
		min int
	}{
		{"PORT", &c.Port, 0}, {"PROVIDER_BREAKER_FAILURES", &c.BreakerFailures, 1},
		{"QUOTA_FREE_PER_DAY", &c.Plans.FreePerDay, 0}, {"QUOTA_PRO_PER_DAY", &c.Plans.ProPerDay, 0},
		{"RATE_LIMIT_REGISTER_PER_HOUR", &c.RegisterPerHour, 1},
		{"MAX_CONNECTIONS", &c.MaxConns, 1}, {"MAX_CONNECTIONS_PER_ADDRESS", &c.MaxConnsPerAddress, 1},
	}
	for _, i := range ints {
		if *i.dst, err = intSetting(str(i.key)); err != nil || *i.dst < i.min {
			return nil, fmt.Errorf("config: %s must be a whole number of at least %d, got %q", i.key, i.min, str(i.key))
		}
	}
	durs := []struct {
		key string
		dst *time.Duration
	}{
		{"JWT_TTL", &c.JWTTTL}, {"PROVIDER_FIRST_BYTE_TIMEOUT", &c.FirstByteTimeout},
		{"PROVIDER_IDLE_TIMEOUT", &c.IdleTimeout}, {"PROVIDER_TOTAL_TIMEOUT", &c.TotalTimeout},
		{"PROVIDER_BREAKER_COOLDOWN", &c.BreakerCooldown},
		{"HTTP_READ_HEADER_TIMEOUT", &c.ReadHeaderTimeout}, {"HTTP_BODY_TIMEOUT", &c.BodyTimeout},
		{"HTTP_IDLE_TIMEOUT", &c.HTTPIdleTimeout}, {"WS_SUBSCRIBE_TIMEOUT", &c.WSSubscribeTimeout},
	}
	for _, d := range durs {
		if *d.dst, err = time.ParseDuration(str(d.key)); err != nil || *d.dst <= 0 {
			return nil, fmt.Errorf("config: %s must be a positive Go duration such as 30s, got %q", d.key, str(d.key))
		}
	}
	if c.DemoSpeed, err = strconv.ParseFloat(str("DEMO_SPEED"), 64); err != nil || !(c.DemoSpeed >= 0.01 && c.DemoSpeed <= 1000) {
		return nil, fmt.Errorf("config: DEMO_SPEED must be a number from 0.01 to 1000 (1: the demo models' own pace), got %q", str("DEMO_SPEED"))
	}
	if c.Env != "development" && c.Env != "production" {
		return nil, fmt.Errorf("config: ENV must be development or production, got %q", c.Env)
	}
	if c.Production() && len(c.JWTSecret) < 32 {
		return nil, fmt.Errorf("config: ENV=production needs a JWT_SECRET of at least 32 bytes")
	}
	if _, err := c.RedisClient(); err != nil {
		return nil, err
	}
	if c.Models, err = modelList(str("MODELS")); err != nil {
		return nil, err
	}
	if err := v.UnmarshalKey("catalog", &c.Catalog); err != nil {
		return nil, fmt.Errorf("config: catalog: %w", err)
	}
	for _, e := range c.Catalog {
		if err := checkModelID(e.ID); err != nil {
			return nil, fmt.Errorf("config: catalog: %w", err)
		}
	}
	if c.TrustedProxies, err = prefixes(str("TRUSTED_PROXIES")); err != nil {
		return nil, err
	}
	if f := str("FRONTEND_URL"); f != "" {
		if c.FrontendURL, err = NormalizeOrigin(f); err != nil {
			return nil, fmt.Errorf("config: FRONTEND_URL: %w", err)
		}
	}
	return c, nil
}

func intSetting(s string) (int, error) {
	var n int
	_, err := fmt.Sscanf(s, "%d", &n)
	if err == nil && fmt.Sprint(n) != s {
		err = fmt.Errorf("not a whole number")
	}
	return n, err
}

func modelList(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	for _, id := range strings.Split(s, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		if err := checkModelID(id); err != nil {
			return nil, fmt.Errorf("config: MODELS: %w", err)
		}
		out = append(out, id)
	}
	return out, nil
}

func checkModelID(id string) error {
	p, _, ok := playground.SplitModelID(id)
	if !ok {
		return fmt.Errorf("%q is not a model id of the form provider/model", id)
	}
	for _, known := range playground.ProviderNames {
		if p == known {
			return nil
		}
	}
	return fmt.Errorf("%q names provider %q; the providers are %s", id, p, strings.Join(playground.ProviderNames, ", "))
}

func prefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return nil, fmt.Errorf("config: TRUSTED_PROXIES: %q is not a CIDR", part)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// NormalizeOrigin turns a URL into the exact origin form browsers send,
// scheme://host[:port], lower-cased, without a default port or a path.
func NormalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an origin like https://app.example.com", s)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return strings.ToLower(u.Scheme) + "://" + host, nil
}
