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
	mux.HandleFunc("POST /auth/register", s.handleRegister)
	mux.HandleFunc("POST /auth/login", s.handleLogin)
	mux.HandleFunc("POST /auth/logout", s.handleLogout)
	mux.HandleFunc("GET /auth/me", s.handleMe)
	mux.HandleFunc("POST /admin/users/{id}/quota", s.handleAdminQuota)

	// Models and comparisons.
	mux.HandleFunc("GET /models", s.handleModels)
	mux.HandleFunc("POST /sessions", s.handleCreateSession)
	mux.HandleFunc("GET /sessions", s.handleListSessions)
	mux.HandleFunc("POST /sessions/estimate", s.handleEstimate)
	mux.HandleFunc("GET /sessions/{id}", s.handleGetSession)
	mux.HandleFunc("GET /share/{token}", s.handleGetShared)
	mux.HandleFunc("POST /sessions/{id}/cancel", s.handleCancelSession)
	mux.HandleFunc("POST /sessions/{id}/share", s.handleShare)
	mux.HandleFunc("DELETE /sessions/{id}/share", s.handleUnshare)
	mux.HandleFunc("POST /sessions/{id}/responses/{responseId}/cancel", s.handleCancelResponse)
	mux.HandleFunc("POST /sessions/{id}/rerun", s.handleRerun)
	mux.HandleFunc("POST /sessions/{id}/followup", s.handleFollowup)
	mux.HandleFunc("GET /sessions/{id}/thread", s.handleThread)
	mux.HandleFunc("PUT /sessions/{id}/responses/{responseId}/rating", s.handleRating)
	mux.HandleFunc("GET /sessions/{id}/export", s.handleExport)
	mux.HandleFunc("GET /sessions/{id}/diff", s.handleDiff)
	mux.HandleFunc("GET /stats/models", s.handleModelStats)
	mux.HandleFunc("PUT /sessions/{id}/vote", s.handleVote)
	mux.HandleFunc("POST /sessions/{id}/reveal", s.handleReveal)
	mux.HandleFunc("GET /leaderboard", s.handleLeaderboard)

	// Live events.
	mux.HandleFunc("GET /ws", s.handleWS)
	mux.HandleFunc("GET /sessions/{id}/stream", s.handleSSE)

	// The web page.
	mux.Handle("GET /", s.pageHandler())
	mux.Handle("GET /s/{token}", s.pageHandler())

	return s.middleware(mux)
}
