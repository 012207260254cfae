// view.js: rendering. Everything a model or a user wrote is put into the
// page with textContent or Text nodes, never as HTML, except an answer's
// rendered Markdown, which markdown.js sanitises.

import { MarkdownView } from './markdown.js';

const $ = (sel, root = document) => root.querySelector(sel);

/** el builds an element with properties, attributes and children (strings become text). */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// ---- formatting ----

const DASH = '—';
const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumSignificantDigits: 3 });
const num = new Intl.NumberFormat('en-US');

export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
export const fmtMs = (ms) => (!isNum(ms) ? DASH : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`);
export const fmtRate = (r) => (!isNum(r) ? DASH : `${r.toFixed(1)} tok/s`);
export const fmtInt = (n) => (!isNum(n) ? DASH : num.format(n));
export const fmtCost = (c) => (!isNum(c) ? DASH : c === 0 ? '$0' : usd.format(c));

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
/** relTime says when a moment is, in words: "in 5 hours", "3 minutes ago". */
export function relTime(date, now = Date.now()) {
  const t = date instanceof Date ? date.getTime() : Date.parse(date);
  if (!Number.isFinite(t)) return '';
  const s = (t - now) / 1000;
  const a = Math.abs(s);
  if (a < 45) return s >= 0 ? 'in a few seconds' : 'just now';
  if (a < 3600) return rtf.format(Math.round(s / 60), 'minute');
  if (a < 86400 * 1.5) return rtf.format(Math.round(s / 3600), 'hour');
  return rtf.format(Math.round(s / 86400), 'day');
}
export function localTime(date) {
  const d = new Date(date);
  if (Number.isNaN(d.getTime())) return '';
  return d.toLocaleString([], { weekday: 'short', hour: '2-digit', minute: '2-digit' });
}

const REASONS = {
  no_key: 'no API key configured',
  cooling_down: 'cooling down after failures',
};
/** reasonText puts an unavailableReason into words. */
export const reasonText = (r) => REASONS[r] || (r ? String(r).replaceAll('_', ' ') : 'unavailable');

/** quotaText explains a 402 (details.remaining, required, resetsAt) in words. */
export function quotaText(details = {}) {
  const parts = [];
  if (isNum(details.required) && isNum(details.remaining)) {
    parts.push(`This comparison needs ${details.required} run${details.required === 1 ? '' : 's'} and you have ${details.remaining} left.`);
  } else {
    parts.push('You have used up your quota.');
  }
  if (details.resetsAt) parts.push(`Your quota resets ${relTime(details.resetsAt)} (${localTime(details.resetsAt)}).`);
  return parts.join(' ');
}

export const shortModel = (id) => String(id);

// ---- columns ----

const ENDED = new Set(['complete', 'error', 'cancelled']);
export const isEnded = (status) => ENDED.has(status);

/** maskedName is what a blind session's column is called before the reveal. */
export const maskedName = (label) => `Answer ${label}`;

/**
 * Column is one model's answer: status badge, the model's thinking, the
 * answer (rendered Markdown, or the raw text on request), metrics and tools.
 * The raw text lives in a single Text node that chunks are appended to, so
 * the .text element's textContent is exactly the response's text.
 *
 * A column of a blind session before its reveal is masked: its model is
 * null, it is called by its label, it shows no cost, and it offers a vote
 * instead of a rating; reveal() names it.
 */
export class Column {
  constructor(response, { modelName, onStop, onRate, onFocus, onCarryOn, onVote }) {
    const tpl = document.getElementById('column-template');
    this.el = tpl.content.firstElementChild.cloneNode(true);
    this.id = response.id;
    this.label = response.label || '';
    this.el.dataset.responseId = response.id;
    this.el.dataset.label = this.label;
    $('.col-label', this.el).textContent = this.label;
    $('.col-label', this.el).hidden = !this.label;
    this.nameEl = $('.model-name', this.el);
    this.tallyEl = $('.tally', this.el);
    this.statusEl = $('.status', this.el);
    this.detailEl = $('.status-detail', this.el);
    this.errorEl = $('.error-message', this.el);
    this.textEl = $('.text', this.el);
    this.textNode = document.createTextNode('');
    this.textEl.append(this.textNode);
    this.answerEl = $('.answer', this.el);
    this.md = new MarkdownView(this.answerEl, () => this.followBottom());
    this.thinkingEl = $('.thinking', this.el);
    this.thinkingNode = document.createTextNode('');
    $('.thinking-text', this.el).append(this.thinkingNode);
    this.metricsEl = $('.metrics', this.el);
    this.copyBtn = $('.copy', this.el);
    this.stopBtn = $('.stop-one', this.el);
    this.rawBtn = $('.view-raw', this.el);
    this.focusBtn = $('.focus-one', this.el);
    this.ratingEl = $('.rating', this.el);
    this.carryBtn = $('.carry-on', this.el);
    this.voteBtn = $('.vote-best', this.el);
    this.setModel(response.model, modelName);
    this.carryBtn.addEventListener('click', () => onCarryOn && onCarryOn(this));
    this.voteBtn.addEventListener('click', () => onVote && onVote(this.id));
    this.copyBtn.addEventListener('click', () => this.copy());
    this.stopBtn.addEventListener('click', () => onStop && onStop(this.id));
    this.rawBtn.addEventListener('click', () => this.setRaw(!this.raw));
    this.focusBtn.addEventListener('click', () => onFocus && onFocus(this.id));
    this.answerEl.addEventListener('click', (e) => {
      const b = e.target.closest('button.copy-code');
      if (b) this.copyCode(b);
    });
    for (const body of [this.answerEl, this.textEl]) {
      body.addEventListener('scroll', () => { if (body === this.body) this.stick = nearBottom(body); }, { passive: true });
    }
    for (const b of this.ratingEl.querySelectorAll('button')) {
      b.addEventListener('click', () => {
        const score = Number(b.dataset.score);
        onRate && onRate(this.id, this.rating === score ? 0 : score);
      });
    }
    this.retryTimer = null;
    this.nextIndex = null; // next chunk index expected, once known
    this.nextThought = null; // next reasoning index expected, once known
    this.rating = 0;
    this.metrics = null;
    this.raw = false;
    this.stick = true;     // keep the newest text in view while it streams
    this.controls = { owner: false, carryOn: false };
    this.voting = { open: false, chosen: false };
    this.status = '';
    this.update(response);
  }

  /**
   * setModel names the column: by its model, or, with none (a blind session
   * before the reveal), by its label alone. Every accessible name follows.
   */
  setModel(model, modelName) {
    this.model = model || null;
    this.masked = !model;
    this.name = model ? (modelName || model) : maskedName(this.label);
    this.el.dataset.model = model || '';
    this.el.setAttribute('aria-label', this.name);
    this.el.classList.toggle('masked', this.masked);
    this.nameEl.textContent = model ? this.name : 'model hidden';
    this.nameEl.classList.toggle('masked-name', this.masked);
    if (model) this.nameEl.title = model; else this.nameEl.removeAttribute('title');
    const who = model ? `${this.label ? `answer ${this.label}, ` : ''}${this.name}` : `answer ${this.label}`;
    this.textEl.setAttribute('aria-label', `Answer from ${this.name}, as written`);
    this.answerEl.setAttribute('aria-label', `Answer from ${this.name}`);
    this.carryBtn.setAttribute('aria-label', `Carry on with ${who}`);
    this.copyBtn.setAttribute('aria-label', `Copy the answer from ${this.name}`);
    this.stopBtn.setAttribute('aria-label', `Stop ${this.name}`);
    this.rawBtn.setAttribute('aria-label', `Show the raw text of ${this.name}'s answer`);
    this.focusBtn.setAttribute('aria-label', `Focus on ${this.name}`);
    this.voteBtn.setAttribute('aria-label', `Vote for answer ${this.label}: the best`);
  }

  /**
   * reveal names a masked column once its blind session is revealed; the
   * name comes in with an animation (none when the reader asks for reduced
   * motion: see style.css). The cost, hidden until now, is shown.
   */
  reveal(model, modelName, costUsd) {
    if (!model) return;
    const was = this.masked;
    this.setModel(model, modelName);
    if (this.metrics && costUsd !== undefined) this.metrics = { ...this.metrics, costUsd };
    this.setMetrics(this.metrics);
    this.refreshTools();
    if (was) {
      this.nameEl.classList.remove('revealed');
      void this.nameEl.offsetWidth; // restart the animation
      this.nameEl.classList.add('revealed');
    }
  }

  /** setVote offers this column's vote button (open) and shows whether it is the caller's vote (chosen). */
  setVote(open, chosen) {
    this.voting = { open, chosen };
    this.refreshVote();
  }

  /** A vote is taken from the first chunk on: before it, there is nothing to judge. */
  refreshVote() {
    const { open, chosen } = this.voting;
    this.voteBtn.hidden = !open && !chosen;
    this.voteBtn.disabled = !open || !this.textNode.data;
    this.voteBtn.setAttribute('aria-pressed', String(chosen));
    this.voteBtn.textContent = chosen ? 'Your pick' : 'Best';
    this.el.classList.toggle('voted', chosen);
  }

  /** setTally shows the votes this answer got, once revealed; lead marks the most. */
  setTally(n, lead) {
    const on = isNum(n);
    this.tallyEl.hidden = !on;
    this.tallyEl.textContent = on ? `${n} vote${n === 1 ? '' : 's'}` : '';
    this.tallyEl.dataset.votes = on ? String(n) : '';
    this.tallyEl.classList.toggle('lead', on && lead);
  }

  /** body is the element that shows the answer now: rendered or raw. */
  get body() { return this.raw ? this.textEl : this.answerEl; }

  /** update sets the whole column from a Response (a snapshot). */
  update(r) {
    this.setText(r.text || '');
    this.setReasoning(r.reasoning || '');
    this.nextIndex = null; // a snapshot does not say how many chunks made its text
    this.nextThought = null;
    this.setStatus(r.status, r.error);
    this.setMetrics(r.metrics);
    this.setRating(r.rating || 0);
  }

  /** setControls: owner shows Stop and rating; carryOn offers a follow-up from this answer (the last turn's). */
  setControls({ owner, carryOn = false }) {
    this.controls = { owner, carryOn };
    this.refreshTools();
  }

  refreshTools() {
    const running = !isEnded(this.status);
    this.stopBtn.hidden = !(this.controls.owner && running);
    this.ratingEl.hidden = !(this.controls.owner && !running && !this.masked);
    this.carryBtn.hidden = !(this.controls.carryOn && this.status === 'complete' && !this.masked);
  }

  /** setRaw shows the answer as written (true) or rendered (false). */
  setRaw(raw) {
    this.raw = raw;
    this.textEl.hidden = !raw;
    this.answerEl.hidden = raw;
    this.rawBtn.setAttribute('aria-pressed', String(raw));
    this.rawBtn.textContent = raw ? 'Rendered' : 'Raw';
    this.el.dataset.view = raw ? 'raw' : 'rendered';
    if (!raw) this.md.flush();
    this.followBottom();
  }

  setFocused(on) {
    this.el.classList.toggle('focused', on);
    this.focusBtn.setAttribute('aria-pressed', String(on));
    this.focusBtn.textContent = on ? 'Show all' : 'Focus';
  }

  /** followBottom keeps the newest text in view, unless the reader scrolled away. */
  followBottom() {
    if (this.stick) setScroll(this.body, this.body.scrollHeight);
  }

  setStatus(status, error) {
    this.status = status;
    this.stopRetryCountdown();
    this.detailEl.textContent = '';
    this.statusEl.textContent = status;
    this.statusEl.className = `status status-${status}`;
    this.el.dataset.status = status;
    if (status === 'error' && error) {
      this.errorEl.textContent = error.message || error.code || 'The model failed.';
      this.errorEl.title = error.code || '';
      this.errorEl.hidden = false;
    } else {
      this.errorEl.hidden = true;
      this.errorEl.textContent = '';
    }
    if (status === 'streaming' || status === 'pending') this.el.setAttribute('aria-busy', 'true');
    else this.el.removeAttribute('aria-busy');
    this.refreshTools();
  }

  /** setRetrying shows a pending response waiting to retry, counting down. */
  setRetrying({ attempt, delayMs, reason }) {
    this.stopRetryCountdown();
    this.statusEl.textContent = 'retrying';
    this.statusEl.className = 'status status-retrying';
    this.el.dataset.status = 'retrying';
    const until = Date.now() + (Number(delayMs) || 0);
    const why = reason ? ` (${String(reason).replaceAll('_', ' ')})` : '';
    const tick = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      this.detailEl.textContent = left > 0
        ? `attempt ${attempt + 1} in ${left}s${why}`
        : `attempt ${attempt + 1} starting${why}`;
      if (left <= 0) this.stopRetryCountdown();
    };
    tick();
    this.retryTimer = setInterval(tick, 250);
  }

  stopRetryCountdown() {
    clearInterval(this.retryTimer);
    this.retryTimer = null;
  }

  /** appendChunk adds one chunk's text; a chunk index already shown is skipped. */
  appendChunk(index, text) {
    if (isNum(index) && this.nextIndex !== null && index < this.nextIndex) return false;
    if (isNum(index)) this.nextIndex = index + 1;
    if (text && !this.textNode.data && !this.thinkingEl.hidden) this.thinkingEl.open = false; // the answer has begun
    const first = !this.textNode.data && !!text;
    this.textNode.appendData(text || '');
    this.md.append(text || '');
    if (first) this.refreshVote();
    if (this.raw) this.followBottom();
    return true;
  }

  /** appendReasoning adds one piece of the model's visible thinking. */
  appendReasoning(index, text) {
    if (isNum(index) && this.nextThought !== null && index < this.nextThought) return false;
    if (isNum(index)) this.nextThought = index + 1;
    if (!text) return true;
    if (this.thinkingEl.hidden) {
      this.thinkingEl.hidden = false;
      this.thinkingEl.open = !this.textNode.data; // open while it streams, until the answer begins
    }
    this.thinkingNode.appendData(text);
    return true;
  }

  setReasoning(text) {
    this.thinkingNode.data = text;
    const had = !this.thinkingEl.hidden;
    this.thinkingEl.hidden = !text;
    if (text && !had) this.thinkingEl.open = !this.textNode.data && !isEnded(this.status);
  }

  setText(text) {
    this.textNode.data = text;
    this.md.set(text);
    this.refreshVote();
  }

  get text() {
    return this.textNode.data;
  }

  get reasoning() {
    return this.thinkingNode.data;
  }

  setMetrics(m) {
    this.metrics = m || null;
    const dl = this.metricsEl;
    dl.replaceChildren();
    if (!m) { dl.hidden = true; return; }
    const rows = [
      ['ttft', 'TTFT', fmtMs(m.ttftMs)],
      ['duration', 'Duration', fmtMs(m.durationMs)],
      ['tps', 'Tokens/s', fmtRate(m.tokensPerSecond)],
      ['tokens', 'Tokens in/out', `${fmtInt(m.promptTokens)} / ${fmtInt(m.completionTokens)}`],
      // A blind session shows no cost until the reveal: the price would tell the model.
      ...(this.masked ? [] : [['cost', 'Cost', fmtCost(m.costUsd)]]),
    ];
    if (isNum(m.attempts) && m.attempts > 1) rows.push(['attempts', 'Attempts', String(m.attempts)]);
    if (m.finishReason && m.finishReason !== 'stop') rows.push(['finish', 'Finish', m.finishReason]);
    for (const [key, label, value] of rows) {
      dl.append(el('div', { class: 'metric', dataset: { metric: key } }, el('dt', { text: label }), el('dd', { text: value })));
    }
    dl.hidden = false;
  }

  setRating(score) {
    this.rating = score;
    for (const b of this.ratingEl.querySelectorAll('button')) {
      b.setAttribute('aria-pressed', String(Number(b.dataset.score) === score));
    }
  }

  async copy() {
    const text = this.text;
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      // Clipboard API unavailable (plain http on another host): select and copy.
      const r = document.createRange();
      r.selectNodeContents(this.textEl);
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
      try { ok = document.execCommand('copy'); } catch { ok = false; }
      sel.removeAllRanges();
    }
    flash(this.copyBtn, ok ? 'Copied' : 'Copy failed');
  }

  async copyCode(btn) {
    const code = btn.closest('.code-block').querySelector('pre').textContent;
    let ok = false;
    try { await navigator.clipboard.writeText(code); ok = true; } catch { ok = false; }
    flash(btn, ok ? 'Copied' : 'Copy failed');
  }

  destroy() {
    this.stopRetryCountdown();
    this.md.cancel();
    this.el.remove();
  }
}

const nearBottom = (e) => e.scrollHeight - e.scrollTop - e.clientHeight < 24;

/**
 * setScroll scrolls an element from code and marks it so, so the scroll
 * event it causes is not taken for the reader's (see isOwnScroll).
 */
export function setScroll(e, top) {
  const before = e.scrollTop;
  e.scrollTop = top;
  if (e.scrollTop !== before) e.dataset.ownScroll = String(e.scrollTop);
}

/** isOwnScroll reports (once) whether a scroll event came from setScroll. */
export function isOwnScroll(e) {
  const own = e.dataset.ownScroll;
  if (own === undefined) return false;
  delete e.dataset.ownScroll;
  return Math.abs(Number(own) - e.scrollTop) < 2;
}

const BEST = [
  ['ttft', 'ttftMs', -1, 'fastest first token'],
  ['tps', 'tokensPerSecond', 1, 'fastest'],
  ['cost', 'costUsd', -1, 'cheapest'],
];

/**
 * markBest marks, across columns, the best value of each metric: the
 * shortest time to first token, the most tokens per second, the lowest
 * cost. A metric is marked only when two or more columns have a value.
 */
export function markBest(columns) {
  for (const [key, field, sign, label] of BEST) {
    const vals = columns.map((c) => (c.metrics && isNum(c.metrics[field]) ? c.metrics[field] : null));
    const known = vals.filter((v) => v !== null);
    const best = known.length >= 2 ? (sign > 0 ? Math.max(...known) : Math.min(...known)) : null;
    columns.forEach((c, i) => {
      const m = c.metricsEl.querySelector(`.metric[data-metric="${key}"]`);
      if (!m) return;
      const on = best !== null && vals[i] === best && Math.min(...known) !== Math.max(...known);
      m.classList.toggle('best', on);
      const old = m.querySelector('.best-badge');
      if (old) old.remove();
      if (on) m.querySelector('dd').append(el('span', { class: 'best-badge', title: label, text: ` ★ ${label}` }));
    });
  }
}

/** flash briefly replaces a button's label (e.g. "Copied"). */
export function flash(btn, label, ms = 1500) {
  if (!btn.dataset.label) btn.dataset.label = btn.textContent;
  btn.textContent = label;
  clearTimeout(btn._flash);
  btn._flash = setTimeout(() => { btn.textContent = btn.dataset.label; delete btn.dataset.label; }, ms);
}

// ---- a column's own settings ----

const EFFORTS = [['', 'default'], ['off', 'off'], ['low', 'low'], ['medium', 'medium'], ['high', 'high']];
const NUMBER_PARAMS = [
  ['temperature', 'Temperature', { min: 0, max: 2, step: 0.1 }],
  ['topP', 'Top-p', { min: 0, max: 1, step: 0.05 }],
  ['maxTokens', 'Max tokens', { min: 1, max: 32768, step: 1 }],
];

/**
 * settingsPopover is a column's own params in the compose form (docs/api.md: a
 * models entry {"model", "params"} overlays the session's params). A field
 * left empty takes the session's value; onChange gets only the fields set.
 */
export function settingsPopover(name, params, onChange) {
  const inputs = NUMBER_PARAMS.map(([key, label, range]) => {
    const input = el('input', { type: 'number', name: key, inputmode: 'decimal', placeholder: 'default', ...range });
    if (isNum(params[key])) input.value = String(params[key]);
    return [key, label, input];
  });
  const effort = el('select', { name: 'reasoningEffort' },
    ...EFFORTS.map(([v, text]) => el('option', { value: v, text })));
  effort.value = params.reasoningEffort || '';
  const summary = el('summary', { class: 'small', 'aria-label': `Settings for ${name}`, title: 'Settings of this column' }, '⚙');
  const read = () => {
    const p = {};
    for (const [key, , input] of inputs) {
      if (input.value !== '' && Number.isFinite(Number(input.value))) p[key] = Number(input.value);
    }
    if (effort.value) p.reasoningEffort = effort.value;
    summary.classList.toggle('set', Object.keys(p).length > 0);
    onChange(p);
  };
  const box = el('div', { class: 'settings-panel' },
    ...inputs.map(([, label, input]) => el('label', {}, el('span', { text: label }), input)),
    el('label', {}, el('span', { text: 'Reasoning effort' }), effort),
    el('p', { class: 'hint', text: 'Empty fields take the values below the model list.' }));
  box.addEventListener('input', read);
  box.addEventListener('change', read);
  summary.classList.toggle('set', Object.keys(params).length > 0);
  return el('details', { class: 'col-settings', dataset: { testid: 'col-settings' } }, summary, box);
}

// ---- conversations ----

/** turnTitle names a turn: its place in the conversation and how it was made. */
export function turnTitle(s, n) {
  const how = s.kind === 'followup' ? ' · follow-up' : s.kind === 'rerun' ? ' · rerun' : '';
  return `Turn ${n}${how}`;
}

/** fillTurnHead shows a turn's number and its prompt (as text) in a turn header. */
export function fillTurnHead(head, s, n) {
  $('.turn-title', head).textContent = turnTitle(s, n);
  $('.turn-prompt', head).textContent = s.prompt;
}

// ---- model picker ----

/** renderModels fills the picker: a checkbox per model, unavailable ones disabled with their reason. */
export function renderModels(container, models, selected, onChange) {
  container.replaceChildren();
  if (!models.length) {
    container.append(el('p', { class: 'muted', text: 'No models are configured on this server.' }));
    return;
  }
  // Available models first, each group in catalogue order.
  const ordered = [...models.filter((m) => m.available), ...models.filter((m) => !m.available)];
  for (const m of ordered) {
    const id = `model-${m.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    const input = el('input', { type: 'checkbox', id, value: m.id, name: 'model' });
    input.checked = selected.has(m.id) && m.available;
    input.disabled = !m.available;
    input.addEventListener('change', () => onChange(m.id, input.checked));
    const price = m.pricing && isNum(m.pricing.inputPerMillionUsd)
      ? `${fmtCost(m.pricing.inputPerMillionUsd)} / ${fmtCost(m.pricing.outputPerMillionUsd)} per M tokens`
      : '';
    const label = el('label', { for: id, class: 'model-label' },
      el('span', { class: 'model-title', text: m.name || m.id }),
      el('span', { class: 'model-id', text: m.id }),
      m.available
        ? (price ? el('span', { class: 'model-price', text: price }) : null)
        : el('span', { class: 'model-reason', text: reasonText(m.unavailableReason) }));
    container.append(el('div', {
      class: `model${m.available ? '' : ' unavailable'}`,
      dataset: { modelId: m.id, available: String(!!m.available) },
    }, input, label));
  }
}

/** limitModels disables unticked boxes once max are ticked. */
export function limitModels(container, models, selected, max) {
  const full = selected.size >= max;
  for (const m of models) {
    const input = container.querySelector(`input[value="${CSS.escape(m.id)}"]`);
    if (!input) continue;
    input.disabled = !m.available || (full && !selected.has(m.id));
    input.closest('.model').classList.toggle('at-limit', m.available && full && !selected.has(m.id));
  }
}

// ---- history ----

export function promptTitle(prompt, max = 90) {
  const line = String(prompt || '').trim().split('\n')[0];
  return line.length > max ? `${line.slice(0, max - 1)}…` : line || '(empty prompt)';
}

export function historyItem(s, onOpen) {
  const models = (s.responses || []).map((r) => r.model);
  const btn = el('button', { type: 'button', class: 'history-item', dataset: { sessionId: s.id } },
    el('span', { class: 'history-prompt', text: promptTitle(s.prompt, 70) }),
    el('span', { class: 'history-meta' },
      el('span', { class: `status-dot status-${s.status}`, 'aria-hidden': 'true' }),
      el('span', { class: 'history-status', text: s.status }),
      ' · ',
      el('time', { datetime: s.createdAt, text: relTime(s.createdAt), title: new Date(s.createdAt).toLocaleString() }),
      ' · ',
      `${models.length} model${models.length === 1 ? '' : 's'}`,
      s.shared ? ' · shared' : '',
      s.blind ? (s.revealed ? ' · blind, revealed' : ' · blind') : '',
      el('span', { class: 'history-turns', dataset: { turns: String(s.turns || 1) },
        text: (s.turns || 1) > 1 ? ` · ${s.turns} turns` : '' })));
  btn.title = models.filter(Boolean).join(', '); // a blind session names none until the reveal
  btn.addEventListener('click', () => onOpen(s.id));
  return el('li', { dataset: { sessionId: s.id } }, btn);
}

// ---- stats ----

export function renderStats(tbody, rows, key, dir) {
  const sorted = [...rows].sort((a, b) => {
    const x = a[key], y = b[key];
    let c;
    if (typeof x === 'string' || typeof y === 'string') c = String(x ?? '').localeCompare(String(y ?? ''));
    else c = (isNum(x) ? x : -Infinity) - (isNum(y) ? y : -Infinity);
    return dir === 'ascending' ? c : -c;
  });
  tbody.replaceChildren(...sorted.map((r) => el('tr', { dataset: { model: r.model } },
    el('th', { scope: 'row', text: r.model }),
    el('td', { text: fmtInt(r.runs) }),
    el('td', { text: fmtInt(r.errors) }),
    el('td', { text: fmtInt(r.wins) }),
    el('td', { text: fmtMs(r.avgTtftMs) }),
    el('td', { text: fmtRate(r.p50TokensPerSecond) }),
    el('td', { text: fmtCost(r.totalCostUsd) }))));
}

// ---- diff ----

/** renderDiff shows a word diff: equal runs as text, deletions in <del>, insertions in <ins>. */
export function renderDiff(out, ops) {
  out.replaceChildren(...(ops || []).map((o) => {
    if (o.op === 'insert') return el('ins', { text: o.text });
    if (o.op === 'delete') return el('del', { text: o.text });
    return document.createTextNode(o.text);
  }));
}
