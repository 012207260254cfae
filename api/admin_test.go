package api

import (
	"net/http"
	"testing"

	"github.com/playground-dev/playground"
)

func TestAdminQuota(t *testing.T) {
	t.Parallel()
	eachUser(t, "admin@example.com", func(t *testing.T, e *restEnv, admin testUser) {
		if _, err := e.db.SetRole(bg, admin.ID, playground.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		u := e.register("u@example.com")
		path := "/admin/users/" + u.ID + "/quota"

		w := e.do(restReq{method: "POST", path: path, token: admin.Token, body: map[string]any{"add": 10}})
		var out struct {
			User playground.User `json:"user"`
		}
		decodeBody(t, w, &out)
		if w.Code != http.StatusOK || out.User.ID != u.ID || out.User.Quota.Remaining != 15 {
			t.Fatalf("add: %d %s", w.Code, w.Body)
		}
		w = e.do(restReq{method: "POST", path: path, token: admin.Token, body: map[string]any{"plan": "pro"}})
		decodeBody(t, w, &out)
		if w.Code != http.StatusOK || out.User.Plan != "pro" || out.User.Quota.Limit != 100 {
			t.Fatalf("plan: %d %s", w.Code, w.Body)
		}

		wantError(t, e.do(restReq{method: "POST", path: path, token: u.Token, body: map[string]any{"add": 10}}), http.StatusForbidden, playground.EForbidden)
		wantError(t, e.do(restReq{method: "POST", path: "/admin/users/u_nope/quota", token: u.Token, body: map[string]any{"add": 10}}), http.StatusForbidden, playground.EForbidden)
		wantError(t, e.do(restReq{method: "POST", path: "/admin/users/u_nope/quota", token: admin.Token, body: map[string]any{"add": 10}}), http.StatusNotFound, playground.ENotFound)
		// An id no user can have (a NUL byte, which PostgreSQL cannot even be asked about) is 404 too.
		wantError(t, e.do(restReq{method: "POST", path: "/admin/users/u_%00/quota", token: admin.Token, body: map[string]any{"add": 10}}), http.StatusNotFound, playground.ENotFound)
		wantError(t, e.do(restReq{method: "POST", path: path, body: map[string]any{"add": 10}}), http.StatusUnauthorized, playground.EUnauthorized)
		wantError(t, e.do(restReq{method: "POST", path: path, token: admin.Token, body: map[string]any{"add": 1, "plan": "pro"}}), http.StatusBadRequest, playground.EInvalid)
		wantError(t, e.do(restReq{method: "POST", path: path, token: admin.Token, body: map[string]any{}}), http.StatusBadRequest, playground.EInvalid)
		wantField(t, e.do(restReq{method: "POST", path: path, token: admin.Token, body: map[string]any{"add": 0}}), "add")
		wantField(t, e.do(restReq{method: "POST", path: path, token: admin.Token, body: map[string]any{"add": 1.5}}), "add")
		wantField(t, e.do(restReq{method: "POST", path: path, token: admin.Token, body: map[string]any{"plan": "gold"}}), "plan")
	})
}
