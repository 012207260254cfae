package api

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/playground-dev/playground"
)

func TestHealthAndReady(t *testing.T) {
	var ready error
	eachEnv(t, func(t *testing.T, e *restEnv) {
		ready = errors.New("db down")
		w := e.do(restReq{method: "GET", path: "/healthz"})
		if w.Code != http.StatusOK || w.Body.String() != "{\"status\":\"ok\"}\n" {
			t.Errorf("healthz: %d %s", w.Code, w.Body)
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
