package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
)

// liveState tracks the long-lived viewer connections (WebSocket and SSE),
// which http.Server.Shutdown does not wait for: CloseLive ends closing,
// every connection sees it and ends (WebSockets with 1001), and CloseLive
// waits for them through conns (and for a leaderboard computation).
type liveState struct {
	closing context.Context
	close   context.CancelFunc
	conns   sync.WaitGroup
}

// CloseLive ends every WebSocket (close code 1001) and SSE stream and
// waits until their goroutines have returned. Call it on shutdown, after
// the running comparisons have been given their time to finish.
func (s *Server) CloseLive() {
	s.live.close()
	s.live.conns.Wait()
	s.boards.wg.Wait() // a leaderboard computation stops with closing
}

// originAllowed reports whether a browser's Origin names this server (the
// same host and port as the request's Host) or FRONTEND_URL.
func (s *Server) originAllowed(r *http.Request, origin string) bool {
	if s.opts.FrontendURL != "" && strings.EqualFold(origin, s.opts.FrontendURL) {
		return true
	}
	_, host, ok := strings.Cut(origin, "://")
	return ok && strings.EqualFold(host, r.Host)
}

// lineBreak separates the JSON objects of one WebSocket frame.
var lineBreak = []byte{'\n'}
