package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/playground-dev/playground"
	"github.com/playground-dev/playground/auth"
	"github.com/playground-dev/playground/hub"
	"github.com/playground-dev/playground/internal/redistest"
)

// countedSessions is the session store, counting the reads that decide
// access.
type countedSessions struct {
	playground.SessionService
	reads atomic.Int32
}

func (c *countedSessions) FindSession(ctx context.Context, id string) (*playground.Session, error) {
	c.reads.Add(1)
	return c.SessionService.FindSession(ctx, id)
}

func (c *countedSessions) FindSessionAccess(ctx context.Context, id string) (playground.SessionAccess, error) {
	c.reads.Add(1)
	return c.SessionService.FindSessionAccess(ctx, id)
}

// runningHere stands for a session's actor on this instance: it knows its
// owner, and a viewer gets "subscribed" (when asked for) and done.
type runningHere struct{ id, owner string }

func (r runningHere) OwnerID() string { return r.owner }

func (r runningHere) Subscribe(sub *hub.Subscriber, _ int64) hub.SubscribeResult {
	var frames []playground.Frame
	if sub.Subscribed {
		frames = append(frames, playground.SubscribedFrame(r.id, 0))
	}
	sub.Queue.PushAll(append(frames, playground.DoneFrame(r.id, 1, playground.SessionComplete)))
	return hub.Ended
}

func (runningHere) Unsubscribe(*hub.Subscriber) {}

// TestLiveAccessToASessionRunningHere: the owner's subscribe to a session
// that runs on this instance, over SSE and the WebSocket, reads nothing
// from the database; a share holder's is judged on the database, so the
// subscribe after an unshare is refused however the session runs, and a
// stranger is refused throughout.
func TestLiveAccessToASessionRunningHere(t *testing.T) {
	var counted *countedSessions
	eachUser(t, "runner@example.com", func(t *testing.T, e *restEnv, u testUser) {
		stranger := e.register("stranger@example.com")
		s := e.createSession(u, "demo/fast")
		e.srv.opts.Hub.Register(s.ID, runningHere{id: s.ID, owner: u.ID})
		ts := httptest.NewServer(e.srv)
		defer e.srv.CloseLive()
		defer ts.Close()

		stream := func(token, share string) int { t.Helper(); return liveStream(t, ts, s.ID, token, share) }
		subscribe := func(token, share string) string { t.Helper(); return liveSubscribe(t, ts, s.ID, token, share) }

		counted.reads.Store(0)
		if code := stream(u.Token, ""); code != http.StatusOK {
			t.Errorf("the owner's stream: %d", code)
		}
		if got := subscribe(u.Token, ""); got != "subscribed" {
			t.Errorf("the owner's subscribe: %s", got)
		}
		if n := counted.reads.Load(); n != 0 {
			t.Errorf("the owner's stream and subscribe read the session %d times, want none", n)
		}

		var sh struct {
			ShareToken string `json:"shareToken"`
		}
		e.want(restReq{method: "POST", path: "/sessions/" + s.ID + "/share", token: u.Token}, http.StatusOK, &sh)
		if code := stream(stranger.Token, ""); code != http.StatusNotFound {
			t.Errorf("a stranger's stream: %d, want 404", code)
		}
		if got := subscribe(stranger.Token, ""); got != playground.ENotFound {
			t.Errorf("a stranger's subscribe: %s, want %s", got, playground.ENotFound)
		}
		for _, token := range []string{"", stranger.Token} {
			if code := stream(token, sh.ShareToken); code != http.StatusOK {
				t.Errorf("a share holder's stream (account %v): %d", token != "", code)
			}
			if got := subscribe(token, sh.ShareToken); got != "subscribed" {
				t.Errorf("a share holder's subscribe (account %v): %s", token != "", got)
			}
		}

		if w := e.do(restReq{method: "DELETE", path: "/sessions/" + s.ID + "/share", token: u.Token}); w.Code != http.StatusNoContent {
			t.Fatalf("unshare: %d %s", w.Code, w.Body)
		}
		for _, token := range []string{"", stranger.Token} {
			if code := stream(token, sh.ShareToken); code != http.StatusNotFound {
				t.Errorf("a stream with the revoked share link (account %v): %d, want 404", token != "", code)
			}
			if got := subscribe(token, sh.ShareToken); got != playground.ENotFound {
				t.Errorf("a subscribe with the revoked share link (account %v): %s, want %s", token != "", got, playground.ENotFound)
			}
		}
		if got := subscribe(u.Token, ""); got != "subscribed" {
			t.Errorf("the owner's subscribe after the unshare: %s", got)
		}
	}, withHub, func(o *Options) {
		counted = &countedSessions{SessionService: o.Sessions}
		o.Sessions = counted
	})
}

// liveStream opens sessionID's SSE stream with the credentials given
// (either may be empty), reads it to its end and returns its status; a
// stream let in must end with the session's done.
func liveStream(t *testing.T, ts *httptest.Server, sessionID, token, share string) int {
	t.Helper()
	path := "/sessions/" + sessionID + "/stream"
	if share != "" {
		path += "?share=" + share
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if resp.StatusCode == http.StatusOK && !strings.Contains(string(body), "event: done") {
		t.Errorf("stream: %q, want the session's done", body)
	}
	return resp.StatusCode
}

// liveSubscribe opens a WebSocket with the credentials given and
// subscribes to sessionID: "subscribed", or the code of the error event.
func liveSubscribe(t *testing.T, ts *httptest.Server, sessionID, token, share string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h := http.Header{}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	sub, _ := json.Marshal(map[string]any{"type": "subscribe", "sessionId": sessionID, "since": 0, "shareToken": share})
	if err := c.Write(ctx, websocket.MessageText, sub); err != nil {
		t.Fatal(err)
	}
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("subscribe: %v", err)
		}
		for line := range strings.SplitSeq(string(msg), "\n") {
			var ev struct{ Type, Code, SessionID string }
			if json.Unmarshal([]byte(line), &ev) != nil || ev.SessionID != sessionID {
				continue
			}
			switch playground.EventType(ev.Type) {
			case playground.EventSubscribed:
				return "subscribed"
			case playground.EventError:
				return ev.Code
			}
		}
	}
}

// withRedisTokens checks tokens as a server with Redis does: Redis's
// revocations, then the database's through the revocation cache; trips,
// unless nil, counts the Redis client's round trips.
func withRedisTokens(t *testing.T, trips *redistest.RoundTrips) func(*Options) {
	t.Helper()
	rdb := redistest.Client(t, redistest.URL(t))
	if trips != nil {
		rdb.AddHook(trips)
	}
	return func(o *Options) {
		rt := auth.NewRedisTokens(auth.NewTokenCache(o.Tokens, 0, nil), rdb, redistest.Prefix(), nil)
		t.Cleanup(func() { rt.Close() })
		o.Tokens = rt
	}
}

// TestLiveViewerCostsOneRedisRoundTrip: with Redis, a live viewer's token
// is checked against Redis once, when the request is authenticated; the
// check made once its logout watch is registered is answered from the
// revocation cache (TestLogoutBeforeTheWatchEndsLiveViewers shows that a
// logout in between is still seen).
func TestLiveViewerCostsOneRedisRoundTrip(t *testing.T) {
	var trips redistest.RoundTrips
	eachUser(t, "thrifty@example.com", func(t *testing.T, e *restEnv, u testUser) {
		s := e.createSession(u, "demo/fast")
		e.srv.opts.Hub.Register(s.ID, runningHere{id: s.ID, owner: u.ID})
		ts := httptest.NewServer(e.srv)
		defer e.srv.CloseLive()
		defer ts.Close()

		trips.Reset()
		if code := liveStream(t, ts, s.ID, u.Token, ""); code != http.StatusOK {
			t.Fatalf("stream: %d", code)
		}
		if n := trips.Count(); n != 1 {
			t.Errorf("an SSE stream: %d Redis round trips, want 1", n)
		}
		trips.Reset()
		if got := liveSubscribe(t, ts, s.ID, u.Token, ""); got != "subscribed" {
			t.Fatalf("subscribe: %s", got)
		}
		if n := trips.Count(); n != 1 {
			t.Errorf("a WebSocket and its subscribe: %d Redis round trips, want 1", n)
		}
	}, withHub, withRedisTokens(t, &trips))
}
