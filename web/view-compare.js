// Comparing two refs (branches, tags or commits): per resource, added,
// removed or modified, with field-level changes and breaking badges.
import { api, qs } from './api.js';
import { html, useState, useLoad, href, Problem, Loading, Badge, show } from './ui.js';

// onComment(resource, pointer), when given, adds a "Comment" button to each
// resource and field (the proposal view's review thread).
export function Changes({ changes, onComment }) {
  if (!changes || !changes.length) return html`<p class="muted">No changes.</p>`;
  return html`<ul class="changes">${changes.map((c) => html`<li class=${'change ' + c.change}>
    <div><${Badge} kind=${c.change}>${c.change}<//> <strong>${c.resource}</strong>
      ${c.breaking ? html` <${Badge} kind="breaking">breaking<//>` : ''}
      ${onComment ? html` <button type="button" class="link" aria-label=${'Comment on ' + c.resource} onClick=${() => onComment(c.resource, '')}>Comment</button>` : ''}</div>
    ${c.fields && c.fields.length ? html`<table class="fields-diff"><thead><tr><th scope="col">Field</th><th scope="col">Before</th><th scope="col">After</th><th scope="col"><span class="sr-only">Breaking</span></th></tr></thead>
      <tbody>${c.fields.map((f) => html`<tr class=${f.op}>
        <td><code>${f.path || '/'}</code>${onComment && f.path ? html` <button type="button" class="link"
          aria-label=${`Comment on ${c.resource} field ${f.path}`} onClick=${() => onComment(c.resource, f.path)}>Comment</button>` : ''}</td>
        <td class="old">${f.old === undefined ? '' : html`<del>${show(f.old)}</del>`}</td>
        <td class="new">${f.new === undefined ? '' : html`<ins>${show(f.new)}</ins>`}</td>
        <td>${f.breaking ? html`<${Badge} kind="breaking" title=${f.reason || ''}>breaking${f.rule ? `: ${f.rule}` : ''}<//>
          ${f.reason ? html`<div class="muted">${f.reason}</div>` : ''}` : ''}</td></tr>`)}</tbody></table>` : ''}
  </li>`)}</ul>`;
}

export function Compare({ branch, route }) {
  const [from, setFrom] = useState(route.params.from || 'main');
  const [to, setTo] = useState(route.params.to || branch);
  const p = route.params;
  const d = useLoad(() => (p.from && p.to ? api('GET', `/api/v1/diff${qs({ from: p.from, to: p.to })}`) : Promise.resolve(null)), [p.from, p.to]);
  return html`<h1>Compare</h1>
    <form class="toolbar" onSubmit=${(e) => { e.preventDefault(); location.hash = href('compare', [], { branch, from, to }); }}>
      <label><span class="label">From</span><input id="from" value=${from} onInput=${(e) => setFrom(e.target.value)} /></label>
      <label><span class="label">To</span><input id="to" value=${to} onInput=${(e) => setTo(e.target.value)} /></label>
      <button type="submit" class="primary">Compare</button></form>
    <${Problem} error=${d.error} />
    ${d.loading && p.from ? html`<${Loading} />` : ''}
    ${d.data ? html`<p>${d.data.changes.length} changed resources ${d.data.breaking ? html`<${Badge} kind="breaking">breaking<//>` : html`<${Badge} kind="ok">no breaking change<//>`}</p>
      <${Changes} changes=${d.data.changes} />` : ''}`;
}
