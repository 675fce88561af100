// dashboard.test.mjs - the dashboard end to end: a real theater-server on a random
// loopback port, Debian's Chromium headless driven by playwright-core.
//
//   node --test tests/dashboard/dashboard.test.mjs     (run.sh sets it up)
//
// Environment: THEATER_BINARY_DIR (theater-server, examples/hello and counter),
// THEATER_SOURCE_DIR, DASH_DEPS (the folder holding node_modules/playwright-core).
// Shared helpers are in helpers.mjs; the docs' screenshots come from screenshot.mjs.
//
// The browser reaches the server through a small TCP proxy in this process, so a
// test can cut every connection at once, as a flaky network would. Each page gets
// a wrapped EventSource that records the ids each stream delivered and how many
// streams were open at once, so "resumes without duplicates" and "never more than
// two streams" are checked on what the page actually received.


import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startServer, call, startProxy, openBrowser, streams, seqsShown, waitText, spawnFromForm, rowFor,
  screenshot, until, range, writeChain, runCleanups, startNats, clickEvent,
} from './helpers.mjs';

after(runCleanups);

// ---- the tests ------------------------------------------------------------------

test('spawn, watch, talk to, stop, survive a cut stream and a reload', { timeout: 120000 }, async () => {
  const srv = await startServer();
  const proxy = await startProxy(srv.port);
  const base = `http://127.0.0.1:${proxy.port}`;
  const { page, problems, close } = await openBrowser();
  const rowsLoaded = (n) => page.waitForFunction((k) =>
    document.querySelectorAll('#timeline .tl-row[data-seq]:not([data-loading])').length === k, n);

  // The page is served by theater-server, with a strict CSP.
  const resp = await page.goto(`${base}/`);
  assert.equal(resp.status(), 200);
  assert.match(resp.headers()['content-security-policy'], /script-src 'self'/);
  await page.waitForSelector('#list-stream[data-state="live"]');
  assert.equal(await page.isVisible('#list-empty'), true);

  // A bad manifest: the problem's detail is on screen.
  let text = await spawnFromForm(page, { name: 'typo', package: 'hello.wasm', pakage: 'x' }, { open: false });
  assert.match(text, /unknown key 'pakage'/);
  // A missing package: the detail, and a link to the failed run.
  text = await spawnFromForm(page, { name: 'missing', package: 'nope.wasm' }, { open: false });
  assert.match(text, /file 'nope\.wasm' not found under the package roots/);
  assert.equal(await page.locator('#spawn-result a').count(), 1);
  await rowFor(page, 'missing').locator('.badge:text-is("failed")').waitFor();
  // Not JSON at all: said before anything is sent.
  text = await spawnFromForm(page, '{"name": "x",', { open: false });
  assert.match(text, /not valid JSON/);
  // TOML goes to the server as TOML (pasted, or uploaded as a file): its errors come
  // back with line and column.
  text = await spawnFromForm(page, 'name = "tomlish"\npackage =\n', { open: false });
  assert.match(text, /manifest:2:\d+: expected a value/);
  text = await spawnFromForm(page, '# from TOML\nname = "tomlish"\npackage = "hello.wasm"\n',
    { open: false, file: 'tomlish.toml' });
  assert.match(text, /Spawned tomlish .*running/);

  // Spawn from the form; the actor appears in the list from the /events stream.
  text = await spawnFromForm(page, { name: 'alpha', package: 'hello.wasm', initial_state: { greeting: 'hi' } },
    { open: false });
  assert.match(text, /Spawned alpha .*running/);
  const alphaRow = rowFor(page, 'alpha');
  await alphaRow.locator('.badge:text-is("running")').waitFor();
  const alphaId = await alphaRow.getAttribute('data-id');
  assert.match(alphaId, /^[0-9a-f-]{36}$/);

  // Filters.
  await page.selectOption('#filter-status', 'failed');
  await page.waitForFunction(() => document.querySelectorAll('#actors tbody tr').length === 1);
  assert.equal(await rowFor(page, 'missing').count(), 1);
  await page.selectOption('#filter-status', '');
  await page.fill('#filter-name', 'alp');
  await page.waitForFunction(() => document.querySelectorAll('#actors tbody tr').length === 1);
  assert.equal(await alphaRow.count(), 1);
  await page.fill('#filter-name', '');

  // Open it: the chain, the state, verification, the inspector by keyboard.
  await alphaRow.locator('a:text-is("alpha")').click();
  await page.waitForSelector('#chain-stream[data-state="live"]');
  const alphaChain = (await call(srv, 'GET', `/actors/${alphaId}/chain`)).json;
  await rowsLoaded(alphaChain.length);
  assert.deepEqual(await seqsShown(page), alphaChain.items.map((e) => e.seq).reverse());
  assert.equal(await page.getAttribute('#timeline .tl-row[data-seq="1"]', 'data-type'), 'spawned');
  await waitText(page, '#state', '"greeting": "hi"');
  await page.click('#btn-verify');
  await waitText(page, '#verify-result', `valid: ${alphaChain.length} events`);
  await page.focus('#timeline');
  await page.keyboard.press('End');
  await waitText(page, '#inspector', '#1 spawned');
  await waitText(page, '#inspector', '"initial_state"');
  await page.keyboard.press('ArrowUp');
  await waitText(page, '#inspector', `#2 ${alphaChain.items[1].event_type}`);
  await waitText(page, '#inspector', alphaChain.items[1].hash);
  await waitText(page, '#inspector', alphaChain.items[1].parent_hash);

  // The counter example, spawned by reference, opens by itself: talk to it and
  // watch its chain grow live.
  await page.click('.crumbs a');
  await spawnFromForm(page, { manifest_ref: 'counter/manifest.json' }, { open: true });
  await page.waitForSelector('#actor-title:text-is("counter")');
  await page.waitForSelector('#chain-stream[data-state="live"]');
  const counterId = page.url().split('/').pop();
  const chainPath = `/actors/${counterId}/chain`;
  const start = (await call(srv, 'GET', chainPath)).json.length;
  await rowsLoaded(start);
  await waitText(page, '#state-value', '"count": 0');
  await page.fill('#msg-body', '5');
  await page.click('#msg-send');
  await waitText(page, '#msg-result', 'accepted (1 bytes)');
  await waitText(page, '#state-value', '"count": 5');
  await page.fill('#req-body', 'get');
  await page.click('#req-send');
  await waitText(page, '#req-result', 'answered (JSON');
  await waitText(page, '#req-response', '5');
  await page.fill('#req-body', 'nope');
  await page.click('#req-send');
  await waitText(page, '#req-result', 'failed (actor_error)');
  await waitText(page, '#req-result', 'the counter answers "get"');
  const calls = async () => (await call(srv, 'GET', chainPath)).json.items.filter((e) => e.event_type === 'wasm').length;
  await until(async () => (await calls()) === 4, 'init, the message and both requests in the chain');
  let length = (await call(srv, 'GET', chainPath)).json.length;
  assert.ok(length >= start + 6, 'a message and two requests were recorded');
  await rowsLoaded(length);
  await page.waitForSelector('#timeline .tl-row[data-type="wasm"]');
  let s = await streams(page);
  assert.deepEqual(s.delivered[chainPath], range(start + 1, length), 'each new event arrived live, once');

  // Cut every connection; while the page is cut off, the counter gets two messages.
  assert.ok(proxy.cut() >= 2, 'the streams went through the proxy');
  await page.waitForSelector('#chain-stream[data-state="reconnecting"]');
  await page.waitForSelector('#list-stream[data-state="reconnecting"]');
  for (const m of ['2', '3'])
    assert.equal((await call(srv, 'POST', `/actors/${counterId}/messages`, { body: m })).status, 202);
  await until(async () => (await calls()) === 6, 'both messages handled, in the chain');
  const cutLength = (await call(srv, 'GET', chainPath)).json.length;
  assert.ok(cutLength >= length + 4, 'two messages and two calls were recorded');
  // The browser reconnects with Last-Event-ID and gets exactly the missed events.
  await page.waitForSelector('#chain-stream[data-state="live"]');
  await page.waitForSelector('#list-stream[data-state="live"]');
  await rowsLoaded(cutLength);
  assert.deepEqual(await seqsShown(page), range(1, cutLength).reverse());
  await waitText(page, '#state-value', '"count": 10');
  s = await streams(page);
  assert.deepEqual(s.delivered[chainPath], range(start + 1, cutLength), 'no event twice, none missing');
  const life = s.delivered['/events'];
  assert.equal(new Set(life).size, life.length, 'no lifecycle event twice');
  assert.deepEqual([...life].sort((a, b) => a - b), life, 'lifecycle ids in order');

  // Stop it with the button: the status changes, the stop event arrives live.
  await page.click('#btn-stop');
  await page.waitForSelector('#actor-status[data-status="stopped"]');
  await page.waitForSelector('#timeline .tl-row[data-type="stopped"]');
  await page.waitForSelector('#chain-stream[data-state="ended"]');
  assert.ok(await page.isDisabled('#btn-stop'));
  assert.ok(await page.isDisabled('#msg-send'), 'no messages to a stopped actor');
  length = (await call(srv, 'GET', chainPath)).json.length;
  s = await streams(page);
  assert.deepEqual(s.delivered[chainPath], range(start + 1, length));

  // Reload: the same chain, hash for hash.
  const before = await page.$$eval('#timeline .tl-row .c-hash', (b) => b.map((x) => x.dataset.value));
  await page.reload();
  await rowsLoaded(length);
  const afterReload = await page.$$eval('#timeline .tl-row .c-hash', (b) => b.map((x) => x.dataset.value));
  assert.deepEqual(afterReload, before);
  await page.waitForSelector('#chain-stream[data-state="ended"]');
  await waitText(page, '#state-value', '"count": 10');

  // A restart (through the API) goes on in the same chain: the page follows it.
  assert.equal((await call(srv, 'POST', `/actors/${counterId}/restart`)).status, 200);
  await page.waitForSelector('#actor-status[data-status="running"]');
  await page.waitForSelector('#chain-stream[data-state="live"]');
  await until(async () => (await call(srv, 'GET', chainPath)).json.items.at(-1).event_type === 'started',
    'the restarted run to start');
  const restarted = (await call(srv, 'GET', chainPath)).json.length;
  await rowsLoaded(restarted);
  await page.waitForSelector('#timeline .tl-row[data-type="restarted"]');
  assert.equal(await page.isDisabled('#msg-send'), false, 'a running actor takes messages');
  s = await streams(page);
  assert.deepEqual(s.delivered[chainPath], range(length + 1, restarted));
  assert.equal((await call(srv, 'POST', `/actors/${counterId}/stop`)).status, 204);
  await page.waitForSelector('#actor-status[data-status="stopped"]');
  await page.waitForSelector('#chain-stream[data-state="ended"]');
  length = (await call(srv, 'GET', chainPath)).json.length;
  await rowsLoaded(length);

  // Kill needs two clicks; a killed run shows as killed, here and in the list.
  await page.goto(`${base}/#/actors/${alphaId}`);
  await page.waitForSelector('#actor-status[data-status="running"]');
  await page.click('#btn-kill');
  await waitText(page, '#btn-kill', 'Really kill?');
  await page.click('#btn-kill');
  await page.waitForSelector('#actor-status[data-status="killed"]');
  await page.click('.crumbs a');
  await page.waitForSelector('#list-view:not([hidden])');
  await rowFor(page, 'alpha').locator('.badge:text-is("killed")').waitFor();
  await rowFor(page, 'counter').locator('.badge:text-is("stopped")').waitFor();
  // Back on the list: one stream left, and there were never more than two.
  await page.waitForFunction(() => window.__streams.open === 1);
  s = await streams(page);
  assert.ok(s.max <= 2, `at most two streams at once (saw ${s.max})`);

  // The screenshot for the docs: the counter's page with a call open.
  await page.goto(`${base}/#/actors/${counterId}`);
  await rowsLoaded(length);
  const call5 = await page.$$eval('#timeline .tl-row[data-type="wasm"]', (rows) => rows.map((r) => Number(r.dataset.seq)));
  await clickEvent(page, Math.min(...call5.filter((q) => q > start)));
  await waitText(page, '#inspector', '"function": "handle-send"');
  await page.click('#btn-verify');
  await waitText(page, '#verify-result', `valid: ${length} events`);
  await screenshot(page, 'dashboard.png');
  assert.deepEqual(problems, []);
  await close();
  assert.equal(await srv.stop(), 0, `the server stopped cleanly:\n${srv.log()}`);
});

// Polls fn until it is true (for work the server finishes after answering).
test('with a token: asks once, cookie session, token never in a URL', { timeout: 90000 }, async () => {
  const token = crypto.randomBytes(24).toString('hex');
  const srv = await startServer({ token });
  const { ctx, page, problems, close } = await openBrowser({ colorScheme: 'dark' });
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));

  await page.goto(`${srv.url}/`);
  await page.waitForSelector('#login[open]');
  await page.fill('#login-token', 'not-the-token');
  await page.click('#login-form button[type="submit"]');
  await waitText(page, '#login-error', 'Wrong token');
  await page.fill('#login-token', token);
  await page.click('#login-form button[type="submit"]');
  await page.waitForSelector('#list-stream[data-state="live"]');
  assert.equal(await page.$eval('#login', (d) => d.open), false);
  assert.equal(await page.inputValue('#login-token'), '', 'the page does not keep the token');

  // The session cookie: HttpOnly, SameSite=Strict, invisible to scripts.
  const cookie = (await ctx.cookies()).find((c) => c.name === 'theater_session');
  assert.ok(cookie, 'a session cookie');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.ok(!(await page.evaluate(() => document.cookie)).includes('theater_session'));

  // Everything works through it, streams included.
  await spawnFromForm(page, { name: 'secret', package: 'hello.wasm' }, { open: true });
  await page.waitForSelector('#actor-title:text-is("secret")');
  await page.waitForSelector('#chain-stream[data-state="live"]');
  await page.waitForSelector('#timeline .tl-row[data-type="started"]');
  await screenshot(page, 'dashboard-dark.png');

  // A reload does not ask again.
  await page.reload();
  await page.waitForSelector('#chain-stream[data-state="live"]');
  assert.equal(await page.$eval('#login', (d) => d.open), false);

  // Outside the browser: the cookie works, a forged or cross-site one does not.
  const value = (await ctx.cookies()).find((c) => c.name === 'theater_session').value;
  assert.equal((await call(srv, 'GET', '/actors')).status, 401);
  assert.equal((await call(srv, 'GET', '/actors', { headers: { Cookie: `theater_session=${value}` } })).status, 200);
  const forged = value.slice(0, -1) + (value.endsWith('0') ? '1' : '0');
  assert.equal((await call(srv, 'GET', '/actors', { headers: { Cookie: `theater_session=${forged}` } })).status, 401);
  assert.equal((await call(srv, 'GET', '/actors', {
    headers: { Cookie: `theater_session=${value}`, 'Sec-Fetch-Site': 'cross-site' } })).status, 401);
  assert.equal((await call(srv, 'POST', '/session')).status, 401, 'no token, no cookie: no session');
  const issued = await call(srv, 'POST', '/session', { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(issued.status, 204);
  assert.match(issued.headers.get('set-cookie'), /^theater_session=[0-9a-f]{64}; Path=\/; Max-Age=3600; HttpOnly; SameSite=Strict$/);
  // The page files are public; the data is not.
  assert.equal((await call(srv, 'GET', '/ui/app.js')).status, 200);

  // The token never travelled in a URL.
  assert.ok(urls.length > 5);
  for (const u of urls) assert.ok(!u.includes(token), `token in ${u}`);

  // Sign out: the cookie is gone and no longer valid; the page asks again.
  await page.click('#sign-out');
  await page.waitForSelector('#login[open]');
  assert.equal((await call(srv, 'GET', '/actors', { headers: { Cookie: `theater_session=${value}` } })).status, 401);
  assert.ok(!(await ctx.cookies()).some((c) => c.name === 'theater_session'));

  // Renewal: a live cookie alone gets a new one; the old one lasts a grace minute.
  const cookieOf = (r) => /^theater_session=([0-9a-f]{64});/.exec(r.headers.get('set-cookie'))[1];
  const asCookie = (v) => ({ headers: { Cookie: `theater_session=${v}` } });
  const c1 = cookieOf(await call(srv, 'POST', '/session', { headers: { Authorization: `Bearer ${token}` } }));
  const renewed = await call(srv, 'POST', '/session', asCookie(c1));
  assert.equal(renewed.status, 204);
  const c2 = cookieOf(renewed);
  assert.notEqual(c2, c1);
  assert.equal((await call(srv, 'GET', '/version', asCookie(c2))).status, 200);
  assert.equal((await call(srv, 'GET', '/version', asCookie(c1))).status, 200);
  // DELETE /session ends it and clears the cookie.
  const ended = await call(srv, 'DELETE', '/session', asCookie(c2));
  assert.equal(ended.status, 204);
  assert.match(ended.headers.get('set-cookie'), /^theater_session=; Path=\/; Max-Age=0;/);
  assert.equal((await call(srv, 'GET', '/version', asCookie(c2))).status, 401);
  assert.equal((await call(srv, 'POST', '/session', asCookie(c2))).status, 401, 'an ended session cannot renew');
  // The table is bounded: 64 newer sessions push the oldest out.
  const first = cookieOf(await call(srv, 'POST', '/session', { headers: { Authorization: `Bearer ${token}` } }));
  let last;
  for (let i = 0; i < 64; i++)
    last = cookieOf(await call(srv, 'POST', '/session', { headers: { Authorization: `Bearer ${token}` } }));
  assert.equal((await call(srv, 'GET', '/version', asCookie(first))).status, 401);
  assert.equal((await call(srv, 'GET', '/version', asCookie(last))).status, 200);
  assert.deepEqual(problems, []);
  await close();
  assert.equal(await srv.stop(), 0, `the server stopped cleanly:\n${srv.log()}`);
});

// ---- a chain of 100,000 events ---------------------------------------------------

test('a chain of 100,000 events pages in and stays small in the DOM', { timeout: 120000 }, async () => {
  const N = 100000;
  const id = crypto.randomUUID();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'theater-dash-big-'));
  writeChain(home, id, N);
  const srv = await startServer({ home });
  // The run is live with work left: it is recovered (one more event) in the
  // background after the server listens.
  for (let i = 0; i < 600; i++) {
    const m = (await call(srv, 'GET', '/metrics')).text;
    if (/\ntheater_recovery_pending 0\n/.test(m)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const length = (await call(srv, 'GET', `/actors/${id}/chain?limit=1`)).json.length;
  assert.ok(length >= N);
  const { page, problems, close } = await openBrowser();
  const rowCount = () => page.$$eval('#timeline .tl-row', (r) => r.length);

  await page.goto(`${srv.url}/#/actors/${id}`);
  await waitText(page, '#tl-count', `(${length} events)`);
  await page.waitForSelector(`#timeline .tl-row[data-seq="${length}"]:not([data-loading])`);
  assert.ok(await rowCount() < 80, 'only the rows in view are in the DOM');

  // The oldest events, at the far end.
  await page.$eval('#timeline', (el) => { el.scrollTop = el.scrollHeight; });
  await page.waitForSelector('#timeline .tl-row[data-seq="1"][data-type="spawned"]');
  assert.ok(await rowCount() < 80);
  await clickEvent(page, 3);
  await waitText(page, '#inspector', '12 bytes, not JSON');
  await waitText(page, '#inspector', 'de ad be ef 00 01 02 03');
  await waitText(page, '#inspector', '3q2+7wABAgP//goN');

  // The middle, then back to the top: events load where you look.
  await page.$eval('#timeline', (el) => { el.scrollTop = el.scrollHeight / 2; });
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#timeline .tl-row[data-seq]:not([data-loading])')];
    return rows.some((r) => Math.abs(Number(r.dataset.seq) - 50000) < 100);
  });
  const mid = await page.$eval('#timeline .tl-row[data-seq]:not([data-loading]) .c-seq', (el) => Number(el.textContent));
  await waitText(page, `#timeline .tl-row[data-seq="${mid}"] .c-data`, `"message":"event ${mid}"`);
  assert.ok(await rowCount() < 80);
  await page.focus('#timeline');
  await page.keyboard.press('Home');
  await page.waitForSelector(`#timeline .tl-row[data-seq="${length}"][aria-selected="true"]`);

  await page.click('#btn-verify');
  await waitText(page, '#verify-result', `valid: ${length} events`);
  const s = await streams(page);
  assert.ok(s.max <= 2);
  assert.deepEqual(problems, []);
  await close();
  assert.equal(await srv.stop(), 0, `the server stopped cleanly:\n${srv.log()}`);
});

test('cluster mode: the node of each actor, and the cluster\'s nodes', { timeout: 180000 }, async () => {
  // One NATS server (replicas 1) and two theater nodes over it.
  const nats = await startNats();
  const args = (node) => ['--nats', nats, '--node', node, '--nats-replicas', '1'];
  const n1 = await startServer({ args: args('n1') });
  const n2 = await startServer({ args: args('n2') });
  await until(async () => {
    const r = await call(n1, 'GET', '/cluster');
    return r.status === 200 && r.json.enabled &&
      r.json.nodes.filter((n) => n.status === 'up').length === 2;
  }, 'both nodes up');
  const manifest = JSON.stringify({ name: 'counter', package: 'counter/counter.wasm', handler: [{ type: 'runtime' }],
    initial_state: { count: 0 } });
  const spawnOn = async (node) => {
    const r = await call(n1, 'POST', `/actors?wait=running${node ? `&node=${node}` : ''}`,
      { headers: { 'Content-Type': 'application/json' }, body: `{"manifest": ${manifest}}` });
    assert.equal(r.status, 201, r.text);
    return r.json.id;
  };
  const here = await spawnOn(null);
  const there = await spawnOn('n2');

  const { page, problems } = await openBrowser();
  await page.goto(`${n1.url}/`);
  // The list: every node's actors, each with its node, in a column shown only now.
  await page.locator('#actors.clustered th.col-node').waitFor();
  await waitText(page, `#actors tr[data-id="${here}"] td.col-node`, 'n1');
  await waitText(page, `#actors tr[data-id="${there}"] td.col-node`, 'n2');
  assert.equal(await page.isVisible('#actors th.col-node'), true);
  // The page of an actor on the other node says where it runs.
  await page.goto(`${n1.url}/#/actors/${there}`);
  await waitText(page, '#actor-node', 'n2');
  await page.waitForSelector('#chain-stream[data-state="live"]');   // its stream, relayed from n2
  // The server view lists the cluster's nodes.
  await page.goto(`${n1.url}/#/server`);
  await waitText(page, '#srv-nodes tr[data-node="n1"]', 'n1 (this node)');
  await waitText(page, '#srv-nodes tr[data-node="n2"] td[data-status]', 'up');
  await waitText(page, '#server-cluster h2', 'this is node n1');
  assert.deepEqual(problems, []);

  // Without --nats there is no node column and no cluster panel.
  const single = await startServer();
  await call(single, 'POST', '/actors?wait=running',
    { headers: { 'Content-Type': 'application/json' }, body: `{"manifest": ${manifest}}` });
  await page.goto(`${single.url}/`);
  await page.locator('#actors tbody tr').first().waitFor();
  assert.equal(await page.isVisible('#actors th.col-node'), false);
  await page.goto(`${single.url}/#/server`);
  await page.waitForSelector('#server-metrics-grid');
  assert.equal(await page.isVisible('#server-cluster'), false);
});
