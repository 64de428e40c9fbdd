// The editor: a resource document as JSON, validated live by the server's
// validate route (a dry run: errors and breaking changes), committed with a
// message and an issue key.
import { api, seg, headerText } from './api.js';
import { html, useState, useEffect, href, Problem, Loading, Badge, Field } from './ui.js';
import { Changes } from './view-compare.js';

const TEMPLATES = {
  'object-types': { api_name: 'NewType', display_name: 'New type', description: '', properties: [{ api_name: 'id', type: 'string', required: true }], primary_key: 'id' },
  'link-types': { api_name: 'newLink', from: '', to: '', cardinality: 'one_to_many' },
  'action-types': { api_name: 'newAction', parameters: [], rules: [] },
  'function-types': { api_name: 'newFunction', inputs: [], output: { type: 'string' } },
  interfaces: { api_name: 'NewInterface', properties: [] },
  'shared-properties': { api_name: 'newProperty', type: 'string' },
};

export function Editor({ branch, route }) {
  const [kind, name] = route.args;
  const isNew = !name;
  const [text, setText] = useState(null);
  const [etag, setEtag] = useState(null);
  const [loadErr, setLoadErr] = useState(null);
  const [check, setCheck] = useState(null);
  const [message, setMessage] = useState('');
  const [issue, setIssue] = useState('');
  const [saving, setSaving] = useState(false);
  const [saveErr, setSaveErr] = useState(null);

  useEffect(() => {
    if (isNew) { setText(JSON.stringify(TEMPLATES[kind] || {}, null, 2)); return; }
    api('GET', `/api/v1/schemas/${seg(branch)}/${kind}/${seg(name)}`).then((d) => {
      setEtag(d.meta && d.meta.etag);
      const { meta, ...doc } = d;
      setText(JSON.stringify(doc, null, 2));
    }, setLoadErr);
  }, [branch, kind, name]);

  // Live validation, debounced.
  useEffect(() => {
    if (text === null) return;
    let doc;
    try { doc = JSON.parse(text); } catch (e) { setCheck({ local: 'Not valid JSON: ' + e.message }); return; }
    const t = setTimeout(() => {
      const op = isNew ? { op: 'create', kind, document: doc } : { op: 'replace', kind, api_name: name, document: doc };
      api('POST', `/api/v1/schemas/${seg(branch)}/validate`, { body: { operations: [op] } })
        .then((r) => setCheck(r), (e) => setCheck({ error: e }));
    }, 350);
    return () => clearTimeout(t);
  }, [text]);

  const save = async (e) => {
    e.preventDefault();
    setSaving(true); setSaveErr(null);
    try {
      const doc = JSON.parse(text);
      const headers = {};
      if (issue.trim()) headers['X-Issue-ID'] = issue.trim();
      if (message.trim()) headers['X-Commit-Message'] = headerText(message.trim());
      let r;
      if (isNew) r = await api('POST', `/api/v1/schemas/${seg(branch)}/${kind}`, { body: doc, headers, raw: true });
      else r = await api('PUT', `/api/v1/schemas/${seg(branch)}/${kind}/${seg(name)}`, { body: doc, headers: { ...headers, 'If-Match': `"${etag}"` }, raw: true });
      location.hash = href('r', [kind, r.data.api_name], { branch, committed: r.headers.get('X-Commit') || '' });
    } catch (x) { setSaveErr(x); } finally { setSaving(false); }
  };

  if (loadErr) return html`<${Problem} error=${loadErr} />`;
  if (text === null) return html`<${Loading} />`;
  const errors = check && check.errors ? check.errors : [];
  return html`<h1>${isNew ? `New ${kind}` : `Edit ${kind}/${name}`} <small class="muted">on ${branch}</small></h1>
    <form class="editor" onSubmit=${save}>
      <${Field} label="Document (JSON)" hint="Validated as you type against the branch head.">
        <textarea id="doc" rows="22" spellcheck="false" value=${text} onInput=${(e) => setText(e.target.value)}
          aria-describedby="validation" aria-invalid=${errors.length || (check && check.local) ? 'true' : 'false'}></textarea><//>
      <div id="validation" class="validation" role="status" aria-live="polite">
        ${!check ? html`<span class="muted">Checking…</span>` : check.local ? html`<${Badge} kind="bad">${check.local}<//>`
          : check.error ? html`<${Problem} error=${check.error} />`
          : html`${check.valid ? html`<${Badge} kind="ok">valid<//>` : html`<${Badge} kind="bad">${errors.length} error${errors.length === 1 ? '' : 's'}<//>`}
            ${check.breaking ? html` <${Badge} kind="breaking">breaking<//>` : ''}
            <ul class="errors">${errors.map((e) => html`<li><code>${e.path}</code> ${e.message}</li>`)}</ul>
            ${check.changes ? html`<${Changes} changes=${check.changes} />` : ''}`}
      </div>
      <div class="commit">
        <${Field} label="Commit message"><input id="message" value=${message} onInput=${(e) => setMessage(e.target.value)} /><//>
        <${Field} label="Issue key" hint="e.g. PROJ-123, GH-7 or #42"><input id="issue" value=${issue} onInput=${(e) => setIssue(e.target.value)} /><//>
        <button type="submit" class="primary" disabled=${saving}>Commit</button>
        <a class="button" href=${isNew ? href('browse', [kind], { branch }) : href('r', [kind, name], { branch })}>Cancel</a>
      </div>
      <${Problem} error=${saveErr} />
    </form>`;
}
