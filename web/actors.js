// actors.js - what the dashboard knows about every run, and the actor list.
//
// ActorStore starts from a snapshot (GET /actors, paged) and then follows the one
// /events stream. A lifecycle event carries the actor's chain seq, and a run in the
// snapshot carries its chain length, so an event at or below what a run already
// reflects is old news and is skipped: the snapshot and the stream merge without
// regressing a status, whatever order they arrive in. A run first heard of on the
// stream is filled in from GET /actors/<id> (parent, package...).
//
// ListView renders the store as a table (newest first) with status and name
// filters. "Last event" is the newest chain event of any type: from GET /actors
// (`last_event`, read again every few seconds while the list is shown), the /events
// stream, or the chain stream while the run's page is open. Rows are keyed by actor id
// and updated in place, so a live update never takes the keyboard focus away
// from a row's link.

import { api, actorPath } from './api.js';
import { h, fmtTime, relTime, shortId, TERMINAL, LIVE, copyButton } from './util.js';

const PAGE = 500;
const MAX_PAGES = 20;        // the snapshot holds at most 10,000 runs
const MAX_ROWS = 500;        // rows on the page at once; the filters narrow the rest

const STATUS_OF = { spawned: 'starting', started: 'running', stopped: 'stopped', failed: 'failed',
  killed: 'killed' };

export class ActorStore extends EventTarget {
  constructor() {
    super();
    this.runs = new Map();
    this.deleted = new Set();
    this.fetching = new Set();
    this.eventsHead = 0;
    this.truncated = false;
  }

  async load() {
    const runs = new Map();
    let cursor = null;
    for (let page = 0; page < MAX_PAGES; page++) {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (cursor) q.set('cursor', cursor);
      const r = await api.get(`/actors?${q}`);
      if (page === 0 && Number.isSafeInteger(r.events_head)) this.eventsHead = r.events_head;
      for (const run of r.items) runs.set(run.id, fromRun(run));
      cursor = r.next_cursor;
      if (!cursor) break;
    }
    this.truncated = Boolean(cursor);
    for (const [id, run] of this.runs) if (!runs.has(id)) runs.set(id, run);
    this.runs = runs;
    this.#changed(null);
  }

  get(id) {
    return this.runs.get(id);
  }

  // Reads the newest page again (for "Last event": /events carries lifecycle
  // events only, GET /actors says each run's newest event of any type).
  async poll() {
    const r = await api.get(`/actors?limit=${PAGE}`);
    for (const run of r.items) {
      const old = this.runs.get(run.id);
      const le = run.last_event;
      if (old && le && old.last && !old.last.guess && old.last.seq === le.seq) continue;   // nothing new
      this.merge(run);
    }
  }

  // One event of the /events stream.
  applyLifecycle(ev) {
    if (ev.event_type === 'deleted') {
      this.deleted.add(ev.actor_id);
      if (this.runs.delete(ev.actor_id)) this.#changed(ev.actor_id);
      return;
    }
    if (this.deleted.has(ev.actor_id)) return;
    let r = this.runs.get(ev.actor_id);
    if (!r) {
      r = fromRun({ id: ev.actor_id, name: ev.data?.manifest?.name ?? null, status: ev.status,
        created_at: ev.timestamp, chain: { length: 0, head: null } });
      this.runs.set(r.id, r);
      this.refresh(r.id).catch((e) => console.warn(`cannot read actor ${r.id}: ${e.message}`));
    }
    noteLast(r, ev.seq, ev.event_type, ev.timestamp);
    if (ev.seq <= r.seen) {
      this.#changed(r.id);
      return;
    }
    r.seen = ev.seq;
    r.status = ev.status || r.status;
    if (ev.event_type === 'started') r.started_at = ev.timestamp;
    if (TERMINAL.has(ev.event_type)) {
      r.stopped_at = ev.timestamp;
      r.reason = ev.data?.reason ?? null;
    }
    if (ev.seq > r.chain.length) r.chain = { length: ev.seq, head: null };
    this.#changed(r.id);
  }

  // An event of the open actor's chain stream: the chain grew.
  noteChainEvent(id, ev) {
    const r = this.runs.get(id);
    if (!r) return;
    if (ev.seq > r.chain.length) r.chain = { length: ev.seq, head: ev.hash };
    noteLast(r, ev.seq, ev.event_type, ev.timestamp);
    this.#changed(id);
  }

  // Re-reads one run; the answer wins when it is at least as new as what we have.
  // Resolves to the run, or undefined when the server no longer has it.
  async refresh(id) {
    if (this.fetching.has(id)) return this.runs.get(id);
    this.fetching.add(id);
    try {
      const run = await api.get(actorPath(id));
      this.merge(run);
    } catch (e) {
      if (e.status !== 404) throw e;
      this.runs.delete(id);      /* deleted meanwhile */
      this.#changed(id);
    } finally {
      this.fetching.delete(id);
    }
    return this.runs.get(id);
  }

  merge(run) {
    if (this.deleted.has(run.id)) return;
    const old = this.runs.get(run.id);
    const fresh = fromRun(run);
    if (old && old.seen > fresh.seen) {
      for (const k of ['parent_id', 'manifest_ref', 'package_ref', 'package_sha256', 'name', 'node'])
        if (old[k] == null) old[k] = fresh[k];
    } else {
      // Keep what we knew when it is newer, or as new and not a guess.
      if (old && old.last && (old.last.seq > fresh.last.seq || (old.last.seq === fresh.last.seq && fresh.last.guess)))
        fresh.last = old.last;
      // GET /actors says the node (cluster mode); GET /actors/{id} does not
      if (old && fresh.node == null && old.node != null) fresh.node = old.node;
      this.runs.set(run.id, fresh);
    }
    this.#changed(run.id);
  }

  #changed(id) {
    this.dispatchEvent(new CustomEvent('change', { detail: { id } }));
  }
}

function fromRun(run) {
  const r = { ...run, chain: run.chain || { length: 0, head: null } };
  r.seen = r.chain.length || 0;
  const le = run.last_event;
  r.last = le && le.type ? { seq: le.seq, type: le.type, time: le.time } : guessLast(r);
  delete r.last_event;
  return r;
}

// A server that does not report last_event (or a run whose newest event is not
// indexed yet): its status tells which lifecycle event came last, and the live
// streams and the next poll replace the guess.
function guessLast(r) {
  if (TERMINAL.has(r.status)) return { seq: r.seen, type: r.status, time: r.stopped_at, guess: true };
  if (r.status === 'running') return { seq: r.seen, type: 'started', time: r.started_at, guess: true };
  return { seq: r.seen, type: 'spawned', time: r.created_at, guess: true };
}

function noteLast(r, seq, type, time) {
  if (!r.last || r.last.guess || seq >= r.last.seq) r.last = { seq, type, time };
}

export function statusOf(eventType) {
  return STATUS_OF[eventType];
}

export function statusBadge(el, r) {
  el.textContent = r ? r.status || 'unknown' : '';
  el.dataset.status = r ? r.status || '' : '';
}

export class ListView {
  constructor(store, els) {
    this.store = store;
    this.els = els;
    this.rows = new Map();
    this.pending = false;
    store.addEventListener('change', () => this.schedule());
    els.status.addEventListener('change', () => this.schedule());
    els.name.addEventListener('input', () => this.schedule());
    setInterval(() => this.schedule(), 10000);   // relative times
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.render();
    });
  }

  #matches(r, status, name) {
    if (status === 'live' ? !LIVE.has(r.status) : status && r.status !== status) return false;
    if (!name) return true;
    return (r.name || '').toLowerCase().includes(name) || r.id.startsWith(name);
  }

  render() {
    const status = this.els.status.value;
    const name = this.els.name.value.trim().toLowerCase();
    const all = [...this.store.runs.values()];
    const shown = all.filter((r) => this.#matches(r, status, name))
      .sort((a, b) => (b.created_at || '').localeCompare(a.created_at || '') || a.id.localeCompare(b.id));
    const now = Date.now();
    const want = shown.slice(0, MAX_ROWS).map((r) => this.#row(r, now));
    placeRows(this.els.tbody, want);
    // cluster mode: the list comes from every node, each run with its node
    this.els.tbody.closest('table').classList.toggle('clustered', all.some((r) => r.node));
    for (const [id, tr] of this.rows) if (!tr.isConnected) this.rows.delete(id);
    this.els.count.textContent = shown.length === all.length ? `(${all.length})` :
      `(${shown.length} of ${all.length})`;
    this.els.empty.hidden = all.length !== 0;
    const more = [];
    if (shown.length > MAX_ROWS) more.push(`Showing the newest ${MAX_ROWS} of ${shown.length}; narrow the filters to see others.`);
    if (this.store.truncated) more.push('Only the newest runs were loaded.');
    this.els.more.hidden = more.length === 0;
    this.els.more.textContent = more.join(' ');
  }

  #row(r, now) {
    let tr = this.rows.get(r.id);
    if (!tr) {
      tr = h('tr', { 'data-id': r.id });
      tr.cells_ = {
        name: h('a', { href: `#/actors/${r.id}` }),
        id: copyButton(r.id, 'actor id', shortId(r.id)),
        status: h('span', { class: 'badge' }),
        reason: h('span', { class: 'reason muted' }),
        parent: h('span'),
        started: h('time'),
        last: h('span'),
        node: h('span', { class: 'node' }),
      };
      const c = tr.cells_;
      tr.append(h('td', null, c.name), h('td', { class: 'mono' }, c.id), h('td', { class: 'status' }, c.status, c.reason),
        h('td', { class: 'col-node' }, c.node),
        h('td', { class: 'mono' }, c.parent), h('td', null, c.started), h('td', null, c.last));
      this.rows.set(r.id, tr);
    }
    const sig = [r.name, r.status, r.reason, r.parent_id, r.started_at, r.last?.type, r.last?.time,
      relTime(r.last?.time, now), r.node].join('|');
    if (tr.sig_ !== sig) {
      tr.sig_ = sig;
      fillRow(tr.cells_, r, now);
    }
    return tr;
  }
}

function fillRow(c, r, now) {
  c.name.textContent = r.name || '(unnamed)';
  statusBadge(c.status, r);
  c.reason.textContent = r.reason ? ` ${r.reason}` : '';
  c.reason.title = r.reason || '';
  c.parent.replaceChildren(r.parent_id ? h('a', { href: `#/actors/${r.parent_id}`,
    title: r.parent_id }, shortId(r.parent_id)) : '—');
  c.node.textContent = r.node || '';
  c.started.textContent = fmtTime(r.started_at);
  if (r.started_at) c.started.setAttribute('datetime', r.started_at);
  c.last.replaceChildren(r.last?.type ? h('span', { class: 'mono' }, r.last.type) : '—',
    r.last?.time ? h('span', { class: 'muted', title: r.last.time }, ` · ${relTime(r.last.time, now)}`) : '');
}

// Puts `want` into tbody in order, moving only rows that are out of place.
function placeRows(tbody, want) {
  let cur = tbody.firstElementChild;
  for (const tr of want) {
    if (cur === tr) {
      cur = cur.nextElementSibling;
    } else {
      tbody.insertBefore(tr, cur);
    }
  }
  while (cur) {
    const next = cur.nextElementSibling;
    cur.remove();
    cur = next;
  }
}
