package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.Env != "development" || c.JWTTTL != 24*time.Hour || c.FirstByteTimeout != 30*time.Second ||
		c.IdleTimeout != 20*time.Second || c.TotalTimeout != 5*time.Minute || c.BreakerFailures != 5 ||
		c.BreakerCooldown != 30*time.Second || c.Plans.FreePerDay != 50 || c.Plans.ProPerDay != 1000 ||
		c.RegisterPerHour != 100 || c.OpenAIBaseURL != "https://api.openai.com/v1" || c.Models != nil || c.DemoSpeed != 1 {
		t.Fatalf("defaults: %+v", c)
	}
	if c.MaxConns != 10000 || c.MaxConnsPerAddress != 256 || c.ReadHeaderTimeout != 10*time.Second ||
		c.BodyTimeout != 10*time.Second || c.HTTPIdleTimeout != time.Minute || c.WSSubscribeTimeout != 10*time.Second {
		t.Fatalf("connection defaults: %+v", c)
	}
	// make run's database, and the Redis keys and lease of every instance.
	if c.DatabaseURL != "playground.db" || c.RedisPrefix != "playground:" || c.RedisLease != 10*time.Second {
		t.Fatalf("storage defaults: database %q, Redis prefix %q, lease %s", c.DatabaseURL, c.RedisPrefix, c.RedisLease)
	}
	if c, err := Load(env(map[string]string{"DATABASE_URL": "postgres://db/playground"})); err != nil || c.DatabaseURL != "postgres://db/playground" {
		t.Fatalf("DATABASE_URL: %v %+v", err, c)
	}
}

func TestConnectionSettings(t *testing.T) {
	c, err := Load(env(map[string]string{"MAX_CONNECTIONS": "50", "MAX_CONNECTIONS_PER_ADDRESS": "5",
		"HTTP_READ_HEADER_TIMEOUT": "2s", "HTTP_BODY_TIMEOUT": "3s", "HTTP_IDLE_TIMEOUT": "4s", "WS_SUBSCRIBE_TIMEOUT": "5s"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConns != 50 || c.MaxConnsPerAddress != 5 || c.ReadHeaderTimeout != 2*time.Second ||
		c.BodyTimeout != 3*time.Second || c.HTTPIdleTimeout != 4*time.Second || c.WSSubscribeTimeout != 5*time.Second {
		t.Fatalf("connection settings: %+v", c)
	}
	for _, bad := range []map[string]string{{"MAX_CONNECTIONS": "0"}, {"MAX_CONNECTIONS_PER_ADDRESS": "many"}, {"HTTP_BODY_TIMEOUT": "0s"}} {
		if _, err := Load(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"MODELS": "openai/gpt-4o-mini,acme/rocket"}, `names provider "acme"`},
		{map[string]string{"MODELS": "nomodel"}, "provider/model"},
		{map[string]string{"ENV": "production", "JWT_SECRET": "short"}, "at least 32 bytes"},
		{map[string]string{"ENV": "staging"}, "ENV must be"},
		{map[string]string{"PROVIDER_IDLE_TIMEOUT": "soon"}, "PROVIDER_IDLE_TIMEOUT"},
		{map[string]string{"QUOTA_FREE_PER_DAY": "-1"}, "QUOTA_FREE_PER_DAY"},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{map[string]string{"FRONTEND_URL": "app.example.com"}, "FRONTEND_URL"},
		{map[string]string{"DEMO_SPEED": "0"}, "DEMO_SPEED"},
		{map[string]string{"DEMO_SPEED": "fast"}, "DEMO_SPEED"},
		{map[string]string{"DEMO_SPEED": "NaN"}, "DEMO_SPEED"},
		{map[string]string{"DEMO_SPEED": "2x"}, "DEMO_SPEED"},
	} {
		if _, err := Load(env(tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error naming %q", tc.env, err, tc.want)
		}
	}
}

func TestValuesAreParsed(t *testing.T) {
	c, err := Load(env(map[string]string{
		"MODELS": " openai/gpt-4o-mini , demo/fast,", "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7",
		"FRONTEND_URL": "HTTPS://App.Example.com:443/path", "ENV": "production", "JWT_SECRET": strings.Repeat("k", 32),
		"DEMO_SPEED": "2.5",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Models) != 2 || c.Models[1] != "demo/fast" {
		t.Errorf("models %q", c.Models)
	}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[1].String() != "192.168.1.7/32" {
		t.Errorf("proxies %v", c.TrustedProxies)
	}
	if c.FrontendURL != "https://app.example.com" || !c.Production() {
		t.Errorf("frontend %q production %v", c.FrontendURL, c.Production())
	}
	if c.DemoSpeed != 2.5 {
		t.Errorf("demo speed %v, want 2.5", c.DemoSpeed)
	}
}

func TestConfigFileAndEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "playground.yaml")
	yaml := "port: 9000\nquota_free_per_day: 7\ncatalog:\n  - id: openai/gpt-4.1-nano\n    name: GPT-4.1 nano\n    inputPerMillionUsd: 0.1\n    outputPerMillionUsd: 0.4\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(env(map[string]string{"PLAYGROUND_CONFIG": path, "PORT": "9100"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 9100 || c.Plans.FreePerDay != 7 {
		t.Errorf("port %d (the environment wins), free quota %d (from the file)", c.Port, c.Plans.FreePerDay)
	}
	if len(c.Catalog) != 1 || c.Catalog[0].Name != "GPT-4.1 nano" || *c.Catalog[0].OutputPerMillionUSD != 0.4 {
		t.Errorf("catalog %+v", c.Catalog)
	}
}

func TestRedisModes(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.RedisMode != RedisSingle {
		t.Fatalf("default REDIS_MODE: %q, %v", c.RedisMode, err)
	}
	for _, ok := range []map[string]string{
		{"REDIS_URL": "redis://:pw@127.0.0.1:6379/2"},
		{"REDIS_URL": "redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002", "REDIS_MODE": "cluster"},
		{"REDIS_URL": "redis://127.0.0.1:26379?addr=127.0.0.1:26380&master_name=main", "REDIS_MODE": "Sentinel"},
		{"REDIS_MODE": "cluster"}, // no Redis at all: the mode waits for a URL
	} {
		c, err := Load(env(ok))
		if err != nil {
			t.Errorf("%v refused: %v", ok, err)
			continue
		}
		open, err := c.RedisClient()
		if err != nil || (ok["REDIS_URL"] != "") != (open != nil) {
			t.Errorf("%v: client %v, %v", ok, open != nil, err)
		}
	}
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:6379", "REDIS_MODE": "replicated"}, "REDIS_MODE must be single, cluster or sentinel"},
		{map[string]string{"REDIS_URL": "http://:secret@127.0.0.1:6379"}, "REDIS_MODE=single"},
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:6379/x"}, "invalid database number"},
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:7000?adr=127.0.0.1:7001", "REDIS_MODE": "cluster"}, "REDIS_MODE=cluster"},
		{map[string]string{"REDIS_URL": "redis://127.0.0.1:26379?addr=127.0.0.1:26380", "REDIS_MODE": "sentinel"}, "master_name"},
		{map[string]string{"REDIS_URL": "redis://:secret@127.0.0.1:6379/%zz"}, "REDIS_URL"},
	} {
		_, err := Load(env(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error with %q", tc.env, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: the error shows the password: %v", tc.env, err)
		}
	}
}
