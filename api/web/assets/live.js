// live.js: the live-event client. One WebSocket (/ws, authenticated by the
// cookie or, for a viewer, by a share token in each subscribe) carries every
// watched session; when the WebSocket cannot connect at all, each session is
// followed over SSE (/sessions/{id}/stream) instead.
//
// It owns the resume logic of docs/api.md "Live events": per session it remembers
// the last seq handed to the page (which renders synchronously), drops any
// event at or below it, applies a snapshot only if it is not older, and on a
// dropped connection reconnects with exponential back-off and jitter and
// resubscribes with since = that seq, so text is neither lost nor doubled.

import { streamURL } from './api.js';

const SESSION_EVENTS = ['snapshot', 'status', 'chunk', 'reasoning', 'metrics', 'done'];
// Events that are not part of a session's log: no seq, never replayed.
const UNLOGGED_EVENTS = ['presence', 'next', 'reveal'];
const PING_MS = 25000;

/** backoff returns the wait before reconnect attempt n (0-based): doubling
 *  from 300 ms up to 15 s, with "equal jitter" (half fixed, half random). */
export function backoff(n) {
  const d = Math.min(15000, 300 * 2 ** Math.min(n, 10));
  return d / 2 + Math.random() * (d / 2);
}

export class LiveClient {
  /**
   * @param {object} o
   * @param {(ev: object) => void} o.onEvent  every event to render, in order, deduplicated
   * @param {(state: string) => void} o.onState  idle | connecting | live | reconnecting | live-sse | offline
   * @param {() => void} [o.onAuthLost]  the server closed with 4401 (logged out or expired)
   * @param {string} [o.transport]  "sse" forces the SSE fallback (for testing it)
   */
  constructor({ onEvent, onState, onAuthLost, transport }) {
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.onAuthLost = onAuthLost || (() => {});
    this.forceSSE = transport === 'sse';
    this.mode = this.forceSSE ? 'sse' : 'ws';
    this.subs = new Map(); // sessionId -> sub
    this.ws = null;
    this.wsOpen = false;
    this.everOpened = false; // some WebSocket of this client reached "open"
    this.failures = 0;       // connection attempts in a row that never opened
    this.attempt = 0;        // reconnect attempts since the last open
    this.timer = null;
    this.pingTimer = null;
    this.reconnects = 0;     // successful reconnects, for the indicator and tests
    this.state = 'idle';
    window.addEventListener('online', () => {
      if (this.mode === 'ws' && !this.ws && this.subs.size > 0) this.connectWS();
    });
  }

  setState(s) {
    if (this.state === s) return;
    this.state = s;
    this.onState(s, this);
  }

  /**
   * watch follows a session from the start (since 0: a snapshot comes first).
   * With follow, the WebSocket also tells of the turns made from it (a `next`
   * event); over SSE it does not, and the page reads the thread instead.
   */
  watch(sessionId, { shareToken, follow } = {}) {
    if (this.subs.has(sessionId)) return;
    const sub = { sessionId, shareToken: shareToken || null, follow: !!follow, lastSeq: 0, done: false,
      resyncing: false, es: null, sseTimer: null, sseAttempt: 0 };
    this.subs.set(sessionId, sub);
    if (this.mode === 'ws') {
      if (this.wsOpen) this.subscribe(sub);
      else if (!this.ws) { clearTimeout(this.timer); this.connectWS(); }
    } else {
      this.openSSE(sub);
    }
  }

  /** unwatch stops following a session. */
  unwatch(sessionId) {
    const sub = this.subs.get(sessionId);
    if (!sub) return;
    this.subs.delete(sessionId);
    this.closeSSE(sub);
    if (this.wsOpen) this.send({ type: 'unsubscribe', sessionId });
    if (this.subs.size === 0 && this.mode === 'sse') this.setState('idle');
  }

  /** lastSeq is the seq of the last event of the session handed to the page. */
  lastSeq(sessionId) {
    const sub = this.subs.get(sessionId);
    return sub ? sub.lastSeq : 0;
  }

  /** reset drops every subscription and the socket (on logout). */
  reset() {
    for (const id of [...this.subs.keys()]) this.unwatch(id);
    clearTimeout(this.timer);
    this.stopPing();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      this.wsOpen = false;
      ws.close(1000, 'bye');
    }
    this.attempt = 0;
    this.failures = 0;
    this.setState('idle');
  }

  // ---- WebSocket ----

  connectWS() {
    clearTimeout(this.timer);
    this.timer = null;
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
    if (this.state !== 'reconnecting') this.setState('connecting');
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.wsClosed(null, false, 1006);
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      if (this.everOpened) this.reconnects++;
      this.everOpened = true;
      this.failures = 0;
      this.attempt = 0;
      this.wsOpen = true;
      this.setState('live');
      for (const sub of this.subs.values()) this.subscribe(sub);
      this.startPing();
    };
    ws.onmessage = (m) => { if (this.ws === ws) this.onFrame(m.data); };
    ws.onclose = (ev) => { if (this.ws === ws) this.wsClosed(ws, opened, ev.code); };
  }

  wsClosed(ws, opened, code) {
    this.ws = null;
    this.wsOpen = false;
    this.stopPing();
    if (code === 4401) { // credentials revoked or expired: no point retrying
      this.setState('offline');
      this.onAuthLost();
      return;
    }
    if (!opened) this.failures++;
    if (!this.everOpened && this.failures >= 2) {
      // The WebSocket cannot connect at all (a proxy that refuses upgrades,
      // say): follow each session over SSE instead.
      this.mode = 'sse';
      for (const sub of this.subs.values()) this.openSSE(sub);
      if (this.subs.size === 0) this.setState('idle');
      return;
    }
    if (this.subs.size === 0) { this.setState('idle'); return; }
    this.setState('reconnecting');
    this.timer = setTimeout(() => this.connectWS(), backoff(this.attempt++));
  }

  subscribe(sub) {
    sub.resyncing = false;
    this.send(this.subscribeMsg(sub));
  }

  subscribeMsg(sub) {
    const msg = { type: 'subscribe', sessionId: sub.sessionId, since: sub.lastSeq };
    if (sub.shareToken) msg.shareToken = sub.shareToken;
    if (sub.follow) msg.follow = true;
    return msg;
  }

  send(msg) {
    if (this.ws && this.wsOpen) this.ws.send(JSON.stringify(msg));
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => this.send({ type: 'ping' }), PING_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
  }

  /** onFrame handles one server frame: one JSON object per line, in order. */
  onFrame(data) {
    if (typeof data !== 'string') return;
    for (const line of data.split('\n')) {
      if (!line.trim()) continue;
      let msg;
      try { msg = JSON.parse(line); } catch { console.warn('live: unreadable line', line); continue; }
      this.dispatch(msg);
    }
  }

  dispatch(msg) {
    const sub = msg.sessionId ? this.subs.get(msg.sessionId) : null;
    switch (msg.type) {
      case 'pong':
      case 'unsubscribed':
        return;
      case 'subscribed':
        if (sub) sub.resyncing = false;
        return;
      case 'presence':
      case 'next':
      case 'reveal': // not part of the log: no seq
        if (sub) this.emit(msg);
        return;
      case 'error':
        if (sub && ['not_found', 'unauthorized', 'forbidden'].includes(msg.code) && msg.sessionId) {
          // The session is gone for us (unshared, say): stop following it.
          if (msg.code !== 'forbidden') {
            this.subs.delete(msg.sessionId);
            this.closeSSE(sub);
          }
        }
        this.emit(msg);
        return;
      default:
        if (SESSION_EVENTS.includes(msg.type)) this.accept(sub, msg);
    }
  }

  /** accept applies the seq rules to one session event and hands it on. */
  accept(sub, msg) {
    if (!sub || sub.resyncing) return;
    if (msg.type === 'snapshot') {
      if (typeof msg.seq === 'number' && msg.seq < sub.lastSeq) return; // older than what is shown
      sub.lastSeq = msg.seq || 0;
      this.emit(msg);
      return;
    }
    if (typeof msg.seq !== 'number') { this.emit(msg); return; }
    if (msg.seq <= sub.lastSeq) return; // already rendered: a replay overlap
    if (msg.seq !== sub.lastSeq + 1) {
      // A gap: events were lost. Ask again from the last one shown.
      console.warn(`live: gap in ${sub.sessionId}: have ${sub.lastSeq}, got ${msg.seq}`);
      this.resync(sub);
      return;
    }
    sub.lastSeq = msg.seq;
    if (msg.type === 'done') sub.done = true;
    this.emit(msg);
  }

  resync(sub) {
    if (this.mode === 'ws') {
      if (!this.wsOpen) return; // the reconnect will resubscribe
      sub.resyncing = true;
      this.send({ type: 'unsubscribe', sessionId: sub.sessionId });
      this.send(this.subscribeMsg(sub));
    } else {
      this.openSSE(sub);
    }
  }

  emit(msg) {
    try { this.onEvent(msg); } catch (e) { console.error('live: rendering failed', e); }
  }

  // ---- SSE fallback ----

  openSSE(sub) {
    this.closeSSE(sub);
    if (sub.done) return;
    const es = new EventSource(streamURL(sub.sessionId, sub.lastSeq, sub.shareToken));
    sub.es = es;
    es.onopen = () => {
      if (sub.es !== es) return;
      if (sub.sseAttempt > 0) this.reconnects++;
      sub.sseAttempt = 0;
      this.setState('live-sse');
    };
    const handle = (type) => (e) => {
      if (sub.es !== es || !e.data) return;
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      if (!msg.type) msg.type = type;
      if (!msg.sessionId) msg.sessionId = sub.sessionId;
      this.dispatch(msg);
      if (msg.type === 'done' && sub.done) this.closeSSE(sub); // the server ends the stream; do not reconnect
    };
    for (const t of [...SESSION_EVENTS, ...UNLOGGED_EVENTS]) es.addEventListener(t, handle(t));
    es.addEventListener('error', (e) => {
      if (sub.es !== es) return;
      if (e instanceof MessageEvent && e.data) { handle('error')(e); return; } // an error event from the server
      // The stream broke (or ended): reconnect ourselves, from the last seq shown.
      this.closeSSE(sub);
      if (sub.done || !this.subs.has(sub.sessionId)) return;
      this.setState('reconnecting');
      sub.sseTimer = setTimeout(() => this.reopenSSE(sub), backoff(sub.sseAttempt++));
    });
  }

  async reopenSSE(sub) {
    if (!this.subs.has(sub.sessionId)) return;
    // EventSource hides the status of a failed request: ask whether the
    // session is still visible before trying again, so an unshared one stops.
    try {
      const q = sub.shareToken ? `?share=${encodeURIComponent(sub.shareToken)}` : '';
      const res = await fetch(`/sessions/${encodeURIComponent(sub.sessionId)}${q}`, { credentials: 'same-origin' });
      if (res.status === 404 || res.status === 401) {
        this.subs.delete(sub.sessionId);
        this.setState('idle');
        this.emit({ type: 'error', sessionId: sub.sessionId, code: res.status === 404 ? 'not_found' : 'unauthorized',
          message: 'This comparison is no longer available.' });
        return;
      }
    } catch { /* offline: just try again */ }
    if (this.subs.get(sub.sessionId) === sub) this.openSSE(sub);
  }

  closeSSE(sub) {
    clearTimeout(sub.sseTimer);
    sub.sseTimer = null;
    if (sub.es) { sub.es.close(); sub.es = null; }
  }
}
