package api

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/playground-dev/playground"
)

func TestRegisterAndCookie(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		var out struct {
			User        map[string]any `json:"user"`
			AccessToken string         `json:"accessToken"`
		}
		w := e.want(restReq{method: "POST", path: "/auth/register", body: map[string]string{"email": "  Ada@Example.COM ", "password": "password123"}}, http.StatusCreated, &out)
		if out.User["email"] != "ada@example.com" || out.User["plan"] != "free" || out.User["role"] != "user" {
			t.Errorf("user = %v", out.User)
		}
		if _, ok := out.User["passwordHash"]; ok {
			t.Error("password hash leaked")
		}
		q := out.User["quota"].(map[string]any)
		if q["remaining"] != float64(5) || q["limit"] != float64(5) || q["period"] != "day" || q["resetsAt"] == nil {
			t.Errorf("quota = %v", q)
		}
		if !strings.HasPrefix(out.User["id"].(string), "u_") {
			t.Errorf("id = %v", out.User["id"])
		}
		sc := w.Header().Get("Set-Cookie")
		for _, want := range []string{"playground_token=" + out.AccessToken, "Path=/", "Max-Age=3600", "HttpOnly", "SameSite=Lax"} {
			if !strings.Contains(sc, want) {
				t.Errorf("Set-Cookie %q lacks %q", sc, want)
			}
		}
		if strings.Contains(sc, "Secure") {
			t.Errorf("Secure cookie outside production: %q", sc)
		}

		// The cookie authenticates /auth/me.
		w = e.do(restReq{method: "GET", path: "/auth/me", cookie: out.AccessToken})
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"ada@example.com"`) {
			t.Fatalf("me: %d %s", w.Code, w.Body)
		}

		// Same email in another case: 409.
		w = e.do(restReq{method: "POST", path: "/auth/register", body: map[string]string{"email": "ADA@example.com", "password": "password456"}})
		wantError(t, w, http.StatusConflict, playground.EEmailTaken)

		// Field rules.
		wantField(t, e.do(restReq{method: "POST", path: "/auth/register", body: map[string]string{"email": "nope", "password": "password123"}}), "email")
		wantField(t, e.do(restReq{method: "POST", path: "/auth/register", body: map[string]string{"email": "b@example.com", "password": "short"}}), "password")
	})
}

func TestSecureCookieInProduction(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		w := e.do(restReq{method: "POST", path: "/auth/register", body: map[string]string{"email": "a@example.com", "password": "password123"}})
		if sc := w.Header().Get("Set-Cookie"); !strings.Contains(sc, "Secure") {
			t.Errorf("Set-Cookie %q is not Secure", sc)
		}
		w = e.do(restReq{method: "POST", path: "/auth/logout"})
		sc := w.Header().Get("Set-Cookie")
		for _, want := range []string{"playground_token=", "Max-Age=0", "HttpOnly", "SameSite=Lax", "Secure", "Path=/"} {
			if !strings.Contains(sc, want) {
				t.Errorf("logout Set-Cookie %q lacks %q", sc, want)
			}
		}
	}, func(o *Options) { o.Production = true })
}

func TestLoginLogout(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, u testUser) {
		var out struct {
			User        playground.User `json:"user"`
			AccessToken string          `json:"accessToken"`
		}
		w := e.want(restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "A@example.com", "password": "password123"}}, http.StatusOK, &out)
		if out.User.ID != u.ID || out.AccessToken == "" {
			t.Fatalf("login answer %s", w.Body)
		}
		if !strings.Contains(w.Header().Get("Set-Cookie"), "HttpOnly") {
			t.Error("no cookie on login")
		}

		// Wrong password and unknown email: the same 401, same words.
		w1 := e.do(restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "a@example.com", "password": "wrongpassword"}})
		w2 := e.do(restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "nobody@example.com", "password": "wrongpassword"}})
		wantError(t, w1, http.StatusUnauthorized, playground.EUnauthorized)
		wantError(t, w2, http.StatusUnauthorized, playground.EUnauthorized)
		if w1.Body.String() != w2.Body.String() {
			t.Errorf("different 401s: %s vs %s", w1.Body, w2.Body)
		}

		// Logout revokes the token (everywhere: Options.Revoked is told) and clears the cookie.
		w = e.want(restReq{method: "POST", path: "/auth/logout", token: out.AccessToken}, http.StatusNoContent, nil)
		if sc := w.Header().Get("Set-Cookie"); !strings.Contains(sc, "Max-Age=0") || !strings.Contains(sc, "HttpOnly") {
			t.Errorf("logout cookie %q", sc)
		}
		e.mu.Lock()
		if len(e.revoked) != 1 {
			t.Errorf("Revoked called %d times", len(e.revoked))
		}
		e.mu.Unlock()
		wantError(t, e.do(restReq{method: "GET", path: "/auth/me", token: out.AccessToken}), http.StatusUnauthorized, playground.EUnauthorized)
		// The other token still works.
		if w := e.do(restReq{method: "GET", path: "/auth/me", token: u.Token}); w.Code != http.StatusOK {
			t.Errorf("other token: %d", w.Code)
		}
		// Logout without (valid) credentials still answers 204.
		for _, r := range []restReq{{method: "POST", path: "/auth/logout"}, {method: "POST", path: "/auth/logout", token: "garbage"}, {method: "POST", path: "/auth/logout", token: out.AccessToken}} {
			if w := e.do(r); w.Code != http.StatusNoContent || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
				t.Errorf("logout %+v: %d %q", r, w.Code, w.Header().Get("Set-Cookie"))
			}
		}
	})
}

// sign makes a token with arbitrary claims and method, for the 401 cases.
func signToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, u testUser) {
		secret := e.srv.opts.JWTSecret
		now := time.Now()
		valid := func() jwt.MapClaims {
			return jwt.MapClaims{"sub": u.ID, "jti": "j-" + strconv.FormatInt(now.UnixNano(), 10), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		}
		if w := e.do(restReq{method: "GET", path: "/auth/me", token: signToken(t, jwt.SigningMethodHS256, secret, valid())}); w.Code != http.StatusOK {
			t.Fatalf("hand-made valid token refused: %d %s", w.Code, w.Body)
		}
		expired := valid()
		expired["exp"] = now.Add(-time.Minute).Unix()
		noExp := valid()
		delete(noExp, "exp")
		noJTI := valid()
		delete(noJTI, "jti")
		parts := strings.Split(u.Token, ".")
		tampered := parts[0] + "." + parts[1] + "x." + parts[2]
		none := signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid())
		hs512 := signToken(t, jwt.SigningMethodHS512, secret, valid())
		cases := map[string]restReq{
			"missing":        {},
			"expired":        {token: signToken(t, jwt.SigningMethodHS256, secret, expired)},
			"no exp":         {token: signToken(t, jwt.SigningMethodHS256, secret, noExp)},
			"no jti":         {token: signToken(t, jwt.SigningMethodHS256, secret, noJTI)},
			"tampered":       {token: tampered},
			"other key":      {token: signToken(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), valid())},
			"alg none":       {token: none},
			"HS512":          {token: hs512},
			"garbage":        {token: "not.a.jwt"},
			"bad cookie":     {cookie: "nope"},
			"other scheme":   {header: map[string]string{"Authorization": "Basic " + u.Token}},
			"expired cookie": {cookie: signToken(t, jwt.SigningMethodHS256, secret, expired)},
		}
		for name, r := range cases {
			r.method, r.path = "GET", "/auth/me"
			wantError(t, e.do(r), http.StatusUnauthorized, playground.EUnauthorized)
			_ = name
		}
		// The header wins over the cookie.
		r := restReq{method: "GET", path: "/auth/me", token: "garbage", cookie: u.Token}
		wantError(t, e.do(r), http.StatusUnauthorized, playground.EUnauthorized)
		r = restReq{method: "GET", path: "/auth/me", token: u.Token, cookie: "garbage"}
		if w := e.do(r); w.Code != http.StatusOK {
			t.Errorf("header not preferred: %d", w.Code)
		}
	})
}

func TestRevocationUnavailable(t *testing.T) {
	t.Parallel()
	eachUser(t, "a@example.com", func(t *testing.T, e *restEnv, u testUser) {
		e.tokens.down.Store(true)
		w := e.do(restReq{method: "GET", path: "/auth/me", token: u.Token})
		wantError(t, w, http.StatusServiceUnavailable, playground.EUnavailable)
		if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
			t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
		}
		if strings.Contains(w.Body.String(), "connection refused") {
			t.Errorf("internal error leaked: %s", w.Body)
		}
		wantError(t, e.do(restReq{method: "POST", path: "/sessions", token: u.Token, body: map[string]any{"prompt": "x", "models": []string{"demo/fast"}}}),
			http.StatusServiceUnavailable, playground.EUnavailable)
	})
}

func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		e.register("a@example.com")
		bad := restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "a@example.com", "password": "wrongpassword"}}
		for i := 0; i < loginFailuresPerPair; i++ {
			wantError(t, e.do(bad), http.StatusUnauthorized, playground.EUnauthorized)
		}
		// Locked: even the right password waits.
		good := restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "a@example.com", "password": "password123"}}
		w := e.do(good)
		wantError(t, w, http.StatusTooManyRequests, playground.ERateLimited)
		ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
		if err != nil || ra < 1 || ra > int(loginWindow/time.Second) {
			t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
		}
		// Another account from another address is not affected.
		e.register("b@example.com")
		good2 := restReq{method: "POST", path: "/auth/login", remote: "198.51.100.7:1234", body: map[string]string{"email": "b@example.com", "password": "password123"}}
		if w := e.do(good2); w.Code != http.StatusOK {
			t.Errorf("other account: %d %s", w.Code, w.Body)
		}
	})
}

func TestLoginSuccessResetsAccountCount(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		e.register("a@example.com")
		bad := restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "a@example.com", "password": "wrongpassword"}}
		good := restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "a@example.com", "password": "password123"}}
		for round := 0; round < 2; round++ {
			for i := 0; i < loginFailuresPerPair-1; i++ {
				wantError(t, e.do(bad), http.StatusUnauthorized, playground.EUnauthorized)
			}
			if w := e.do(good); w.Code != http.StatusOK {
				t.Fatalf("round %d: good login %d %s", round, w.Code, w.Body)
			}
		}
	})
}

func TestLoginThrottlePerAddress(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		for i := 0; i < loginFailuresPerAddress; i++ {
			// A different account each time: only the address limit applies.
			r := restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "u" + strconv.Itoa(i) + "@example.com", "password": "wrongpassword"}}
			wantError(t, e.do(r), http.StatusUnauthorized, playground.EUnauthorized)
		}
		r := restReq{method: "POST", path: "/auth/login", body: map[string]string{"email": "fresh@example.com", "password": "wrongpassword"}}
		wantError(t, e.do(r), http.StatusTooManyRequests, playground.ERateLimited)
		r.remote = "203.0.113.9:4000"
		wantError(t, e.do(r), http.StatusUnauthorized, playground.EUnauthorized)
	})
}

func TestRegisterLimit(t *testing.T) {
	t.Parallel()
	eachEnv(t, func(t *testing.T, e *restEnv) {
		e.register("a@example.com")
		e.register("b@example.com")
		w := e.do(restReq{method: "POST", path: "/auth/register", body: map[string]string{"email": "c@example.com", "password": "password123"}})
		wantError(t, w, http.StatusTooManyRequests, playground.ERateLimited)
		if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
			t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
		}
		// Another address may still register.
		w = e.do(restReq{method: "POST", path: "/auth/register", remote: "198.51.100.1:1", body: map[string]string{"email": "c@example.com", "password": "password123"}})
		if w.Code != http.StatusCreated {
			t.Errorf("other address: %d %s", w.Code, w.Body)
		}
	}, func(o *Options) { o.RegisterPerHour = 2 })
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	s := &Server{opts: Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	cases := []struct {
		remote, xff, want string
	}{
		{"192.0.2.1:1234", "", "192.0.2.1"},
		{"192.0.2.1:1234", "203.0.113.5", "192.0.2.1"}, // untrusted peer: header ignored
		{"10.1.2.3:80", "203.0.113.5", "203.0.113.5"},
		{"10.1.2.3:80", "6.6.6.6, 203.0.113.5", "203.0.113.5"},  // spoofed left entry ignored
		{"10.1.2.3:80", "203.0.113.5, 10.9.9.9", "203.0.113.5"}, // a chain of our proxies
		{"10.1.2.3:80", "10.2.2.2", "10.2.2.2"},                 // all trusted: the left-most
		{"10.1.2.3:80", "", "10.1.2.3"},
		{"10.1.2.3:80", "garbage", "10.1.2.3"},
		{"[::1]:80", "2001:db8::1", "2001:db8::1"},
		{"[::ffff:192.0.2.1]:80", "", "192.0.2.1"},
	}
	for _, c := range cases {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.clientIP(r).String(); got != c.want {
			t.Errorf("clientIP(%s, %q) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func TestPasswordHashFormat(t *testing.T) {
	t.Parallel()
	h := newHasher(defaultArgon)
	enc, err := h.hash(bg, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") || len(strings.Split(enc, "$")) != 6 {
		t.Fatalf("hash = %q", enc)
	}
	if ok, err := h.verify(bg, "correct horse", enc); err != nil || !ok {
		t.Errorf("verify right = %v, %v", ok, err)
	}
	if ok, err := h.verify(bg, "correct horsf", enc); err != nil || ok {
		t.Errorf("verify wrong = %v, %v", ok, err)
	}
	if _, err := h.verify(bg, "x", "$2a$10$bcrypt"); err == nil {
		t.Error("a non-argon2id hash was accepted")
	}
}

func TestHasherWaitHonoursContext(t *testing.T) {
	t.Parallel()
	h := newHasher(fastArgon)
	for i := 0; i < maxConcurrentHashes; i++ {
		h.sem <- struct{}{} // every slot taken
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := h.hash(ctx, "password123"); err == nil {
		t.Fatal("hash ran without a slot")
	}
}
