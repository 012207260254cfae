package api

import (
	"time"

	"github.com/coder/websocket"
)

// closeNoSubscription closes a WebSocket that has held no subscription
// for WSSubscribeTimeout (4408, after HTTP's 408 Request Timeout): an
// idle connection that watches nothing only holds a descriptor, and
// thousands of them were how one client could exhaust the server.
const closeNoSubscription = websocket.StatusCode(4408)

// wsIdle closes a connection that holds no subscription for a while: from
// its opening until its first subscribe, and again whenever its last
// subscription ends. The reader goroutine, which owns the subscriptions,
// tells it of their number; the timer's goroutine only reads it.
type wsIdle struct {
	timer   *time.Timer
	timeout time.Duration
}

// startIdle arms the timer for a connection that has just opened; the
// connection's release stops it.
func (cn *wsConn) startIdle() {
	cn.unwatched.timeout = cn.s.opts.WSSubscribeTimeout
	cn.unwatched.timer = time.AfterFunc(cn.unwatched.timeout, func() {
		if cn.nsubs.Load() == 0 {
			cn.stop(wsEnd{code: closeNoSubscription, reason: "no subscription"})
		}
	})
	cn.release = append(cn.release, func() { cn.unwatched.timer.Stop() })
}

// subsChanged is called by the reader after each subscribe and
// unsubscribe: the timer runs exactly while there is none.
func (cn *wsConn) subsChanged() {
	n := len(cn.subs)
	cn.nsubs.Store(int32(n))
	if n == 0 {
		cn.unwatched.timer.Reset(cn.unwatched.timeout)
	} else {
		cn.unwatched.timer.Stop()
	}
}
