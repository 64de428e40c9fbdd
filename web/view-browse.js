// Browsing the ontology of a branch, tag or commit: by kind, one resource
// with its history, search, and a graph of object and link types.
import { api, seg, qs, KINDS } from './api.js';
import { html, useState, useLoad, href, Problem, Loading, Badge, short, when, show } from './ui.js';

const kindLabel = (k) => (KINDS.find(([s]) => s === k) || [k, k])[1];

function KindTabs({ kind, branch, at }) {
  return html`<nav class="tabs" aria-label="Resource kinds"><ul>${KINDS.map(([k, label]) => html`<li>
    <a href=${href('browse', [k], { branch, at })} aria-current=${k === kind ? 'page' : undefined}>${label}</a></li>`)}
  </ul></nav>`;
}

export function Browse({ branch, at, route }) {
  const kind = route.args[0] || 'object-types';
  const [q, setQ] = useState(route.params.q || '');
  const [pages, setPages] = useState([]);
  const list = useLoad(() => api('GET', `/api/v1/schemas/${seg(branch)}/${kind}${qs({ q: route.params.q, at, limit: 100 })}`)
    .then((p) => { setPages([]); return p; }), [branch, kind, at, route.params.q]);
  const more = async () => {
    const last = pages.length ? pages[pages.length - 1] : list.data;
    setPages([...pages, await api('GET', `/api/v1/schemas/${seg(branch)}/${kind}${qs({ q: route.params.q, at, limit: 100, cursor: last.next_cursor })}`)]);
  };
  const items = list.data ? [list.data, ...pages].flatMap((p) => p.items) : [];
  const last = pages.length ? pages[pages.length - 1] : list.data;
  return html`<h1>${kindLabel(kind)} <small class="muted">on ${branch}${at ? ` at ${at}` : ''}</small></h1>
    <${KindTabs} kind=${kind} branch=${branch} at=${at} />
    <div class="toolbar">
      <form role="search" onSubmit=${(e) => { e.preventDefault(); location.hash = href('browse', [kind], { branch, at, q }); }}>
        <label><span class="label">Filter</span>
          <input id="filter" type="search" value=${q} onInput=${(e) => setQ(e.target.value)} /></label>
        <button type="submit">Filter</button>
      </form>
      ${!at ? html`<a class="button" href=${href('edit', [kind, ''], { branch })}>New ${kindLabel(kind).replace(/s$/, '').toLowerCase()}</a>` : ''}
    </div>
    ${list.loading && !list.data ? html`<${Loading} />` : ''}<${Problem} error=${list.error} />
    ${list.data ? html`<table class="list"><caption class="sr-only">${kindLabel(kind)}</caption>
      <thead><tr><th scope="col">API name</th><th scope="col">Display name</th><th scope="col">Status</th><th scope="col">Description</th></tr></thead>
      <tbody>${items.map((r) => html`<tr>
        <td><a href=${href('r', [kind, r.api_name], { branch, at })}>${r.api_name}</a></td>
        <td>${r.display_name}</td><td><${Badge} kind=${r.status}>${r.status}<//></td>
        <td class="desc">${r.description}</td></tr>`)}</tbody></table>
      ${items.length === 0 ? html`<p class="muted">Nothing here yet.</p>` : ''}
      ${last && last.next_cursor ? html`<button type="button" onClick=${more}>Show more</button>` : ''}` : ''}`;
}

function FieldRows({ doc }) {
  const skip = new Set(['meta', 'properties', 'parameters', 'inputs', 'rules']);
  return html`<dl class="fields">${Object.entries(doc).filter(([k]) => !skip.has(k)).map(([k, v]) => html`
    <dt>${k}</dt><dd>${show(v)}</dd>`)}</dl>`;
}

function Items({ title, items }) {
  if (!Array.isArray(items) || !items.length) return null;
  const cols = [...new Set(items.flatMap((i) => Object.keys(i)))];
  return html`<h2>${title}</h2><div class="scroll"><table class="list"><thead><tr>${cols.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
    <tbody>${items.map((i) => html`<tr>${cols.map((c) => html`<td>${show(i[c])}</td>`)}</tr>`)}</tbody></table></div>`;
}

export function History({ branch, resource, at }) {
  const h = useLoad(() => api('GET', `/api/v1/branches/${seg(branch)}/commits${qs({ resource, limit: 50 })}`), [branch, resource]);
  return html`<section aria-labelledby="hist"><h2 id="hist">History</h2><${Problem} error=${h.error} />
    ${h.data ? html`<ol class="history">${h.data.items.map((c, i) => html`<li>
      <code>${short(c.id)}</code> <span>${c.message}</span> <span class="muted">${c.author}, ${when(c.time)}</span>
      ${(c.issue_keys || []).map((k) => html` <${Badge} kind="issue">${k}<//>`)}
      ${h.data.items[i + 1] ? html` <a href=${href('compare', [], { branch, from: h.data.items[i + 1].id, to: c.id })}>changes</a>` : ''}
    </li>`)}</ol>` : html`<${Loading} />`}</section>`;
}

export function ResourceView({ branch, at, route }) {
  const [kind, name] = route.args;
  const r = useLoad(() => api('GET', `/api/v1/schemas/${seg(branch)}/${kind}/${seg(name)}${qs({ at })}`), [branch, kind, name, at]);
  const d = r.data;
  return html`<p><a href=${href('browse', [kind], { branch, at })}>← ${kindLabel(kind)}</a></p>
    <${Problem} error=${r.error} />
    ${d ? html`<h1>${d.display_name} <small class="muted">${kind}/${d.api_name}</small> <${Badge} kind=${d.status}>${d.status}<//></h1>
      <p class="desc">${d.description}</p>
      ${!at ? html`<p><a class="button primary" href=${href('edit', [kind, d.api_name], { branch })}>Edit</a></p>` : ''}
      <${FieldRows} doc=${d} />
      <${Items} title="Properties" items=${d.properties} /><${Items} title="Parameters" items=${d.parameters} />
      <${Items} title="Inputs" items=${d.inputs} /><${Items} title="Rules" items=${d.rules} />
      ${d.meta ? html`<p class="muted">Last commit <code>${short(d.meta.last_commit)}</code> by ${d.meta.author}, ${when(d.meta.updated_at)}; ETag <code>${short(d.meta.etag)}</code></p>` : ''}
      <${History} branch=${branch} at=${at} resource=${`${kind}/${d.api_name}`} />` : r.loading ? html`<${Loading} />` : ''}`;
}

export function Search({ branch, at, route }) {
  const [q, setQ] = useState(route.params.q || '');
  const res = useLoad(() => (route.params.q ? api('GET', `/api/v1/search/${seg(branch)}${qs({ q: route.params.q, at, limit: 50 })}`)
    : Promise.resolve(null)), [branch, at, route.params.q]);
  return html`<h1>Search <small class="muted">${branch}</small></h1>
    <form role="search" class="toolbar" onSubmit=${(e) => { e.preventDefault(); location.hash = href('search', [], { branch, at, q }); }}>
      <label><span class="label">Terms</span><input id="q" type="search" value=${q} onInput=${(e) => setQ(e.target.value)} /></label>
      <button type="submit" class="primary">Search</button></form>
    <${Problem} error=${res.error} />
    ${res.data ? html`<p class="muted" role="status">${res.data.total ?? res.data.items.length} results</p>
      <ul class="results">${res.data.items.map((it) => {
        const [k, n] = (it.resource || `${it.kind}/${it.api_name}`).split('/');
        return html`<li><a href=${href('r', [k, n], { branch, at })}>${it.display_name || n}</a>
          <span class="muted"> ${k}/${n}</span>${it.description ? html`<div class="desc">${it.description}</div>` : ''}</li>`;
      })}</ul>` : ''}`;
}

// Object types as nodes on a circle, link types as edges; at most LIMIT nodes.
const LIMIT = 150;
export function Graph({ branch, at }) {
  const g = useLoad(async () => {
    const [o, l] = await Promise.all([
      api('GET', `/api/v1/schemas/${seg(branch)}/object-types${qs({ at, limit: LIMIT })}`),
      api('GET', `/api/v1/schemas/${seg(branch)}/link-types${qs({ at, limit: 1000 })}`)]);
    return { nodes: o.items, links: l.items, more: !!o.next_cursor };
  }, [branch, at]);
  if (g.error) return html`<${Problem} error=${g.error} />`;
  if (!g.data) return html`<${Loading} />`;
  const { nodes, links } = g.data;
  const R = Math.max(120, nodes.length * 9), W = 2 * R + 240;
  const pos = new Map(nodes.map((n, i) => {
    const a = (2 * Math.PI * i) / Math.max(1, nodes.length);
    return [n.api_name, { x: W / 2 + R * Math.cos(a), y: W / 2 + R * Math.sin(a) }];
  }));
  return html`<h1>Graph <small class="muted">${nodes.length} object types, ${links.length} link types</small></h1>
    ${g.data.more ? html`<p class="muted">Showing the first ${LIMIT} object types.</p>` : ''}
    <div class="graph"><svg viewBox=${`0 0 ${W} ${W}`} role="img" aria-label="Object types and the link types between them">
      ${links.filter((l) => pos.has(l.from) && pos.has(l.to)).map((l) => {
        const a = pos.get(l.from), b = pos.get(l.to);
        return html`<g class="edge"><line x1=${a.x} y1=${a.y} x2=${b.x} y2=${b.y} /><title>${l.api_name}: ${l.from} → ${l.to} (${l.cardinality})</title>
          <text x=${(a.x + b.x) / 2} y=${(a.y + b.y) / 2}>${l.api_name}</text></g>`;
      })}
      ${nodes.map((n) => { const p = pos.get(n.api_name); return html`<a href=${href('r', ['object-types', n.api_name], { branch, at })}>
        <g class="node"><circle cx=${p.x} cy=${p.y} r="6" /><text x=${p.x + 9} y=${p.y + 4}>${n.display_name}</text></g></a>`; })}
    </svg></div>
    <h2>Link types</h2><ul>${links.map((l) => html`<li><a href=${href('r', ['link-types', l.api_name], { branch, at })}>${l.api_name}</a>: ${l.from} → ${l.to} <span class="muted">${l.cardinality}</span></li>`)}</ul>`;
}
