// check_live.mjs - live answers of theater-server against openapi/openapi.yaml.
//
//   node check_live.mjs <source dir> <build dir> <deps dir>     (run.sh sets it up)
//
// Starts the build's theater-server (a token, a small message limit, the example
// packages under its package root) on a random loopback port, calls every
// operation of the contract, successes and errors, and checks each answer:
//  - its status is documented for the operation it reached (or, for a method the
//    path does not list, it is 405 with Allow);
//  - a JSON or problem+json body matches the documented schema for that status
//    and media type (a small validator of our own for the JSON Schema subset the
//    contract uses: $ref, type, nullable, enum, required, properties,
//    additionalProperties, items, maxItems, oneOf, pattern);
//  - every operation of the contract was called at least once.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [SRC, BUILD, DEPS] = process.argv.slice(2);
if (!SRC || !BUILD || !DEPS) throw new Error('usage: check_live.mjs SRC BUILD DEPS');
const require = createRequire(path.join(DEPS, 'package.json'));
const yaml = require('js-yaml');
const spec = yaml.load(fs.readFileSync(path.join(SRC, 'openapi/openapi.yaml'), 'utf8'));

let failures = 0;
function fail(msg) { failures++; console.log('FAIL: ' + msg); }
function ok(msg) { console.log('ok: ' + msg); }

// ---- the schema checker ----
function resolve(s) {
  while (s && s.$ref) {
    const parts = s.$ref.replace(/^#\//, '').split('/');
    s = parts.reduce((o, k) => o[k.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
  }
  return s;
}
function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}
// Returns a list of problems ("at $.items[0].id: ...").
function validate(schema, v, where = '$') {
  const s = resolve(schema) || {};
  const errs = [];
  if (v === null) return s.nullable || !s.type ? [] : [`${where}: null where ${s.type} is expected`];
  if (s.oneOf) {
    const n = s.oneOf.filter((alt) => validate(alt, v, where).length === 0).length;
    if (n !== 1) errs.push(`${where}: matches ${n} of the oneOf alternatives, not 1`);
    return errs;
  }
  if (s.enum && !s.enum.includes(v)) errs.push(`${where}: ${JSON.stringify(v)} is not one of ${s.enum.join(', ')}`);
  const t = typeOf(v);
  if (s.type && !(s.type === t || (s.type === 'number' && t === 'integer'))) {
    errs.push(`${where}: ${t} where ${s.type} is expected`);
    return errs;
  }
  if (t === 'string' && s.pattern && !new RegExp(s.pattern).test(v)) errs.push(`${where}: '${v}' does not match ${s.pattern}`);
  if (t === 'array') {
    if (s.maxItems !== undefined && v.length > s.maxItems) errs.push(`${where}: more than ${s.maxItems} items`);
    if (s.items) v.forEach((x, i) => errs.push(...validate(s.items, x, `${where}[${i}]`)));
  }
  if (t === 'object') {
    for (const k of s.required || []) if (!(k in v)) errs.push(`${where}: required '${k}' is missing`);
    const props = s.properties || {};
    for (const [k, x] of Object.entries(v)) {
      if (props[k]) errs.push(...validate(props[k], x, `${where}.${k}`));
      else if (s.additionalProperties === false) errs.push(`${where}: '${k}' is not in the schema (additionalProperties: false)`);
      else if (s.additionalProperties && typeof s.additionalProperties === 'object') errs.push(...validate(s.additionalProperties, x, `${where}.${k}`));
    }
  }
  return errs;
}

// ---- operations of the contract ----
const ops = [];
for (const [p, item] of Object.entries(spec.paths)) {
  const re = new RegExp('^' + p.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+') + '$');
  for (const m of ['get', 'post', 'put', 'delete', 'patch']) {
    if (item[m]) ops.push({ path: p, re, method: m.toUpperCase(), op: item[m], called: 0 });
  }
}
function opFor(method, p) {
  const m = method === 'HEAD' ? 'GET' : method;
  const onPath = ops.filter((o) => o.re.test(p));
  // A literal segment beats a template ("/store/{id}/labels" vs "/store/{id}/hash/{h}").
  onPath.sort((a, b) => (b.path.match(/\{/g) || []).length < (a.path.match(/\{/g) || []).length ? 1 : -1);
  return { op: onPath.find((o) => o.method === m), pathKnown: onPath.length > 0 };
}

// ---- the server ----
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'theater-openapi-'));
const pkgs = path.join(home, 'packages');
fs.mkdirSync(pkgs);
for (const ex of ['hello', 'counter']) {
  fs.mkdirSync(path.join(pkgs, ex));
  for (const f of fs.readdirSync(path.join(BUILD, 'examples', ex)))
    fs.copyFileSync(path.join(BUILD, 'examples', ex, f), path.join(pkgs, ex, f));
}
const TOKEN = 'openapi-test-token-0123456789abcdef';
const server = spawn(path.join(BUILD, 'theater-server'),
  ['--home', home, '--listen', '127.0.0.1:0', '--package-root', pkgs, '--max-message', '4096'],
  { env: { ...process.env, THEATER_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
let serverLog = '';
const port = await new Promise((res, rej) => {
  const t = setTimeout(() => rej(new Error('the server did not start in 60 s:\n' + serverLog)), 60000);
  server.stderr.on('data', (d) => {
    serverLog += d;
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(serverLog);
    if (m) { clearTimeout(t); res(Number(m[1])); }
  });
  server.on('exit', (c) => rej(new Error(`the server exited (${c}):\n${serverLog}`)));
});
const BASE = `http://127.0.0.1:${port}`;

// call(method, path, {body, headers, auth=true, expect, stream}) -> {status, headers, text, json}
async function call(method, p, o = {}) {
  const headers = { ...(o.headers || {}) };
  if (o.auth !== false) headers.Authorization = `Bearer ${TOKEN}`;
  const ac = new AbortController();
  const r = await fetch(BASE + p, { method, headers, body: o.body, signal: ac.signal, redirect: 'manual' });
  let text = '';
  if (o.stream) ac.abort(); else text = await r.text();
  const ctype = (r.headers.get('content-type') || '').split(';')[0].trim();
  const res = { status: r.status, headers: r.headers, text, ctype };
  if (!o.stream && /json$/.test(ctype) && text) {
    try { res.json = JSON.parse(text); } catch (e) { fail(`${method} ${p}: body is not JSON: ${text.slice(0, 200)}`); }
  }
  check(method, p, res, o.expect);
  return res;
}

function check(method, p, res, expect) {
  const what = `${method} ${p} -> ${res.status}`;
  if (expect !== undefined && res.status !== expect) fail(`${what}: expected ${expect} (${res.text.slice(0, 300)})`);
  const { op, pathKnown } = opFor(method, p.split('?')[0]);
  if (!op) {
    if (pathKnown) {
      if (res.status !== 405 || !res.headers.get('allow')) fail(`${what}: a method the path does not list must be 405 with Allow`);
      else ok(`${what} (a method the path does not list; Allow: ${res.headers.get('allow')})`);
      if (res.json) bodyCheck(what, spec.components.schemas.Problem, res.json);
    } else {
      if (res.status !== 404) fail(`${what}: an unknown path must be 404`);
      if (res.json) bodyCheck(what, spec.components.schemas.Problem, res.json);
    }
    return;
  }
  op.called++;
  const doc = op.op.responses[String(res.status)] || op.op.responses.default;
  if (!doc) { fail(`${what}: status ${res.status} is not documented for ${op.method} ${op.path} (${res.text.slice(0, 200)})`); return; }
  const d = resolve(doc);
  if (!res.json) { ok(what); return; }
  const media = d.content && (d.content[res.ctype] || d.content['application/json']);
  if (!media) { fail(`${what}: a ${res.ctype} body where the contract documents none`); return; }
  bodyCheck(what, media.schema || {}, res.json);
}
function bodyCheck(what, schema, v) {
  const errs = validate(schema, v);
  if (errs.length) fail(`${what}: the body does not match the schema:\n  ${errs.join('\n  ')}`);
  else ok(`${what} (body matches)`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
try {
  // Public and server routes.
  await call('GET', '/health', { expect: 200, auth: false });
  await call('GET', '/ready', { expect: 200, auth: false });
  await call('GET', '/version', { expect: 200 });
  await call('GET', '/version', { expect: 401, auth: false });
  await call('GET', '/cluster', { expect: 200 });
  await call('GET', '/health?verbose=1', { expect: 400, auth: false });
  const oa = await call('GET', '/openapi.yaml', { expect: 200, auth: false });
  if (oa.text !== fs.readFileSync(path.join(SRC, 'openapi/openapi.yaml'), 'utf8')) fail('GET /openapi.yaml is not openapi/openapi.yaml');
  await call('GET', '/metrics', { expect: 200 });
  await call('DELETE', '/health', { expect: 405 });
  await call('GET', '/no/such/route', { expect: 404 });

  // Spawns: JSON, TOML, errors.
  const manifest = { name: 'counter', package: 'counter/counter.wasm', initial_state: { count: 0 } };
  const sp = await call('POST', '/actors?wait=running', { expect: 201, body: JSON.stringify({ manifest }), headers: { 'Content-Type': 'application/json' } });
  const id = sp.json.id;
  const toml = fs.readFileSync(path.join(pkgs, 'hello/manifest.toml'), 'utf8').replace(/package = "hello.wasm"/, 'package = "hello/hello.wasm"');
  const sp2 = await call('POST', '/actors?wait=running', { expect: 201, body: toml, headers: { 'Content-Type': 'application/toml' } });
  await call('POST', '/actors', { expect: 400, body: '{"manifest": ', headers: { 'Content-Type': 'application/json' } });
  await call('POST', '/actors', { expect: 422, body: JSON.stringify({ manifest: { ...manifest, pakage: 'x' } }), headers: { 'Content-Type': 'application/json' } });
  await call('POST', '/actors', { expect: 415, body: 'x', headers: { 'Content-Type': 'image/png' } });
  await call('POST', '/actors?wiat=running', { expect: 400, body: JSON.stringify({ manifest }), headers: { 'Content-Type': 'application/json' } });
  await call('POST', '/actors', { expect: 404, body: JSON.stringify({ manifest_ref: 'no/such/manifest.toml' }), headers: { 'Content-Type': 'application/json' } });

  // Runs.
  await call('GET', '/actors', { expect: 200 });
  await call('GET', '/actors?status=running&limit=1', { expect: 200 });
  await call('GET', '/actors?stauts=running', { expect: 400 });
  await call('GET', '/actors?limit=0', { expect: 400 });
  const one = await call('GET', `/actors/${id}`, { expect: 200 });
  await call('GET', `/actors/${id}`, { expect: 304, headers: { 'If-None-Match': one.headers.get('etag') } });
  await call('GET', '/actors/not-a-uuid', { expect: 400 });
  await call('GET', '/actors/00000000-0000-4000-8000-000000000000', { expect: 404 });
  await call('PUT', `/actors/${id}`, { expect: 405 });

  // Messages, requests, state, metrics, manifest.
  await call('POST', `/actors/${id}/messages`, { expect: 202, body: '5' });
  await call('POST', `/actors/${id}/messages`, { expect: 413, body: 'x'.repeat(8192) });
  await call('POST', `/actors/${id}/requests`, { expect: 200, body: 'get' });
  await call('POST', `/actors/${id}/messages`, { expect: 202, body: '1', headers: { 'Idempotency-Key': 'k-1' } });
  await call('POST', `/actors/${id}/messages`, { expect: 202, body: '1', headers: { 'Idempotency-Key': 'k-1' } });
  await call('POST', `/actors/${id}/messages`, { expect: 422, body: '2', headers: { 'Idempotency-Key': 'k-1' } });
  await call('POST', `/actors/${id}/requests?timeout=5`, { body: 'nonsense' });
  await call('POST', `/actors/${id}/requests?timout=5`, { expect: 400, body: 'get' });
  await call('GET', `/actors/${id}/state`, { expect: 200 });
  await call('GET', `/actors/${id}/metrics`, { expect: 200 });
  await call('GET', `/actors/${id}/manifest`, { expect: 200 });

  // The chain.
  await call('GET', `/actors/${id}/chain`, { expect: 200 });
  const typed = await call('GET', `/actors/${id}/chain?type=wasm`, { expect: 200 });
  if (!typed.json.items.length || typed.json.items.some((e) => e.event_type !== 'wasm')) fail('?type=wasm must keep only wasm events, and some');
  const two = await call('GET', `/actors/${id}/chain?type=spawned,started&type=wasm&limit=2`, { expect: 200 });
  if (two.json.items.length !== 2 || two.json.items[0].event_type !== 'spawned') fail(`?type=spawned,started&type=wasm&limit=2: ${two.text}`);
  await call('GET', `/actors/${id}/chain?types=wasm`, { expect: 400 });
  await call('GET', `/actors/${id}/chain?type=`, { expect: 400 });
  await call('GET', `/actors/${id}/chain?type=wasm,,started`, { expect: 400 });
  await call('GET', `/actors/${id}/chain`, { expect: 200, stream: true, headers: { Accept: 'text/event-stream' } });
  await call('GET', `/actors/${id}/chain?type=wasm`, { expect: 400, headers: { Accept: 'text/event-stream' } });
  await call('GET', `/actors/${id}/chain/events/1`, { expect: 200 });
  await call('GET', `/actors/${id}/chain/events/0`, { expect: 400 });
  await call('GET', `/actors/${id}/chain/events/999999`, { expect: 404 });
  await call('GET', `/actors/${id}/chain/verify`, { expect: 200 });
  await call('GET', '/events', { expect: 200, stream: true, headers: { Accept: 'text/event-stream' } });
  await call('GET', '/events?after=x', { expect: 400 });

  // The store.
  const put = await call('POST', '/store/demo', { expect: 201, body: 'hello store' });
  await call('POST', '/store/demo', { expect: 400, body: '' });
  await call('POST', '/store/.bad', { expect: 400, body: 'x' });
  await call('GET', '/store', { expect: 200 });
  const objs = await call('GET', '/store/demo', { expect: 200 });
  if (!objs.json.items.some((o) => o.sha256 === put.json.sha256 && o.size === 11)) fail(`GET /store/demo does not list the object: ${objs.text}`);
  await call('GET', '/store/demo?limit=1', { expect: 200 });
  await call('GET', '/store/nope', { expect: 404 });
  await call('GET', `/store/demo/hash/${put.json.sha256}`, { expect: 200 });
  await call('GET', `/store/demo/hash/${'0'.repeat(64)}`, { expect: 404 });
  await call('GET', '/store/demo/hash/xyz', { expect: 400 });
  await call('PUT', '/store/demo/labels/greeting', { expect: 204, body: put.json.sha256 });
  await call('PUT', '/store/demo/labels/missing', { expect: 404, body: '1'.repeat(64) });
  await call('GET', '/store/demo/labels/greeting', { expect: 200 });
  await call('GET', '/store/demo/labels/none', { expect: 404 });
  const labels = await call('GET', '/store/demo/labels', { expect: 200 });
  if (!labels.json.items.some((l) => l.label === 'greeting')) fail(`GET /store/demo/labels does not list 'greeting': ${labels.text}`);
  await call('GET', '/packages', { expect: 200 });

  // Secrets (write-only).
  await call('PUT', '/secrets/api_key', { expect: 201, body: 's3cret-value' });
  await call('PUT', '/secrets/api_key', { expect: 200, body: 's3cret-value-2' });
  const secrets = await call('GET', '/secrets', { expect: 200 });
  if (secrets.text.includes('s3cret')) fail('GET /secrets shows a secret value');
  await call('GET', '/secrets/api_key', { expect: 200 });
  await call('GET', '/secrets/api_key?reveal=1', { expect: 400 });
  await call('DELETE', '/secrets/api_key', { expect: 204 });
  await call('GET', '/secrets/api_key', { expect: 404 });

  // Manifests.
  await call('POST', '/manifests/validate', { expect: 200, body: toml, headers: { 'Content-Type': 'application/toml' } });
  await call('POST', '/manifests/validate', { expect: 200, body: JSON.stringify({ name: 'x' }), headers: { 'Content-Type': 'application/json' } });

  // Lifecycle.
  await call('POST', `/actors/${id}/replay`, { expect: 200 });
  await call('POST', `/actors/${id}/restart`, { expect: 200 });
  await call('POST', `/actors/${id}/restart?state=initial`, { expect: 200 });
  await call('POST', `/actors/${id}/restart?state=first`, { expect: 400 });
  await call('POST', `/actors/${id}/stop`, { expect: 204 });
  await call('POST', `/actors/${id}/stop`, { expect: 304 });
  await call('POST', `/actors/${id}/kill`, { expect: 409 });
  await call('POST', `/actors/${sp2.json.id}/kill`, { expect: 204 });
  await call('DELETE', `/actors/${sp2.json.id}?force=true`, { expect: 204 });
  await call('DELETE', `/actors/${id}?forse=true`, { expect: 400 });
  await call('DELETE', `/actors/${id}`, { expect: 204 });
  await call('GET', `/actors/${id}`, { expect: 404 });

  // The dashboard and its session.
  await call('GET', '/', { expect: 200, auth: false });
  await call('GET', '/ui/app.js', { expect: 200, auth: false });
  await call('GET', '/ui/nope.js', { expect: 404, auth: false });
  await call('POST', '/session', { expect: 204 });
  await call('POST', '/session', { expect: 401, auth: false, headers: { Authorization: 'Bearer wrong' } });
  await call('DELETE', '/session', { expect: 204, auth: false });
  await sleep(10);
} catch (e) {
  fail('the run stopped: ' + (e.stack || e));
}

for (const o of ops) if (!o.called) fail(`${o.method} ${o.path} (${o.op.operationId}) was never called`);
server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
fs.rmSync(home, { recursive: true, force: true });
console.log(failures ? `${failures} failure(s)` : `all answers match the contract (${ops.length} operations)`);
process.exit(failures ? 1 : 0);
