// ops.test.mjs - the dashboard's operator views end to end (issue 13, point 6): a
// real theater-server, Debian's Chromium headless (see helpers.mjs and run.sh).
//
// 1. the actor page: unknown ids (fresh load, and from another actor's page) turn
//    everything off; the list's "Last event" is the newest event of any type; the
//    event view shows the message and the answer (wasm), from/kind/data (mail) and
//    host-call input, output and args; the chain filter by type and text; the state
//    diff (JSON keys); the metrics panel; Replay, Restart and Delete;
// 2. a state diff of states that are not JSON (a line diff), on a written chain;
// 3. the server view (/metrics), stores with labels and objects, and secrets
//    (names only; set and delete from the page).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  startServer, call, openBrowser, waitText, rowFor, until, writeChain, runCleanups, clickEvent,
  pickEvent,
} from './helpers.mjs';

after(runCleanups);

const json = (v) => ({ headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(v) });

async function spawnApi(srv, body) {
  const r = await call(srv, 'POST', '/actors?wait=running', json(body));
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.status, 'running');
  return r.json.id;
}

async function chainOf(srv, id) {
  const r = await call(srv, 'GET', `/actors/${id}/chain?limit=1000`);
  assert.equal(r.status, 200);
  return r.json.items;
}

const ACTIONS = ['#btn-verify', '#btn-stop', '#btn-kill', '#btn-restart', '#btn-replay', '#btn-delete'];

async function allDisabled(page) {
  for (const b of ACTIONS) assert.ok(await page.isDisabled(b), `${b} is off`);
}

test('actor page: unknown ids, last event, event view, filter, diff, metrics, replay, restart, delete',
  { timeout: 180000 }, async () => {
    const srv = await startServer();
    const { page, problems, close } = await openBrowser();
    const counter = await spawnApi(srv, { manifest_ref: 'counter/manifest.json' });
    const hello = await spawnApi(srv, { manifest: { name: 'hello', package: 'hello.wasm' } });
    const nobody = crypto.randomUUID();

    // A fresh load of an unknown id: said so, every action off, no endless "loading".
    await page.goto(`${srv.url}/#/actors/${nobody}`);
    await page.waitForSelector('#actor-title:text-is("No such actor")');
    await waitText(page, '#actor-missing', nobody);
    await allDisabled(page);
    await waitText(page, '#state', 'No state');
    assert.ok(!(await page.textContent('#state')).includes('loading'));
    assert.ok(await page.isDisabled('#msg-send'));
    await waitText(page, '#actor-metrics', 'No metrics');
    assert.equal(await page.getAttribute('#actor-status', 'data-status'), '');
    assert.equal(await page.textContent('#chain-stream'), 'closed');

    // From a real actor's page to an unknown one: nothing of the first stays.
    await page.goto(`${srv.url}/#/actors/${counter}`);
    await page.waitForSelector('#actor-status[data-status="running"]');
    await waitText(page, '#tl-count', 'events)');
    await page.evaluate((id) => { location.hash = `#/actors/${id}`; }, nobody);
    await page.waitForSelector('#actor-title:text-is("No such actor")');
    assert.equal(await page.textContent('#actor-status'), '');
    assert.equal(await page.textContent('#tl-count'), '');
    await allDisabled(page);
    await waitText(page, '#state', 'No state');

    // Talk to the counter through the API: messages, a request, a refused request.
    for (const m of ['5', '7'])
      assert.equal((await call(srv, 'POST', `/actors/${counter}/messages`, { body: m })).status, 202);
    assert.equal((await call(srv, 'POST', `/actors/${counter}/requests`, { body: 'get' })).text, '12');
    assert.equal((await call(srv, 'POST', `/actors/${counter}/requests`, { body: 'bogus' })).status, 422);
    await until(async () => (await chainOf(srv, counter)).filter((e) => e.event_type === 'wasm').length === 5,
      'five calls in the chain');
    let chain = await chainOf(srv, counter);
    const last = chain.at(-1);
    assert.equal(last.event_type, 'wasm');

    // The list's "Last event" is the newest event of any type (a call here), not "started".
    await page.goto(`${srv.url}/#/`);
    const counterRow = rowFor(page, 'counter');
    await counterRow.locator('td:last-child .mono:text-is("wasm")').waitFor();
    assert.equal((await call(srv, 'POST', `/actors/${hello}/messages`, { body: 'hi' })).status, 202);
    await until(async () => (await chainOf(srv, hello)).at(-1).event_type === 'wasm', 'hello handled its message');
    await rowFor(page, 'hello').locator('td:last-child .mono:text-is("wasm")').waitFor();   // by polling

    // The event view: the message and the answer of each call.
    await page.goto(`${srv.url}/#/actors/${counter}`);
    await page.waitForSelector(`#timeline .tl-row[data-seq="${last.seq}"]:not([data-loading])`);
    const find = (pred) => chain.find(pred);
    const send5 = find((e) => e.event_type === 'wasm' && e.data.input === '5');
    const send7 = find((e) => e.event_type === 'wasm' && e.data.input === '7');
    const get = find((e) => e.event_type === 'wasm' && e.data.input === 'get');
    const bogus = find((e) => e.event_type === 'wasm' && e.data.input === 'bogus');
    const init = find((e) => e.event_type === 'wasm' && e.data.function === 'init');
    const mail7 = find((e) => e.event_type === 'message-server/received' && e.data.data === '7');
    const log = find((e) => e.event_type === 'theater:simple/runtime/log');
    const pick = (seq) => pickEvent(page, seq);
    await pick(get.seq);
    await waitText(page, '#inspector [data-key="function"]', 'handle-request');
    await waitText(page, '#inspector [data-block="Message (input)"] pre', 'get');
    await waitText(page, '#inspector [data-block="Answer (output)"] pre', '12');
    await waitText(page, '#inspector [data-key="message"]', `#${get.data.mail}`);
    await pick(bogus.seq);
    await waitText(page, '#inspector [data-block="Error"] pre', 'unknown request');
    await waitText(page, '#inspector [data-key="outcome"]', 'error');
    // The mail link goes to the received event: from, kind, data.
    await page.click(`#inspector [data-key="message"] button[data-goto="${bogus.data.mail}"]`);
    await waitText(page, '#inspector .ev-title', `#${bogus.data.mail} `);
    await waitText(page, '#inspector [data-key="from"]', 'api');
    await waitText(page, '#inspector [data-key="kind"]', 'request');
    await waitText(page, '#inspector [data-block="Data"] pre', 'bogus');
    await pick(mail7.seq);
    await waitText(page, '#inspector [data-key="kind"]', 'send');
    // A host call: its input, output and the arguments as the actor passed them.
    await pick(log.seq);
    await waitText(page, '#inspector [data-key="host call"]', 'theater:simple/runtime/log');
    await waitText(page, '#inspector [data-block="Input"] pre', 'counter: ready');
    await waitText(page, '#inspector [data-key="args"]', log.data.args.join(', '));

    // The chain filter: by type (the server filters), then by text (the page searches).
    const shownResults = () => page.$$eval('#chain-results li', (li) => li.map((x) => Number(x.dataset.seq)));
    await page.selectOption('#chain-type', 'wasm');
    const wasmSeqs = chain.filter((e) => e.event_type === 'wasm').map((e) => e.seq);
    await waitText(page, '#chain-filter-status', `${wasmSeqs.length} matches`);
    assert.deepEqual(await shownResults(), wasmSeqs);
    await page.selectOption('#chain-type', '');
    await page.fill('#chain-search', 'BOGUS');
    await page.click('#chain-find');
    const bogusSeqs = chain.filter((e) => JSON.stringify(e.data).toLowerCase().includes('bogus')).map((e) => e.seq);
    assert.equal(bogusSeqs.length, 2, 'the mail and the call');
    await waitText(page, '#chain-filter-status', '2 matches');
    assert.deepEqual(await shownResults(), bogusSeqs);
    // Type and text together; a click on a match selects it in the timeline.
    await page.selectOption('#chain-type', 'message-server/received');
    await waitText(page, '#chain-filter-status', '1 match ');
    assert.deepEqual(await shownResults(), [bogus.data.mail]);
    await page.click(`#chain-results li[data-seq="${bogus.data.mail}"] button`);
    await page.waitForSelector(`#timeline .tl-row[data-seq="${bogus.data.mail}"][aria-selected="true"]`);
    // A host-call type seen in the chain is offered too.
    await page.fill('#chain-search', '');
    await page.selectOption('#chain-type', 'theater:simple/runtime/log');
    await waitText(page, '#chain-filter-status', '1 match ');
    // Live events that match are added as they come.
    await page.selectOption('#chain-type', 'wasm');
    await waitText(page, '#chain-filter-status', `${wasmSeqs.length} matches`);
    assert.equal((await call(srv, 'POST', `/actors/${counter}/messages`, { body: '1' })).status, 202);
    await waitText(page, '#chain-filter-status', `${wasmSeqs.length + 1} matches`);
    await page.click('#chain-clear');
    assert.equal(await page.isVisible('#chain-results'), false);

    // The state diff: the init's state against the state after "+7" (JSON: by key).
    await pick(init.seq);
    await page.click('#diff-from');
    await pick(send7.seq);
    await page.click('#diff-to');
    await page.waitForSelector('#diff-result table[data-kind="json"]');
    const diffRow = (p) => page.$$eval(`#diff-result tr[data-path="${p}"] td`, (td) => td.map((x) => x.textContent));
    assert.deepEqual(await diffRow('count'), ['changed', 'count', '0', '12']);
    // A failed call and a mail stand for the state before them.
    await page.fill('#diff-a', String(send5.seq));
    await page.fill('#diff-b', String(bogus.seq));
    await page.click('#diff-run');
    await waitText(page, '#diff-head', `after #${bogus.seq} (state held by #${send7.seq})`);
    assert.deepEqual(await diffRow('count'), ['changed', 'count', '5', '12']);
    await page.fill('#diff-a', String(bogus.data.mail));
    await page.fill('#diff-b', String(send7.seq));
    await page.click('#diff-run');
    await waitText(page, '#diff-result', 'The two states are the same');

    // Metrics: the totals from the API, a line that grows with every poll.
    chain = await chainOf(srv, counter);
    const calls = chain.filter((e) => e.event_type === 'wasm').length;
    await waitText(page, '#actor-metrics [data-metric="calls"] .metric-value', String(calls));
    await page.waitForFunction(() => Number(document.querySelector('#actor-metrics [data-metric="calls"] svg')?.dataset.samples) >= 2);
    const m = (await call(srv, 'GET', `/actors/${counter}/metrics`)).json;
    assert.equal(m.calls, calls);
    await waitText(page, '#actor-metrics [data-metric="failures"] .metric-value', String(m.failures));
    assert.equal(m.failures, 1);
    await waitText(page, '#actor-metrics [data-metric="mailbox"] .metric-value', `/ ${m.mailbox.capacity}`);

    // Replay: every call again, compared with the record.
    const replay = (await call(srv, 'POST', `/actors/${counter}/replay`)).json;
    assert.equal(replay.diverged_at, null);
    await page.click('#btn-replay');
    await waitText(page, '#action-result', `replay matches the chain: ${replay.replayed} calls replayed identically`);

    // Restart: two clicks; the result and the new run's events show.
    await page.click('#btn-restart');
    await waitText(page, '#btn-restart', 'Really restart?');
    await page.click('#btn-restart');
    await waitText(page, '#action-result', 'restarted: running');
    await page.waitForSelector('#timeline .tl-row[data-type="restarted"]');
    await page.waitForSelector('#actor-status[data-status="running"]');
    await waitText(page, '#state-value', '"count": 13');

    // Delete a live actor: two clicks, killed and removed, back on the list.
    await page.goto(`${srv.url}/#/actors/${hello}`);
    await page.waitForSelector('#actor-status[data-status="running"]');
    await page.click('#btn-delete');
    await waitText(page, '#btn-delete', 'Really delete?');
    await page.click('#btn-delete');
    await page.waitForSelector('#list-view:not([hidden])');
    await waitText(page, '#alerts', `Deleted hello (${hello})`);
    await rowFor(page, 'hello').waitFor({ state: 'detached' });
    assert.equal((await call(srv, 'GET', `/actors/${hello}`)).status, 404);
    await rowFor(page, 'counter').waitFor();

    assert.deepEqual(problems, []);
    await close();
    assert.equal(await srv.stop(), 0, `the server stopped cleanly:\n${srv.log()}`);
  });

test('state diff of states that are not JSON is a line diff', { timeout: 90000 }, async () => {
  const id = crypto.randomUUID();
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'theater-dash-diff-'));
  const call1 = { function: 'init', state_sha256: 'a'.repeat(64), state: 'alpha\nbeta\ngamma' };
  const call2 = { function: 'handle-send', input: 'x', state_sha256: 'b'.repeat(64), state: 'alpha\nBETA\ngamma\ndelta' };
  writeChain(home, id, 4, { name: 'lines', events: [['wasm', call1], ['wasm', call2]] });
  const srv = await startServer({ home });
  const { page, problems, close } = await openBrowser();
  await page.goto(`${srv.url}/#/actors/${id}`);
  await page.waitForSelector('#timeline .tl-row[data-seq="4"]:not([data-loading])');
  await page.fill('#diff-a', '3');
  await page.fill('#diff-b', '4');
  await page.click('#diff-run');
  await page.waitForSelector('#diff-result pre[data-kind="lines"]');
  const lines = await page.$$eval('#diff-result .diff-line', (l) => l.map((x) => [x.className.split(' ')[1], x.textContent.trimEnd()]));
  assert.deepEqual(lines, [['diff-same', '  alpha'], ['diff-removed', '- beta'], ['diff-added', '+ BETA'],
    ['diff-same', '  gamma'], ['diff-added', '+ delta']]);
  // The event view shows the call's state as text.
  await clickEvent(page, 4);
  await waitText(page, '#inspector [data-block="State after the call"] pre', 'delta');
  await waitText(page, '#inspector [data-block="Message (input)"] pre', 'x');
  assert.deepEqual(problems, []);
  await close();
  assert.equal(await srv.stop(), 0, `the server stopped cleanly:\n${srv.log()}`);
});

test('server metrics, stores with labels, secret names', { timeout: 120000 }, async () => {
  const srv = await startServer();
  const { page, problems, close } = await openBrowser();
  const kv = await spawnApi(srv, { manifest_ref: 'kv/manifest.json' });

  // The server view draws /metrics: actors by status, spawns going up.
  await page.goto(`${srv.url}/#/server`);
  await page.waitForSelector('#srv-status-bars g[data-label="running"][data-value="1"]');
  await waitText(page, '#server-metrics [data-metric="spawns"] .metric-value', '1');
  await spawnApi(srv, { manifest: { name: 'one-more', package: 'hello.wasm' } });
  await page.waitForSelector('#srv-status-bars g[data-label="running"][data-value="2"]');
  await waitText(page, '#server-metrics [data-metric="spawns"] .metric-value', '2');
  await page.waitForFunction(() => Number(document.querySelector('[data-metric="http"] svg')?.dataset.samples) >= 3);
  await page.waitForSelector('#srv-class-bars g[data-label="2xx"]');
  assert.ok(Number(await page.getAttribute('#srv-class-bars g[data-label="2xx"]', 'data-value')) > 0);
  await waitText(page, '#srv-routes', 'GET /metrics');
  const prom = (await call(srv, 'GET', '/metrics')).text;
  const parked = /^theater_parked_calls (\d+)$/m.exec(prom);
  assert.ok(parked, 'the server reports parked calls');
  await waitText(page, '#server-metrics [data-metric="parked"] .metric-value', parked[1]);
  assert.equal(await page.getAttribute('nav.views a[data-view="server"]', 'aria-current'), 'page');

  // Stores: the kv actor puts a value (an object and a label in store "kv").
  const put = await call(srv, 'POST', `/actors/${kv}/requests`, { body: JSON.stringify({ op: 'put', key: 'greeting', value: 'hello store' }) });
  assert.equal(put.status, 200, put.text);
  const sha = JSON.parse(put.text).hash;
  await page.click('nav.views a[data-view="stores"]');
  await page.waitForSelector('#store-list li[data-store="kv"]');
  await page.waitForSelector('#store-list li[data-store="theater-packages"]');
  await page.click('#store-list li[data-store="kv"] a');
  await waitText(page, '#store-title', 'kv');
  await page.waitForSelector(`#label-table tr[data-label="greeting"] button[title$="${sha}"]`);
  await page.click(`#store-objects tr[data-sha="${sha}"] button:text-is("view")`);
  await waitText(page, '#store-object', 'hello store');
  const objects = (await call(srv, 'GET', '/store/kv')).json.items;
  assert.equal(await page.locator('#store-objects tbody tr').count(), objects.length);
  // An unknown store says so.
  await page.goto(`${srv.url}/#/stores/no-such-store`);
  await waitText(page, '#stores-view .error', 'No such store');

  // Secrets: names and metadata only; set and delete from the page.
  const value = `s3cr3t-${crypto.randomBytes(8).toString('hex')}`;
  await page.goto(`${srv.url}/#/secrets`);
  await page.waitForSelector('#secret-empty:not([hidden])');
  await page.fill('#secret-name', 'api-key');
  await page.fill('#secret-value', value);
  await page.click('#secret-save');
  await waitText(page, '#secret-result', `Saved 'api-key' (${value.length} bytes)`);
  await page.waitForSelector('#secrets tr[data-name="api-key"]');
  assert.equal(await page.inputValue('#secret-value'), '', 'the value is not kept in the form');
  assert.ok(!(await page.content()).includes(value), 'the value is nowhere on the page');
  const listed = (await call(srv, 'GET', '/secrets')).json.items;
  assert.deepEqual(listed.map((s) => s.name), ['api-key']);
  await waitText(page, '#secrets tr[data-name="api-key"]', listed[0].fingerprint.slice(0, 16));
  // A bad name is refused before anything is sent.
  await page.fill('#secret-name', 'bad name');
  await page.fill('#secret-value', 'x');
  await page.click('#secret-save');
  await waitText(page, '#secret-result', 'A name is letters');
  await page.click('#secrets button[data-delete="api-key"]');
  await waitText(page, '#secrets button[data-delete="api-key"]', 'Really delete api-key?');
  await page.click('#secrets button[data-delete="api-key"]');
  await waitText(page, '#secret-result', "Deleted 'api-key'");
  await page.waitForSelector('#secret-empty:not([hidden])');
  assert.deepEqual((await call(srv, 'GET', '/secrets')).json.items, []);

  assert.deepEqual(problems, []);
  await close();
  assert.equal(await srv.stop(), 0, `the server stopped cleanly:\n${srv.log()}`);
});
