// The console talks to the same /v1 API as every other client. A token (when
// the server has authentication on) is kept for this browser tab only.

const TOKEN_KEY = 'baton-token';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || 'http-' + status;
    /** What a refused deployment found wrong, each with its file and element. */
    this.diagnostics = problem.diagnostics || [];
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

async function send(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const secret = token();
  if (secret) headers.authorization = `Bearer ${secret}`;
  // Who the user said they are (tasks page); a server with authentication records the token's holder instead.
  const me = localStorage.getItem('baton-user');
  if (me && /^[ -~]{1,128}$/.test(me) && me.trim() === me) headers['x-baton-actor'] = me;
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return null;
  const text = await response.text();
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = { detail: text };
  }
  if (!response.ok) throw new ApiError(response.status, value || {});
  return value;
}

export const get = (path) => send('GET', path);
export const post = (path, body = {}) => send('POST', path, body);

/** A query string of the given pairs, leaving out empty ones. */
export function query(pairs) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(pairs)) {
    if (value !== undefined && value !== null && value !== '') search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Every item of a paged list (for lists an instance bounds, such as its history). */
export async function all(path, limit = 1000) {
  const items = [];
  let after = null;
  for (;;) {
    const separator = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${separator}limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ''}`);
    items.push(...page.items);
    if (!page.next) return items;
    after = page.next;
  }
}
