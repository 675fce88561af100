// app.js - the dashboard's entry: sign-in, the actor list's stream, the router.
//
// Views: the list (#/) is always there underneath; every other view is a row of
// VIEWS (a hash pattern, its <section>, and a class with start() and close(), one
// file each), so a new view is one more row and one more file.
//
// Streams: the list follows ONE /events EventSource for the page's whole life; the
// actor page opens ONE chain EventSource and closes it when you leave. Browsers
// allow six HTTP/1.1 connections per host, so two streams leave room for calls.
//
// Sign-in: when the server has a token (GET /version without cookies answers 401),
// the page asks for it once, trades it for an HttpOnly, SameSite=Strict session
// cookie (POST /session with the bearer header), and forgets it. The cookie is
// renewed in the background while the page stays open; EventSource and fetch carry
// it by themselves. The token never goes into a URL or into storage.

import { api, onUnauthorized } from './api.js';
import { ResumableStream } from './stream.js';
import { ActorStore, ListView } from './actors.js';
import { ActorPage, showStreamState } from './actor.js';
import { setupSpawn } from './spawn.js';
import { ServerView } from './server.js';
import { StoresView } from './stores.js';
import { SecretsView } from './secrets.js';
import { h } from './util.js';

const LIST_POLL_MS = 5000;

const RENEW_MS = 20 * 60 * 1000;
const $ = (id) => document.getElementById(id);

class Auth {
  constructor() {
    this.tokenRequired = false;
    this.waiting = null;
    this.renewTimer = 0;
    $('login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.#submit();
    });
    $('login').addEventListener('cancel', (e) => e.preventDefault());   // no way around it
    $('sign-out').addEventListener('click', () => this.signOut());
  }

  async start() {
    const probe = await fetch('/version', { credentials: 'omit', cache: 'no-store' });
    if (probe.status !== 401) return;
    this.tokenRequired = true;
    $('sign-out').hidden = false;
    const renew = await fetch('/session', { method: 'POST', cache: 'no-store' });
    if (renew.status === 204) {
      this.#scheduleRenew();
      return;
    }
    await this.require();
  }

  // Shows the sign-in dialog (once, however many callers); resolves when signed in.
  require() {
    if (!this.waiting) {
      this.waiting = new Promise((resolve) => { this.resolve = resolve; });
      $('login-error').textContent = '';
      const dlg = $('login');
      if (!dlg.open) dlg.showModal();
      $('login-token').focus();
    }
    return this.waiting;
  }

  // Before a stream reconnects: make sure the session still works.
  async ensure() {
    if (!this.tokenRequired) return;
    if (this.waiting) return this.waiting;
    const r = await fetch('/version', { cache: 'no-store' });
    if (r.status === 401) await this.require();
  }

  async #submit() {
    const input = $('login-token');
    const token = input.value;
    const err = $('login-error');
    if (!token) {
      err.textContent = 'Enter the token.';
      return;
    }
    err.textContent = '';
    let r;
    try {
      r = await fetch('/session', { method: 'POST', cache: 'no-store',
        headers: { Authorization: `Bearer ${token}` } });
    } catch (e) {
      err.textContent = `Cannot reach the server: ${e.message}`;
      return;
    }
    if (r.status !== 204) {
      let detail = `the server answered ${r.status}`;
      try { detail = (await r.json()).detail || detail; } catch { /* not JSON */ }
      err.textContent = r.status === 401 ? 'Wrong token.' : `Cannot sign in: ${detail}`;
      input.select();
      return;
    }
    input.value = '';
    $('login').close();
    this.#scheduleRenew();
    const resolve = this.resolve;
    this.waiting = null;
    resolve();
  }

  #scheduleRenew() {
    clearInterval(this.renewTimer);
    this.renewTimer = setInterval(async () => {
      const r = await fetch('/session', { method: 'POST', cache: 'no-store' }).catch(() => null);
      if (r && r.status === 401) this.require();
    }, RENEW_MS);
  }

  async signOut() {
    await fetch('/session', { method: 'DELETE', cache: 'no-store' }).catch(() => null);
    location.reload();
  }
}

// Errors stay on screen until dismissed; the same message is not stacked twice.
function showError(message, kind = '') {
  const box = $('alerts');
  for (const a of box.children) if (a.dataset.msg === message) return;
  const alert = h('div', { class: `alert ${kind}`, role: kind ? 'status' : 'alert', 'data-msg': message },
    h('span', null, message),
    h('button', { type: 'button', class: 'quiet', 'aria-label': 'dismiss', onclick: () => alert.remove() }, '×'));
  box.append(alert);
  while (box.children.length > 4) box.firstElementChild.remove();
}

function showNotice(message) {
  showError(message, 'notice');
}

const auth = new Auth();
const store = new ActorStore();
let page = null;

function actorEls() {
  return {
    title: $('actor-title'), status: $('actor-status'), facts: $('actor-facts'), pill: $('chain-stream'),
    btnVerify: $('btn-verify'), btnStop: $('btn-stop'), btnKill: $('btn-kill'), verify: $('verify-result'),
    btnRestart: $('btn-restart'), btnReplay: $('btn-replay'), btnDelete: $('btn-delete'), action: $('action-result'),
    timeline: $('timeline'), count: $('tl-count'), inspector: $('inspector'), state: $('state'),
    messaging: $('messaging'), metrics: $('actor-metrics'), diff: $('state-diff'), filter: $('chain-filter'),
  };
}

// The views besides the list: hash pattern, section id, nav key, and how to make one.
export const VIEWS = [
  { re: /^#\/actors\/([0-9a-f-]{36})$/, section: 'actor-view', nav: 'list', focus: 'actor-title',
    make: (m) => {
      const p = new ActorPage(m[1], { store, els: actorEls(), auth, showError, showNotice });
      return { start: () => p.open().catch((e) => showError(`cannot open the actor: ${e.message}`)), close: () => p.close() };
    } },
  { re: /^#\/server$/, section: 'server-view', nav: 'server', make: () => new ServerView($('server-view')) },
  { re: /^#\/stores(?:\/([^/]+))?$/, section: 'stores-view', nav: 'stores',
    make: (m) => new StoresView($('stores-view'), m[1] ? decodeURIComponent(m[1]) : null) },
  { re: /^#\/secrets$/, section: 'secrets-view', nav: 'secrets', make: () => new SecretsView($('secrets-view')) },
];

function route() {
  if (page) {
    page.close();
    page = null;
  }
  let view = null, m = null;
  for (const v of VIEWS) {
    m = v.re.exec(location.hash);
    if (m) {
      view = v;
      break;
    }
  }
  $('list-view').hidden = Boolean(view);
  for (const v of VIEWS) $(v.section).hidden = v !== view;
  const nav = view ? view.nav : 'list';
  for (const a of document.querySelectorAll('nav.views a'))
    if (a.dataset.view === nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  if (!view) {
    document.title = 'theater';
    return;
  }
  page = view.make(m);
  page.start();
  if (view.focus) $(view.focus).focus();
}

// "Last event" needs GET /actors again now and then (the stream has lifecycle events only).
function pollList() {
  setTimeout(async () => {
    if (!$('list-view').hidden && document.visibilityState !== 'hidden')
      await store.poll().catch(() => {});   // the stream's pill shows connection trouble
    pollList();
  }, LIST_POLL_MS);
}

async function boot() {
  onUnauthorized(() => auth.require());
  await auth.start();
  api.get('/version').then((v) => { $('server-version').textContent = `v${v.version}`; }, () => {});
  for (;;) {
    try {
      await store.load();
      break;
    } catch (e) {
      showError(`cannot list the actors: ${e.message} (retrying)`);
      await new Promise((r) => setTimeout(r, 3000));
      await auth.ensure();
    }
  }
  new ListView(store, {
    tbody: document.querySelector('#actors tbody'), status: $('filter-status'), name: $('filter-name'),
    count: $('list-count'), empty: $('list-empty'), more: $('list-more'),
  }).render();
  const list = new ResumableStream({
    path: '/events', types: ['lifecycle'], after: store.eventsHead,
    onEvent: (_t, ev) => store.applyLifecycle(ev),
    onState: (s) => showStreamState($('list-stream'), s, 'ended'),
    beforeReopen: () => auth.ensure(),
  });
  list.open();
  setupSpawn({
    form: $('spawn-form'), manifest: $('spawn-manifest'), file: $('spawn-file'), state: $('spawn-state'),
    open: $('spawn-open'), submit: $('spawn-submit'), result: $('spawn-result'),
  }, {
    onSpawned: (run, open) => {
      store.merge(run);
      if (open) location.hash = `#/actors/${run.id}`;
    },
  });
  $('boot').hidden = true;
  window.addEventListener('hashchange', route);
  route();
  pollList();
}

boot().catch((e) => {
  $('boot').textContent = `The dashboard could not start: ${e.message}`;
  $('boot').className = 'error';
});
