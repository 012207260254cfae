package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/auth"
)

// cookieName is the session cookie of docs/api.md.
const cookieName = "playground_token"

// Login throttling (docs/api.md: "failed logins are throttled per account and
// per client address"). Guessing one account's password is the attack the
// per-(account, address) limit stops; it is strict, and it cannot be
// turned against the account's owner, who signs in from another address.
// The account-wide limit is much higher: it stops a guesser spread over
// many addresses, at the price of locking the owner out only then. The
// address limit is looser than the pair's because many people may share
// an address (offices, NAT). A lockout lasts until its window ends:
// minutes, never forever.
const (
	loginFailuresPerPair    = 5
	loginFailuresPerAccount = 100
	loginFailuresPerAddress = 20
	loginWindow             = 15 * time.Minute
	registerWindow          = time.Hour
)

// badCredentials is the one 401 for a wrong password and an unknown email:
// the same words, so that the answer does not tell which.
const badCredentials = "Email or password is incorrect."

// Principal is who a request acts for: the user of a valid, unrevoked
// access token.
type Principal struct {
	UserID    string
	JTI       string
	ExpiresAt time.Time
}

// authState holds what authentication keeps between requests: the login
// and registration limiters and the password hasher. It starts no
// goroutine.
type authState struct {
	loginPair    auth.Limiter // failed logins per (normalised email, client address)
	loginAccount auth.Limiter // failed logins per normalised email, from anywhere
	loginAddress auth.Limiter // failed logins per client address
	register     auth.Limiter // registrations per client address
	hasher       *hasher

	// dummyHash is verified against when the email is unknown, so that
	// both kinds of failed login cost one argon2id run.
	dummyOnce sync.Once
	dummyHash string
}

// newAuthState builds the in-memory limiters (a shared implementation can
// replace them through auth.Limiter) and the hasher.
func newAuthState(s *Server) *authState {
	perHour := s.opts.RegisterPerHour
	if perHour <= 0 {
		perHour = 100 // docs/api.md's default for RATE_LIMIT_REGISTER_PER_HOUR
	}
	newLimiter := s.opts.NewLimiter
	if newLimiter == nil {
		newLimiter = func(_ string, limit int, window time.Duration) auth.Limiter {
			return auth.NewMemoryLimiter(limit, window, s.now)
		}
	}
	return &authState{
		loginPair:    newLimiter("login-pair", loginFailuresPerPair, loginWindow),
		loginAccount: newLimiter("login-account", loginFailuresPerAccount, loginWindow),
		loginAddress: newLimiter("login-address", loginFailuresPerAddress, loginWindow),
		register:     newLimiter("register", perHour, registerWindow),
		hasher:       newHasher(s.opts.argon()),
	}
}

// accessClaims are the claims of an access token: iat, exp, sub, jti.
type accessClaims = jwt.RegisteredClaims

// issueToken signs a new access token for userID; it lives JWTTTL.
func (s *Server) issueToken(userID string) (token string, expiresAt time.Time, err error) {
	now := s.now().UTC().Truncate(time.Second) // JWT times are whole seconds
	expiresAt = now.Add(s.ttl())
	claims := accessClaims{
		Subject:   userID,
		ID:        uuid.NewString(),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(expiresAt),
	}
	token, err = jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s.opts.JWTSecret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("api: sign token: %w", err)
	}
	return token, expiresAt, nil
}

func (s *Server) ttl() time.Duration {
	if s.opts.JWTTTL > 0 {
		return s.opts.JWTTTL
	}
	return 24 * time.Hour
}

// bearerToken returns the token of an "Authorization: Bearer" header, or "".
// Other schemes are not ours and are ignored.
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// requestToken is the token a request presents: the bearer header first
// (docs/api.md: "when both are present, the header is the one used"), else
// the cookie.
func requestToken(r *http.Request) string {
	if t := bearerToken(r); t != "" {
		return t
	}
	if c, err := r.Cookie(cookieName); err == nil {
		return c.Value
	}
	return ""
}

// hasCredentials reports whether a request presents any token at all,
// valid or not: a bearer header or the session cookie.
func hasCredentials(r *http.Request) bool { return requestToken(r) != "" }

// authenticate checks the request's token: HS256 only (alg none, HS512
// and RS256 are refused), exp and jti required, not revoked. Every refusal
// is a *playground.Error EUnauthorized; a revocation list that cannot be
// read is EUnavailable (503), never a pass.
func (s *Server) authenticate(r *http.Request) (*Principal, error) {
	raw := requestToken(r)
	if raw == "" {
		return nil, playground.Errorf(playground.EUnauthorized, "Sign in to continue.")
	}
	claims := &accessClaims{}
	_, err := jwt.ParseWithClaims(raw, claims,
		func(*jwt.Token) (any, error) { return s.opts.JWTSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		msg := "Invalid credentials."
		if errors.Is(err, jwt.ErrTokenExpired) {
			msg = "Your session has expired; sign in again."
		}
		return nil, playground.Errorf(playground.EUnauthorized, "%s", msg)
	}
	if claims.ID == "" || claims.Subject == "" || claims.ExpiresAt == nil {
		return nil, playground.Errorf(playground.EUnauthorized, "Invalid credentials.")
	}
	revoked, err := s.opts.Tokens.IsTokenRevoked(r.Context(), claims.ID, claims.Subject)
	if err != nil {
		return nil, unavailable(err, "Credentials cannot be checked right now; try again shortly.")
	}
	if revoked {
		return nil, playground.Errorf(playground.EUnauthorized, "You have signed out, or the account is gone; sign in again.")
	}
	return &Principal{UserID: claims.Subject, JTI: claims.ID, ExpiresAt: claims.ExpiresAt.Time}, nil
}

// setSessionCookie sets the cookie for a token that expires at exp.
func (s *Server) setSessionCookie(w http.ResponseWriter, token string, exp time.Time) {
	// Whole seconds, rounded up: a token issued now lives exactly JWTTTL.
	maxAge := int((exp.Sub(s.now()) + time.Second - 1) / time.Second)
	if maxAge < 1 {
		maxAge = 1
	}
	http.SetCookie(w, s.cookie(token, maxAge))
}

// clearSessionCookie expires the cookie with the same attributes.
func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	c := s.cookie("", 0)
	c.MaxAge = -1 // net/http writes Max-Age=0 for a negative MaxAge
	http.SetCookie(w, c)
}

func (s *Server) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     cookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
		Secure:   s.opts.Production,
	}
}

// credentials is the body of register and login.
type credentials struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// authAnswer is the body of register and login.
type authAnswer struct {
	User        *playground.User `json:"user"`
	AccessToken string           `json:"accessToken"`
}

// decodeCredentials reads the body of register and login, and the email
// it names as stored (trimmed, lower case).
func (s *Server) decodeCredentials(w http.ResponseWriter, r *http.Request) (string, credentials, error) {
	var body credentials
	if err := s.decode(w, r, &body); err != nil {
		return "", body, err
	}
	email, err := playground.NormalizeEmail(body.Email)
	return email, body, err
}

// handleRegister creates an account: 201 {"user","accessToken"} and the
// cookie. Registrations are limited per client address; every attempt
// counts, so probing which emails are taken is limited too.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) error {
	ok, after, err := s.auth.register.Hit(r.Context(), "register:"+s.clientIP(r).String())
	if err != nil {
		return unavailable(err, "Registration is unavailable right now.")
	} else if !ok {
		s.metrics.rateLimited.WithLabelValues("register").Inc()
		return rateLimited(after, "Too many registrations from this address; try again later.")
	}
	email, body, err := s.decodeCredentials(w, r)
	if err != nil {
		return err
	}
	if err := playground.ValidatePassword(body.Password); err != nil {
		return err
	}
	hash, err := s.auth.hasher.hash(r.Context(), body.Password)
	if err != nil {
		return err
	}
	// The store sets the creation time and starts the quota full, from
	// the plans it was configured with.
	u := &playground.User{
		ID:           "u_" + uuid.NewString(),
		Email:        email,
		PasswordHash: hash,
		Plan:         playground.PlanFree,
		Role:         playground.RoleUser,
	}
	if err := s.opts.Users.CreateUser(r.Context(), u); err != nil {
		return err
	}
	return s.signIn(w, r, http.StatusCreated, u)
}

// handleLogin checks a password: 200 {"user","accessToken"} and the cookie.
//
// Every attempt reserves one event of each login limit before its
// password is checked, so parallel attempts cannot all pass a check that
// counts only later: no limit lets more password checks run than it
// allows. A failure keeps its reservations (they are the failure counts);
// a success gives them back and clears its (account, address) count.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) error {
	email, body, err := s.decodeCredentials(w, r)
	if err != nil {
		return err
	}
	if body.Password == "" {
		return playground.Invalid("password", "Password is required.")
	}
	ctx := r.Context()
	addr := s.clientIP(r).String()
	limits := []limitKey{
		{s.auth.loginAddress, "login-addr:" + addr},
		{s.auth.loginPair, "login-pair:" + email + "|" + addr},
		{s.auth.loginAccount, "login-acct:" + email},
	}
	if err := s.reserve(ctx, limits); err != nil {
		return err
	}

	u, ok, err := s.checkPassword(ctx, email, body.Password)
	if err != nil {
		// No verdict on the password: the attempt does not count.
		s.giveBack(context.WithoutCancel(ctx), limits)
		return err
	}
	if !ok {
		s.metrics.loginFailures.Inc()
		return playground.Errorf(playground.EUnauthorized, badCredentials)
	}
	s.giveBack(ctx, limits)
	if err := s.auth.loginPair.Reset(ctx, limits[1].key); err != nil {
		s.log.Warn("api: reset login failures", "err", err)
	}
	return s.signIn(w, r, http.StatusOK, u)
}

// limitKey is one count an attempt reserves: a limiter and its key.
type limitKey struct {
	l   auth.Limiter
	key string
}

// reserve counts one attempt against each limit, in order. When one
// refuses (429) or cannot be counted (503), the reservations already
// taken are given back: a refused attempt checks no password, so it uses
// up nothing.
func (s *Server) reserve(ctx context.Context, limits []limitKey) error {
	for i, lk := range limits {
		ok, after, err := lk.l.Hit(ctx, lk.key)
		if err == nil && ok {
			continue
		}
		taken := limits[:i]
		if err == nil {
			taken = limits[:i+1] // a refused Hit counted too
		}
		s.giveBack(context.WithoutCancel(ctx), taken)
		if err != nil {
			return unavailable(err, "Sign-in is unavailable right now.")
		}
		s.metrics.rateLimited.WithLabelValues("login").Inc()
		return rateLimited(after, "Too many failed sign-ins; try again later.")
	}
	return nil
}

// giveBack undoes one reservation of each limit.
func (s *Server) giveBack(ctx context.Context, limits []limitKey) {
	for _, lk := range limits {
		if err := lk.l.Undo(ctx, lk.key); err != nil {
			s.log.Warn("api: give back a login reservation", "err", err)
		}
	}
}

// checkPassword finds the account and verifies the password. An unknown
// email still runs one argon2id verification against a dummy hash, so the
// two failures take about the same time.
func (s *Server) checkPassword(ctx context.Context, email, password string) (*playground.User, bool, error) {
	u, err := s.opts.Users.FindUserByEmail(ctx, email)
	if err != nil && playground.ErrorCode(err) != playground.ENotFound {
		return nil, false, err
	}
	// No stored password is longer than 128 characters: such an input is
	// wrong without looking, but costs the same time as any other.
	if u == nil || utf8.RuneCountInString(password) > 128 {
		_, verr := s.auth.hasher.verify(ctx, "", s.auth.dummy())
		return nil, false, verr
	}
	ok, err := s.auth.hasher.verify(ctx, password, u.PasswordHash)
	if errors.Is(err, errBadHash) {
		s.log.Error("api: unreadable password hash", "user", u.ID)
		return nil, false, nil
	}
	return u, ok, err
}

// dummy is a hash of a random password, made once on first use (outside
// the semaphore: it runs once per process).
func (a *authState) dummy() string {
	a.dummyOnce.Do(func() { a.dummyHash = a.hasher.hashNow(uuid.NewString()) })
	return a.dummyHash
}

// signIn issues a token for u and answers with it, the user and the cookie.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, status int, u *playground.User) error {
	token, exp, err := s.issueToken(u.ID)
	if err != nil {
		return err
	}
	u.FillQuota(s.opts.Plans, s.now())
	s.setSessionCookie(w, token, exp)
	s.writeJSON(w, status, authAnswer{User: u, AccessToken: token})
	return nil
}

// handleLogout revokes the token that authenticated the call on every
// instance and clears the cookie. It answers 204 whatever the credentials
// (none, expired, tampered); only a revocation that cannot be recorded is
// a 503, because answering 204 then would leave the token working.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) error {
	s.clearSessionCookie(w)
	if !hasCredentials(r) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	p, err := s.authenticate(r)
	if err != nil {
		if playground.ErrorCode(err) == playground.EUnauthorized {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return err
	}
	if err := s.opts.Tokens.RevokeToken(r.Context(), p.JTI, p.ExpiresAt); err != nil {
		return unavailable(err, "Sign-out could not be recorded; try again shortly.")
	}
	switch {
	case s.opts.Revoked != nil:
		s.opts.Revoked(r.Context(), p.JTI, p.ExpiresAt)
	case s.opts.Hub != nil:
		s.opts.Hub.RevokeToken(p.JTI) // this instance only: no broker to tell the others
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleMe answers 200 {"user"} for the caller.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	u, err := s.currentUser(r.Context(), p)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"user": u})
	return nil
}

// currentUser loads the principal's account with its quota as of now. A
// token whose account is gone is a 401, not a 404.
func (s *Server) currentUser(ctx context.Context, p *Principal) (*playground.User, error) {
	u, err := s.opts.Users.FindUserByID(ctx, p.UserID)
	if playground.ErrorCode(err) == playground.ENotFound {
		return nil, playground.Errorf(playground.EUnauthorized, "This account no longer exists.")
	} else if err != nil {
		return nil, err
	}
	u.FillQuota(s.opts.Plans, s.now())
	return u, nil
}
