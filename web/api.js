// The API client: every call carries the token (kept in sessionStorage,
// never in a URL); problem documents become Error objects with the problem.
const KEY = 'oms.token';

export const session = {
  get token() { return sessionStorage.getItem(KEY); },
  set token(t) { if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

// Path segments are percent-encoded here, once: a branch "feature/x" becomes feature%2Fx.
export const seg = (s) => encodeURIComponent(s);

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
  const s = u.toString();
  return s ? '?' + s : '';
}

export async function api(method, path, { body, headers = {}, raw = false } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (session.token) h.Authorization = 'Bearer ' + session.token;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
                                credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' });
  if (r.status === 401 && session.token) window.dispatchEvent(new CustomEvent('oms-unauthorized'));
  const type = r.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await r.json().catch(() => null) : await r.text();
  if (!r.ok) throw new ApiError(r.status, typeof data === 'object' ? data : { detail: String(data).slice(0, 300) });
  return raw ? { data, headers: r.headers, status: r.status } : data;
}

// Non-ASCII commit messages travel percent-encoded (SPEC §5).
export const headerText = (s) => encodeURIComponent(s).replace(/%20/g, ' ');

export const KINDS = [
  ['object-types', 'Object types'], ['link-types', 'Link types'], ['action-types', 'Action types'],
  ['function-types', 'Function types'], ['interfaces', 'Interfaces'], ['shared-properties', 'Shared properties'],
];
