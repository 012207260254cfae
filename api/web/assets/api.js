// api.js: the page's only door to the REST API of docs/api.md. Every call goes
// through request(), which sends the session cookie (same origin), encodes
// JSON bodies and turns the contract's error shape into an ApiError.
// The access token returned by login/register is dropped on the spot: the
// httpOnly cookie is the page's credential, and nothing is ever written to
// localStorage or sessionStorage.

/** An error answered by the server: {error: {code, message, details}}. */
export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.retryAfter = retryAfter; // seconds, from Retry-After, or null
  }
}

async function request(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection and try again.', {}, null);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const ra = res.headers.get('Retry-After');
    throw new ApiError(res.status, e.code || `http_${res.status}`,
      e.message || `The server answered ${res.status}.`, e.details, ra ? Number(ra) : null);
  }
  return data;
}

const enc = encodeURIComponent;
const shareQS = (share, first = true) => (share ? `${first ? '?' : '&'}share=${enc(share)}` : '');

// Accounts. Only the user is kept; the access token is not returned.
export async function register(email, password) {
  const { user } = await request('POST', '/auth/register', { email, password });
  return user;
}
export async function login(email, password) {
  const { user } = await request('POST', '/auth/login', { email, password });
  return user;
}
export const logout = () => request('POST', '/auth/logout');
export async function me() {
  const { user } = await request('GET', '/auth/me');
  return user;
}

// Models and comparisons.
export async function models() {
  const { models } = await request('GET', '/models');
  return models || [];
}
export async function createSession(body) {
  const { session } = await request('POST', '/sessions', body);
  return session;
}
export const estimate = (body) => request('POST', '/sessions/estimate', body);
export function listSessions(cursor, limit = 20) {
  let q = `/sessions?limit=${limit}`;
  if (cursor) q += `&cursor=${enc(cursor)}`;
  return request('GET', q);
}
export async function getSession(id, share) {
  const { session } = await request('GET', `/sessions/${enc(id)}${shareQS(share)}`);
  return session;
}
export async function getShared(token) {
  const { session } = await request('GET', `/share/${enc(token)}`);
  return session;
}
export const cancelSession = (id) => request('POST', `/sessions/${enc(id)}/cancel`);
export const cancelResponse = (id, rid) => request('POST', `/sessions/${enc(id)}/responses/${enc(rid)}/cancel`);
export async function share(id) {
  const { shareToken } = await request('POST', `/sessions/${enc(id)}/share`);
  return shareToken;
}
export const unshare = (id) => request('DELETE', `/sessions/${enc(id)}/share`);
export async function rerun(id, models, params) {
  const body = { models };
  if (params) body.params = params;
  const { session } = await request('POST', `/sessions/${enc(id)}/rerun`, body);
  return session;
}
// Conversations (docs/api.md "Conversations"): every turn, oldest first; a new turn.
export async function thread(id, share) {
  const { sessions } = await request('GET', `/sessions/${enc(id)}/thread${shareQS(share)}`);
  return sessions || [];
}
export async function followup(id, body) {
  const { session } = await request('POST', `/sessions/${enc(id)}/followup`, body);
  return session;
}
export async function rate(id, rid, score) {
  const { response } = await request('PUT', `/sessions/${enc(id)}/responses/${enc(rid)}/rating`, { score });
  return response;
}
// Blind comparisons (docs/api.md "Blind comparisons and the leaderboard").
// A viewer votes with the share token it came with; the owner reveals.
export async function vote(id, choice, share) {
  const { vote } = await request('PUT', `/sessions/${enc(id)}/vote${shareQS(share)}`, { choice });
  return vote;
}
export async function reveal(id) {
  const { session } = await request('POST', `/sessions/${enc(id)}/reveal`);
  return session;
}
export function leaderboard(scope, includeLeaks) {
  return request('GET', `/leaderboard?scope=${enc(scope)}${includeLeaks ? '&leaks=include' : ''}`);
}
export async function modelStats() {
  const { models } = await request('GET', '/stats/models');
  return models || [];
}
export const diff = (id, a, b, share) =>
  request('GET', `/sessions/${enc(id)}/diff?a=${enc(a)}&b=${enc(b)}${shareQS(share, false)}`);
export const exportURL = (id, format, share) => `/sessions/${enc(id)}/export?format=${format}${shareQS(share, false)}`;
export const streamURL = (id, since, share) => `/sessions/${enc(id)}/stream?since=${since}${shareQS(share, false)}`;
