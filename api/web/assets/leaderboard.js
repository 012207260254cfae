// leaderboard.js: the Leaderboard view (docs/api.md "Blind comparisons and
// the leaderboard"): the models rated from blind votes, the caller's own or
// everyone's, each with its 95% interval drawn as a bar on one shared scale,
// its battles and its win rate. The view is reached at /?view=leaderboard
// (with &scope=all and &leaks=include); app.js owns the URL, this module the
// section's controls and drawing.

import * as api from './api.js';
import { el, fmtInt, isNum, relTime } from './view.js';

const SVG = 'http://www.w3.org/2000/svg';
// How many times a leaderboard not computed yet is asked again: 0.5 s, 1 s, … 16 s.
const RETRIES = 6;
// The server recomputes a leaderboard asked for when it is older than this.
const STALE_MS = 60000;
const $ = (id) => document.getElementById(id);

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/**
 * scaleOf is the rating range every row's bar is drawn against: the lowest
 * interval bound to the highest, with the mean (1000) inside, and a margin.
 */
export function scaleOf(rows) {
  const vals = [1000];
  for (const r of rows) {
    for (const v of [r.rating, ...(Array.isArray(r.ci95) ? r.ci95 : [])]) if (isNum(v)) vals.push(v);
  }
  let lo = Math.min(...vals);
  let hi = Math.max(...vals);
  if (hi - lo < 20) { lo -= 10; hi += 10; }
  const pad = (hi - lo) * 0.05;
  return { lo: lo - pad, hi: hi + pad };
}

/**
 * intervalBar draws one model's 95% interval as a bar and its rating as a
 * tick, on the shared scale, with the mean of 1000 as a dashed line. SVG
 * geometry is set through attributes, so the page's CSP (no inline style)
 * holds; the colours are in style.css.
 */
export function intervalBar(rating, ci, { lo, hi }) {
  const x = (v) => Math.min(100, Math.max(0, ((v - lo) / (hi - lo)) * 100));
  const [low, high] = Array.isArray(ci) && isNum(ci[0]) && isNum(ci[1]) ? ci : [rating, rating];
  const b = svg('svg', { viewBox: '0 0 100 12', preserveAspectRatio: 'none', class: 'ci-bar', role: 'img',
    'aria-label': `95% interval ${Math.round(low)} to ${Math.round(high)}, rating ${Math.round(rating)}` });
  b.append(
    svg('line', { x1: 0, x2: 100, y1: 6, y2: 6, class: 'ci-track' }),
    svg('line', { x1: x(1000), x2: x(1000), y1: 0, y2: 12, class: 'ci-mean' }),
    svg('rect', { x: x(low), y: 3, width: Math.max(0.6, x(high) - x(low)), height: 6, rx: 1, class: 'ci-range' }),
    svg('rect', { x: x(rating) - 0.5, y: 0, width: 1, height: 12, class: 'ci-point' }));
  return b;
}

/** winRate is the share of a model's battles it won, as a whole percentage, or null with none. */
export const winRate = (m) => (isNum(m.battles) && m.battles > 0 && isNum(m.wins) ? Math.round((m.wins / m.battles) * 100) : null);

/** renderLeaderboard fills the table body, best first as the server orders them. */
export function renderLeaderboard(tbody, rows, modelName) {
  const scale = scaleOf(rows);
  tbody.replaceChildren(...rows.map((m, i) => {
    const ci = Array.isArray(m.ci95) ? m.ci95 : [];
    const name = modelName(m.model);
    const rate = winRate(m);
    const wtl = `${fmtInt(m.wins)} won · ${fmtInt(m.ties)} tied · ${fmtInt(m.losses)} lost`;
    return el('tr', { dataset: { model: m.model, rating: String(m.rating), low: String(ci[0]), high: String(ci[1]) } },
      el('td', { class: 'num', text: String(i + 1) }),
      el('th', { scope: 'row', class: 'lb-model' },
        el('span', { class: 'lb-name', text: name }),
        name !== m.model ? el('span', { class: 'model-id', text: m.model }) : null),
      el('td', { class: 'num lb-rating', text: isNum(m.rating) ? String(Math.round(m.rating)) : '—' }),
      el('td', { class: 'lb-ci' },
        intervalBar(m.rating, ci, scale),
        el('span', { class: 'lb-ci-text', text: ci.length === 2 ? `${Math.round(ci[0])}–${Math.round(ci[1])}` : '—' })),
      el('td', { class: 'num lb-battles', text: fmtInt(m.battles) }),
      el('td', { class: 'num lb-winrate', title: wtl },
        rate === null ? '—' : `${rate}%`,
        el('span', { class: 'lb-wtl', text: wtl })));
  }));
}

/**
 * Leaderboard drives the section #leaderboard: its scope (mine or everyone's)
 * and the identity-leak toggle, which it reports to onChange so the URL
 * follows; show() loads and draws.
 */
export class Leaderboard {
  constructor({ modelName, errorText, onChange }) {
    this.modelName = modelName;
    this.errorText = errorText;
    this.gen = 0;
    this.query = { scope: 'me', leaks: false };
    for (const r of document.querySelectorAll('input[name="lb-scope"]')) {
      r.addEventListener('change', () => { if (r.checked) onChange({ ...this.query, scope: r.value }); });
    }
    $('lb-leaks').addEventListener('change', (e) => onChange({ ...this.query, leaks: e.target.checked }));
  }

  /** show draws the leaderboard of a query {scope: 'me' | 'all', leaks: bool}. */
  show(query) {
    this.query = { scope: query.scope === 'all' ? 'all' : 'me', leaks: !!query.leaks };
    $(`lb-scope-${this.query.scope}`).checked = true;
    $('lb-leaks').checked = this.query.leaks;
    clearTimeout(this.retry);
    const sec = $('leaderboard');
    sec.dataset.scope = this.query.scope;
    sec.dataset.state = 'loading';
    $('lb-status').textContent = 'Loading…';
    return this.load(++this.gen, 0);
  }

  /**
   * load asks for the leaderboard; attempt counts the times it was not
   * computed yet. The server computes a leaderboard in the background, never
   * while a request waits: one never computed comes with updatedAt null,
   * and is asked again, backing off, while it is computed.
   */
  async load(gen, attempt) {
    const status = $('lb-status');
    const sec = $('leaderboard');
    let lb;
    try {
      lb = await api.leaderboard(this.query.scope, this.query.leaks);
    } catch (e) {
      if (gen !== this.gen) return;
      sec.dataset.state = 'error';
      status.textContent = `The leaderboard could not be loaded: ${this.errorText(e)}`;
      return;
    }
    if (gen !== this.gen) return;
    const rows = lb.models || [];
    if (!lb.updatedAt && !rows.length && attempt < RETRIES) {
      status.textContent = 'Computing the leaderboard…';
      this.retry = setTimeout(() => this.load(gen, attempt + 1), 500 * 2 ** attempt);
      return;
    }
    renderLeaderboard(document.querySelector('#lb-table tbody'), rows, this.modelName);
    $('lb-table').hidden = !rows.length;
    status.textContent = rows.length ? '' : (this.query.scope === 'me'
      ? 'No votes of yours are counted yet. Start a blind comparison (tick "Blind" in the form), vote, and the models you judged appear here.'
      : 'No votes are counted on this server yet.');
    const votes = isNum(lb.votes) ? `${fmtInt(lb.votes)} vote${lb.votes === 1 ? '' : 's'} counted` : '';
    const when = lb.updatedAt ? `updated ${relTime(lb.updatedAt)}` : '';
    $('lb-meta').textContent = [votes, when].filter(Boolean).join(' · ');
    $('lb-meta').title = lb.updatedAt ? new Date(lb.updatedAt).toLocaleString() : '';
    sec.dataset.state = 'ready';
    // Over a minute old: this request has set a fresher one computing. Ask once more.
    if (attempt === 0 && lb.updatedAt && Date.now() - Date.parse(lb.updatedAt) > STALE_MS) {
      this.retry = setTimeout(() => this.load(gen, RETRIES), 1500);
    }
  }
}
