// The console's OIDC sign-in (web/oidc.js) in node, against a fake provider:
// the authorization request carries an S256 challenge of the verifier and a
// state; the callback's state is checked, the code is exchanged with the
// verifier, the token lands in sessionStorage, and the code leaves the URL.
// Ends with "oidc: N passed, M failed".
import { mkdtempSync, copyFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';

const dir = mkdtempSync(tmpdir() + '/oms-oidc-');
for (const f of ['oidc.js', 'api.js']) copyFileSync(new URL(`../../web/${f}`, import.meta.url), `${dir}/${f}`);
writeFileSync(`${dir}/package.json`, '{"type":"module"}');

const store = new Map();
globalThis.sessionStorage = { getItem: (k) => (store.has(k) ? store.get(k) : null), setItem: (k, v) => store.set(k, String(v)),
  removeItem: (k) => store.delete(k), clear: () => store.clear() };
const loc = { origin: 'https://oms.example', search: '', hash: '#/browse', assigned: null, assign(u) { this.assigned = u; } };
globalThis.location = loc;
globalThis.history = { replaceState: (_s, _t, url) => { loc.replaced = url; loc.search = ''; } };
const ISSUER = 'https://sso.example/realms/x';
const calls = [];
globalThis.fetch = async (url, opt = {}) => {
  calls.push({ url: String(url), opt });
  if (String(url) === ISSUER + '/.well-known/openid-configuration')
    return new Response(JSON.stringify({ authorization_endpoint: ISSUER + '/auth', token_endpoint: ISSUER + '/token' }));
  if (String(url) === ISSUER + '/token') return new Response(JSON.stringify({ access_token: 'tok-123', token_type: 'Bearer' }));
  return new Response('no', { status: 404 });
};
const { startLogin, finishLogin } = await import(`${dir}/oidc.js`);
const cfg = { oidc_issuer: ISSUER, oidc_client_id: 'oms-console' };

let passed = 0, failed = 0;
async function step(name, fn) {
  try { await fn(); passed++; console.log(`ok   oidc.${name}`); }
  catch (e) { failed++; console.log(`FAIL oidc.${name}: ${e.stack || e}`); }
}
const assert = (c, m) => { if (!c) throw new Error('assertion failed: ' + m); };
const b64url = (buf) => buf.toString('base64').replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

let auth;
await step('authorization_request_uses_pkce_s256', async () => {
  await startLogin(cfg);
  auth = new URL(loc.assigned);
  const p = auth.searchParams;
  const saved = JSON.parse(store.get('oms.pkce'));
  assert(auth.origin + auth.pathname === ISSUER + '/auth', 'the discovered endpoint');
  assert(p.get('response_type') === 'code' && p.get('client_id') === 'oms-console', 'code flow for the client');
  assert(p.get('redirect_uri') === 'https://oms.example/ui/', 'redirect to the console');
  assert(p.get('code_challenge_method') === 'S256', 'S256');
  assert(p.get('code_challenge') === b64url(createHash('sha256').update(saved.verifier).digest()), 'challenge = S256(verifier)');
  assert(saved.verifier.length >= 43 && p.get('state') === saved.state && saved.state.length >= 16, 'random verifier and state');
  assert(!loc.assigned.includes(saved.verifier), 'the verifier never leaves the browser before the exchange');
});

await step('callback_with_a_wrong_state_is_refused', async () => {
  const saved = store.get('oms.pkce');
  loc.search = '?code=abc&state=forged';
  let err;
  try { await finishLogin(cfg); } catch (e) { err = e; }
  assert(err && /state/.test(err.message), 'refused for its state');
  assert(!store.has('oms.token'), 'no token');
  assert(loc.replaced === '/ui/#/browse', 'the code left the URL anyway');
  store.set('oms.pkce', saved);
});

await step('callback_exchanges_the_code_with_the_verifier', async () => {
  const saved = JSON.parse(store.get('oms.pkce'));
  loc.search = `?code=abc&state=${saved.state}`;
  calls.length = 0;
  assert(await finishLogin(cfg) === true, 'completed');
  const tok = calls.find((c) => c.url === ISSUER + '/token');
  const body = new URLSearchParams(tok.opt.body);
  assert(tok.opt.method === 'POST' && body.get('grant_type') === 'authorization_code' && body.get('code') === 'abc', 'code grant');
  assert(body.get('code_verifier') === saved.verifier && body.get('client_id') === 'oms-console', 'with the verifier');
  assert(tok.opt.credentials === 'omit', 'no cookies');
  assert(store.get('oms.token') === 'tok-123', 'the token in sessionStorage');
  assert(!store.has('oms.pkce'), 'the verifier is forgotten');
  assert(loc.search === '' && !loc.replaced.includes('code='), 'the code left the URL');
});

await step('no_callback_no_exchange', async () => {
  loc.search = '';
  calls.length = 0;
  assert(await finishLogin(cfg) === false && calls.length === 0, 'nothing to do');
});

rmSync(dir, { recursive: true, force: true });
console.log(`oidc: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
