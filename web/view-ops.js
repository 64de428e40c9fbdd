// Operations views: locks with live progress, the audit log with filters and
// chain verification, and security alerts.
import { api, qs } from './api.js';
import { html, useState, useEffect, useLoad, href, Problem, Loading, Badge, Field, short, when, show } from './ui.js';

// Re-reads every `ms` while the page is visible.
function usePoll(reload, ms) {
  useEffect(() => {
    const t = setInterval(() => { if (!document.hidden) reload(); }, ms);
    return () => clearInterval(t);
  }, [reload, ms]);
}

export function Locks({ branch }) {
  const l = useLoad(() => api('GET', '/api/v1/locks?limit=1000'), []);
  usePoll(l.reload, 1000);
  return html`<h1>Locks <small class="muted">live</small></h1><${Problem} error=${l.error} />
    ${l.data ? html`<table class="list" id="locks"><thead><tr><th scope="col">Scope</th><th scope="col">Kind</th><th scope="col">Holder</th>
      <th scope="col">Progress</th><th scope="col">Expires</th></tr></thead>
      <tbody>${l.data.items.map((k) => {
        const pr = k.progress || {};
        return html`<tr data-lock=${k.id}><td>${k.branch}${k.resource_type ? ` ${k.resource_type}` : ''}${k.resource_id ? `/${k.resource_id}` : ''} <span class="muted">${k.scope}</span>
          ${k.reason ? html`<div class="desc">${k.reason}</div>` : ''}</td>
          <td>${k.kind}</td><td>${k.holder}</td>
          <td><progress max="100" value=${pr.percent || 0} aria-label=${`Progress of lock ${short(k.id)}`}>${pr.percent || 0}%</progress>
            <span class="pct">${pr.percent !== undefined && pr.percent !== null ? `${pr.percent}%` : '—'}</span>
            ${pr.phase ? html` <${Badge}>${pr.phase}<//>` : ''} ${pr.message ? html`<div class="muted">${pr.message}</div>` : ''}</td>
          <td>${when(k.expires_at)}</td></tr>`;
      })}</tbody></table>
      ${l.data.items.length === 0 ? html`<p class="muted">No live locks.</p>` : ''}` : html`<${Loading} />`}`;
}

const FILTERS = ['actor', 'action', 'resource', 'branch', 'outcome', 'from', 'to'];

export function Audit({ branch, route }) {
  const p = route.params;
  const filters = Object.fromEntries(FILTERS.map((f) => [f, p['f_' + f] || '']));
  const [form, setForm] = useState(filters);
  const list = useLoad(() => api('GET', `/api/v1/audit${qs({ ...filters, limit: 100 })}`), [JSON.stringify(filters)]);
  const [verify, setVerify] = useState(null);
  const apply = (e) => {
    e.preventDefault();
    const q = { branch };
    for (const f of FILTERS) q['f_' + f] = form[f];
    location.hash = href('audit', [], q);
  };
  const doVerify = async () => {
    setVerify({ running: true });
    try { setVerify(await api('GET', '/api/v1/audit/verify')); } catch (e) { setVerify({ error: e }); }
  };
  return html`<h1>Audit log</h1>
    <form class="grid filters" onSubmit=${apply} aria-label="Audit filters">
      ${FILTERS.map((f) => html`<${Field} label=${f[0].toUpperCase() + f.slice(1)}>${f === 'outcome'
        ? html`<select id=${'f-' + f} value=${form[f]} onChange=${(e) => setForm({ ...form, [f]: e.target.value })}>
            ${['', 'success', 'denied', 'failure'].map((o) => html`<option value=${o}>${o || 'any'}</option>`)}</select>`
        : html`<input id=${'f-' + f} value=${form[f]} placeholder=${f === 'from' || f === 'to' ? '2026-01-01T00:00:00Z' : ''}
            onInput=${(e) => setForm({ ...form, [f]: e.target.value })} />`}<//>`)}
      <div><button type="submit" class="primary">Apply filters</button></div></form>
    <div class="toolbar"><button type="button" id="verify" onClick=${doVerify}>Verify the chain</button>
      <span role="status" aria-live="polite" id="verify-result">${!verify ? '' : verify.running ? 'Verifying…'
        : verify.error ? html`<${Problem} error=${verify.error} />`
        : verify.ok ? html`<${Badge} kind="ok">chain intact<//> ${verify.events_checked} events, ${verify.checkpoints_checked} checkpoints checked`
        : html`<${Badge} kind="bad">chain broken<//> at event ${show(verify.first_bad_seq)}: ${verify.reason}`}</span></div>
    <${Problem} error=${list.error} />
    ${list.data ? html`<div class="scroll"><table class="list" id="audit"><thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Actor</th>
      <th scope="col">Action</th><th scope="col">Resource</th><th scope="col">Outcome</th><th scope="col">Status</th><th scope="col">Issues</th></tr></thead>
      <tbody>${list.data.items.map((e) => html`<tr><td>${e.seq}</td><td>${when(e.time)}</td><td>${e.actor && e.actor.sub}</td><td>${e.action}</td>
        <td>${e.resource ? [e.resource.kind, e.resource.id].filter(Boolean).join('/') : ''}${e.resource && e.resource.branch ? html` <span class="muted">on ${e.resource.branch}</span>` : ''}</td>
        <td><${Badge} kind=${e.outcome === 'success' ? 'ok' : 'bad'}>${e.outcome}<//></td><td>${e.status}</td>
        <td>${(e.issue_keys || []).join(', ')}</td></tr>`)}</tbody></table></div>` : html`<${Loading} />`}`;
}

export function Alerts() {
  const a = useLoad(() => api('GET', '/api/v1/alerts?limit=100'), []);
  usePoll(a.reload, 5000);
  return html`<h1>Alerts</h1><${Problem} error=${a.error} />
    ${a.data ? html`<table class="list"><thead><tr><th scope="col">Time</th><th scope="col">Rule</th><th scope="col">Severity</th><th scope="col">Subject</th><th scope="col">Detail</th></tr></thead>
      <tbody>${a.data.items.map((x) => html`<tr><td>${when(x.time)}</td><td>${x.rule}</td><td><${Badge} kind=${x.severity}>${x.severity}<//></td>
        <td>${x.subject}</td><td class="desc">${show(x.detail)}</td></tr>`)}</tbody></table>
      ${a.data.items.length === 0 ? html`<p class="muted">No alerts.</p>` : ''}` : html`<${Loading} />`}`;
}
