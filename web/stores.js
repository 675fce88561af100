// stores.js - the content stores (#/stores, #/stores/<id>): GET /store lists the
// store ids; a store's page lists its labels (GET /store/<id>/labels) and its
// objects (GET /store/<id>, pages of 200 by hash, "more" goes on with next_cursor).
// "view" on an object reads its bytes (GET /store/<id>/hash/<sha>) and shows them as
// JSON, text or a hex dump (the first 64 KiB). The server's own stores hold actor
// states (theater-state), large event data (theater-data) and packages
// (theater-packages).

import { api } from './api.js';
import { bytesView } from './messaging.js';
import { h, fmtSize, copyButton } from './util.js';

const PAGE = 200;
const VIEW_MAX = 65536;

const ABOUT = {
  'theater-state': 'actor states too large to sit in their events',
  'theater-data': 'message, answer and host-call bytes too large to sit in their events',
  'theater-packages': 'every package an actor was spawned from, by digest',
};

export class StoresView {
  constructor(el, storeId) {
    this.el = el;
    this.storeId = storeId;
    this.closed = false;
  }

  start() {
    document.title = `${this.storeId ? `store ${this.storeId}` : 'stores'} · theater`;
    if (this.storeId) this.#store().catch((e) => this.#fail(e));
    else this.#list().catch((e) => this.#fail(e));
  }

  close() {
    this.closed = true;
  }

  #fail(e) {
    if (this.closed) return;
    this.el.append(h('p', { class: 'error', role: 'alert' }, e.status === 404 ? `No such store: ${e.message}` : `cannot read the stores: ${e.message}`));
  }

  async #list() {
    this.el.replaceChildren(h('h1', null, 'Stores'), h('p', { class: 'muted' }, 'loading…'));
    const r = await api.get('/store');
    if (this.closed) return;
    const items = r.items || [];
    this.el.replaceChildren(h('h1', null, 'Stores ', h('span', { class: 'muted' }, `(${items.length})`)),
      h('p', { class: 'muted small' }, 'Content-addressed stores (POST /store/<id>, labels with PUT /store/<id>/labels/<label>).'),
      items.length ? h('ul', { class: 'store-list', id: 'store-list' },
        items.map((id) => h('li', { 'data-store': id }, h('a', { href: `#/stores/${encodeURIComponent(id)}` }, id),
          ABOUT[id] ? h('span', { class: 'muted' }, ` — ${ABOUT[id]}`) : '')))
        : h('p', { class: 'muted', id: 'store-empty' }, 'No stores yet.'));
  }

  async #store() {
    const id = this.storeId;
    const labelsEl = h('div', { id: 'store-labels' }, h('p', { class: 'muted' }, 'loading…'));
    this.objects = h('tbody');
    this.more = h('button', { type: 'button', id: 'store-more', hidden: true }, 'more');
    this.count = h('span', { class: 'muted', id: 'store-count' });
    this.viewer = h('div', { id: 'store-viewer', role: 'status', 'aria-live': 'polite' });
    this.shown = 0;
    this.el.replaceChildren(
      h('nav', { class: 'crumbs' }, h('a', { href: '#/stores' }, '← Stores')),
      h('h1', null, 'Store ', h('code', { id: 'store-title' }, id)),
      ABOUT[id] ? h('p', { class: 'muted small' }, ABOUT[id]) : '',
      h('div', { class: 'actor-grid' },
        h('section', { class: 'panel', 'aria-labelledby': 'store-objects-title' },
          h('h2', { id: 'store-objects-title' }, 'Objects ', this.count),
          h('div', { class: 'table-wrap' }, h('table', { class: 'actors', id: 'store-objects' },
            h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'sha256'), h('th', { scope: 'col' }, 'size'),
              h('th', { scope: 'col' }, ''))), this.objects)),
          this.more, this.viewer),
        h('section', { class: 'panel', 'aria-labelledby': 'store-labels-title' },
          h('h2', { id: 'store-labels-title' }, 'Labels'), labelsEl)));
    this.more.addEventListener('click', () => this.#page().catch((e) => this.#fail(e)));
    const enc = encodeURIComponent(id);
    const [labels] = await Promise.all([api.get(`/store/${enc}/labels`), this.#page()]);
    if (this.closed) return;
    const items = labels.items || [];
    labelsEl.replaceChildren(items.length
      ? h('table', { class: 'small-table', id: 'label-table' }, h('tbody', null, items.map((l) =>
        h('tr', { 'data-label': l.label }, h('td', { class: 'mono' }, l.label), h('td', null, '→'),
          h('td', { class: 'mono' }, copyButton(l.sha256, 'sha256', l.sha256.slice(0, 16) + '…'))))))
      : h('p', { class: 'muted' }, 'No labels.'));
  }

  async #page() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (this.cursor) q.set('cursor', this.cursor);
    this.more.disabled = true;
    const r = await api.get(`/store/${encodeURIComponent(this.storeId)}?${q}`);
    if (this.closed) return;
    for (const o of r.items) {
      const btn = h('button', { type: 'button', class: 'quiet' }, 'view');
      btn.addEventListener('click', () => this.#view(o));
      this.objects.append(h('tr', { 'data-sha': o.sha256 },
        h('td', { class: 'mono' }, copyButton(o.sha256, 'sha256', o.sha256.slice(0, 16) + '…')),
        h('td', null, fmtSize(o.size)), h('td', null, btn)));
    }
    this.shown += r.items.length;
    this.cursor = r.next_cursor;
    this.more.hidden = !r.next_cursor;
    this.more.disabled = false;
    this.count.textContent = `(${this.shown}${r.next_cursor ? '+' : ''})`;
  }

  async #view(o) {
    this.viewer.replaceChildren(h('p', { class: 'muted' }, `reading ${o.sha256.slice(0, 16)}…`));
    try {
      const r = await api.get(`/store/${encodeURIComponent(this.storeId)}/hash/${o.sha256}`, { raw: true });
      const bytes = r.bytes.subarray(0, VIEW_MAX);
      const v = bytesView(r.contentType, bytes);
      this.viewer.replaceChildren(h('h3', null, h('code', null, o.sha256.slice(0, 16) + '…'), ` (${v.kind}, ${fmtSize(r.bytes.length)})`),
        h('pre', { class: 'json', tabindex: '0', id: 'store-object' }, v.text),
        r.bytes.length > VIEW_MAX ? h('p', { class: 'muted' }, `the first ${fmtSize(VIEW_MAX)} of ${fmtSize(r.bytes.length)}`) : '');
    } catch (e) {
      this.viewer.replaceChildren(h('p', { class: 'error' }, `cannot read it: ${e.message}`));
    }
  }
}
