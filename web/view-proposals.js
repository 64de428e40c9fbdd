// Proposals: the list (with "needs my review"), a new proposal, and one
// proposal with its diff, conflicts (resolved by merging the target into the
// source with a choice per resource), its review (view-review.js), and merge.
import { api, seg, qs } from './api.js';
import { html, useState, useLoad, href, Problem, Loading, Badge, Field, short, when, show } from './ui.js';
import { Changes } from './view-compare.js';
import { MergeStatus, ReviewActions, Reviewers, Thread } from './view-review.js';

export function Proposals({ branch, route, branches }) {
  const state = route.params.state || '';
  const mine = route.params.mine === '1';
  const list = useLoad(() => api('GET', `/api/v1/proposals${qs({ state, needs_review: mine ? 'true' : '', limit: 100 })}`), [state, mine]);
  const [form, setForm] = useState({ source: branch === 'main' ? '' : branch, target: 'main', title: '', description: '', draft: false, reviewers: '' });
  const [err, setErr] = useState(null);
  const [badReviewers, setBadReviewers] = useState(false);
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  const create = async (e) => {
    e.preventDefault(); setErr(null); setBadReviewers(false);
    const { reviewers: text, ...body } = form;
    const reviewers = reviewerList(text);
    if (!reviewers) {
      setBadReviewers(true);
      setErr({ message: 'Reviewers: an entry between commas is empty; name a subject there or remove the extra comma.' });
      document.getElementById('p-reviewers')?.focus();
      return;
    }
    if (reviewers.length) body.reviewers = reviewers;
    // The server checks the subjects again (count, length): its refusal shows as its problem detail.
    try { const p = await api('POST', '/api/v1/proposals', { body }); location.hash = href('proposals', [p.id], { branch }); }
    catch (x) { setErr(x); }
  };
  return html`<h1>Proposals</h1>
    <div class="toolbar"><label><span class="label">State</span>
      <select id="state" value=${state} onChange=${(e) => { location.hash = href('proposals', [], { branch, state: e.target.value, mine: mine ? '1' : '' }); }}>
        ${['', 'draft', 'open', 'approved', 'merged', 'closed'].map((s) => html`<option value=${s}>${s || 'any'}</option>`)}</select></label>
      <label class="check"><input type="checkbox" id="needs-review" checked=${mine}
        onChange=${(e) => { location.hash = href('proposals', [], { branch, state, mine: e.target.checked ? '1' : '' }); }} /> Needs my review</label></div>
    ${mine ? html`<p class="muted" id="list-note">Open proposals that request your review and have no verdict of yours on their current head.</p>` : ''}
    <${Problem} error=${list.error} />
    ${list.data && !list.data.items.length && !list.loading ? html`<p class="muted" id="no-proposals">No proposals${mine ? ' need your review' : ''}.</p>` : ''}
    ${list.data ? html`<table class="list" id="proposal-list" data-filter=${list.loading ? 'loading' : (mine ? 'mine' : 'all') + ':' + state}><thead><tr><th scope="col">Title</th><th scope="col">Source → target</th><th scope="col">State</th><th scope="col">Author</th><th scope="col">Created</th></tr></thead>
      <tbody>${list.data.items.map((p) => html`<tr data-id=${p.id}><td><a href=${href('proposals', [p.id], { branch })}>${p.title}</a></td>
        <td>${p.source} → ${p.target}</td><td><${Badge} kind=${p.state}>${p.state}<//></td><td>${p.author}</td><td>${when(p.created_at)}</td></tr>`)}</tbody></table>`
      : html`<${Loading} />`}
    <section aria-labelledby="newp"><h2 id="newp">New proposal</h2>
      <form class="grid" onSubmit=${create}>
        <${Field} label="Source branch"><input id="p-source" list="branch-names" required value=${form.source} onInput=${set('source')} /><//>
        <${Field} label="Target branch"><input id="p-target" list="branch-names" required value=${form.target} onInput=${set('target')} /><//>
        <datalist id="branch-names">${branches.map((b) => html`<option value=${b.name} />`)}</datalist>
        <${Field} label="Title"><input id="p-title" required value=${form.title} onInput=${set('title')} /><//>
        <${Field} label="Description"><textarea id="p-description" rows="3" value=${form.description} onInput=${set('description')}></textarea><//>
        <${Field} label="Reviewers" hint="Subjects, comma-separated; optional."><input id="p-reviewers" autocomplete="off"
          value=${form.reviewers} onInput=${set('reviewers')} aria-invalid=${badReviewers ? 'true' : 'false'} /><//>
        <label class="check"><input type="checkbox" checked=${form.draft} onChange=${set('draft')} /> Draft</label>
        <div><button type="submit" class="primary">Create proposal</button></div>
      </form><${Problem} error=${err} /></section>`;
}

// "a, b" -> ['a', 'b']; blank -> []; null when an entry is empty ("a,,b", "a,").
function reviewerList(text) {
  if (!text.trim()) return [];
  const list = text.split(',').map((s) => s.trim());
  return list.every(Boolean) ? list : null;
}

function Conflicts({ p, onDone }) {
  const [choice, setChoice] = useState({});
  const [issue, setIssue] = useState('');
  const [err, setErr] = useState(null);
  if (!p.conflicts || !p.conflicts.length) return null;
  // Resolved on the source branch: merge the target into it, choosing per resource.
  const resolve = async (e) => {
    e.preventDefault(); setErr(null);
    const resolutions = {};
    for (const c of p.conflicts) resolutions[c.resource] = choice[c.resource] === 'theirs' ? 'source' : 'target';
    try {
      await api('POST', `/api/v1/branches/${seg(p.source)}/merge`, { body: { source: p.target, resolutions,
        message: `Resolve conflicts with ${p.target}${issue ? ' ' + issue : ''}`, ...(issue ? { issue_id: issue } : {}) } });
      onDone();
    } catch (x) { setErr(x); }
  };
  return html`<section aria-labelledby="conf" class="conflicts"><h2 id="conf">Conflicts <${Badge} kind="bad">${p.conflicts.length}<//></h2>
    <form onSubmit=${resolve}>
    ${p.conflicts.map((c) => html`<fieldset class="conflict"><legend><strong>${c.resource}</strong> <span class="muted">${c.type}</span></legend>
      ${c.fields ? html`<table class="fields-diff"><thead><tr><th scope="col">Field</th><th scope="col">Base</th><th scope="col">${p.source}</th><th scope="col">${p.target}</th></tr></thead>
        <tbody>${c.fields.map((f) => html`<tr><td><code>${f.path}</code></td><td>${show(f.base)}</td><td>${show(f.source)}</td><td>${show(f.target)}</td></tr>`)}</tbody></table>` : ''}
      <label class="check"><input type="radio" name=${'r-' + c.resource} checked=${choice[c.resource] !== 'theirs'}
        onChange=${() => setChoice({ ...choice, [c.resource]: 'ours' })} /> Keep ${p.source}'s version</label>
      <label class="check"><input type="radio" name=${'r-' + c.resource} checked=${choice[c.resource] === 'theirs'}
        onChange=${() => setChoice({ ...choice, [c.resource]: 'theirs' })} /> Take ${p.target}'s version</label>
    </fieldset>`)}
    <${Field} label="Issue key"><input id="resolve-issue" value=${issue} onInput=${(e) => setIssue(e.target.value)} /><//>
    <button type="submit" class="primary">Resolve on ${p.source}</button></form><${Problem} error=${err} /></section>`;
}

export function ProposalView({ branch, route, me }) {
  const id = route.args[0];
  const r = useLoad(() => api('GET', `/api/v1/proposals/${seg(id)}`), [id]);
  const [msg, setMsg] = useState('');
  const [issue, setIssue] = useState('');
  const [err, setErr] = useState(null);
  const [note, setNote] = useState('');
  const [tick, setTick] = useState(0);
  const [anchor, setAnchor] = useState(null);
  // True when done; the view and the thread are read again either way (a
  // refused merge may come from a change someone else made meanwhile).
  const act = async (verb, body) => {
    setErr(null); setNote('');
    try { await api('POST', `/api/v1/proposals/${seg(id)}/${verb}`, body ? { body } : {}); setNote(`${LABEL[verb] || verb}: done`); return true; }
    catch (x) { setErr(x); return false; }
    finally { r.reload(); setTick((n) => n + 1); }
  };
  const p = r.data;
  if (r.error) return html`<${Problem} error=${r.error} />`;
  if (!p) return html`<${Loading} />`;
  const live = p.state === 'open' || p.state === 'approved';
  const cr = p.changes_requested || [];
  // One container, and a fixed element around each component and each part
  // that may render nothing: the bundled Preact can misplace siblings when
  // such a part changes (seen after a merge: the reviewers and the thread
  // moved above the changes).
  return html`<div class="proposal"><p><a href=${href('proposals', [], { branch })}>← Proposals</a></p>
    <h1 data-proposal=${p.id}>${p.title} <${Badge} kind=${p.state}>${p.state}<//> ${p.breaking ? html`<${Badge} kind="breaking">breaking<//>` : ''}
      ${live && cr.length ? html` <${Badge} kind="changes_requested">changes requested<//>` : ''}</h1>
    <p><strong>${p.source}</strong> → <strong>${p.target}</strong> by ${p.author}, ${when(p.created_at)}
      ${(p.issue_keys || []).map((k) => html` <${Badge} kind="issue">${k}<//>`)}</p>
    <p class="desc">${p.description}</p>
    <p>${p.required_approvals !== undefined ? html`Approvals: ${(p.approvals || []).length} of ${p.required_approvals}
      ${(p.approvals || []).map((a) => html` <${Badge} kind="ok">${a.reviewer}<//>`)}` : ''}
      ${p.mergeable ? html` <${Badge} kind="ok">mergeable<//>` : ''} ${p.merged_commit ? html`Merged as <code>${short(p.merged_commit)}</code>` : ''}</p>
    <div class="slot"><${MergeStatus} p=${p} /></div>
    <div class="actions" role="group" aria-label="Proposal">
      ${p.state === 'draft' ? html`<button type="button" onClick=${() => act('open')}>Open for review</button>` : ''}
      ${p.state !== 'merged' && p.state !== 'closed' ? html`<button type="button" onClick=${() => act('close')}>Close</button>` : ''}
    </div>
    <div class="slot">${live ? html`<form class="toolbar merge" onSubmit=${(e) => { e.preventDefault(); act('merge', { message: msg || `Merge proposal: ${p.title}`, ...(issue ? { issue_id: issue } : {}) }); }}>
      <label><span class="label">Merge message</span><input id="merge-message" value=${msg} onInput=${(e) => setMsg(e.target.value)} /></label>
      <label><span class="label">Issue key</span><input id="merge-issue" value=${issue} onInput=${(e) => setIssue(e.target.value)} /></label>
      <button type="submit" id="merge" class="primary" aria-describedby="merge-status">Merge</button></form>` : null}</div>
    <p role="status" aria-live="polite" id="note">${note}</p><div id="action-problem"><${Problem} error=${err} /></div>
    <div class="slot"><${ReviewActions} p=${p} me=${me} act=${act} /></div>
    <div class="slot"><${Conflicts} p=${p} onDone=${() => { setNote('conflicts resolved'); r.reload(); }} /></div>
    <h2 id="changes-h">Changes</h2><div class="slot"><${Changes} changes=${p.changes} onComment=${(resource, field) => setAnchor({ resource, field })} /></div>
    <div class="slot"><${Reviewers} p=${p} me=${me} act=${act} /></div>
    <div class="slot"><${Thread} p=${p} tick=${tick} anchor=${anchor} /></div></div>`;
}

const LABEL = { open: 'Opened', close: 'Closed', merge: 'Merged', approve: 'Approved', reject: 'Rejected',
  'request-changes': 'Changes requested', dismiss: 'Review withdrawn', reviewers: 'Reviewers requested' };
