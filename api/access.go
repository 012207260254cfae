package api

import (
	"context"
	"crypto/subtle"
	"net/http"

	"github.com/playground-dev/playground"
)

// This file is the one place that decides who may see a session and who
// may act on it. Every endpoint that names a session (REST, export, diff,
// SSE and the WebSocket's subscribe and cancel) asks sessionAccess, so the
// rule cannot differ from one endpoint to the next:
//
//   - a session is visible to its owner, and to any holder of its live
//     share token (compared in constant time);
//   - without credentials and without a share token: 401; anyone else, or
//     a dead share token: 404, never 403 (another user's session does not
//     exist for them);
//   - share holders only watch: an action needs the owner (403 otherwise);
//   - credentials that do not verify (expired, forged, revoked) beside a
//     share token count as none, and the share token alone decides;
//     without a share token they are the 401 they were;
//   - credentials that cannot be checked (the revocation list is down)
//     are a 503 everywhere, never a pass.

// caller is who is asking: the account its credentials prove, if any, and
// the refusal of credentials that were presented but did not verify.
type caller struct {
	p       *Principal // nil: no credentials that verify
	badCred error      // the 401 of credentials that failed, kept for admit
}

// need is what a caller wants to do with a session.
type need int

const (
	toSee need = iota // read it or watch it: owner or share holder
	toAct             // change it (cancel, share, rerun, rate): owner only
)

// callerOf reads a request's credentials, if it has any. Credentials that
// fail verification are not refused here: whether they matter depends on
// the share token, which a WebSocket only presents later, per subscribe.
// The only error is a 503 (credentials that cannot be checked).
func (s *Server) callerOf(r *http.Request) (caller, error) {
	if !hasCredentials(r) {
		return caller{}, nil
	}
	p, err := s.authenticate(r)
	switch {
	case err == nil:
		return caller{p: p}, nil
	case playground.ErrorCode(err) == playground.EUnauthorized:
		return caller{badCred: err}, nil
	default:
		return caller{}, err
	}
}

// admit is the credentials step (401) for a request that comes with share
// (empty: none): an account, or a share token for visibility to decide.
func (c caller) admit(share string) error {
	switch {
	case c.p != nil || share != "":
		return nil
	case c.badCred != nil:
		return c.badCred
	default:
		return playground.Errorf(playground.EUnauthorized, "Sign in, or open the comparison with its share link.")
	}
}

// sessionAccess is the rule above: it loads the stored session for c (who
// presents share, empty for none) and reports whether c owns it.
// Ownership and the share token are always read from the database row:
// the runner's live copy is not told of share changes.
func (s *Server) sessionAccess(ctx context.Context, c caller, sessionID, share string, n need) (row *playground.Session, owner bool, err error) {
	if err := c.admit(share); err != nil {
		return nil, false, err
	}
	// An id no session could have is not looked up.
	if !playground.CouldBeID(playground.IDSession, sessionID) {
		return nil, false, playground.Errorf(playground.ENotFound, "No such session.")
	}
	row, err = s.opts.Sessions.FindSession(ctx, sessionID)
	if err != nil {
		return nil, false, err
	}
	owner = c.p != nil && c.p.UserID == row.UserID
	if !owner && !tokenEqual(row.ShareToken, share) {
		return nil, false, playground.Errorf(playground.ENotFound, "No such session.")
	}
	if n == toAct && !owner {
		return nil, false, playground.Errorf(playground.EForbidden, "Only the owner of this comparison may do that.")
	}
	return row, owner, nil
}

// requestCaller is the credentials step of a REST handler, taken before
// its body or query is read (docs/api.md's order): the caller and its ?share=
// token, or a 401 at once.
func (s *Server) requestCaller(r *http.Request) (caller, string, error) {
	share := r.URL.Query().Get("share")
	c, err := s.callerOf(r)
	if err == nil {
		err = c.admit(share)
	}
	return c, share, err
}

// callerBody is requestCaller, then the JSON body into v: credentials are
// refused before a body is read.
func (s *Server) callerBody(w http.ResponseWriter, r *http.Request, v any) (caller, string, error) {
	c, share, err := s.requestCaller(r)
	if err == nil {
		err = s.decode(w, r, v)
	}
	return c, share, err
}

// requestSession applies sessionAccess to a request's {id}, with the text
// so far: the live copy when the session runs here.
func (s *Server) requestSession(r *http.Request, n need) (*playground.Session, bool, error) {
	c, share, err := s.requestCaller(r)
	if err != nil {
		return nil, false, err
	}
	return s.liveSession(r.Context(), c, r.PathValue("id"), share, n)
}

// liveSession is sessionAccess with the texts, statuses and metrics of
// the runner's live copy when the session runs here, since it is ahead of
// the last checkpoint.
func (s *Server) liveSession(ctx context.Context, c caller, sessionID, share string, n need) (*playground.Session, bool, error) {
	row, owner, err := s.sessionAccess(ctx, c, sessionID, share, n)
	if err != nil {
		return nil, false, err
	}
	return s.withLive(row), owner, nil
}

// tokenEqual compares a stored share token with a presented one in
// constant time; an empty stored token (not shared) matches nothing.
func tokenEqual(stored, presented string) bool {
	return stored != "" && subtle.ConstantTimeCompare([]byte(stored), []byte(presented)) == 1
}
