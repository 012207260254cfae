// app.js: wiring. Holds the page's state (who is signed in, the catalogue,
// the comparison on screen) and connects the forms, the REST calls of
// api.js, the live events of live.js and the renderers of view.js.

import * as api from './api.js';
import { Leaderboard } from './leaderboard.js';
import { LiveClient } from './live.js';
import { warmUp } from './markdown.js';
import {
  Column, el, fillTurnHead, flash, fmtCost, historyItem, isEnded, isOwnScroll, limitModels, markBest, maskedName,
  promptTitle, quotaText, relTime, renderDiff, renderModels, renderStats, setScroll, settingsPopover,
} from './view.js';

const MAX_MODELS = 8;
// How often the page reads the thread when it cannot hear of a change
// (scheduleThreadPoll): every THREAD_POLL_MS while a turn around the one in
// focus runs; a viewer waiting for a new turn without `next` backs off to
// THREAD_POLL_MAX_MS.
const THREAD_POLL_MS = 3000;
const THREAD_POLL_MAX_MS = 60000;
// How often a shared blind session is read again for its vote count, until its reveal.
const VOTE_POLL_MS = 5000;
const $ = (id) => document.getElementById(id);

const state = {
  user: null,
  models: [],
  selected: new Set(),
  colParams: new Map(), // model id -> that column's own params (the compose form's settings)
  extras: [],           // {key, model, params}: a model asked again, as another column
  // The conversation on screen: the turns before the one in focus (state.session) and after it.
  before: [],
  after: [],
  turnViews: [],        // the Columns of the turns drawn around the one in focus
  carry: null,          // {responseId, model, label, name}: the answer a follow-up carries on
  sawNext: false,       // the server told of a new turn live, so polling the thread is not needed
  poll: { timer: null, ms: THREAD_POLL_MS, off: false },
  session: null,       // the Session on screen, kept current by live events
  columns: new Map(),  // responseId -> Column
  focus: null,         // responseId of the column in focus, if any
  syncScroll: true,    // scrolling one answer scrolls the others to the same place
  owner: false,        // the signed-in user owns the session on screen
  shareToken: null,    // the token a viewer came with (viewer mode)
  viewer: false,
  history: { cursor: null, done: false, loading: false, started: false },
  stats: { rows: [], key: 'runs', dir: 'descending' },
  // Blind comparisons: the caller's vote per session (a choice: responseId,
  // "tie" or "all_bad") and the tally each reveal brought, per session.
  votes: new Map(),
  tallies: new Map(),
  sharing: new Map(),   // session id -> shared, as this page last set it
  votePoll: null,       // the timer of scheduleVotePoll
  view: 'compare',      // compare | leaderboard: what /?view=… shows
};

const live = new LiveClient({
  onEvent,
  onState: showConnection,
  onAuthLost: () => {
    notice('Your login has ended. Please log in again.');
    signedOut();
  },
  transport: new URLSearchParams(location.search).get('transport'),
});

// ---- small helpers ----

function notice(text, kind = 'error') {
  const n = $('notice');
  n.textContent = text;
  n.dataset.kind = kind;
  n.hidden = !text;
}

let announceSeq = 0;
/** announce tells screen readers something, politely (aria-live region). */
function announce(text) {
  const a = $('announcer');
  a.append(el('p', { text, dataset: { n: String(++announceSeq) } }));
  while (a.childElementCount > 5) a.firstElementChild.remove();
}

function errorText(e) {
  if (e instanceof api.ApiError) {
    if (e.code === 'quota_exceeded') return quotaText(e.details);
    if (e.code === 'rate_limited' && e.retryAfter) return `${e.message} Try again ${relTime(Date.now() + e.retryAfter * 1000)}.`;
    return e.message;
  }
  console.error(e);
  return 'Something went wrong. Please try again.';
}

function showConnection(s, client) {
  const c = $('conn');
  const text = { idle: '', connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…',
    'live-sse': 'live (SSE)', offline: 'offline' }[s] ?? s;
  c.textContent = text;
  c.dataset.state = s;
  c.dataset.reconnects = String(client ? client.reconnects : 0);
  c.hidden = !text;
}

function modelName(id) {
  const m = state.models.find((x) => x.id === id);
  return m && m.name ? m.name : id;
}

/** columnName is what a response is called: its model's name, or its label while blind. */
function columnName(r) {
  return r.model ? modelName(r.model) : maskedName(r.label);
}

/** isMasked: a blind session before its reveal (its models are null). */
const isMasked = (s) => !!(s && s.blind && !s.revealed);

// ---- accounts ----

function renderAccount() {
  const u = state.user;
  $('account').hidden = !u || state.viewer;
  if (!u) return;
  $('account-email').textContent = u.email;
  $('plan').textContent = u.plan;
  const q = u.quota;
  if (q) {
    const period = q.period === 'day' ? 'today' : `this ${q.period}`;
    $('quota').textContent = `${q.remaining} of ${q.limit} runs left ${period}`;
    $('quota').title = q.resetsAt ? `Resets ${relTime(q.resetsAt)}` : '';
    $('quota').classList.toggle('low', q.remaining <= 0);
  } else {
    $('quota').textContent = '';
  }
}

async function refreshMe() {
  try {
    state.user = await api.me();
    renderAccount();
    scheduleEstimate(); // the remaining quota changed
  } catch (e) {
    if (e.status === 401) signedOut();
  }
}

function signedIn(user) {
  state.user = user;
  notice('');
  $('auth').hidden = true;
  $('workspace').hidden = false;
  renderAccount();
  loadHistory(true);
  scheduleEstimate();
  applyRoute(routeOf(location));
}

/**
 * nextURL is where a sign-in started elsewhere wants to go back to: a viewer
 * of a shared link who logs in to vote (/?next=/s/TOKEN). Only a viewer
 * path of this page is followed, never another site.
 */
function nextURL() {
  const next = new URLSearchParams(location.search).get('next') || '';
  return /^\/s\/[^/?#\\]+$/.test(next) ? next : null;
}

function signedOut() {
  live.reset();
  state.user = null;
  closeSession();
  clearThread();
  renderAccount();
  $('history-list').replaceChildren();
  state.history = { cursor: null, done: false, loading: false, started: false };
  $('workspace').hidden = true;
  $('auth').hidden = false;
  $('stats').hidden = true;
  $('login-email').focus();
}

function wireAuthForm(form, call, errEl) {
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const email = form.elements.email.value.trim();
    const password = form.elements.password.value;
    errEl.textContent = '';
    if (!email || !email.includes('@')) { errEl.textContent = 'Enter a valid email address.'; form.elements.email.focus(); return; }
    if (password.length < 8 || password.length > 128) {
      errEl.textContent = 'The password must be 8 to 128 characters.';
      form.elements.password.focus();
      return;
    }
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try {
      const user = await call(email, password); // the access token is not kept: the cookie is the credential
      form.reset();
      const next = nextURL();
      if (next) { location.assign(next); return; }
      signedIn(user);
      $('prompt').focus();
    } catch (e) {
      errEl.textContent = errorText(e);
    } finally {
      btn.disabled = false;
    }
  });
}

// ---- models, params, estimate ----

async function loadModels() {
  try {
    state.models = await api.models();
  } catch (e) {
    $('model-list').replaceChildren(el('p', { class: 'form-error', text: `Models could not be loaded: ${errorText(e)}` }));
    return;
  }
  const usable = (id) => state.models.some((x) => x.id === id && x.available);
  for (const id of [...state.selected]) {
    if (!usable(id)) state.selected.delete(id);
  }
  state.extras = state.extras.filter((x) => usable(x.model));
  drawModels();
}

/** drawModels draws the picker, each available model with its settings and "Add again". */
function drawModels() {
  renderModels($('model-list'), state.models, state.selected, onModelToggle);
  for (const row of $('model-list').querySelectorAll('.model[data-available="true"]')) {
    const id = row.dataset.modelId;
    row.append(el('span', { class: 'model-tools' },
      settingsPopover(modelName(id), state.colParams.get(id) || {}, (p) => {
        if (Object.keys(p).length) state.colParams.set(id, p); else state.colParams.delete(id);
        scheduleEstimate();
      }),
      el('button', { type: 'button', class: 'ghost small add-again', dataset: { testid: 'add-again' },
        'aria-label': `Add ${modelName(id)} again, as another column`, title: 'Add again, as another column',
        text: '+1', onclick: () => addAgain(id) })));
  }
  drawExtras();
  refreshModelLimit();
}

/** addAgain adds a model as one more column, with settings of its own to tell it apart. */
function addAgain(id) {
  if (state.selected.size + state.extras.length >= MAX_MODELS) return;
  const x = { key: (state.extras.at(-1)?.key || 0) + 1, model: id, params: {} };
  state.extras.push(x);
  drawExtras();
  refreshModelLimit();
  scheduleEstimate();
  // Two columns of one model with the same settings are refused: open this
  // one's, once this click is over (an outside click closes popovers).
  setTimeout(() => {
    const d = $('extra-columns').querySelector(`[data-extra="${x.key}"] details`);
    if (d) { d.open = true; d.querySelector('input').focus(); }
  }, 0);
}

function drawExtras() {
  $('extra-columns').replaceChildren(...state.extras.map((x) => {
    const name = `${modelName(x.model)} (again)`;
    return el('div', { class: 'model extra', dataset: { modelId: x.model, extra: String(x.key) } },
      el('span', { class: 'model-label' }, el('span', { class: 'model-title', text: name }), el('span', { class: 'model-id', text: x.model })),
      el('span', { class: 'model-tools' },
        settingsPopover(name, x.params, (p) => { x.params = p; scheduleEstimate(); }),
        el('button', { type: 'button', class: 'ghost small', text: 'Remove', 'aria-label': `Remove ${name}`,
          onclick: () => {
            state.extras = state.extras.filter((y) => y !== x);
            drawExtras();
            refreshModelLimit();
            scheduleEstimate();
          } })));
  }));
}

function onModelToggle(id, on) {
  if (on) state.selected.add(id); else state.selected.delete(id);
  refreshModelLimit();
  scheduleEstimate();
}

function refreshModelLimit() {
  limitModels($('model-list'), state.models, state.selected, MAX_MODELS - state.extras.length);
  const n = state.selected.size + state.extras.length;
  for (const b of $('model-list').querySelectorAll('.add-again')) b.disabled = n >= MAX_MODELS;
  $('models-count').textContent = n ? `(${n} of up to ${MAX_MODELS} chosen)` : `(up to ${MAX_MODELS})`;
  refreshBlindOption();
}

/** refreshBlindOption warns, under the "Blind" switch, when too few models are chosen for it. */
function refreshBlindOption() {
  const n = state.selected.size + state.extras.length;
  const short = $('blind').checked && n < 2;
  $('blind-hint').classList.toggle('warn', short);
  $('blind-hint').textContent = short
    ? `A blind comparison needs two or more models (${n} chosen): the vote is between answers.`
    : 'Hide which model wrote which answer: the columns are labelled A, B, … until the vote reveals them. Needs two or more models.';
}

/** requestBody reads the form into a POST /sessions body, or throws a message. */
function requestBody() {
  const prompt = $('prompt').value;
  if (!prompt.trim()) throw Object.assign(new Error('Write a prompt first.'), { field: 'prompt' });
  // A column with settings of its own is an object entry (docs/api.md "Sessions").
  const entry = (model, p) => (p && Object.keys(p).length ? { model, params: p } : model);
  const models = [
    ...state.models.map((m) => m.id).filter((id) => state.selected.has(id)).map((id) => entry(id, state.colParams.get(id))),
    ...state.extras.map((x) => entry(x.model, x.params)),
  ];
  if (!models.length) throw Object.assign(new Error('Choose at least one model.'), { field: 'models' });
  const temperature = Number($('temperature').value);
  const maxTokens = Number($('max-tokens').value);
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > 32768) {
    throw Object.assign(new Error('Max tokens must be a whole number from 1 to 32,768.'), { field: 'max-tokens' });
  }
  const body = { prompt, models, params: { temperature, maxTokens } };
  const system = $('system').value;
  if (system.trim()) body.system = system;
  if ($('blind').checked) {
    if (models.length < 2) throw Object.assign(new Error('A blind comparison needs two or more models.'), { field: 'blind' });
    body.blind = true;
  }
  return body;
}

let estimateTimer = null;
let estimateGen = 0;
function scheduleEstimate() {
  clearTimeout(estimateTimer);
  estimateTimer = setTimeout(runEstimate, 400);
}

async function runEstimate() {
  const out = $('estimate');
  if (!state.user) { out.textContent = ''; return; }
  let body;
  try { body = requestBody(); } catch { out.textContent = ''; return; }
  const gen = ++estimateGen;
  try {
    const est = await api.estimate(body);
    if (gen !== estimateGen) return;
    const costs = (est.models || []).map((m) => m.estimatedCostUsd);
    const known = costs.filter((c) => typeof c === 'number');
    let cost = '';
    if (known.length) {
      cost = ` · estimated cost at most ${fmtCost(known.reduce((a, b) => a + b, 0))}`;
      if (known.length < costs.length) cost += ' (some models have no pricing)';
    } else if (costs.length) {
      cost = ' · cost unknown (no pricing)';
    }
    out.textContent = `Uses ${est.quotaRequired} of your ${est.quotaRemaining} remaining runs${cost}`;
    out.classList.toggle('warn', est.quotaRequired > est.quotaRemaining);
  } catch (e) {
    if (gen !== estimateGen) return;
    out.textContent = e.status === 404 ? '' : errorText(e);
  }
}

// ---- starting and controlling a comparison ----

let starting = false;
async function start() {
  if (starting || !state.user) return;
  const errEl = $('compose-error');
  errEl.textContent = '';
  let body;
  try {
    body = requestBody();
  } catch (e) {
    errEl.textContent = e.message;
    const f = e.field === 'models' ? document.querySelector('#model-list input:not(:disabled)') : $(e.field);
    if (f) f.focus();
    return;
  }
  starting = true;
  $('start').disabled = true;
  try {
    const session = await api.createSession(body);
    closeSession();
    clearThread();
    openSession(session, { owner: true });
    prependHistory(session);
    refreshMe();
  } catch (e) {
    errEl.textContent = errorText(e);
    if (e.code === 'unknown_model' || e.code === 'model_unavailable') loadModels();
    const field = e.details && e.details.field;
    if (field === 'prompt' || field === 'system') $(field).focus();
  } finally {
    starting = false;
    $('start').disabled = false;
  }
}

async function stopSession() {
  const s = state.session;
  if (!s) return;
  $('stop').disabled = true;
  try { await api.cancelSession(s.id); } catch (e) { notice(errorText(e)); } finally { $('stop').disabled = false; }
}

async function stopResponse(rid) {
  const s = state.session;
  if (!s) return;
  try { await api.cancelResponse(s.id, rid); } catch (e) { notice(errorText(e)); }
}

async function rateResponse(rid, score) {
  const s = state.session;
  if (!s) return;
  try {
    const r = await api.rate(s.id, rid, score);
    const resp = s.responses.find((x) => x.id === rid);
    if (resp) resp.rating = r.rating;
    const col = state.columns.get(rid);
    if (col) col.setRating(r.rating);
  } catch (e) { notice(errorText(e)); }
}

/** markShared records that this page shared (or unshared) session id, over any older snapshot. */
function markShared(id, on) {
  state.sharing.set(id, on);
  const s = state.session;
  if (!s || s.id !== id) return null; // another comparison is on screen now
  s.shared = on;
  return s;
}

async function shareSession() {
  if (!state.session) return;
  const id = state.session.id;
  try {
    const token = await api.share(id);
    const s = markShared(id, true);
    if (!s) return;
    $('share-link').value = `${location.origin}/s/${encodeURIComponent(token)}`;
    $('share-box').hidden = false;
    refreshToolbar();
    updateHistoryItem(s);
    $('share-link').focus();
    $('share-link').select();
  } catch (e) { notice(errorText(e)); }
}

async function unshareSession() {
  if (!state.session) return;
  const id = state.session.id;
  try {
    await api.unshare(id);
    const s = markShared(id, false);
    if (!s) return;
    $('share-box').hidden = true;
    $('share-link').value = '';
    refreshToolbar();
    updateHistoryItem(s);
    announce('Sharing stopped');
  } catch (e) { notice(errorText(e)); }
}

async function copyShareLink() {
  const input = $('share-link');
  let ok = false;
  try { await navigator.clipboard.writeText(input.value); ok = true; } catch {
    input.select();
    try { ok = document.execCommand('copy'); } catch { ok = false; }
  }
  flash($('share-copy'), ok ? 'Copied' : 'Select and copy');
}

async function rerunSession() {
  const s = state.session;
  if (!s) return;
  const available = new Set(state.models.filter((m) => m.available).map((m) => m.id));
  // Each column again, with its own params and system prompt.
  const models = s.responses.filter((r) => available.has(r.model))
    .map((r) => ({ model: r.model, params: r.params, system: r.system }));
  if (!models.length) { notice('None of these models is available now.'); return; }
  $('rerun').disabled = true;
  try {
    const child = await api.rerun(s.id, models);
    advanceTo(child, { owner: true });
    addTurn(child);
    refreshMe();
  } catch (e) { notice(errorText(e)); } finally { $('rerun').disabled = false; }
}

function reusePrompt() {
  const s = state.session;
  if (!s) return;
  $('prompt').value = s.prompt;
  $('system').value = s.system || '';
  if (s.system) $('system-details').open = true;
  state.selected = new Set(s.responses.map((r) => r.model)
    .filter((id) => state.models.some((m) => m.id === id && m.available)));
  $('blind').checked = !!s.blind;
  drawModels();
  if (s.params) {
    if (typeof s.params.temperature === 'number') $('temperature').value = s.params.temperature;
    if (typeof s.params.maxTokens === 'number') $('max-tokens').value = s.params.maxTokens;
    $('temperature-value').textContent = $('temperature').value;
  }
  scheduleEstimate();
  $('prompt').focus();
}

// ---- the comparison on screen ----

function closeSession() {
  if (state.session) live.unwatch(state.session.id);
  clearTimeout(state.poll.timer);
  state.carry = null;
  $('followup').hidden = true;
  for (const c of state.columns.values()) c.destroy();
  state.columns.clear();
  state.focus = null;
  renderColumnNav();
  state.session = null;
  $('session').hidden = true;
  $('session').dataset.sessionId = '';
  $('diff').hidden = true;
  $('diff-output').replaceChildren();
  $('presence').hidden = true;
  $('blind-bar').hidden = true;
  clearTimeout(state.votePoll);
  state.votePoll = null;
  markCurrentHistory(null);
}

/**
 * openSession shows a comparison. A running one (and any in viewer mode) is
 * followed live: the subscribe starts at since 0, so a snapshot replaces
 * what the REST answer showed. An ended one is shown as it is, read-only.
 */
function openSession(session, { owner, shareToken = null }) {
  if (state.session && state.session.id !== session.id) closeSession();
  else if (state.session) live.unwatch(state.session.id);
  state.session = session;
  state.owner = owner;
  state.shareToken = shareToken;
  const sec = $('session');
  sec.hidden = false;
  sec.dataset.sessionId = session.id;
  $('share-box').hidden = true;
  $('share-link').value = '';
  $('presence').hidden = true;
  renderSessionHead();
  syncColumns(session);
  refreshToolbar();
  markCurrentHistory(session.rootId || session.id);
  renderTurnHead();
  // A viewer follows the conversation: `next` tells of each new turn.
  // A blind session is followed until its reveal, which arrives as an event.
  if (state.viewer || session.status === 'running' || isMasked(session)) {
    live.watch(session.id, { shareToken, follow: state.viewer });
  }
}

// ---- the conversation: the turns around the one in focus, and follow-ups ----

/** lastTurn is the conversation's newest turn on screen: the one a follow-up continues. */
function lastTurn() {
  return state.after.length ? state.after.at(-1) : state.session;
}

function clearThread() {
  for (const v of state.turnViews) for (const c of v) c.destroy();
  state.turnViews = [];
  state.before = [];
  state.after = [];
  $('thread-before').replaceChildren();
  $('thread-after').replaceChildren();
  $('turn-head').hidden = true;
}

/**
 * openConversation shows the whole conversation of session id, that turn in
 * focus (live, with the toolbar); a viewer, or an owner whose newest turn
 * still runs, sees the newest turn in focus instead.
 */
async function openConversation(id, opts) {
  const all = await api.thread(id, opts.shareToken);
  let i = all.findIndex((s) => s.id === id);
  if (i < 0) throw new Error(`session ${id} is not in its own thread`);
  if (opts.shareToken || all.at(-1).status === 'running') i = all.length - 1;
  closeSession();
  clearThread();
  state.before = all.slice(0, i);
  state.after = all.slice(i + 1);
  openSession(all[i], opts);
  renderThread();
}

/** advanceTo puts a new turn in focus, below every turn shown so far. */
function advanceTo(child, opts, earlier = null) {
  const prev = state.session;
  if (prev && prev.id === child.id) return;
  const turns = earlier || (prev ? [...state.before, prev, ...state.after] : [...state.before]);
  if (!earlier && turns.some((t) => t.id === child.id)) return; // already shown: a late `next`
  closeSession();
  state.before = turns.filter((t) => t.id !== child.id);
  state.after = [];
  state.poll.ms = THREAD_POLL_MS;
  openSession(child, opts);
  renderThread();
}

/** refreshThread reads the thread again: final texts of the turns around, and (viewers) new turns. */
async function refreshThread() {
  const cur = state.session;
  if (!cur) return;
  let all;
  try {
    all = await api.thread(cur.id, state.shareToken);
  } catch (e) {
    if (e.status === 404 || e.status === 401) state.poll.off = true; // unshared: nothing more to read
    return;
  }
  if (!state.session || state.session.id !== cur.id) return;
  const i = all.findIndex((s) => s.id === cur.id);
  if (i < 0) return;
  if (isMasked(cur) && all[i].revealed) applyRevealedSession(all[i]); // a reveal whose event was missed (SSE)
  if (state.viewer && i < all.length - 1) {
    advanceTo(all.at(-1), { owner: false, shareToken: state.shareToken }, all.slice(0, -1));
    return;
  }
  state.before = all.slice(0, i);
  state.after = all.slice(i + 1);
  renderThread();
}

/**
 * scheduleThreadPoll reads the thread again later when the page cannot
 * otherwise know it changed: while a turn around the one in focus still runs
 * (only the turn in focus streams), and, for a viewer whose turn has ended,
 * backing off, until the server shows it sends `next` (docs/api.md
 * "Conversations"; SSE viewers never get one).
 */
function scheduleThreadPoll() {
  clearTimeout(state.poll.timer);
  const s = state.session;
  if (!s || state.poll.off) return;
  const aroundRuns = [...state.before, ...state.after].some((t) => t.status === 'running');
  const awaitNext = state.viewer && !state.sawNext && s.status !== 'running';
  if (!aroundRuns && !awaitNext) return;
  state.poll.timer = setTimeout(async () => {
    if (!aroundRuns) state.poll.ms = Math.min(THREAD_POLL_MAX_MS, state.poll.ms * 2);
    await refreshThread();
    scheduleThreadPoll();
  }, aroundRuns ? THREAD_POLL_MS : state.poll.ms);
}

function renderThread() {
  for (const v of state.turnViews) for (const c of v) c.destroy();
  state.turnViews = [];
  const last = state.after.at(-1);
  const draw = (list, box, from) => box.replaceChildren(...list.map((s, i) => turnView(s, from + i + 1, s === last)));
  draw(state.before, $('thread-before'), 0);
  draw(state.after, $('thread-after'), state.before.length + 1);
  for (const col of state.columns.values()) col.setControls({ owner: state.owner, carryOn: state.owner && !last });
  renderTurnHead();
  refreshFollowup();
  scheduleThreadPoll();
}

/** turnView draws a turn around the one in focus: its prompt, then its columns side by side. */
function turnView(s, n, isLast) {
  const cols = (s.responses || []).map((r) => {
    const c = new Column(r, { modelName: columnName(r), onCarryOn: carryOn });
    c.stick = false; // a turn drawn whole is read from its start, not followed to its end
    c.md.flush();    // its text is whole: render it now, not on a frame a background tab may never get
    c.setControls({ owner: false, carryOn: state.owner && isLast });
    return c;
  });
  state.turnViews.push(cols);
  markBest(cols);
  const head = el('header', { class: 'turn-head' }, el('h3', { class: 'turn-title' }), el('p', { class: 'turn-prompt' }));
  fillTurnHead(head, s, n);
  return el('section', { class: 'turn', dataset: { sessionId: s.id, status: s.status } },
    head, el('div', { class: 'columns turn-columns', dataset: { count: String(cols.length) } }, ...cols.map((c) => c.el)));
}

function renderTurnHead() {
  const s = state.session;
  if (!s) return;
  $('current-turn').dataset.sessionId = s.id;
  // A conversation is called by its first prompt; each turn shows its own.
  $('session-title').textContent = promptTitle((state.before[0] || s).prompt);
  const many = state.before.length + state.after.length > 0;
  $('turn-head').hidden = !many;
  if (many) fillTurnHead($('turn-head'), s, state.before.length + 1);
}

/** carryOn makes the next follow-up carry on one answer, by its own model unless another is picked. */
function carryOn(col) {
  state.carry = { responseId: col.id, model: col.model, label: col.label, name: col.name };
  const sel = $('followup-model');
  const models = state.models.filter((m) => m.available);
  if (!models.some((m) => m.id === col.model)) models.unshift({ id: col.model, name: col.name });
  sel.replaceChildren(...models.map((m) => el('option', { value: m.id, text: m.name || m.id })));
  sel.value = col.model;
  refreshFollowup();
  $('followup').scrollIntoView({ block: 'nearest' });
  $('followup-prompt').focus({ preventScroll: true });
}

/** refreshFollowup offers the follow-up box to the owner once an answer of the last turn is complete. */
function refreshFollowup() {
  const last = state.session && lastTurn();
  const can = !!last && state.owner && !state.viewer && last.revealed !== false &&
    (last.responses || []).some((r) => r.status === 'complete');
  $('followup').hidden = !can;
  if (state.carry && !(last && last.responses.some((r) => r.id === state.carry.responseId))) state.carry = null;
  const c = state.carry;
  $('followup-from').hidden = !c;
  if (c) $('followup-from-name').textContent = c.label ? `${c.label} (${c.name})` : c.name;
  $('followup-prompt').placeholder = c
    ? 'Ask a follow-up of this answer.'
    : 'Ask a follow-up. Every column carries on its own thread.';
}

let followingUp = false;
async function sendFollowup() {
  const last = state.session && lastTurn();
  if (followingUp || !last) return;
  const err = $('followup-error');
  err.textContent = '';
  const prompt = $('followup-prompt').value;
  if (!prompt.trim()) { err.textContent = 'Write a follow-up first.'; $('followup-prompt').focus(); return; }
  const body = { prompt };
  if (state.carry) {
    body.from = state.carry.responseId;
    body.models = [$('followup-model').value];
  }
  followingUp = true;
  $('followup-send').disabled = true;
  try {
    const child = await api.followup(last.id, body);
    $('followup-prompt').value = '';
    advanceTo(child, { owner: true });
    addTurn(child);
    refreshMe();
  } catch (e) {
    err.textContent = errorText(e);
  } finally {
    followingUp = false;
    $('followup-send').disabled = false;
  }
}

function renderSessionHead() {
  const s = state.session;
  $('session-title').textContent = promptTitle(s.prompt);
  $('session-prompt').textContent = s.prompt;
  $('session-system').textContent = s.system || '(none)';
  const p = s.params || {};
  const bits = [new Date(s.createdAt).toLocaleString()];
  if (typeof p.temperature === 'number') bits.push(`temperature ${p.temperature}`);
  if (typeof p.maxTokens === 'number') bits.push(`max ${p.maxTokens} tokens`);
  bits.push(s.status);
  $('session-info').textContent = bits.join(' · ');
  $('session').dataset.status = s.status;
  const parent = $('session-parent');
  parent.hidden = !(s.parentId && state.owner);
  $('parent-kind').textContent = s.kind === 'followup' ? 'Follow-up to' : 'Rerun of';
  $('parent-link').textContent = s.kind === 'followup' ? 'the turn before' : 'the earlier comparison';
  $('parent-link').dataset.sessionId = s.parentId || '';
}

/** syncColumns makes the columns match a Session (first render and snapshots). */
function syncColumns(session) {
  const box = $('columns');
  const seen = new Set();
  for (const r of session.responses || []) {
    seen.add(r.id);
    let col = state.columns.get(r.id);
    if (!col) {
      col = new Column(r, { modelName: columnName(r), onStop: stopResponse, onRate: rateResponse, onFocus: toggleFocus,
        onCarryOn: carryOn, onVote: castVote });
      state.columns.set(r.id, col);
      box.append(col.el);
    } else {
      if (col.masked && r.model) col.reveal(r.model, modelName(r.model)); // revealed in the meantime
      col.update(r);
    }
    col.setControls({ owner: state.owner, carryOn: state.owner && !state.after.length });
  }
  for (const [id, col] of state.columns) {
    if (!seen.has(id)) { col.destroy(); state.columns.delete(id); }
  }
  box.dataset.count = String(state.columns.size);
  if (state.focus && !state.columns.has(state.focus)) state.focus = null;
  applyFocus();
  renderColumnNav();
  markBest([...state.columns.values()]);
}

// ---- the columns: focus, the jump bar, synchronised scrolling ----

/** toggleFocus puts one column in focus (the others shrink to status and metrics), or ends it. */
function toggleFocus(rid) {
  state.focus = state.focus === rid ? null : rid;
  applyFocus();
  const col = state.columns.get(state.focus || rid);
  if (col) col.focusBtn.focus();
}

function applyFocus() {
  const box = $('columns');
  if (state.focus) box.dataset.focus = state.focus; else delete box.dataset.focus;
  for (const [id, col] of state.columns) col.setFocused(id === state.focus);
}

/**
 * renderColumnNav draws the bar of links to each column: on a phone the
 * columns stack, and this is how each stays one tap away.
 */
function renderColumnNav() {
  const nav = $('column-nav');
  nav.replaceChildren(...[...state.columns.values()].map((col) => el('a', {
    href: `#col-${col.id}`,
    class: `column-link status-${col.status}`,
    dataset: { responseId: col.id },
    text: col.name,
    onclick: (e) => {
      e.preventDefault();
      col.el.scrollIntoView({ block: 'start', behavior: 'instant' });
      col.el.focus({ preventScroll: true });
    },
  })));
  for (const col of state.columns.values()) col.el.id = `col-${col.id}`;
}

/** onAnswerScroll moves the other answers to the same place as the one the reader scrolled. */
function onAnswerScroll(e) {
  const src = e.target;
  if (!(src instanceof Element) || !src.matches('.answer, .text')) return;
  if (isOwnScroll(src) || !state.syncScroll || state.focus) return;
  const range = src.scrollHeight - src.clientHeight;
  const at = range > 0 ? src.scrollTop / range : 0;
  for (const col of state.columns.values()) {
    const b = col.body;
    if (b === src) continue;
    setScroll(b, at * (b.scrollHeight - b.clientHeight));
  }
}

function refreshToolbar() {
  const s = state.session;
  if (!s) return;
  const running = s.status === 'running';
  const owner = state.owner;
  $('stop').hidden = !(owner && running);
  $('rerun').hidden = !(owner && !running && !isMasked(s)); // a rerun names its models
  $('share').hidden = !owner;
  $('share').textContent = s.shared ? 'Share link' : 'Share';
  $('unshare').hidden = !(owner && s.shared);
  $('reuse').hidden = state.viewer;
  $('export').hidden = false;
  for (const f of ['json', 'md', 'csv']) $(`export-${f}`).href = api.exportURL(s.id, f, state.shareToken);
  $('session').dataset.status = s.status;
  refreshDiff();
  refreshFollowup();
  renderBlind();
}

/** refreshDiff offers the word diff once two or more answers have ended. */
function refreshDiff() {
  const s = state.session;
  const ended = s.status !== 'running' && s.responses.length >= 2;
  $('diff').hidden = !ended;
  if (!ended) { $('diff').open = false; $('diff-output').replaceChildren(); return; }
  for (const [sel, pick] of [[$('diff-a'), 0], [$('diff-b'), 1]]) {
    const keep = sel.value;
    sel.replaceChildren(...s.responses.map((r) => el('option', { value: r.id, text: columnName(r) })));
    sel.value = s.responses.some((r) => r.id === keep) ? keep : s.responses[pick].id;
  }
}

async function showDiff() {
  const s = state.session;
  if (!s) return;
  const out = $('diff-output');
  try {
    const d = await api.diff(s.id, $('diff-a').value, $('diff-b').value, state.shareToken);
    renderDiff(out, d.ops);
  } catch (e) {
    out.textContent = errorText(e);
  }
}

/** announceEnd tells screen readers that answer r has ended, and how. */
function announceEnd(r) {
  if (r.status === 'complete') announce(`${columnName(r)} finished`);
  else if (r.status === 'error') announce(`${columnName(r)} failed: ${r.error ? r.error.message : 'error'}`);
  else if (r.status === 'cancelled') announce(`${columnName(r)} stopped`);
}

function findResponse(rid) {
  return state.session && state.session.responses.find((r) => r.id === rid);
}

/** onEvent renders one live event; live.js has already dropped repeats. */
function onEvent(ev) {
  const s = state.session;
  if (!s || ev.sessionId !== s.id) return;
  switch (ev.type) {
    case 'snapshot': {
      // A snapshot may have been taken before this page shared the session
      // or saw it revealed (it answers a subscribe sent earlier): what the
      // page did or saw since stays.
      const old = s;
      const shared = state.sharing.get(s.id) ?? ev.session.shared ?? old.shared;
      const votes = ev.session.votes ?? old.votes; // a snapshot has no vote count: keep the last read
      state.session = keepRevealed(old, { ...ev.session, shared, votes });
      syncColumns(state.session);
      renderSessionHead();
      refreshToolbar();
      // An answer that ended before this page subscribed (or while it was
      // away) ends here by the snapshot: screen readers hear it as well.
      for (const r of state.session.responses) {
        const was = old.responses.find((o) => o.id === r.id);
        if (was && !isEnded(was.status) && isEnded(r.status)) announceEnd(r);
      }
      break;
    }
    case 'status': {
      const r = findResponse(ev.responseId);
      const col = state.columns.get(ev.responseId);
      if (!r || !col) break;
      if (ev.status === 'pending' && ev.retrying) { col.setRetrying(ev.retrying); break; }
      r.status = ev.status;
      r.error = ev.error || null;
      col.setStatus(ev.status, r.error);
      if (isEnded(ev.status)) col.md.flush();
      if (ev.status === 'complete') refreshFollowup();
      renderColumnNav();
      announceEnd(r);
      break;
    }
    case 'chunk': {
      const r = findResponse(ev.responseId);
      const col = state.columns.get(ev.responseId);
      if (!r || !col) break;
      const first = !r.text;
      if (col.appendChunk(ev.index, ev.text)) r.text = (r.text || '') + ev.text;
      if (r.status === 'pending') { r.status = 'streaming'; col.setStatus('streaming'); }
      if (first && r.text && isMasked(s)) renderBlind(); // votes are taken from the first chunk on
      break;
    }
    case 'reasoning': {
      const r = findResponse(ev.responseId);
      const col = state.columns.get(ev.responseId);
      if (!r || !col) break;
      if (col.appendReasoning(ev.index, ev.text)) r.reasoning = (r.reasoning || '') + (ev.text || '');
      if (r.status === 'pending') { r.status = 'streaming'; col.setStatus('streaming'); }
      break;
    }
    case 'metrics': {
      const r = findResponse(ev.responseId);
      const col = state.columns.get(ev.responseId);
      if (!r || !col) break;
      r.metrics = ev.metrics;
      col.setMetrics(ev.metrics);
      markBest([...state.columns.values()]);
      break;
    }
    case 'done':
      s.status = ev.status;
      renderSessionHead();
      refreshToolbar();
      announce(`All models finished (${ev.status})`);
      if (state.owner) { refreshMe(); updateHistoryItem(s); }
      // The turns around may have ended too; a viewer may have missed a new turn.
      if (state.viewer || state.before.length || state.after.length) refreshThread().then(scheduleThreadPoll);
      break;
    case 'next': {
      // A turn was made from this one (docs/api.md "Conversations"): show it as it streams.
      state.sawNext = true;
      $('session').dataset.newTurns = 'live'; // how new turns arrive here: live, not by reading the thread
      const id = ev.next && ev.next.sessionId;
      if (!id) break;
      api.getSession(id, state.shareToken).then((child) => {
        if (state.session && state.session.id === s.id) advanceTo(child, { owner: state.owner, shareToken: state.shareToken });
      }).catch((e) => notice(errorText(e)));
      break;
    }
    case 'reveal':
      applyReveal(ev.responses || [], ev.votes || null);
      break;
    case 'presence': {
      const p = $('presence');
      p.textContent = `${ev.viewers} watching`;
      p.hidden = false;
      break;
    }
    case 'error':
      if (ev.code === 'not_found') {
        notice(state.viewer ? 'This comparison is no longer shared.' : 'This comparison is no longer available.');
        $('presence').hidden = true;
      } else if (ev.message) {
        notice(ev.message);
      }
      break;
    default:
  }
}

// ---- blind comparisons: votes and the reveal ----

/** choiceText puts a vote's choice into words: "answer B", "a tie", "all bad". */
function choiceText(choice) {
  if (choice === 'tie') return 'a tie';
  if (choice === 'all_bad') return 'all bad';
  const r = findResponse(choice);
  if (!r) return 'an answer';
  return r.model ? `answer ${r.label} (${modelName(r.model)})` : `answer ${r.label}`;
}

/**
 * renderBlind draws what a blind session asks of the person looking at it:
 * before the reveal, the votes (the owner's and a signed-in viewer's; an
 * anonymous viewer is asked to log in), the viewers' vote count of a shared
 * session and the owner's Reveal button; after it, the tally.
 */
function renderBlind() {
  const s = state.session;
  const bar = $('blind-bar');
  if (!s || !s.blind) {
    scheduleVotePoll();
    bar.hidden = true;
    for (const col of state.columns.values()) { col.setVote(false, false); col.setTally(null); }
    return;
  }
  const masked = isMasked(s);
  const vote = state.votes.get(s.id) || null;
  const mine = vote ? vote.choice : null;
  const signedIn = state.owner || !!state.user;
  const open = masked && signedIn;
  bar.hidden = false;
  bar.dataset.state = masked ? 'voting' : 'revealed';
  for (const col of state.columns.values()) col.setVote(open, mine === col.id);
  const anyText = (s.responses || []).some((r) => r.text);
  for (const b of [$('vote-tie'), $('vote-all-bad')]) {
    const chosen = mine === b.dataset.choice;
    b.hidden = !open && !chosen;
    b.disabled = !open || !anyText;
    b.setAttribute('aria-pressed', String(chosen));
  }
  const signin = $('vote-signin');
  signin.hidden = !(masked && !signedIn);
  signin.href = `/?next=${encodeURIComponent(location.pathname)}`;
  $('reveal').hidden = !(masked && state.owner && s.shared);

  let note;
  if (!masked) note = 'Blind comparison, revealed.';
  else if (state.owner && s.shared) note = 'Blind comparison: the models stay hidden until you reveal them, so that everyone signed in with the link can vote first. Votes may change until then.';
  else if (state.owner) note = 'Blind comparison: the models are hidden. Vote for the best answer, a tie or all bad, and your vote reveals them. Share it first to let others vote too.';
  else if (signedIn) note = 'Blind comparison: the models stay hidden until the owner reveals them. Vote for the best answer; you may change your vote until then.';
  else note = 'Blind comparison: the models stay hidden until the owner reveals them. Votes are taken from signed-in accounts.';
  $('blind-note').textContent = note;
  $('vote-status').textContent = mine ? `Your vote: ${choiceText(mine)}` : (open ? 'You have not voted yet.' : '');

  scheduleVotePoll();
  const count = viewerVoteCount(s);
  $('vote-count').hidden = !(masked && isShared(s) && count !== null);
  $('vote-count').textContent = count === null ? '' : `${count} vote${count === 1 ? '' : 's'} so far`;
  $('vote-leak').hidden = !(vote && vote.identityLeak);

  const tally = masked ? null : state.tallies.get(s.id) || null;
  const n = (rid) => (tally && typeof tally[rid] === 'number' ? tally[rid] : 0);
  const most = tally ? Math.max(0, ...s.responses.map((r) => n(r.id))) : 0;
  for (const col of state.columns.values()) col.setTally(tally ? n(col.id) : null, most > 0 && n(col.id) === most);
  const line = $('tally');
  line.hidden = !tally;
  if (tally) {
    const parts = s.responses.map((r) => `${r.label} ${n(r.id)}`);
    const total = s.responses.reduce((a, r) => a + n(r.id), 0) + n('tie') + n('all_bad');
    line.textContent = `Votes: ${parts.join(' · ')} · tie ${n('tie')} · all bad ${n('all_bad')} (${total} in all)`;
  }
}

/** isShared: the session has a live share token (a viewer came with one, whatever a snapshot says). */
const isShared = (s) => !!s.shared || state.viewer;

/** viewerVoteCount is how many have voted on a blind session so far (docs/api.md: its `votes`), or null. */
function viewerVoteCount(s) {
  return typeof s.votes === 'number' ? s.votes : null;
}

/**
 * scheduleVotePoll reads a shared blind session again every VOTE_POLL_MS
 * until its reveal: the vote count is not sent live (only a GET has it),
 * and an SSE viewer's stream has ended by the time the owner reveals.
 */
function scheduleVotePoll() {
  const s = state.session;
  if (!(isMasked(s) && isShared(s))) { clearTimeout(state.votePoll); state.votePoll = null; return; }
  if (state.votePoll) return;
  state.votePoll = setTimeout(async () => {
    state.votePoll = null;
    if (state.session) await refreshBlind(state.session.id);
    scheduleVotePoll();
  }, VOTE_POLL_MS);
}

// One vote in flight at a time; a click meanwhile is cast after it (the last one wins).
const voting = { busy: false, next: null };
/** castVote records the caller's vote (a responseId, "tie" or "all_bad"); a later one replaces it. */
async function castVote(choice) {
  const s = state.session;
  if (!s || !isMasked(s)) return;
  if (voting.busy) { voting.next = { id: s.id, choice }; return; }
  voting.busy = true;
  $('blind-bar').setAttribute('aria-busy', 'true');
  let reread = false;
  try {
    const v = await api.vote(s.id, choice, state.shareToken);
    if (onScreen(s.id)) {
      state.votes.set(s.id, { choice: v.choice || choice, identityLeak: !!v.identityLeak });
      renderBlind();
      announce(`Your vote: ${choiceText(v.choice || choice)}`);
    }
    reread = true; // the owner's vote on an unshared session reveals it; a shared one has one more vote
  } catch (e) {
    reread = e.status === 409;
    if (e.status === 409) notice('The models were revealed before this vote arrived.', 'info');
    else notice(errorText(e));
  } finally {
    voting.busy = false;
    $('blind-bar').removeAttribute('aria-busy');
  }
  const next = voting.next;
  voting.next = null;
  if (next && onScreen(next.id)) { castVote(next.choice); return; }
  if (reread && onScreen(s.id)) await refreshBlind(s.id);
}

/**
 * keepRevealed: a blind session the page has seen revealed stays so when a
 * snapshot taken before the reveal arrives late (the reveal is not in the
 * log, so no later event would say it again).
 */
function keepRevealed(old, next) {
  if (!old.blind || old.id !== next.id || !old.revealed || next.revealed) return next;
  const model = new Map(old.responses.map((r) => [r.id, r.model]));
  return { ...next, revealed: true, responses: next.responses.map((r) => ({ ...r, model: r.model || model.get(r.id) || null })) };
}

/** onScreen: session id is still the one in focus (a snapshot may have replaced its object meanwhile). */
const onScreen = (id) => !!state.session && state.session.id === id;

/** refreshBlind reads a blind session again: revealed now, or a new vote count. */
async function refreshBlind(id) {
  let fresh;
  try { fresh = await api.getSession(id, state.shareToken); } catch { return; }
  if (!onScreen(id)) return;
  if (fresh.revealed) { applyRevealedSession(fresh); return; }
  if (typeof fresh.votes === 'number') state.session.votes = fresh.votes;
  renderBlind();
}

async function revealSession() {
  const s = state.session;
  if (!s) return;
  $('reveal').disabled = true;
  try {
    const fresh = await api.reveal(s.id);
    if (onScreen(fresh.id)) applyRevealedSession(fresh);
  } catch (e) {
    notice(errorText(e));
  } finally {
    $('reveal').disabled = false;
  }
}

/** applyRevealedSession shows the models of a revealed Session (from GET, or the reveal's answer). */
function applyRevealedSession(fresh) {
  applyReveal((fresh.responses || []).map((r) => ({
    responseId: r.id, label: r.label, model: r.model, costUsd: r.metrics ? r.metrics.costUsd : undefined,
  })), null);
}

/**
 * applyReveal names the columns of the blind session on screen (the
 * `reveal` event, or a revealed Session), with the tally when the event
 * brought one. It may come twice (the event and the owner's own answer):
 * the second only adds what the first lacked.
 */
function applyReveal(responses, votes) {
  const s = state.session;
  if (!s || !s.blind) return;
  const was = isMasked(s);
  for (const x of responses) {
    const r = findResponse(x.responseId);
    if (!r || !x.model) continue;
    r.model = x.model;
    if (r.metrics && x.costUsd !== undefined) r.metrics = { ...r.metrics, costUsd: x.costUsd };
    const col = state.columns.get(x.responseId);
    if (col) col.reveal(x.model, modelName(x.model), x.costUsd);
  }
  if (s.responses.every((r) => r.model)) s.revealed = true;
  if (votes) state.tallies.set(s.id, votes);
  renderColumnNav();
  markBest([...state.columns.values()]);
  refreshToolbar();
  if (was && !isMasked(s)) {
    announce(`Revealed: ${s.responses.map((r) => `${r.label} is ${modelName(r.model)}`).join(', ')}`);
    if (state.owner) updateHistoryItem(s);
  }
}

// ---- history ----

function prependHistory(s) {
  const list = $('history-list');
  const old = list.querySelector(`li[data-session-id="${CSS.escape(s.id)}"]`);
  if (old) old.remove();
  list.prepend(historyItem(s, openHistory));
  markCurrentHistory(state.session && state.session.id);
  $('history-status').textContent = '';
}

// addTurn counts a new turn on its conversation's history item (the list
// shows conversations by their first turn).
function addTurn(s) {
  const li = $('history-list').querySelector(`li[data-session-id="${CSS.escape(s.rootId)}"]`);
  const turns = li && li.querySelector('.history-turns');
  if (turns) {
    const n = Number(turns.dataset.turns) + 1;
    turns.dataset.turns = String(n);
    turns.textContent = ` · ${n} turns`;
  }
}

function updateHistoryItem(s) {
  const li = $('history-list').querySelector(`li[data-session-id="${CSS.escape(s.id)}"]`);
  // A session carries no turn count: keep the one the item shows.
  const turns = li && li.querySelector('.history-turns');
  if (li) li.replaceWith(historyItem({ ...s, turns: Number(turns && turns.dataset.turns) || s.turns }, openHistory));
  markCurrentHistory(state.session && state.session.id);
}

function markCurrentHistory(id) {
  for (const b of $('history-list').querySelectorAll('.history-item')) {
    if (b.dataset.sessionId === id) b.setAttribute('aria-current', 'true');
    else b.removeAttribute('aria-current');
  }
}

async function loadHistory(reset = false) {
  const h = state.history;
  if (reset) {
    h.cursor = null; h.done = false; h.started = false;
    $('history-list').replaceChildren();
  }
  if (h.loading || h.done || !state.user) return;
  h.loading = true;
  $('history-status').textContent = 'Loading…';
  try {
    const page = await api.listSessions(h.started ? h.cursor : null);
    h.started = true;
    const list = $('history-list');
    for (const s of page.sessions || []) {
      if (!list.querySelector(`li[data-session-id="${CSS.escape(s.id)}"]`)) list.append(historyItem(s, openHistory));
    }
    h.cursor = page.nextCursor;
    h.done = !page.nextCursor;
    $('history-status').textContent = list.childElementCount ? '' : 'No comparisons yet.';
    markCurrentHistory(state.session && state.session.id);
  } catch (e) {
    $('history-status').textContent = `History could not be loaded: ${errorText(e)}`;
  } finally {
    h.loading = false;
  }
  // Still at the bottom (a short first page)? Observe again to load more.
  historyObserver.unobserve($('history-sentinel'));
  if (!h.done) historyObserver.observe($('history-sentinel'));
}

const historyObserver = new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting)) loadHistory();
});

async function openHistory(id) {
  if (state.view !== 'compare') go({ view: 'compare' });
  try {
    await openConversation(id, { owner: true });
    $('session').scrollIntoView({ block: 'start' });
    $('session-title').focus({ preventScroll: true });
  } catch (e) {
    notice(errorText(e));
  }
}

// ---- stats ----

async function toggleStats(show) {
  const sec = $('stats');
  sec.hidden = !show;
  $('stats-toggle').setAttribute('aria-expanded', String(show));
  if (!show) return;
  try {
    state.stats.rows = await api.modelStats();
    $('stats-empty').hidden = state.stats.rows.length > 0;
    drawStats();
  } catch (e) {
    $('stats-empty').hidden = false;
    $('stats-empty').textContent = errorText(e);
  }
}

function drawStats() {
  const { rows, key, dir } = state.stats;
  for (const th of document.querySelectorAll('#stats-table th[data-key]')) {
    th.setAttribute('aria-sort', th.dataset.key === key ? dir : 'none');
  }
  renderStats(document.querySelector('#stats-table tbody'), rows, key, dir);
}

// ---- views: the comparison and the leaderboard, by URL ----

const leaderboard = new Leaderboard({
  modelName,
  errorText,
  onChange: (q) => go({ view: 'leaderboard', ...q }, true),
});

/**
 * routeOf reads the view a URL asks for: /?view=leaderboard, with
 * &scope=all (everyone's votes, else the caller's) and &leaks=include, is
 * the leaderboard; anything else the comparison (whose own parameters,
 * ?models=…&prompt=…, prefillFromURL reads).
 */
function routeOf(loc) {
  const q = new URLSearchParams(loc.search);
  if (q.get('view') !== 'leaderboard') return { view: 'compare' };
  return { view: 'leaderboard', scope: q.get('scope') === 'all' ? 'all' : 'me', leaks: q.get('leaks') === 'include' };
}

function urlOf(route) {
  if (route.view !== 'leaderboard') return '/';
  let u = '/?view=leaderboard';
  if (route.scope === 'all') u += '&scope=all';
  if (route.leaks) u += '&leaks=include';
  return u;
}

/** go shows a view and puts its URL in the address bar (replace: as the same history entry). */
function go(route, replace = false) {
  const url = urlOf(route);
  if (url !== location.pathname + location.search) history[replace ? 'replaceState' : 'pushState'](null, '', url);
  applyRoute(route);
}

function applyRoute(route) {
  if (state.viewer) return;
  const lb = route.view === 'leaderboard';
  state.view = route.view;
  $('main').dataset.view = route.view;
  $('leaderboard').hidden = !lb;
  for (const [id, on] of [['nav-compare', !lb], ['nav-leaderboard', lb]]) {
    if (on) $(id).setAttribute('aria-current', 'page'); else $(id).removeAttribute('aria-current');
  }
  if (lb && state.user) leaderboard.show(route);
}

/** navLink makes a link of the page's navigation change the view in place; other clicks (a new tab) go as links do. */
function navLink(a, route) {
  a.addEventListener('click', (e) => {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    go(route());
    (state.view === 'leaderboard' ? $('leaderboard-title') : $('prompt')).focus();
  });
}

// ---- viewer mode ----

async function bootViewer(token) {
  state.viewer = true;
  document.body.classList.add('viewer');
  $('mode-banner').hidden = false;
  $('workspace').hidden = false;
  $('history').hidden = true;
  $('compose').hidden = true;
  api.models().then((m) => { state.models = m; }).catch(() => {});
  // A signed-in viewer may vote on a blind comparison; an anonymous one is
  // asked to log in. Asked beside the comparison, so watching starts at once.
  api.me().then((u) => { state.user = u; renderBlind(); }).catch(() => {});
  try {
    const s = await api.getShared(token);
    await openConversation(s.id, { owner: false, shareToken: token });
  } catch (e) {
    notice(e.status === 404 ? 'This link is not shared any more, or it never was.' : errorText(e));
  }
}

// ---- wiring ----

function wire() {
  wireAuthForm($('login-form'), api.login, $('login-error'));
  wireAuthForm($('register-form'), api.register, $('register-error'));
  $('logout').addEventListener('click', async () => {
    try { await api.logout(); } catch { /* the cookie is cleared either way */ }
    signedOut();
  });
  $('compose').addEventListener('submit', (e) => { e.preventDefault(); start(); });
  $('followup').addEventListener('submit', (e) => { e.preventDefault(); sendFollowup(); });
  $('followup-all').addEventListener('click', () => { state.carry = null; refreshFollowup(); $('followup-prompt').focus(); });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && e.target === $('followup-prompt')) {
      e.preventDefault();
      sendFollowup();
      return;
    }
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !$('workspace').hidden && !$('compose').hidden && state.view === 'compare') {
      e.preventDefault();
      start();
    }
  });
  for (const id of ['prompt', 'system', 'max-tokens', 'temperature']) $(id).addEventListener('input', scheduleEstimate);
  $('blind').addEventListener('change', () => { refreshBlindOption(); scheduleEstimate(); });
  $('temperature').addEventListener('input', () => { $('temperature-value').textContent = $('temperature').value; });
  $('stop').addEventListener('click', stopSession);
  $('diff-form').addEventListener('submit', (e) => { e.preventDefault(); showDiff(); });
  $('share').addEventListener('click', shareSession);
  $('reveal').addEventListener('click', revealSession);
  for (const b of [$('vote-tie'), $('vote-all-bad')]) b.addEventListener('click', () => castVote(b.dataset.choice));
  $('unshare').addEventListener('click', unshareSession);
  $('share-copy').addEventListener('click', copyShareLink);
  $('rerun').addEventListener('click', rerunSession);
  $('reuse').addEventListener('click', reusePrompt);
  $('parent-link').addEventListener('click', (e) => {
    e.preventDefault();
    const id = e.currentTarget.dataset.sessionId;
    if (id) openHistory(id);
  });
  $('new-comparison').addEventListener('click', () => {
    if (state.view !== 'compare') go({ view: 'compare' });
    closeSession();
    clearThread();
    $('prompt').focus();
  });
  navLink($('nav-compare'), () => ({ view: 'compare' }));
  navLink($('leaderboard-back'), () => ({ view: 'compare' }));
  navLink($('nav-leaderboard'), () => ({ view: 'leaderboard', ...leaderboard.query }));
  window.addEventListener('popstate', () => applyRoute(routeOf(location)));
  $('stats-toggle').addEventListener('click', () => toggleStats($('stats').hidden));
  $('stats-close').addEventListener('click', () => { toggleStats(false); $('stats-toggle').focus(); });
  for (const th of document.querySelectorAll('#stats-table th[data-key]')) {
    th.querySelector('button').addEventListener('click', () => {
      const st = state.stats;
      if (st.key === th.dataset.key) st.dir = st.dir === 'descending' ? 'ascending' : 'descending';
      else { st.key = th.dataset.key; st.dir = th.dataset.num !== undefined ? 'descending' : 'ascending'; }
      drawStats();
    });
  }
  $('columns').addEventListener('scroll', onAnswerScroll, { capture: true, passive: true });
  $('sync-scroll').addEventListener('change', (e) => { state.syncScroll = e.target.checked; });
  document.addEventListener('keydown', (e) => {
    const open = document.querySelector('.col-settings[open]');
    if (e.key === 'Escape' && open) { open.open = false; open.querySelector('summary').focus(); return; }
    if (e.key === 'Escape' && state.focus) { toggleFocus(state.focus); }
  });
  document.addEventListener('click', (e) => { // close the export menu and settings popovers on an outside click
    for (const m of [$('export'), ...document.querySelectorAll('.col-settings[open]')]) {
      if (m.open && !m.contains(e.target)) m.open = false;
    }
  });
}

/**
 * prefillFromURL fills the form from a link such as
 * /?models=demo/fast,demo/slow&prompt=…&system=…, so a comparison can be
 * passed on ready to run. Nothing starts until the person presses Start;
 * models the server does not offer are dropped when the catalogue loads.
 */
function prefillFromURL() {
  const q = new URLSearchParams(location.search);
  const prompt = q.get('prompt');
  const system = q.get('system');
  const models = (q.get('models') || '').split(',').map((m) => m.trim()).filter(Boolean);
  if (prompt) $('prompt').value = prompt.slice(0, 32000);
  if (system) { $('system').value = system.slice(0, 32000); $('system-details').open = true; }
  if (models.length) state.selected = new Set(models.slice(0, MAX_MODELS));
  if (q.get('blind') === '1' || q.get('blind') === 'true') $('blind').checked = true;
}

async function boot() {
  wire();
  warmUp();
  showConnection('idle', live);
  const m = location.pathname.match(/^\/s\/([^/]+)$/);
  if (m) { bootViewer(decodeURIComponent(m[1])); return; }
  prefillFromURL();
  loadModels();
  try {
    const user = await api.me();
    const next = nextURL();
    if (next) { location.replace(next); return; } // signed in already: back to the shared comparison
    signedIn(user);
  } catch (e) {
    if (e.status !== 401) notice(errorText(e));
    signedOut();
    if (e.status === 401 && nextURL()) notice('Log in or create an account to vote: you will be taken back to the shared comparison.', 'info');
  }
}

boot();
