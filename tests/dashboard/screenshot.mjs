// screenshot.mjs - takes the README's pictures of the dashboard: docs/dashboard.png
// (an actor page: the chain, a call with its message and answer, the state diff
// and the metrics) and docs/dashboard-server.png (the server view).
//
//   tests/dashboard/run.sh <build dir> --screenshot
//
// run.sh installs what it needs and sets the environment (see helpers.mjs); this
// starts its own server on a random port with the counter example, talks to it,
// and writes both files into docs/ of the source tree.

import fs from 'node:fs';
import path from 'node:path';
import { startServer, call, openBrowser, waitText, until, pickEvent, SRC, cleanups } from './helpers.mjs';

async function main() {
  const srv = await startServer();
  const { page, close } = await openBrowser();
  const spawn = await call(srv, 'POST', '/actors?wait=running', {
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ manifest_ref: 'counter/manifest.json' }),
  });
  const id = spawn.json.id;
  await call(srv, 'POST', '/actors?wait=running', {
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ manifest: { name: 'hello', package: 'hello.wasm' } }),
  });
  await page.goto(`${srv.url}/#/actors/${id}`);
  await page.waitForSelector('#chain-stream[data-state="live"]');
  // Some traffic while the metrics panel watches.
  for (const m of ['5', '7', '30', '-2', '10']) {
    await call(srv, 'POST', `/actors/${id}/messages`, { body: m });
    await new Promise((r) => setTimeout(r, 700));
  }
  await call(srv, 'POST', `/actors/${id}/requests`, { body: 'get' });
  const wasm = async () => (await call(srv, 'GET', `/actors/${id}/chain?limit=1000&type=wasm`)).json.items;
  await until(async () => (await wasm()).length === 7, 'every call recorded');
  const calls = await wasm();
  const first = calls.find((e) => e.data.function === 'init');
  const get = calls.find((e) => e.data.input === 'get');
  const send = calls.filter((e) => e.data.function === 'handle-send').at(-1);
  // Every event is on the page before clicking (rows are reused as events arrive).
  const length = (await call(srv, 'GET', `/actors/${id}/chain?limit=1`)).json.length;
  await page.waitForSelector(`#timeline .tl-row[data-seq="${length}"]:not([data-loading])`);
  const pick = (seq) => pickEvent(page, seq);
  await pick(first.seq);
  await page.click('#diff-from');
  await pick(send.seq);
  await page.click('#diff-to');
  await page.waitForSelector('#diff-result table');
  await pick(get.seq);
  await waitText(page, '#inspector [data-block="Answer (output)"]', '50');
  await page.click('#btn-verify');
  await waitText(page, '#verify-result', 'valid');
  await page.waitForFunction(() => Number(document.querySelector('[data-metric="calls"] svg')?.dataset.samples) >= 5);
  await page.setViewportSize({ width: 1440, height: 1400 });
  const docs = path.join(SRC, 'docs');
  await page.screenshot({ path: path.join(docs, 'dashboard.png'), fullPage: false });
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(`${srv.url}/#/server`);
  for (let i = 0; i < 6; i++) {
    await call(srv, 'GET', '/actors');
    await new Promise((r) => setTimeout(r, 500));
  }
  await page.waitForFunction(() => Number(document.querySelector('[data-metric="http"] svg')?.dataset.samples) >= 4);
  await page.screenshot({ path: path.join(docs, 'dashboard-server.png') });
  await close();
  await srv.stop();
  for (const f of ['dashboard.png', 'dashboard-server.png'])
    console.log(`wrote ${path.join(docs, f)} (${fs.statSync(path.join(docs, f)).size} bytes)`);
}

main().then(() => process.exit(0), async (e) => {
  console.error(`screenshot: ${e.stack || e.message}`);
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
  process.exit(1);
});
