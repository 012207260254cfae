package api

import (
	"net/http"

	"github.com/playground-dev/playground"
)

// maxQuotaAdd bounds one grant, so that a typo cannot overflow a counter.
const maxQuotaAdd = 1_000_000

// quotaRequest is the body of POST /admin/users/{id}/quota: exactly one of
// add and plan.
type quotaRequest struct {
	Add  *int    `json:"add"`
	Plan *string `json:"plan"`
}

// handleAdminQuota adds runs to a user's quota or changes their plan: 200
// {"user"}. Admins only (403 for others, whether or not the user exists);
// an unknown user is 404.
func (s *Server) handleAdminQuota(w http.ResponseWriter, r *http.Request) error {
	p, err := s.authenticate(r)
	if err != nil {
		return err
	}
	var body quotaRequest
	if err := s.decode(w, r, &body); err != nil {
		return err
	}
	switch {
	case (body.Add == nil) == (body.Plan == nil):
		return playground.Errorf(playground.EInvalid, `Give exactly one of "add" and "plan".`)
	case body.Add != nil && (*body.Add < 1 || *body.Add > maxQuotaAdd):
		return playground.Invalid("add", "add must be a whole number from 1 to %d.", maxQuotaAdd)
	case body.Plan != nil && !playground.ValidPlan(*body.Plan):
		return playground.Invalid("plan", "plan must be %q or %q.", playground.PlanFree, playground.PlanPro)
	}
	caller, err := s.currentUser(r.Context(), p)
	if err != nil {
		return err
	}
	if caller.Role != playground.RoleAdmin {
		return playground.Errorf(playground.EForbidden, "Only an admin may change quotas.")
	}
	id := r.PathValue("id")
	if !playground.CouldBeID(playground.IDUser, id) {
		return playground.Errorf(playground.ENotFound, "No such user.")
	}
	var u *playground.User
	if body.Add != nil {
		u, err = s.opts.Users.AddQuota(r.Context(), id, *body.Add)
	} else {
		u, err = s.opts.Users.SetPlan(r.Context(), id, *body.Plan)
	}
	if err != nil {
		return err
	}
	u.FillQuota(s.opts.Plans, s.now())
	s.writeJSON(w, http.StatusOK, map[string]any{"user": u})
	return nil
}
