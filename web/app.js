// The OMS console (SPEC §14): sign-in, the shell (branch or ref, navigation)
// and the router over the views.
import { html, render, useState, useEffect, useRef } from './htm-preact.module.js';
import { api, session } from './api.js';
import { loadConfig, startLogin, finishLogin } from './oidc.js';
import { useHash, href, Problem } from './ui.js';
import { Browse, ResourceView, Search, Graph } from './view-browse.js';
import { Editor } from './view-edit.js';
import { Compare } from './view-compare.js';
import { Proposals, ProposalView } from './view-proposals.js';
import { Locks, Audit, Alerts } from './view-ops.js';

const NAV = [['browse', 'Browse'], ['search', 'Search'], ['graph', 'Graph'], ['compare', 'Compare'],
  ['proposals', 'Proposals'], ['locks', 'Locks'], ['audit', 'Audit'], ['alerts', 'Alerts']];

function SignIn({ cfg, error, onToken }) {
  const [tok, setTok] = useState('');
  const [err, setErr] = useState(error);
  const submit = async (e) => {
    e.preventDefault();
    session.token = tok.trim();
    try {
      const me = await api('GET', '/api/v1/me');
      onToken(me);
    } catch (x) { session.token = null; setErr(x); }
  };
  return html`<main id="main" class="signin" tabindex="-1">
    <h1>Sign in to OMS</h1>
    <form onSubmit=${submit}>
      <label class="field"><span class="label">Access token (JWT)</span>
        <textarea id="token" name="token" rows="4" autocomplete="off" spellcheck="false" required
          value=${tok} onInput=${(e) => setTok(e.target.value)}></textarea>
        <small>Kept in this tab's session storage only; never put in a URL.</small></label>
      <button type="submit" class="primary">Sign in</button>
    </form>
    ${cfg.oidc_issuer ? html`<p><button type="button" onClick=${() => startLogin(cfg).catch(setErr)}>
      Sign in with your identity provider</button></p>` : ''}
    <${Problem} error=${err} />
  </main>`;
}

function Shell({ me, onSignOut }) {
  const route = useHash();
  const [branches, setBranches] = useState([]);
  const branch = route.params.branch || 'main';
  const at = route.params.at || '';
  useEffect(() => { api('GET', '/api/v1/branches?limit=1000').then((b) => setBranches(b.items), () => {}); }, []);
  // After a navigation (not the first load), focus moves to the new content.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) { first.current = false; return; }
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [route.view]);
  const go = (p) => { location.hash = href(route.view === 'r' || route.view === 'edit' ? 'browse' : route.view,
    route.view === 'r' || route.view === 'edit' ? [] : route.args, { ...route.params, ...p }); };
  const ctx = { me, branch, at, route, branches };
  const views = { browse: Browse, r: ResourceView, edit: Editor, search: Search, graph: Graph, compare: Compare,
    proposals: route.args[0] ? ProposalView : Proposals, locks: Locks, audit: Audit, alerts: Alerts };
  const View = views[route.view] || Browse;
  return html`<header class="top">
      <span class="brand">OMS</span>
      <nav aria-label="Main"><ul>${NAV.map(([v, label]) => html`<li><a href=${href(v, [], { branch, at })}
        aria-current=${route.view === v ? 'page' : undefined}>${label}</a></li>`)}</ul></nav>
      <div class="refs">
        <label><span class="label">Branch</span>
          <select id="branch" value=${branch} onChange=${(e) => go({ branch: e.target.value })}>
            ${[...new Set([branch, ...branches.map((b) => b.name)])].map((n) => html`<option value=${n}>${n}</option>`)}
          </select></label>
        <label><span class="label">At (tag or commit)</span>
          <input id="at" size="10" value=${at} placeholder="head"
            onChange=${(e) => go({ at: e.target.value.trim() })} /></label>
      </div>
      <div class="who"><span title=${(me.roles || []).join(', ')}>${me.subject}</span>
        <button type="button" onClick=${onSignOut}>Sign out</button></div>
    </header>
    <main id="main" tabindex="-1" data-route=${route.raw}><${View} ...${ctx} /></main>`;
}

function App() {
  const [state, setState] = useState({ phase: 'start', cfg: {} });
  useEffect(() => {
    (async () => {
      // The configuration and the caller are asked for at once: one round trip before the shell.
      const returning = new URLSearchParams(location.search).has('code');
      const meP = session.token && !returning ? api('GET', '/api/v1/me') : null;
      meP?.catch(() => {});
      const cfg = await loadConfig();
      try { await finishLogin(cfg); } catch (e) { setState({ phase: 'out', cfg, error: e }); return; }
      if (!session.token) { setState({ phase: 'out', cfg }); return; }
      try { setState({ phase: 'in', cfg, me: await (meP || api('GET', '/api/v1/me')) }); }
      catch (e) { session.token = null; setState({ phase: 'out', cfg, error: e }); }
    })();
    const off = () => { session.token = null; setState((s) => ({ ...s, phase: 'out', me: null })); };
    addEventListener('oms-unauthorized', off);
    return () => removeEventListener('oms-unauthorized', off);
  }, []);
  if (state.phase === 'start') return html`<main id="main"><p class="muted">Loading…</p></main>`;
  if (state.phase === 'out')
    return html`<${SignIn} cfg=${state.cfg} error=${state.error} onToken=${(me) => setState({ ...state, phase: 'in', me })} />`;
  return html`<${Shell} me=${state.me} onSignOut=${() => { session.token = null; setState({ ...state, phase: 'out', me: null }); }} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
