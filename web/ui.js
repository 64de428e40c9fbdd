// Small shared pieces: the router, data loading, and presentational
// components. Everything renders through preact, which escapes every text
// and attribute value; nothing here writes HTML strings.
import { html, useState, useEffect, useCallback } from './htm-preact.module.js';

export { html, useState, useEffect, useCallback };

// "#/view/a/b?k=v" -> { view, args, params, raw } (raw: the hash as read)
export function parseHash(h = location.hash) {
  const [path, q] = h.replace(/^#\/?/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { view: parts[0] || 'browse', args: parts.slice(1), params: Object.fromEntries(new URLSearchParams(q || '')), raw: h };
}

export function href(view, args = [], params = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const q = p.toString();
  return '#/' + [view, ...args].map(encodeURIComponent).join('/') + (q ? '?' + q : '');
}

export function useHash() {
  const [h, setH] = useState(parseHash());
  useEffect(() => {
    const on = () => setH(parseHash());
    addEventListener('hashchange', on);
    // A navigation between the first render and this effect fired its
    // hashchange before anyone listened: read the hash again now.
    on();
    return () => removeEventListener('hashchange', on);
  }, []);
  return h;
}

// Loads with fn() whenever deps change: { data, error, loading, reload }.
export function useLoad(fn, deps) {
  const [st, setSt] = useState({ loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setSt((s) => ({ ...s, loading: true }));
    fn().then((data) => live && setSt({ data, loading: false }), (error) => live && setSt({ error, loading: false }));
    return () => { live = false; };
  }, [...deps, n]);
  return { ...st, reload: useCallback(() => setN((x) => x + 1), []) };
}

export function Problem({ error }) {
  if (!error) return null;
  const p = error.problem || {};
  return html`<div class="problem" role="alert">
    <strong>${p.title || 'Error'}${error.status ? ` (${error.status})` : ''}</strong>
    <span>${error.message}</span>${p.code ? html` <code>${p.code}</code>` : ''}
    ${p.missing_permission ? html`<div>Missing permission: <code>${p.missing_permission}</code></div>` : ''}
    ${Array.isArray(p.errors) ? html`<ul>${p.errors.map((e) => html`<li><code>${e.path}</code> ${e.message}</li>`)}</ul>` : ''}
  </div>`;
}

export function Loading({ what = 'Loading' }) {
  return html`<p class="muted" role="status" aria-live="polite">${what}…</p>`;
}

export const Badge = ({ kind = '', children }) => html`<span class=${'badge ' + kind}>${children}</span>`;

export function Field({ label, children, hint }) {
  return html`<label class="field"><span class="label">${label}</span>${children}${hint ? html`<small>${hint}</small>` : ''}</label>`;
}

export const short = (id) => (id ? String(id).slice(0, 10) : '');
export const when = (t) => (t ? String(t).replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');
export const show = (v) => (v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
