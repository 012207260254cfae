package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/playground-dev/playground"
)

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	var ready error
	eachEnv(t, func(t *testing.T, e *restEnv) {
		ready = errors.New("db down")
		w := e.do(restReq{method: "GET", path: "/healthz"})
		var health struct {
			Status  string `json:"status"`
			Version string `json:"version"`
		}
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &health) != nil ||
			health.Status != "ok" || health.Version != playground.BuildVersion().Version || health.Version == "" {
			t.Errorf("healthz while the database is down: %d %s, want 200 with status ok and version %q",
				w.Code, w.Body, playground.BuildVersion().Version)
		}
		w = e.do(restReq{method: "GET", path: "/readyz"})
		wantError(t, w, http.StatusServiceUnavailable, playground.EUnavailable)
		if w.Header().Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		ready = nil
		if w := e.do(restReq{method: "GET", path: "/readyz"}); w.Code != http.StatusOK {
			t.Errorf("readyz: %d %s", w.Code, w.Body)
		}
	}, func(o *Options) { o.Ready = func(context.Context) error { return ready } })
}
