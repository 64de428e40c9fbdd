// A proposal's review (SPEC §4): the merge status (why a merge is blocked),
// the verdict buttons with a comment, withdrawing one's own review, the
// requested reviewers, and the thread of comments with their anchors
// (the whole proposal, a resource, or a field pointer within it).
import { api, seg } from './api.js';
import { html, useState, useEffect, useLoad, Problem, Loading, Badge, Field, short, when } from './ui.js';

const VERDICT = { approved: 'approved', rejected: 'rejected', changes_requested: 'changes requested', dismissed: 'withdrawn' };
const same = (a, b) => String(a || '').toLowerCase() === String(b || '').toLowerCase();
const can = (me, perm) => (me.permissions || []).includes(perm);

// Why a merge can or cannot happen, from the proposal's own view; the
// server decides again at merge time (409 changes_requested and others).
export function MergeStatus({ p }) {
  const live = p.state === 'open' || p.state === 'approved';
  if (!live) return null;
  const cr = p.changes_requested || [];
  const approvals = (p.approvals || []).length;
  const reasons = [];
  if (cr.length) reasons.push(html`<li><strong>Changes requested</strong> by ${cr.map((c, i) => html`${i ? ', ' : ''}<strong>${c.reviewer}</strong>`)}:
    the merge waits until ${cr.length > 1 ? 'each of them' : 'that reviewer'} approves the current head or withdraws the request
    (the server answers 409 <code>changes_requested</code>).
    <ul class="requests">${cr.map((c) => html`<li><strong>${c.reviewer}</strong> <span class="muted">${when(c.at)}, on <code>${short(c.source_head)}</code></span>
      ${c.comment ? html`<div class="body">${c.comment}</div>` : ''}</li>`)}</ul></li>`);
  if (p.state === 'draft') reasons.push(html`<li>The proposal is a draft: its author opens it for review first.</li>`);
  if (p.required_approvals !== undefined && approvals < p.required_approvals)
    reasons.push(html`<li>Approvals: ${approvals} of ${p.required_approvals}${p.breaking ? ' (a breaking change)' : ''}.</li>`);
  if ((p.conflicts || []).length) reasons.push(html`<li>It conflicts with ${p.target}: resolve the conflicts below.</li>`);
  if (p.blocked_by_policy) reasons.push(html`<li>${p.target} refuses breaking changes (compatibility <code>block</code>).</li>`);
  if (p.preview_error) reasons.push(html`<li>${p.preview_error}</li>`);
  if (p.mergeable) return html`<div id="merge-status" class="status ok" role="status"><${Badge} kind="ok">ready to merge<//> Every rule is met.</div>`;
  return html`<div id="merge-status" class=${'status ' + (cr.length ? 'blocked' : 'waiting')} role="status">
    <strong>${cr.length ? 'Merge blocked' : 'Not mergeable yet'}</strong><ul>${reasons}</ul></div>`;
}

// Verdicts with a comment, and withdrawing one's own review.
export function ReviewActions({ p, me, act }) {
  const [comment, setComment] = useState('');
  const [err, setErr] = useState(null);
  if (p.state !== 'open' && p.state !== 'approved') return null;
  if (!can(me, 'proposal:review')) return null;
  if (same(me.subject, p.author)) return html`<p class="muted">Authors cannot review their own proposals.</p>`;
  const mine = (p.changes_requested || []).some((c) => same(c.reviewer, me.subject)) ||
    (p.approvals || []).some((a) => same(a.reviewer, me.subject));
  const verdict = async (verb) => {
    setErr(null);
    if (verb === 'request-changes' && !comment.trim()) {
      setErr({ message: 'Say what should change: a change request needs a comment.' });
      document.getElementById('review-comment')?.focus();
      return;
    }
    if (await act(verb, comment.trim() ? { comment: comment.trim() } : undefined)) setComment('');
  };
  return html`<section aria-labelledby="yourreview" class="review"><h2 id="yourreview">Your review</h2>
    <${Field} label="Review comment" hint="Optional for an approval; required to request changes.">
      <textarea id="review-comment" rows="3" value=${comment} onInput=${(e) => setComment(e.target.value)}></textarea><//>
    <div class="actions" role="group" aria-label="Review">
      <button type="button" class="primary" onClick=${() => verdict('approve')}>Approve</button>
      <button type="button" onClick=${() => verdict('request-changes')}>Request changes</button>
      <button type="button" onClick=${() => verdict('reject')}>Reject</button>
      ${mine ? html`<button type="button" id="dismiss" onClick=${() => verdict('dismiss')}>Withdraw my review</button>` : ''}
    </div>
    <p class="muted">A change request blocks the merge until you approve the current head or withdraw it; only you can withdraw your review.</p>
    <${Problem} error=${err} /></section>`;
}

export function Reviewers({ p, me, act }) {
  const [names, setNames] = useState('');
  const requested = p.requested_reviewers || [];
  const live = p.state === 'open' || p.state === 'approved';
  const add = async (e) => {
    e.preventDefault();
    const reviewers = names.split(/[\s,]+/).filter(Boolean);
    if (reviewers.length && await act('reviewers', { reviewers })) setNames('');
  };
  const done = (who) => (p.changes_requested || []).find((c) => same(c.reviewer, who)) ? 'changes_requested'
    : (p.approvals || []).find((a) => same(a.reviewer, who)) ? 'approved' : '';
  return html`<section aria-labelledby="reviewers"><h2 id="reviewers">Requested reviewers</h2>
    ${requested.length ? html`<ul class="reviewers">${requested.map((r) => html`<li><span>${r}</span>
      ${done(r) ? html` <${Badge} kind=${done(r)}>${VERDICT[done(r)]}<//>` : live ? html` <span class="muted">review pending</span>` : ''}</li>`)}</ul>`
      : html`<p class="muted">No reviewer requested.</p>`}
    ${can(me, 'proposal:create') && p.state !== 'merged' && p.state !== 'closed' ? html`<form class="toolbar" onSubmit=${add}>
      <label><span class="label">Add reviewers (subjects, comma-separated)</span>
        <input id="add-reviewers" value=${names} onInput=${(e) => setNames(e.target.value)} autocomplete="off" /></label>
      <button type="submit">Request review</button></form>` : ''}
  </section>`;
}

function Anchor({ c }) {
  if (!c.resource) return html`<span class="anchor muted">on the proposal</span>`;
  return html`<span class="anchor">on <code class="res">${c.resource}</code>${c.pointer ? html` field <code class="ptr">${c.pointer}</code>` : ''}</span>`;
}

// The thread: every comment and every verdict given with a comment, in order.
// anchor: { resource, field, n } from a "Comment" button of the changes:
// the form takes it and the focus moves to the comment's text.
export function Thread({ p, tick, anchor, onPosted }) {
  const list = useLoad(() => api('GET', `/api/v1/proposals/${seg(p.id)}/comments?limit=1000`), [p.id, tick]);
  const [form, setForm] = useState({ body: '', resource: '', field: '' });
  useEffect(() => {
    if (!anchor) return;
    setForm((f) => ({ ...f, resource: anchor.resource, field: anchor.field }));
    document.getElementById('comment-body')?.focus();
  }, [anchor]);
  const [err, setErr] = useState(null);
  const resources = [...new Set([...(p.changes || []).map((c) => c.resource), ...(p.conflicts || []).map((c) => c.resource)])];
  const post = async (e) => {
    e.preventDefault(); setErr(null);
    const body = { body: form.body };
    if (form.resource) body.resource = form.resource;
    if (form.resource && form.field.trim()) body.field = form.field.trim();
    try {
      await api('POST', `/api/v1/proposals/${seg(p.id)}/comments`, { body });
      setForm({ body: '', resource: form.resource, field: '' });
      list.reload(); onPosted && onPosted();
    } catch (x) { setErr(x); }
  };
  const items = list.data ? list.data.items : [];
  return html`<section aria-labelledby="thread" class="thread"><h2 id="thread">Review thread</h2>
    <${Problem} error=${list.error} />
    ${list.data ? (items.length ? html`<ol class="comments">${items.map((c) => html`<li class="comment" data-seq=${c.seq}>
        <div class="meta"><strong class="author">${c.author}</strong>
          ${c.verdict ? html` <${Badge} kind=${c.verdict}>${VERDICT[c.verdict] || c.verdict}<//>` : ''}
          <${Anchor} c=${c} /> <span class="muted">${when(c.created_at)}${c.source_head && p.source_head && c.source_head !== p.source_head
            ? html`, on an earlier head <code>${short(c.source_head)}</code>` : ''}</span></div>
        <div class="body">${c.body}</div></li>`)}</ol>` : html`<p class="muted">No comments yet.</p>`) : html`<${Loading} />`}
    <form class="comment-form" onSubmit=${post}>
      <${Field} label="Comment"><textarea id="comment-body" rows="3" required maxlength="10000" value=${form.body}
        onInput=${(e) => setForm({ ...form, body: e.target.value })}></textarea><//>
      <div class="toolbar">
        <label><span class="label">On</span><select id="comment-resource" value=${form.resource}
          onChange=${(e) => setForm({ ...form, resource: e.target.value, field: e.target.value ? form.field : '' })}>
          <option value="">the whole proposal</option>
          ${resources.map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
        <label><span class="label">Field (JSON pointer)</span><input id="comment-field" placeholder="/properties/0/type"
          disabled=${!form.resource} value=${form.field} onInput=${(e) => setForm({ ...form, field: e.target.value })} /></label>
        <button type="submit" class="primary">Comment</button></div>
    </form><${Problem} error=${err} /></section>`;
}
