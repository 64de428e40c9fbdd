// Checks the OpenAPI document the server serves (SPEC §14):
//  1. it validates against the OpenAPI 3.1 schema (@seriousme/openapi-schema-validator);
//  2. every request body example validates against its operation's schema (ajv, 2020-12);
//  3. with --responses FILE (JSON lines {method, path, status, type, body} recorded by
//     tests/api/harness.py during the API run): every JSON body validates against the
//     response the document declares for that path, method and status.
// Usage: node check-openapi.mjs openapi.json [--responses FILE] [--kinds FILE]
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const args = process.argv.slice(2);
const doc = JSON.parse(readFileSync(args[0], 'utf8'));
const opt = (n) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : null; };
let failures = 0;
const fail = (m) => { failures++; console.log('FAIL ' + m); };

const v = new Validator();
const res = await v.validate(structuredClone(doc));
if (!res.valid) fail('OpenAPI 3.1 validation: ' + JSON.stringify(res.errors).slice(0, 2000));
else console.log('ok   the document is valid OpenAPI ' + doc.openapi);

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ $id: 'oms', components: doc.components });
const compiled = new Map();
function validatorFor(schema) {
  const key = JSON.stringify(schema);
  if (!compiled.has(key)) {
    // "#/components/..." refs resolve inside the document registered as "oms".
    const s = JSON.parse(key.replaceAll('"#/components/', '"oms#/components/'));
    compiled.set(key, ajv.compile(s));
  }
  return compiled.get(key);
}

let examples = 0;
for (const [path, item] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(item)) {
    const c = op.requestBody?.content?.['application/json'];
    if (!op.requestBody) continue;
    if (!c?.examples || !Object.keys(c.examples).length) { fail(`${method} ${path}: request body without an example`); continue; }
    for (const ex of Object.values(c.examples)) {
      examples++;
      const val = validatorFor(c.schema);
      if (!val(ex.value)) fail(`${method} ${path}: example does not match its schema: ${ajv.errorsText(val.errors)}`);
    }
  }
}
console.log(`ok   ${examples} request body examples checked`);

// Kind documents: --kinds FILE holds [{kind, document, valid}] the API test
// got from the server's validate route; the schema must agree with it.
const kindsFile = opt('--kinds');
if (kindsFile) {
  const cases = JSON.parse(readFileSync(kindsFile, 'utf8'));
  for (const c of cases) {
    const val = validatorFor({ $ref: `#/components/schemas/${c.schema}` });
    const ok = val(c.document);
    if (ok !== c.valid) fail(`${c.schema}: the schema says ${ok ? 'valid' : 'invalid'}, the server ${c.valid ? 'valid' : 'invalid'}: ${JSON.stringify(c.document).slice(0, 300)}`);
  }
  console.log(`ok   ${cases.length} kind documents: schema and server agree`);
}

// Responses recorded by the API suite.
function matchPath(p) {
  const segs = p.split('/');
  let best = null;
  for (const tpl of Object.keys(doc.paths)) {
    const t = tpl.split('/');
    if (t.length !== segs.length) continue;
    let literal = 0, ok = true;
    for (let i = 0; i < t.length && ok; i++) {
      if (t[i].startsWith('{')) continue;
      if (t[i] === segs[i]) literal++; else ok = false;
    }
    if (ok && (!best || literal > best.literal)) best = { tpl, literal };
  }
  if (!best && p === '/ui/') return '/ui';
  return best?.tpl;
}
const respFile = opt('--responses');
if (respFile) {
  let checked = 0, unknown = 0;
  const seen = new Set();
  for (const line of readFileSync(respFile, 'utf8').split('\n')) {
    if (!line) continue;
    const r = JSON.parse(line);
    const tpl = matchPath(r.path.split('?')[0]);
    const op = tpl && doc.paths[tpl][r.method.toLowerCase() === 'head' ? 'get' : r.method.toLowerCase()];
    if (!op) { unknown++; continue; } // unknown routes and wrong methods: 404/405 problems
    const resp = op.responses[String(r.status)] || op.responses.default;
    const media = resp.$ref ? doc.components.responses[resp.$ref.split('/').pop()].content : resp.content;
    const type = (r.type || '').split(';')[0].trim();
    const content = media?.[type];
    if (!content) {
      if (type === 'application/json' || type === 'application/problem+json')
        fail(`${r.method} ${r.path} ${r.status}: ${type} is not declared for ${tpl}`);
      continue;
    }
    const val = validatorFor(content.schema);
    checked++;
    if (!val(r.body)) {
      const key = `${r.method} ${tpl} ${r.status}`;
      if (!seen.has(key)) fail(`${key}: response does not match: ${ajv.errorsText(val.errors)} ${JSON.stringify(r.body).slice(0, 300)}`);
      seen.add(key);
    }
  }
  console.log(`ok   ${checked} recorded responses checked (${unknown} to unknown routes or methods)`);
}
console.log(`openapi: ${failures ? 0 : 1} passed, ${failures ? 1 : 0} failed`);
process.exit(failures ? 1 : 0);
