// chainfilter.js - the chain's filter: keep events of one type (or group) and/or
// whose text contains a search string; the matches are listed beside the timeline.
//
// The type filter runs on the server (GET /actors/<id>/chain?type=a,b, which scans
// at most 10,000 events per page and says where to go on in `next_after`); the text
// search runs here, on each event's type and data (JSON text, or the base64 of bytes),
// case-insensitive. A search reads at most SCAN events per click ("search further"
// goes on) and lists at most MAX matches; live events that match are added as they
// arrive. Clicking a match selects it in the timeline.

import { api, actorPath } from './api.js';
import { describe } from './events.js';
import { h, fmtTime, preview } from './util.js';

const SCAN = 20000;
const MAX = 500;

export const LIFECYCLE = ['spawned', 'started', 'stopped', 'failed', 'killed', 'restarted', 'suspended',
  'recovered', 'deleted'];
const GROUPS = [
  ['', 'any type'],
  ['wasm', 'calls (wasm)'],
  ['message-server/received', 'mail received'],
  ['message-server/dropped', 'mail dropped'],
  [LIFECYCLE.join(','), 'lifecycle'],
];

export class ChainFilter {
  constructor(el, { actorId, onPick }) {
    this.el = el;
    this.actorId = actorId;
    this.onPick = onPick;
    this.types = new Set();
    this.run = 0;
    this.active = null;      // {types: Set|null, text}
    this.matches = [];
    this.after = 0;          // scanned up to here
    this.done = false;
    this.select = h('select', { id: 'chain-type' }, GROUPS.map(([v, t]) => h('option', { value: v }, t)));
    this.text = h('input', { id: 'chain-search', type: 'search', placeholder: 'search the events', spellcheck: 'false' });
    this.go = h('button', { type: 'submit', id: 'chain-find' }, 'Find');
    this.clear = h('button', { type: 'button', id: 'chain-clear', class: 'quiet', hidden: true }, 'Clear');
    this.status = h('span', { id: 'chain-filter-status', class: 'muted small', role: 'status', 'aria-live': 'polite' });
    this.more = h('button', { type: 'button', id: 'chain-more', class: 'quiet', hidden: true }, 'search further');
    this.list = h('ol', { id: 'chain-results', class: 'results', hidden: true });
    const form = h('form', { class: 'chain-filter', role: 'search', novalidate: true },
      h('label', { for: 'chain-type' }, 'Type'), this.select,
      h('label', { for: 'chain-search' }, 'Text'), this.text, this.go, this.clear);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.start();
    });
    this.select.addEventListener('change', () => this.start());
    this.clear.addEventListener('click', () => this.reset());
    this.more.addEventListener('click', () => this.#scan());
    el.replaceChildren(form, h('div', { class: 'filter-status' }, this.status, ' ', this.more), this.list);
  }

  // A type seen in the chain: offered in the list (host calls and others).
  noteType(type) {
    if (this.types.has(type)) return;
    this.types.add(type);
    if (GROUPS.some(([v]) => v === type) || LIFECYCLE.includes(type)) return;
    this.select.append(h('option', { value: type }, type));
  }

  reset() {
    this.run++;
    this.active = null;
    this.select.value = '';
    this.text.value = '';
    this.list.hidden = true;
    this.list.replaceChildren();
    this.more.hidden = true;
    this.clear.hidden = true;
    this.status.textContent = '';
  }

  start() {
    const types = this.select.value ? new Set(this.select.value.split(',')) : null;
    const text = this.text.value.trim().toLowerCase();
    if (!types && !text) {
      this.reset();
      return;
    }
    this.run++;
    this.active = { types, text, param: this.select.value };
    this.matches = [];
    this.after = 0;
    this.done = false;
    this.list.replaceChildren();
    this.list.hidden = false;
    this.clear.hidden = false;
    this.#scan();
  }

  #keep(ev) {
    const a = this.active;
    if (!a) return false;
    if (a.types && !a.types.has(ev.event_type)) return false;
    if (!a.text) return true;
    let hay = ev.event_type;
    try { hay += ' ' + (ev.data_b64 !== undefined ? ev.data_b64 : JSON.stringify(ev.data)); } catch { /* keep the type */ }
    return hay.toLowerCase().includes(a.text);
  }

  async #scan() {
    const run = this.run;
    const a = this.active;
    const stop = this.after + SCAN;
    this.more.hidden = true;
    this.go.disabled = true;
    this.status.textContent = 'searching…';
    try {
      while (!this.done && this.after < stop && this.matches.length < MAX) {
        const q = new URLSearchParams({ after: String(this.after), limit: '1000' });
        if (a.param) q.set('type', a.param);
        const r = await api.get(actorPath(this.actorId, `/chain?${q}`));
        if (run !== this.run) return;
        for (const ev of r.items) {
          this.noteType(ev.event_type);
          if (this.#keep(ev)) this.#add(ev);
        }
        const last = r.items.length ? r.items[r.items.length - 1].seq : this.after;
        const next = r.next_after ?? null;
        if (next === null) {
          this.after = Math.max(last, r.length);
          this.done = true;
        } else {
          this.after = Math.max(next, last);
        }
      }
    } catch (e) {
      if (run === this.run) this.status.textContent = `cannot search: ${e.message}`;
      return;
    } finally {
      if (run === this.run) this.go.disabled = false;
    }
    this.#say();
  }

  #say() {
    const n = this.matches.length;
    const capped = n >= MAX ? ` (the first ${MAX})` : '';
    this.status.textContent = `${n} match${n === 1 ? '' : 'es'}${capped} in events 1–${this.after}` +
      (this.done ? '' : ' so far');
    this.more.hidden = this.done || n >= MAX;
  }

  #add(ev) {
    if (this.matches.length >= MAX || this.matches.some((m) => m.seq === ev.seq)) return;
    this.matches.push(ev);
    const what = describe(ev) ?? preview(ev, 100);
    const li = h('li', { 'data-seq': ev.seq, 'data-type': ev.event_type },
      h('button', { type: 'button', class: 'result-row', onclick: () => this.onPick(ev.seq) },
        h('span', { class: 'c-seq' }, `#${ev.seq}`), h('span', { class: 'mono r-type' }, ev.event_type),
        h('span', { class: 'muted r-time' }, fmtTime(ev.timestamp)), h('span', { class: 'r-what' }, what)));
    this.list.append(li);
  }

  // A live event from the chain stream: listed when it matches and the scan got there.
  live(ev) {
    this.noteType(ev.event_type);
    if (!this.active || !this.done || ev.seq <= this.after) return;
    this.after = ev.seq;
    if (this.#keep(ev)) this.#add(ev);
    this.#say();
  }
}
