package api

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/playground-dev/playground"
)

// readyTimeout bounds the readiness probe so a hung database answers 503
// instead of hanging the orchestrator's probe.
const readyTimeout = 3 * time.Second

// handleHealthz answers 200 while the process runs: liveness only, it
// touches no dependency. The body also says which build answers, so an
// operator can tell which version each instance behind a proxy runs.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, healthBody{Status: "ok", Version: buildVersion()})
}

// healthBody is /healthz's answer: {"status": "ok", "version": …,
// "revision"?: …, "modified"?: …} (docs/api.md, "Operations").
type healthBody struct {
	Status string `json:"status"`
	playground.Version
}

// buildVersion reads the binary's build information once: it cannot
// change while the process runs.
var buildVersion = sync.OnceValue(playground.BuildVersion)

// handleReadyz answers 200 when the database (and broker) answer, else the
// coded 503 with Retry-After.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.opts.Ready(ctx); err != nil {
			s.writeError(w, r, unavailable(err, "Not ready: a dependency does not answer."))
			return
		}
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
