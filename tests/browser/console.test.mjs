// Browser tests of the OMS console in headless Chromium (puppeteer-core),
// against a server started and seeded by tests/api/test_console.py
// (OMS_URL, OMS_TOKENS). Each step is a test; screenshots go to artifacts/.
// Ends with "browser: N passed, M failed".
import puppeteer from 'puppeteer-core';
import { mkdirSync, rmSync, copyFileSync } from 'node:fs';

const BASE = process.env.OMS_URL;
const TOKENS = JSON.parse(process.env.OMS_TOKENS || '{}');
const ART = new URL('./artifacts/', import.meta.url).pathname;
rmSync(ART, { recursive: true, force: true });
mkdirSync(ART, { recursive: true });
// OMS_DOC_SHOTS=1 refreshes the screenshots of docs/console.md from this run.
const DOC_SHOTS = ['02-browse', '05-graph', '06-editor-invalid', '08-compare', '09-proposal-conflict', '11-proposal-field-comment',
  '11b-needs-my-review', '11c-changes-requested', '12-proposal-merged',
  '13-lock-60', '14-audit', '16-narrow'];
const XSS = '<img src=x onerror="window.__xss=1">';
// Waits are generous: the CI machine has 2 cores shared with builds. A wait
// only ends early on success, so a long one costs nothing when all is well.
const WAIT = 15000;

const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
const page = await browser.newPage();
page.setDefaultTimeout(WAIT);
await page.setViewport({ width: 1280, height: 800 });
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
page.on('pageerror', (e) => consoleErrors.push(String(e)));

let passed = 0, failed = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok   browser.${name} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL browser.${name}: ${e.stack || e}`);
    console.log('     page text: ' + (await page.evaluate(() => document.querySelector('main')?.innerText || '').catch(() => '')).slice(-800).replace(/\n/g, ' | '));
    await page.screenshot({ path: `${ART}fail-${name}.png` }).catch(() => {});
  }
}
const assert = (c, m) => { if (!c) throw new Error('assertion failed: ' + m); };
const shot = (n) => page.screenshot({ path: `${ART}${n}.png`, fullPage: false });
const text = (sel) => page.$eval(sel, (e) => e.textContent);
const mainText = () => page.$eval('main', (e) => e.innerText);
async function waitText(t, timeout = WAIT) {
  await page.waitForFunction((s) => document.querySelector('main')?.innerText.includes(s), { timeout }, t);
}
// Navigates, then waits until the router has rendered that very hash
// (main[data-route]): selectors of the previous view are never mistaken for
// the new one's, and a navigation the app missed fails here, not later.
async function go(hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction(() => document.querySelector('main')?.dataset.route === location.hash, { timeout: WAIT });
}
async function api(method, path, token, body, headers = {}) {
  const r = await fetch(BASE + path, { method, headers: { Authorization: 'Bearer ' + token, ...(body ? { 'Content-Type': 'application/json' } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined });
  const t = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${t}`);
  return t ? JSON.parse(t) : null;
}
async function signIn(who) {
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(BASE + '/ui/', { waitUntil: 'load' });
  await page.waitForSelector('#token');
  await page.type('#token', TOKENS[who], { delay: 0 });
  await page.click('button[type=submit]');
  await page.waitForSelector('header.top .who');
  assert((await text('header.top .who')).includes(who), 'signed in as ' + who);
  await page.waitForSelector('main[data-route]');
}
async function labelsOk() {
  const unlabeled = await page.$$eval('input, select, textarea', (els) => els.filter((e) => e.type !== 'hidden' &&
    !e.closest('label') && !e.getAttribute('aria-label') && !(e.id && document.querySelector(`label[for="${e.id}"]`))).map((e) => e.outerHTML));
  assert(unlabeled.length === 0, 'unlabeled controls: ' + unlabeled.join(' '));
  const unnamed = await page.$$eval('a[href], button', (els) => els.filter((e) => !e.textContent.trim() && !e.getAttribute('aria-label')).length);
  assert(unnamed === 0, unnamed + ' unnamed links or buttons');
}
// The parts of the page come in this order in the document.
async function inOrder(sels) {
  const ok = await page.evaluate((ss) => ss.map((x) => document.querySelector(x)).every((e, i, a) =>
    e && (i === 0 || (a[i - 1].compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING))), sels);
  assert(ok, 'out of order: ' + sels.join(' < '));
}
// Clicks the button of `scope` whose text is exactly `label`.
async function button(scope, label) {
  const h = await page.waitForFunction((sc, l) => [...document.querySelectorAll(sc + ' button')].find((b) => b.textContent.trim() === l),
    { timeout: WAIT }, scope, label);
  await h.asElement().click();
}
// Replaces a field's text through input events only: the app's state and
// the field agree at every step, so a re-render (data arriving) cannot put
// the old text back under the typing. Setting .value directly could.
async function typeInto(sel, value) {
  await page.focus(sel);
  await page.$eval(sel, (e) => e.select());
  await page.keyboard.press('Backspace');
  await page.type(sel, value);
  await page.waitForFunction((s, v) => document.querySelector(s)?.value === v, { timeout: WAIT }, sel, value);
}
async function noXss() {
  assert(await page.evaluate(() => window.__xss === undefined), 'an XSS payload ran');
  assert(await page.evaluate(() => document.querySelectorAll('main img, main script').length === 0), 'payload became markup');
}

await step('sign_in_with_a_pasted_token', async () => {
  const resp = await page.goto(BASE + '/ui/', { waitUntil: 'load' });
  const csp = resp.headers()['content-security-policy'];
  assert(csp.includes("frame-ancestors 'none'") && !csp.includes('unsafe'), 'strict CSP: ' + csp);
  await page.waitForSelector('#token');
  await shot('01-sign-in');
  await page.type('#token', 'not-a-token');
  await page.click('button[type=submit]');
  await page.waitForSelector('.problem');
  assert((await text('.problem')).includes('401'), 'a bad token is refused');
  await page.$eval('#token', (e) => { e.value = ''; });
  await signIn('dev');
  assert(!(await page.url()).includes(TOKENS.dev), 'the token is never in the URL');
  assert(await page.evaluate((t) => sessionStorage.getItem('oms.token') === t && localStorage.length === 0, TOKENS.dev), 'token in sessionStorage only');
});

await step('browse_by_kind_with_xss_payloads_as_text', async () => {
  await go('#/browse/object-types?branch=feature%2Fconsole');
  await waitText('Company');
  const t = await mainText();
  assert(t.includes('Person ' + XSS), 'the display name shows as text');
  assert(t.includes('A human. ' + XSS), 'the description shows as text');
  await noXss();
  await shot('02-browse');
  await go('#/browse/link-types?branch=feature%2Fconsole');
  await waitText('employs');
});

await step('resource_view_with_history', async () => {
  await go('#/r/object-types/Person?branch=feature%2Fconsole');
  await waitText('History');
  await page.waitForFunction(() => document.querySelector('.history li'));
  const t = await mainText();
  assert(t.includes('Base model PROJ-1 ' + XSS), 'the commit message shows as text');
  assert(t.includes('PROJ-1'), 'issue key badge');
  await noXss();
  await shot('03-resource');
});

await step('search', async () => {
  await go('#/search?branch=feature%2Fconsole');
  await page.waitForSelector('#q');
  await page.type('#q', 'human');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('.results li'), { timeout: WAIT });
  assert((await mainText()).includes('object-types/Person'), 'Person found');
  await noXss();
  await shot('04-search');
});

await step('graph_of_object_and_link_types', async () => {
  await go('#/graph?branch=feature%2Fconsole');
  await page.waitForSelector('.graph svg .node');
  const n = await page.$$eval('.graph svg .node', (e) => e.length);
  const edges = await page.$$eval('.graph svg .edge', (e) => e.length);
  assert(n === 2 && edges === 1, `2 nodes and 1 edge, got ${n}/${edges}`);
  await noXss();
  await shot('05-graph');
});

await step('edit_with_live_validation_and_commit', async () => {
  await go('#/edit/object-types/Company?branch=feature%2Fconsole');
  await page.waitForSelector('#doc');
  await page.waitForFunction(() => document.querySelector('#validation').innerText.includes('valid'), { timeout: WAIT });
  const setDoc = (f) => page.$eval('#doc', (e, src) => {
    const d = JSON.parse(e.value); const fn = new Function('d', src); fn(d);
    const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
    set.call(e, JSON.stringify(d, null, 2)); e.dispatchEvent(new Event('input', { bubbles: true }));
  }, f);
  await setDoc("d.properties[0].type = 'text'");
  await page.waitForFunction(() => document.querySelector('#validation .badge.bad'), { timeout: WAIT });
  assert((await text('#validation')).includes('/properties/0/type'), 'the error names the field');
  await shot('06-editor-invalid');
  await setDoc("d.properties[0].type = 'string'; d.description = 'Employer. ' + '" + XSS.replace(/"/g, '\\"') + "'; d.properties.push({api_name: 'name', type: 'string'})");
  await page.waitForFunction(() => document.querySelector('#validation .badge.ok')?.textContent === 'valid', { timeout: WAIT });
  await page.type('#message', 'Company gets a name ' + XSS);
  await page.type('#issue', 'PROJ-2');
  await shot('06-editor-valid');
  await page.click('.commit button[type=submit]');
  await page.waitForFunction(() => location.hash.startsWith('#/r/'), { timeout: WAIT });
  await waitText('Employer. ' + XSS);
  await page.waitForFunction(() => document.querySelector('.history')?.innerText.includes('Company gets a name'), { timeout: WAIT });
  await noXss();
  await shot('07-committed');
});

await step('a_commit_without_issue_key_is_refused_and_shown', async () => {
  await go('#/edit/object-types/Company?branch=feature%2Fconsole');
  await page.waitForSelector('#doc');
  await page.waitForFunction(() => document.querySelector('#validation').innerText.includes('valid'), { timeout: WAIT });
  await page.type('#issue', XSS);
  await page.click('.commit button[type=submit]');
  await page.waitForSelector('.commit ~ .problem, form .problem', { timeout: WAIT });
  assert((await mainText()).includes('issue'), 'the issue rule is explained');
  await noXss();
});

await step('compare_two_refs_with_field_highlights', async () => {
  await go('#/compare?branch=feature%2Fconsole&from=staging&to=feature%2Fconsole');
  await page.waitForSelector('ul.changes');
  const t = await mainText();
  assert(t.includes('object-types/Company') && t.includes('shared-properties/Conflicted'), 'changed resources listed');
  assert(await page.$('td.new ins') && await page.$('td.old del'), 'field-level highlights');
  const breaking = await page.$$eval('li.change', (els) => els.filter((e) => e.querySelector('.badge.breaking'))
    .map((e) => e.querySelector('strong').textContent));
  assert(breaking.length === 1 && breaking[0] === 'shared-properties/Score', 'the breaking change has its badge: ' + breaking);
  assert(await page.$eval('li.change .fields-diff .badge.breaking', (e) => e.textContent.startsWith('breaking')), 'a field-level breaking badge');
  await noXss();
  await shot('08-compare');
});

let proposalHash;
await step('open_a_proposal_and_see_its_conflict', async () => {
  await go('#/proposals?branch=feature%2Fconsole');
  await page.waitForSelector('#p-title');
  await typeInto('#p-source', 'feature/console');
  await typeInto('#p-target', 'staging');
  await page.type('#p-title', 'Console changes ' + XSS);
  await page.type('#p-description', 'Why: ' + XSS);
  // an empty entry among the reviewers is caught before anything is sent
  await typeInto('#p-reviewers', 'rev,,adm');
  await page.click('form.grid button[type=submit]');
  await page.waitForFunction(() => document.querySelector('section[aria-labelledby=newp] .problem')?.innerText.includes('is empty'));
  assert(await page.evaluate(() => document.activeElement?.id === 'p-reviewers'), 'the focus goes to the reviewers');
  assert(await page.$eval('#p-reviewers', (e) => e.getAttribute('aria-invalid') === 'true'), 'the field is marked invalid');
  // the server's refusal (a subject over 256 bytes) shows with its detail
  await typeInto('#p-reviewers', 'rev, ' + 'x'.repeat(257));
  await page.click('form.grid button[type=submit]');
  await page.waitForFunction(() => document.querySelector('section[aria-labelledby=newp] .problem')?.innerText.includes('up to 50 subjects'));
  assert((await text('section[aria-labelledby=newp] .problem')).includes('400'), 'the refusal shows its status');
  assert(await page.evaluate(() => location.hash.startsWith('#/proposals?')), 'no proposal was created');
  await typeInto('#p-reviewers', ' rev ');
  await page.click('form.grid button[type=submit]');
  await page.waitForFunction(() => location.hash.startsWith('#/proposals/'), { timeout: WAIT });
  proposalHash = await page.evaluate(() => location.hash);
  await page.waitForSelector('section.conflicts');
  // the reviewer named at creation is listed on the proposal
  await page.waitForFunction(() => [...document.querySelectorAll('ul.reviewers li span')].some((s) => s.textContent === 'rev'));
  const t = await mainText();
  assert(t.includes('Console changes ' + XSS) && t.includes('shared-properties/Conflicted'), 'proposal and conflict shown');
  assert(t.includes('staging words') && t.includes('feature words'), 'both sides of the conflict');
  assert(await page.$eval('h1', (h) => !!h.querySelector('.badge.breaking')), 'the proposal is flagged breaking');
  await noXss();
  await shot('09-proposal-conflict');
});

await step('resolve_the_conflict', async () => {
  await page.type('#resolve-issue', 'PROJ-3');
  await page.click('section.conflicts button[type=submit]');
  await page.waitForFunction(() => !document.querySelector('section.conflicts'), { timeout: WAIT });
  await shot('10-proposal-resolved');
});

let proposalId;
await step('request_another_reviewer_and_comment_on_a_field', async () => {
  proposalId = decodeURIComponent(proposalHash.replace(/^#\/proposals\//, '').split('?')[0]);
  await go(proposalHash);
  await page.waitForSelector(`h1[data-proposal="${proposalId}"]`);
  await page.type('#add-reviewers', 'adm');
  await button('form', 'Request review');
  await page.waitForFunction(() => [...document.querySelectorAll('ul.reviewers li')].map((li) => li.querySelector('span').textContent).join() === 'rev,adm');
  // "Comment" on a field row of the changes anchors the form there and focuses it
  await page.click('button[aria-label="Comment on shared-properties/Score field /type"]');
  await page.waitForFunction(() => document.querySelector('#comment-resource').value === 'shared-properties/Score' &&
    document.querySelector('#comment-field').value === '/type' && !document.querySelector('#comment-field').disabled &&
    document.activeElement?.id === 'comment-body');
  await page.keyboard.type('Why a string? ' + XSS);
  await button('form.comment-form', 'Comment');
  await page.waitForFunction((x) => [...document.querySelectorAll('li.comment')].some((c) =>
    c.querySelector('.res')?.textContent === 'shared-properties/Score' && c.querySelector('.ptr')?.textContent === '/type' &&
    c.querySelector('.body').textContent === 'Why a string? ' + x && c.querySelector('.author').textContent === 'dev'), { timeout: WAIT }, XSS);
  const anchor = await page.$eval('li.comment:last-child .anchor', (e) => e.textContent);
  assert(anchor === 'on shared-properties/Score field /type', 'the anchor reads: ' + anchor);
  // a comment on the whole proposal says so
  await page.type('#comment-body', 'Overall fine');
  await page.select('#comment-resource', '');
  await button('form.comment-form', 'Comment');
  await page.waitForFunction(() => document.querySelectorAll('li.comment').length === 2);
  assert(await page.$eval('li.comment:last-child .anchor', (e) => e.textContent) === 'on the proposal', 'a proposal-wide anchor');
  await noXss();
  await page.$eval('section.thread', (e) => e.scrollIntoView());
  await shot('11-proposal-field-comment');
});

await step('needs_my_review_lists_the_proposal_for_a_requested_reviewer', async () => {
  await signIn('rev');
  await go('#/proposals?branch=feature%2Fconsole');
  await page.waitForSelector('#proposal-list[data-filter="all:"]');
  await page.click('#needs-review');
  await page.waitForFunction(() => location.hash.includes('mine=1'));
  await page.waitForSelector('#proposal-list[data-filter="mine:"]');
  const ids = await page.$$eval('#proposal-list tbody tr', (rows) => rows.map((r) => r.dataset.id));
  assert(ids.length === 1 && ids[0] === proposalId, 'the requested reviewer sees the proposal: ' + ids);
  assert(await page.$eval('#needs-review', (e) => e.checked), 'the filter shows as on');
  await noXss();
  await shot('11b-needs-my-review');
  await page.click(`#proposal-list tr[data-id="${proposalId}"] a`);
  await page.waitForSelector(`h1[data-proposal="${proposalId}"]`);
});

await step('request_changes_with_a_comment_blocks_the_merge', async () => {
  await page.waitForSelector('#review-comment');
  await page.type('#review-comment', 'Please rename it ' + XSS);
  await button('.review .actions', 'Request changes');
  await page.waitForSelector('#merge-status.blocked');
  await page.waitForFunction((x) => document.querySelector('#merge-status').innerText.includes('Please rename it ' + x), { timeout: WAIT }, XSS);
  const status = await text('#merge-status');
  assert(status.includes('Changes requested by rev') && status.includes('changes_requested'), 'the block is explained: ' + status);
  assert(await page.$eval('h1', (h) => [...h.querySelectorAll('.badge')].some((b) => b.textContent === 'changes requested')), 'the state shows');
  await page.waitForFunction((x) => [...document.querySelectorAll('li.comment')].some((c) =>
    c.querySelector('.badge')?.textContent === 'changes requested' && c.querySelector('.body').textContent === 'Please rename it ' + x), { timeout: WAIT }, XSS);
  assert(await page.$('#dismiss'), 'the reviewer may withdraw their own review');
  // the server refuses the merge, and the page says why
  await typeInto('#merge-issue', 'PROJ-4');
  await page.click('#merge');
  await page.waitForSelector('#action-problem .problem');
  const prob = await text('#action-problem .problem');
  assert(prob.includes('409') && prob.includes('changes_requested'), 'the refusal is shown: ' + prob);
  assert(await page.$eval('h1 .badge', (b) => b.textContent !== 'merged'), 'not merged');
  await noXss();
  await labelsOk();
  await page.$eval('h1', (e) => e.scrollIntoView());
  await inOrder(['main h1', '#merge-status', '#merge', '#note', '.review', '#changes-h', '#reviewers', 'section.thread']);
  await shot('11c-changes-requested');
  // the blocked proposal with its review controls fits a narrow screen too
  await page.setViewport({ width: 390, height: 844 });
  try {
    await page.waitForFunction(() => window.innerWidth === 390);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert(overflow <= 1, 'no horizontal scrolling on a narrow screen, overflow ' + overflow);
    await shot('11c-changes-requested-narrow');
  } finally { await page.setViewport({ width: 1280, height: 800 }); }
});

await step('the_reviewer_withdraws_and_requests_changes_again', async () => {
  // only the reviewer who asked can lift their request: "Withdraw my review"
  await button('.review .actions', 'Withdraw my review');
  await page.waitForFunction(() => document.querySelector('#merge-status') && !document.querySelector('#merge-status.blocked'));
  assert((await text('#merge-status')).includes('Approvals: 0 of 1'), 'what is left is the missing approval');
  assert(!(await page.$('#dismiss')), 'nothing left to withdraw');
  await page.type('#review-comment', 'Please rename it ' + XSS);
  await button('.review .actions', 'Request changes');
  await page.waitForSelector('#merge-status.blocked');
  // a change request without a comment is not sent
  await button('.review .actions', 'Request changes');
  await page.waitForFunction(() => document.querySelector('.review .problem')?.innerText.includes('needs a comment'));
  assert(await page.evaluate(() => document.activeElement?.id === 'review-comment'), 'the focus goes to the comment');
  await noXss();
});

await step('the_reviewer_approves_and_the_merge_is_possible', async () => {
  await typeInto('#review-comment', 'Renamed: fine now');
  await button('.review .actions', 'Approve');
  await page.waitForSelector('#merge-status.ok');
  assert(!(await page.$('#merge-status.blocked')), 'no longer blocked');
  assert(await page.$eval('h1', (h) => ![...h.querySelectorAll('.badge')].some((b) => b.textContent === 'changes requested')), 'the state is lifted');
  await page.waitForFunction(() => document.querySelector('main').innerText.includes('Approvals: 1'));
  await page.waitForFunction(() => [...document.querySelectorAll('li.comment')].some((c) =>
    c.querySelector('.badge')?.textContent === 'approved' && c.querySelector('.body').textContent === 'Renamed: fine now'));
  await inOrder(['main h1', '#merge-status', '#merge', '#note', '.review', '#changes-h', '#reviewers', 'section.thread']);
  await shot('11d-proposal-approved');
  await typeInto('#merge-issue', 'PROJ-4');
  await page.click('#merge');
  await page.waitForFunction(() => document.querySelector('h1 .badge')?.textContent === 'merged', { timeout: WAIT });
  await noXss();
  await inOrder(['main h1', '#note', '#changes-h', '#reviewers', 'section.thread']);
  await page.$eval('h1', (e) => e.scrollIntoView());
  await shot('12-proposal-merged');
});

await step('watch_a_lock_progress_update', async () => {
  const lock = await api('POST', '/api/v1/locks', TOKENS.svc, { branch: 'staging', scope: 'branch', kind: 'indexing',
    reason: 'rebuild ' + XSS, ttl_seconds: 600, heartbeat_seconds: 60 });
  await api('POST', `/api/v1/locks/${lock.id}/heartbeat`, TOKENS.svc, { progress: { percent: 10, phase: 'build', message: 'starting' } });
  await go('#/locks?branch=staging');
  await page.waitForFunction((id) => document.querySelector(`tr[data-lock="${id}"] .pct`)?.textContent === '10%', { timeout: WAIT }, lock.id);
  await shot('13-lock-10');
  await api('POST', `/api/v1/locks/${lock.id}/heartbeat`, TOKENS.svc, { progress: { percent: 60, phase: 'catch_up', message: '6,000 of 10,000' } });
  const t0 = Date.now();
  await page.waitForFunction((id) => document.querySelector(`tr[data-lock="${id}"] .pct`)?.textContent === '60%', { timeout: WAIT }, lock.id);
  console.log(`     the page showed the new progress ${Date.now() - t0} ms after the heartbeat`);
  assert((await mainText()).includes('rebuild ' + XSS), 'reason as text');
  await noXss();
  await shot('13-lock-60');
  await api('DELETE', `/api/v1/locks/${lock.id}`, TOKENS.svc);
});

await step('filter_and_verify_the_audit_log', async () => {
  await signIn('aud');
  await go('#/audit');
  await page.waitForSelector('#audit tbody tr');
  await page.type('#f-action', 'proposal.merge');
  await page.click('form.filters button[type=submit]');
  await page.waitForFunction(() => location.hash.includes('f_action=proposal.merge'));
  await page.waitForFunction(() => { const rows = [...document.querySelectorAll('#audit tbody tr')];
    return rows.length >= 1 && rows.every((r) => r.children[3].textContent === 'proposal.merge'); }, { timeout: WAIT });
  await page.click('#verify');
  await page.waitForFunction(() => document.querySelector('#verify-result').innerText.includes('chain intact'), { timeout: 15000 });
  await shot('14-audit');
});

await step('alerts', async () => {
  await go('#/alerts');
  await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Alerts');
  await page.waitForFunction(() => !document.querySelector('main [role=status]'), { timeout: WAIT });
  await shot('15-alerts');
});

await step('keyboard_and_labels', async () => {
  await page.goto(BASE + '/ui/', { waitUntil: 'load' });
  await page.reload({ waitUntil: 'load' });
  await page.waitForSelector('header.top .who');
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement.textContent);
  assert(first === 'Skip to content', 'the first Tab reaches the skip link, got ' + first);
  // every control is labelled, every link and button named
  await labelsOk();
});

await step('narrow_screen', async () => {
  await page.setViewport({ width: 390, height: 844 });
  await page.evaluate(() => document.activeElement?.blur());
  await go('#/browse/object-types?branch=feature%2Fconsole');
  await waitText('Company');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow <= 1, 'no horizontal scrolling on a narrow screen, overflow ' + overflow);
  await shot('16-narrow');
  await go(proposalHash);
  await page.waitForSelector('section.thread li.comment');
  const overflow2 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert(overflow2 <= 1, 'the proposal with its review thread fits a narrow screen, overflow ' + overflow2);
  await shot('16-narrow-proposal');
  await page.setViewport({ width: 1280, height: 800 });
});

await step('no_console_errors', async () => {
  const real = consoleErrors.filter((e) => !/status of 4\d\d/.test(e));
  assert(real.length === 0, real.join('\n'));
});

await browser.close();
if (process.env.OMS_DOC_SHOTS && !failed) {
  const docs = new URL('../../docs/console/', import.meta.url).pathname;
  mkdirSync(docs, { recursive: true });
  for (const n of DOC_SHOTS) copyFileSync(`${ART}${n}.png`, `${docs}${n}.png`);
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
