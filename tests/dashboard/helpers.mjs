// helpers.mjs - what the dashboard's browser tests share: a real theater-server on
// a random loopback port, a TCP proxy that can cut every connection, Debian's
// Chromium driven by playwright-core with a wrapped EventSource (counts streams,
// records delivered ids), and small waits. Cleanups run after each test file.
//
// Environment: THEATER_BINARY_DIR (theater-server, examples/hello and counter),
// THEATER_SOURCE_DIR, DASH_DEPS (the folder holding node_modules/playwright-core).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const BIN = process.env.THEATER_BINARY_DIR;
export const SRC = process.env.THEATER_SOURCE_DIR;
export const DEPS = process.env.DASH_DEPS;
if (!BIN || !SRC || !DEPS) throw new Error('set THEATER_BINARY_DIR, THEATER_SOURCE_DIR and DASH_DEPS (see run.sh)');
const require = createRequire(path.join(DEPS, 'package.json'));
export const { chromium } = require('playwright-core');

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const WAIT = { timeout: 20000 };
export const cleanups = [];
// Each test file runs these once at its end: after(runCleanups).
export async function runCleanups() {
  for (const fn of cleanups.reverse()) await fn().catch((e) => console.error('cleanup:', e.message));
  cleanups.length = 0;
}

// ---- the server -------------------------------------------------------------

// args: more command-line arguments (cluster mode: --nats, --node, ...).
export async function startServer({ token, home, args = [] } = {}) {
  home = home || fs.mkdtempSync(path.join(os.tmpdir(), 'theater-dash-'));
  fs.mkdirSync(path.join(home, 'packages'), { recursive: true });
  fs.copyFileSync(path.join(BIN, 'examples/hello/hello.wasm'), path.join(home, 'packages/hello.wasm'));
  for (const ex of ['counter', 'kv']) {
    fs.mkdirSync(path.join(home, 'packages', ex), { recursive: true });
    for (const f of [`${ex}.wasm`, 'manifest.json'])
      fs.copyFileSync(path.join(BIN, 'examples', ex, f), path.join(home, 'packages', ex, f));
  }
  const env = { ...process.env, THEATER_HOME: home };
  delete env.THEATER_TOKEN;
  delete env.THEATER_TOKEN_FILE;
  delete env.THEATER_LISTEN;
  if (token) env.THEATER_TOKEN = token;
  const proc = spawn(path.join(BIN, 'theater-server'), ['--listen', '127.0.0.1:0', ...args],
    { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`theater-server did not start:\n${log}`)), 60000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => reject(new Error(`theater-server exited (${code}):\n${log}`)));
  });
  const srv = {
    port, home, proc, url: `http://127.0.0.1:${port}`,
    log: () => log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = once(proc, 'exit');
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 30000);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(home, { recursive: true, force: true });
      return proc.exitCode ?? proc.signalCode;
    },
  };
  cleanups.push(() => srv.stop());
  return srv;
}

export async function call(srv, method, p, { headers = {}, body } = {}) {
  const r = await fetch(srv.url + p, { method, headers, body });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}

// ---- a NATS server with JetStream (cluster mode) ------------------------------

// One nats-server on a free loopback port (installed with apt-get when missing,
// as tests/support/nats_cluster.c does); resolves to its nats:// url.
export async function startNats() {
  const which = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
  if (!which('nats-server')) {
    console.error('startNats: nats-server is missing; installing it with apt-get');
    const r = spawnSync('sh', ['-c', 'apt-get -o DPkg::Lock::Timeout=600 install -y -qq nats-server || ' +
      'sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq nats-server'], { stdio: 'inherit' });
    if (r.status !== 0 || !which('nats-server')) throw new Error('cannot install nats-server (apt-get install nats-server)');
  }
  const probe = net.createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const port = probe.address().port;
  await new Promise((r) => probe.close(r));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'theater-dash-nats-'));
  const proc = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d; });
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      await exited;
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const end = Date.now() + 30000;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok && /Server is ready/.test(log)) break;
    if (Date.now() > end) throw new Error(`nats-server did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return `nats://127.0.0.1:${port}`;
}

// ---- a proxy that can cut every connection ----------------------------------

export async function startProxy(targetPort) {
  const pairs = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream };
    pairs.add(pair);
    const done = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    for (const s of [client, upstream]) {
      s.on('error', done);
      s.on('close', done);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const proxy = {
    port: server.address().port,
    cut() {
      const n = pairs.size;
      for (const p of [...pairs]) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      return n;
    },
    async close() {
      proxy.cut();
      server.close();
    },
  };
  cleanups.push(() => proxy.close());
  return proxy;
}

// ---- the browser --------------------------------------------------------------

// Runs in the page before its scripts: counts streams, records delivered ids.
export function trackEventSources() {
  const Orig = window.EventSource;
  const s = { open: 0, max: 0, urls: [], delivered: {} };
  window.__streams = s;
  window.EventSource = class extends Orig {
    constructor(url, opts) {
      super(url, opts);
      s.open++;
      s.max = Math.max(s.max, s.open);
      s.urls.push(String(url));
      let counted = true;
      this.__drop = () => {
        if (counted) {
          counted = false;
          s.open--;
        }
      };
      this.addEventListener('error', () => { if (this.readyState === 2) this.__drop(); });
      const key = new URL(url, location.href).pathname;
      for (const type of ['chain', 'lifecycle']) {
        this.addEventListener(type, (e) => { (s.delivered[key] ||= []).push(Number(e.lastEventId)); });
      }
    }

    close() {
      this.__drop();
      super.close();
    }
  };
}

export async function openBrowser({ colorScheme = 'light' } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'theater-dash-profile-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 }, colorScheme,
  });
  const close = async () => {
    await ctx.close().catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  };
  cleanups.push(close);
  await ctx.addInitScript(trackEventSources);
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(WAIT.timeout);
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A failed fetch is logged by the browser; the page shows those itself.
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  return { ctx, page, problems, close };
}

export const streams = (page) => page.evaluate(() => window.__streams);
export const seqsShown = (page) => page.$$eval('#timeline .tl-row[data-seq]:not([data-loading])',
  (rows) => rows.map((r) => Number(r.dataset.seq)));

// Clicks the chain row that shows event seq. Rows are a recycled pool: page.click
// finds the row, then may scroll it into view, which re-renders the pool, and the
// same element then shows another event (an ASan run clicked #5 for #3 that way);
// here the row is found and clicked in one step inside the page.
export async function clickEvent(page, seq) {
  await page.$eval(`#timeline .tl-row[data-seq="${seq}"] .c-type`, (el) => el.click());
}

// clickEvent, then the inspector shows that event.
export async function pickEvent(page, seq) {
  await clickEvent(page, seq);
  await waitText(page, '#inspector .ev-title', `#${seq} `);
}

export async function waitText(page, selector, text) {
  try {
    await page.waitForFunction(([sel, t]) => {
      const el = document.querySelector(sel);
      return el && el.textContent.includes(t);
    }, [selector, text], WAIT);
  } catch (e) {
    const shown = await page.$eval(selector, (el) => el.textContent).catch(() => '(no such element)');
    throw new Error(`'${selector}' never said '${text}'; it says: ${shown.slice(0, 600)}`, { cause: e });
  }
}

// Pastes (or, with a file name, uploads) a manifest and submits the spawn form.
export async function spawnFromForm(page, manifest, { open, file }) {
  if (!(await page.$eval('#spawn', (d) => d.open))) await page.click('#spawn summary');
  const text = typeof manifest === 'string' ? manifest : JSON.stringify(manifest, null, 2);
  if (file) {
    await page.setInputFiles('#spawn-file', { name: file, mimeType: 'text/plain', buffer: Buffer.from(text) });
    await waitText(page, '#spawn-result', `Loaded '${file}'`);
    assert.equal(await page.inputValue('#spawn-manifest'), text);
  } else {
    await page.fill('#spawn-manifest', text);
  }
  if (open) await page.check('#spawn-open');
  else await page.uncheck('#spawn-open');
  await page.click('#spawn-submit');
  await page.waitForSelector('#spawn-result.ok, #spawn-result.error', { state: 'attached' });
  return page.textContent('#spawn-result');
}

export function rowFor(page, name) {
  return page.locator('#actors tbody tr', { has: page.locator(`a:text-is("${name}")`) });
}

export async function screenshot(page, name) {
  const out = path.join(BIN, 'tests', 'dashboard', name);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  await page.screenshot({ path: out });
}

export async function until(fn, what = 'a condition') {
  const end = Date.now() + WAIT.timeout;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function range(from, to) {
  const out = [];
  for (let i = from; i <= to; i++) out.push(i);
  return out;
}


// Writes <home>/chains/<id>.chain and .meta.json in the documented format
// (docs/chain-format.md): the server indexes the chain when it starts. The chain
// is spawned, started, then n - 2 log events, or `events` ([type, data], n = 2 +
// their number).
export function writeChain(home, id, n, { name = 'big', events } = {}) {
  const dir = path.join(home, 'chains');
  fs.mkdirSync(dir, { recursive: true });
  const t0 = Date.now() - n * 10;
  let parent = Buffer.alloc(32);
  const parts = [];
  for (let seq = 1; seq <= n; seq++) {
    let type = 'theater:simple/runtime/log';
    let data;
    if (seq === 1) {
      type = 'spawned';
      data = Buffer.from(JSON.stringify({ timestamp: t0, manifest: { name, package: 'big.wasm' },
        initial_state: { big: true } }));
    } else if (seq === 2) {
      type = 'started';
      data = Buffer.from(JSON.stringify({ timestamp: t0 + 1 }));
    } else if (events) {
      [type, data] = events[seq - 3];
      data = Buffer.from(typeof data === 'string' ? data : JSON.stringify(data));
    } else if (seq === 3) {
      data = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3, 0xff, 0xfe, 10, 13]);   // not JSON
    } else {
      data = Buffer.from(`{"timestamp":${t0 + seq * 10},"message":"event ${seq}"}`);
    }
    const head = Buffer.alloc(4);
    head.writeUInt32BE(Buffer.byteLength(type));
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(data.length));
    const hash = crypto.createHash('sha256').update(parent).update(head).update(type).update(len)
      .update(data).digest();
    parts.push(Buffer.from(`EVENT ${hash.toString('hex')}\n${parent.toString('hex')}\n${type}\n${data.length}\n\n`),
      data, Buffer.from('\n\n'));
    parent = hash;
  }
  fs.writeFileSync(path.join(dir, `${id}.chain`), Buffer.concat(parts));
  fs.writeFileSync(path.join(dir, `${id}.meta.json`), JSON.stringify({ actor_id: id, actor_name: name,
    manifest_path: 'big.json', started_at: Math.floor(t0 / 1000) }, null, 2));
}

