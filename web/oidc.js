// OIDC sign-in: authorization code with PKCE (RFC 7636), when the server
// has an issuer configured (/ui/config.json). The verifier and state live in
// sessionStorage for the round trip only; the code is removed from the URL
// as soon as it has been exchanged.
import { session } from './api.js';

const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));
const redirectUri = () => location.origin + '/ui/';

async function discover(issuer) {
  const r = await fetch(issuer.replace(/\/$/, '') + '/.well-known/openid-configuration',
                        { credentials: 'omit', referrerPolicy: 'no-referrer' });
  if (!r.ok) throw new Error('OIDC discovery failed: HTTP ' + r.status);
  return r.json();
}

export async function loadConfig() {
  try {
    const r = await fetch('/ui/config.json', { credentials: 'omit' });
    return r.ok ? await r.json() : {};
  } catch { return {}; }
}

export async function startLogin(cfg) {
  const meta = await discover(cfg.oidc_issuer);
  const verifier = random(32), state = random(16);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  sessionStorage.setItem('oms.pkce', JSON.stringify({ verifier, state }));
  const u = new URL(meta.authorization_endpoint);
  u.search = new URLSearchParams({ response_type: 'code', client_id: cfg.oidc_client_id || '', redirect_uri: redirectUri(),
    scope: 'openid profile', code_challenge: challenge, code_challenge_method: 'S256', state }).toString();
  location.assign(u.toString());
}

// Completes a login when the provider sent us back with ?code=&state=.
export async function finishLogin(cfg) {
  const p = new URLSearchParams(location.search);
  if (!p.has('code') && !p.has('error')) return false;
  history.replaceState(null, '', '/ui/' + location.hash);
  const saved = JSON.parse(sessionStorage.getItem('oms.pkce') || 'null');
  sessionStorage.removeItem('oms.pkce');
  if (p.has('error')) throw new Error('Sign-in refused: ' + p.get('error'));
  if (!saved || saved.state !== p.get('state')) throw new Error('Sign-in failed: the state does not match');
  const meta = await discover(cfg.oidc_issuer);
  const r = await fetch(meta.token_endpoint, { method: 'POST', credentials: 'omit', referrerPolicy: 'no-referrer',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: p.get('code'), redirect_uri: redirectUri(),
      client_id: cfg.oidc_client_id || '', code_verifier: saved.verifier }).toString() });
  if (!r.ok) throw new Error('Token exchange failed: HTTP ' + r.status);
  const tok = await r.json();
  session.token = tok.access_token;
  return true;
}
