package api

import "net/http"

// routes is the one route table of the server (Go 1.22 method patterns).
// Middleware that applies to every request (CORS, cross-site protection,
// body limits, panics, access log) wraps the mux as a whole.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	// Operations.
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", s.metricsHandler())

	// Accounts.
	mux.HandleFunc("POST /auth/register", s.rest(s.handleRegister))
	mux.HandleFunc("POST /auth/login", s.rest(s.handleLogin))
	mux.HandleFunc("POST /auth/logout", s.rest(s.handleLogout))
	mux.HandleFunc("GET /auth/me", s.rest(s.handleMe))
	mux.HandleFunc("POST /admin/users/{id}/quota", s.rest(s.handleAdminQuota))

	// Models and comparisons.
	mux.HandleFunc("GET /models", s.rest(s.handleModels))
	mux.HandleFunc("POST /sessions", s.rest(s.handleCreateSession))
	mux.HandleFunc("GET /sessions", s.rest(s.handleListSessions))
	mux.HandleFunc("POST /sessions/estimate", s.rest(s.handleEstimate))
	mux.HandleFunc("GET /sessions/{id}", s.rest(s.handleGetSession))
	mux.HandleFunc("GET /share/{token}", s.rest(s.handleGetShared))
	mux.HandleFunc("POST /sessions/{id}/cancel", s.rest(s.handleCancel))
	mux.HandleFunc("POST /sessions/{id}/share", s.rest(s.handleShare))
	mux.HandleFunc("DELETE /sessions/{id}/share", s.rest(s.handleUnshare))
	mux.HandleFunc("POST /sessions/{id}/responses/{responseId}/cancel", s.rest(s.handleCancel))
	mux.HandleFunc("POST /sessions/{id}/rerun", s.rest(s.handleRerun))
	mux.HandleFunc("POST /sessions/{id}/followup", s.rest(s.handleFollowup))
	mux.HandleFunc("GET /sessions/{id}/thread", s.rest(s.handleThread))
	mux.HandleFunc("PUT /sessions/{id}/responses/{responseId}/rating", s.rest(s.handleRating))
	mux.HandleFunc("GET /sessions/{id}/export", s.rest(s.handleExport))
	mux.HandleFunc("GET /sessions/{id}/diff", s.rest(s.handleDiff))
	mux.HandleFunc("GET /stats/models", s.rest(s.handleModelStats))
	mux.HandleFunc("PUT /sessions/{id}/vote", s.rest(s.handleVote))
	mux.HandleFunc("POST /sessions/{id}/reveal", s.rest(s.handleReveal))
	mux.HandleFunc("GET /leaderboard", s.rest(s.handleLeaderboard))

	// Live events.
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("GET /sessions/{id}/stream", s.handleSSE)

	// The web page.
	mux.Handle("GET /", s.pageHandler())
	mux.Handle("GET /s/{token}", s.pageHandler())

	return s.middleware(mux)
}

// restHandler is an endpoint that answers JSON (or a file): it writes its
// success itself and returns its failure.
type restHandler func(w http.ResponseWriter, r *http.Request) error

// rest is the one place a REST handler's failure is answered: as the coded
// error of docs/api.md, through writeError.
func (s *Server) rest(h restHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}
