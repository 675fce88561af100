// timeline.js - an actor's chain as a scrolling list, newest event first, that
// stays smooth with any number of events (100,000 and more).
//
// Only the rows in view (plus a few) exist in the DOM: a spacer gives the scroll
// area its full height and a pool of row elements is moved and refilled as you
// scroll. Events live in pages of PAGE seqs, fetched on demand from the JSON page
// API (GET /actors/<id>/chain?after=&limit=) and kept in a small LRU cache, so
// memory stays bounded too. Live events from the chain stream go into the same
// cache; rendering is batched to one pass per animation frame. A chain taller than
// the browser can scroll (MAX_PX) is scaled: the scroll position maps linearly
// onto the event index.
//
// Row index i shows seq = head - i. When events arrive while the reader has
// scrolled away from the top, the scroll position moves with them, so what they
// were reading stays put.

import { api, actorPath } from './api.js';
import { h, fmtTime, shortHash, preview, fmtSize, copyButton } from './util.js';
import { describe } from './events.js';

const ROW = 30;              // px; the same as .tl-row in app.css
const PAGE = 100;            // events per fetched page
const MAX_PAGES = 40;        // pages kept in memory (4,000 events)
const MAX_PX = 8000000;      // tallest scroll area we ask for
const OVERSCAN = 5;
const MAX_FETCHES = 2;       // page requests in flight (the page has two streams too)

export class Timeline {
  constructor(root, { actorId, onSelect, onError }) {
    this.root = root;
    this.spacer = root.querySelector('.tl-spacer');
    this.rowsEl = root.querySelector('.tl-rows');
    this.actorId = actorId;
    this.onSelect = onSelect || (() => {});
    this.onError = onError || (() => {});
    this.head = 0;
    this.pages = new Map();       // page index -> { events: [], complete: bool }, LRU order
    this.inflight = new Map();    // page index -> AbortController
    this.failed = new Map();      // page index -> time of the last failure
    this.pool = [];
    this.selected = 0;
    this.selectedEv = null;
    this.frame = 0;
    this.visible = [0, -1];
    this.onScroll = () => this.schedule();
    this.onKey = (e) => this.#key(e);
    this.onResize = () => {
      this.maxH = 0;
      this.schedule();
    };
    this.maxH = 0;                // the CSS height: a short chain gets a shorter box
    root.addEventListener('scroll', this.onScroll, { passive: true });
    root.addEventListener('keydown', this.onKey);
    window.addEventListener('resize', this.onResize);
    this.rowsEl.replaceChildren();
    root.scrollTop = 0;
    root.removeAttribute('aria-activedescendant');
  }

  destroy() {
    cancelAnimationFrame(this.frame);
    for (const c of this.inflight.values()) c.abort();
    this.root.removeEventListener('scroll', this.onScroll);
    this.root.removeEventListener('keydown', this.onKey);
    window.removeEventListener('resize', this.onResize);
    this.rowsEl.replaceChildren();
    this.spacer.style.height = '0px';
    this.root.style.height = '';
  }

  // The chain has (at least) n events.
  setHead(n) {
    if (n <= this.head) return;
    const added = n - this.head;
    this.head = n;
    if (this.root.scrollTop > 0) this.root.scrollTop += added * ROW * this.#scale();
    this.schedule();
  }

  // An event from the stream or a page (the same seq twice is fine: it replaces).
  add(ev) {
    this.#store(ev);
    if (ev.seq === this.selected) this.selectedEv = ev;
    this.setHead(ev.seq);
    this.schedule();
  }

  event(seq) {
    const pg = this.pages.get(pageOf(seq));
    return pg ? pg.events[(seq - 1) % PAGE] : undefined;
  }

  // Reads one event, from the cache or the server.
  async fetchEvent(seq) {
    const ev = this.event(seq);
    if (ev) return ev;
    return api.get(actorPath(this.actorId, `/chain/events/${seq}`));
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  #scale() {
    const virt = this.head * ROW;
    return virt > MAX_PX ? MAX_PX / virt : 1;
  }

  // The scroll geometry: where the first row of the view sits in "virtual" pixels.
  #geometry() {
    const virtH = this.head * ROW;
    const H = Math.min(virtH, MAX_PX);
    const viewH = this.root.clientHeight || 400;
    const maxScroll = Math.max(0, H - viewH);
    const virtMax = Math.max(0, virtH - viewH);
    const top = Math.min(this.root.scrollTop, maxScroll);
    const virtTop = maxScroll > 0 ? top * (virtMax / maxScroll) : 0;
    return { H, viewH, top, virtTop, maxScroll, virtMax };
  }

  // A chain shorter than the box shrinks it, so a few events do not float in space.
  #fit() {
    if (!this.maxH) {
      this.root.style.height = '';
      this.maxH = this.root.clientHeight;
    }
    const want = Math.max(4, this.head) * ROW + 2;
    const h = want < this.maxH ? `${want}px` : '';
    if (this.root.style.height !== h) this.root.style.height = h;
  }

  render() {
    this.#fit();
    const g = this.#geometry();
    this.spacer.style.height = `${g.H}px`;
    const first = Math.max(0, Math.floor(g.virtTop / ROW) - OVERSCAN);
    const count = Math.max(0, Math.min(this.head - first, Math.ceil(g.viewH / ROW) + 2 * OVERSCAN));
    this.rowsEl.style.transform = `translateY(${g.top + first * ROW - g.virtTop}px)`;
    while (this.pool.length < count) this.pool.push(this.#newRow());
    while (this.pool.length > count) this.pool.pop().remove();
    const missing = new Set();
    for (let i = 0; i < count; i++) {
      const seq = this.head - (first + i);
      const ev = this.event(seq);
      if (!ev) missing.add(pageOf(seq));
      this.#fill(this.pool[i], seq, ev);
    }
    this.visible = [this.head - first - count + 1, this.head - first];
    const activeRow = this.pool.find((r) => r.seq_ === this.selected);
    if (activeRow) this.root.setAttribute('aria-activedescendant', activeRow.id);
    else this.root.removeAttribute('aria-activedescendant');
    for (const p of missing) this.#fetchPage(p);
    this.#evict();
  }

  #newRow() {
    const cells = {
      seq: h('span', { class: 'c-seq' }), time: h('span', { class: 'c-time' }),
      type: h('span', { class: 'c-type' }),
      hash: copyButton('', 'hash', '', false), parent: copyButton('', 'parent hash', '', false),
      data: h('span', { class: 'c-data' }), size: h('span', { class: 'c-size' }),
    };
    cells.hash.classList.add('c-hash');
    cells.parent.classList.add('c-parent');
    const row = h('div', { class: 'tl-row', role: 'option', 'aria-selected': 'false' },
      cells.seq, cells.time, cells.type, cells.hash, cells.parent, cells.data, cells.size);
    row.cells_ = cells;
    row.addEventListener('click', () => this.select(row.seq_));
    this.rowsEl.append(row);
    return row;
  }

  #fill(row, seq, ev) {
    const sel = seq === this.selected;
    if (row.seq_ === seq && row.ev_ === ev && row.sel_ === sel) return;
    row.seq_ = seq;
    row.ev_ = ev;
    row.sel_ = sel;
    row.id = `ev-${seq}`;
    row.dataset.seq = String(seq);
    row.setAttribute('aria-selected', sel ? 'true' : 'false');
    const c = row.cells_;
    c.seq.textContent = String(seq);
    if (!ev) {
      row.dataset.loading = 'yes';
      for (const k of ['time', 'type', 'data', 'size']) c[k].textContent = '';
      c.data.textContent = 'loading…';
      c.hash.textContent = c.parent.textContent = '';
      c.hash.dataset.value = c.parent.dataset.value = '';
      return;
    }
    delete row.dataset.loading;
    row.dataset.type = ev.event_type;
    c.time.textContent = fmtTime(ev.timestamp);
    c.time.title = ev.timestamp || '';
    c.type.textContent = ev.event_type;
    c.type.title = ev.event_type;
    setCopy(c.hash, ev.hash, 'hash');
    setCopy(c.parent, ev.parent_hash, 'parent hash');
    c.data.textContent = describe(ev) ?? preview(ev);   // a call: function(input) → answer
    c.size.textContent = fmtSize(ev.size ?? 0);
  }

  async #fetchPage(p) {
    if (this.inflight.has(p) || this.inflight.size >= MAX_FETCHES) return;
    const lastFail = this.failed.get(p);
    if (lastFail && Date.now() - lastFail < 3000) {
      setTimeout(() => this.schedule(), 3000);
      return;
    }
    const ctl = new AbortController();
    this.inflight.set(p, ctl);
    try {
      const r = await api.get(actorPath(this.actorId, `/chain?after=${p * PAGE}&limit=${PAGE}`),
        { signal: ctl.signal });
      this.failed.delete(p);
      for (const ev of r.items) this.#store(ev);
      if (!this.pages.has(p)) this.pages.set(p, { events: [] });
      this.setHead(r.length);
      if (this.#holes(p)) this.failed.set(p, Date.now());   // wait before asking again
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.failed.set(p, Date.now());
      this.onError(e);
    } finally {
      if (this.inflight.get(p) === ctl) this.inflight.delete(p);
      this.schedule();
    }
  }

  // True when page p still lacks an event the chain has.
  #holes(p) {
    const pg = this.pages.get(p);
    const last = Math.min(this.head, (p + 1) * PAGE);
    for (let seq = p * PAGE + 1; seq <= last; seq++) if (!pg || !pg.events[(seq - 1) % PAGE]) return true;
    return false;
  }

  #store(ev) {
    const p = pageOf(ev.seq);
    let pg = this.pages.get(p);
    if (pg) this.pages.delete(p);   // re-insert: most recently used last
    else pg = { events: [] };
    pg.events[(ev.seq - 1) % PAGE] = ev;
    this.pages.set(p, pg);
  }

  // Drops the least recently used pages that are out of view.
  #evict() {
    if (this.pages.size <= MAX_PAGES) return;
    const keep = new Set([pageOf(this.head)]);
    for (let s = this.visible[0]; s <= this.visible[1]; s += PAGE) keep.add(pageOf(Math.max(1, s)));
    keep.add(pageOf(Math.max(1, this.visible[1])));
    for (const p of this.pages.keys()) {
      if (this.pages.size <= MAX_PAGES) break;
      if (!keep.has(p)) this.pages.delete(p);
    }
  }

  select(seq, { scroll = false } = {}) {
    if (!(seq >= 1 && seq <= this.head)) return;
    this.selected = seq;
    this.selectedEv = this.event(seq) || null;
    if (scroll) this.#scrollTo(seq);
    this.schedule();
    this.onSelect(seq, this.selectedEv);
  }

  #scrollTo(seq) {
    const g = this.#geometry();
    const rowTop = (this.head - seq) * ROW;
    let virtTop = g.virtTop;
    if (rowTop < virtTop) virtTop = rowTop;
    else if (rowTop + ROW > virtTop + g.viewH) virtTop = rowTop + ROW - g.viewH;
    else return;
    this.root.scrollTop = g.virtMax > 0 ? virtTop * (g.maxScroll / g.virtMax) : 0;
  }

  #key(e) {
    if (!this.head) return;
    const page = Math.max(1, Math.floor((this.root.clientHeight || 400) / ROW) - 1);
    const cur = this.selected || this.head + 1;
    const moves = { ArrowDown: cur - 1, ArrowUp: cur + 1, PageDown: cur - page, PageUp: cur + page,
      Home: this.head, End: 1 };
    if (!(e.key in moves)) return;
    e.preventDefault();
    this.select(Math.min(this.head, Math.max(1, moves[e.key])), { scroll: true });
  }
}

function pageOf(seq) {
  return Math.floor((seq - 1) / PAGE);
}

function setCopy(button, value, what) {
  button.dataset.value = value || '';
  button.textContent = shortHash(value);
  button.title = `copy ${what}: ${value}`;
  button.setAttribute('aria-label', `copy ${what} ${value}`);
}
