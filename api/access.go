package api

import (
	"context"
	"crypto/subtle"
	"net/http"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/hub"
)

// This file is the one place that decides who may see a session and who
// may act on it. Every endpoint that names a session (REST, export, diff,
// SSE and the WebSocket's subscribe and cancel) asks sessionAccess or
// storedSession, which both end in judge, so the rule cannot differ from
// one endpoint to the next:
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

// sessionAccess is the rule above for what needs only its verdict (a
// live viewer's subscribe): whether c, who presents share (empty for
// none), owns the session. The owner of a session that runs here is
// known without the database, since a session's owner never changes;
// anyone else is judged on the owner and share token read from the
// database at every call, because the runner's live copy is not told of
// share changes.
func (s *Server) sessionAccess(ctx context.Context, c caller, sessionID, share string, n need) (owner bool, err error) {
	if err := admitSession(c, sessionID, share); err != nil {
		return false, err
	}
	if c.p != nil && s.runsHereFor(sessionID, c.p.UserID) {
		return true, nil
	}
	a, err := s.opts.Sessions.FindSessionAccess(ctx, sessionID)
	if err != nil {
		return false, err
	}
	return judge(c, a, share, n)
}

// storedSession is sessionAccess for what needs the stored session too
// (REST, a cancel that names a response): it loads the session whole and
// judges c on the row.
func (s *Server) storedSession(ctx context.Context, c caller, sessionID, share string, n need) (*playground.Session, bool, error) {
	if err := admitSession(c, sessionID, share); err != nil {
		return nil, false, err
	}
	row, err := s.opts.Sessions.FindSession(ctx, sessionID)
	if err != nil {
		return nil, false, err
	}
	owner, err := judge(c, playground.SessionAccess{UserID: row.UserID, ShareToken: row.ShareToken}, share, n)
	if err != nil {
		return nil, false, err
	}
	return row, owner, nil
}

// admitSession is the steps before any read: credentials (401), and an id
// no session could have, which is not looked up (404).
func admitSession(c caller, sessionID, share string) error {
	if err := c.admit(share); err != nil {
		return err
	}
	if !playground.CouldBeID(playground.IDSession, sessionID) {
		return playground.Errorf(playground.ENotFound, "No such session.")
	}
	return nil
}

// judge is the rule on a session's owner and share token: whether c owns
// it, 404 for whoever neither owns it nor holds its live share token,
// 403 for a share holder who wants to act.
func judge(c caller, a playground.SessionAccess, share string, n need) (owner bool, err error) {
	owner = c.p != nil && c.p.UserID == a.UserID
	if !owner && !tokenEqual(a.ShareToken, share) {
		return false, playground.Errorf(playground.ENotFound, "No such session.")
	}
	if n == toAct && !owner {
		return false, playground.Errorf(playground.EForbidden, "Only the owner of this comparison may do that.")
	}
	return owner, nil
}

// runsHereFor reports whether the session runs on this instance and
// belongs to userID, as its actor knows without the database.
func (s *Server) runsHereFor(sessionID, userID string) bool {
	if s.opts.Hub == nil {
		return false
	}
	src, ok := s.opts.Hub.Lookup(sessionID)
	if !ok {
		return false
	}
	o, ok := src.(hub.Owned)
	return ok && o.OwnerID() == userID
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

// requestSession applies storedSession to a request's {id}, with the text
// so far: the live copy when the session runs here.
func (s *Server) requestSession(r *http.Request, n need) (*playground.Session, bool, error) {
	c, share, err := s.requestCaller(r)
	if err != nil {
		return nil, false, err
	}
	return s.liveSession(r.Context(), c, r.PathValue("id"), share, n)
}

// liveSession is storedSession with the texts, statuses and metrics of
// the runner's live copy when the session runs here, since it is ahead of
// the last checkpoint.
func (s *Server) liveSession(ctx context.Context, c caller, sessionID, share string, n need) (*playground.Session, bool, error) {
	row, owner, err := s.storedSession(ctx, c, sessionID, share, n)
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
