// actor.js - one actor's page: its facts and status, the stop/kill/verify buttons,
// the chain timeline fed by one EventSource, the selected event in full, and the
// state and message/request panels (messaging.js).
//
// Start-up: the run (from the store, else GET /actors/<id>), then the first chain
// page (which says the chain's length and whether the run has ended), then ONE
// chain stream from ?after=<length>: everything before comes from pages, on
// demand; everything after comes live, once. close() ends the stream, so the
// dashboard never holds more than two (this one and the actor list's).

import { api, actorPath } from './api.js';
import { ResumableStream } from './stream.js';
import { Timeline } from './timeline.js';
import { statusBadge } from './actors.js';
import { StatePanel, MessagePanel } from './messaging.js';
import {
  h, fmtTime, fmtSize, shortHash, shortId, copyButton, pretty, b64ToBytes, hexDump, TERMINAL,
} from './util.js';

export const STREAM_TEXT = {
  connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', ended: 'complete',
  closed: 'closed',
};

export function showStreamState(pill, state, endedText = STREAM_TEXT.ended) {
  pill.dataset.state = state;
  pill.textContent = state === 'ended' ? endedText : STREAM_TEXT[state] || state;
}

export class ActorPage {
  constructor(id, { store, els, auth, showError }) {
    this.id = id;
    this.store = store;
    this.els = els;
    this.auth = auth;
    this.showError = showError;
    this.ended = false;
    this.stream = null;
    this.timeline = null;
    this.closed = false;
    this.killTimer = 0;
    this.onChange = (e) => {
      if (!e.detail.id || e.detail.id === this.id) this.#header();
    };
    this.handlers = {
      verify: () => this.#verify(),
      stop: () => this.#lifecycle('stop'),
      kill: () => this.#kill(),
    };
  }

  async open() {
    const els = this.els;
    els.title.textContent = shortId(this.id);
    els.facts.replaceChildren();
    els.verify.textContent = '';
    els.inspector.replaceChildren(h('p', { class: 'muted' }, 'Select an event (click, or arrow keys in the chain).'));
    els.state.replaceChildren(h('p', { class: 'muted' }, 'loading…'));
    this.statePanel = new StatePanel(els.state, this.id);
    this.messages = new MessagePanel(els.messaging, this.id);
    showStreamState(els.pill, 'connecting');
    els.btnVerify.addEventListener('click', this.handlers.verify);
    els.btnStop.addEventListener('click', this.handlers.stop);
    els.btnKill.addEventListener('click', this.handlers.kill);
    this.store.addEventListener('change', this.onChange);
    let run = this.store.get(this.id);
    if (!run) run = await this.store.refresh(this.id);
    if (this.closed) return;
    if (!run) {
      els.title.textContent = 'No such actor';
      els.facts.replaceChildren(h('p', { class: 'error' }, `The server has no actor '${this.id}'.`));
      showStreamState(els.pill, 'closed');
      return;
    }
    this.#header();
    this.timeline = new Timeline(els.timeline, {
      actorId: this.id,
      onSelect: (seq, ev) => this.#inspect(seq, ev),
      onError: (e) => this.showError(`cannot load chain events: ${e.message}`),
    });
    await this.#startChain();
  }

  async #startChain() {
    const first = await api.get(actorPath(this.id, '/chain?after=0&limit=1'));
    if (this.closed) return;
    this.ended = first.ended;
    if (first.items[0]) this.#event(first.items[0]);
    this.timeline.setHead(first.length);
    this.statePanel.refresh();
    this.#count();
    this.stream = new ResumableStream({
      path: actorPath(this.id, '/chain'),
      types: ['chain'],
      after: first.length,
      onEvent: (_type, ev) => this.#event(ev),
      onState: (s) => showStreamState(this.els.pill, s, 'complete (the run has ended)'),
      finished: () => this.ended && this.stream.after >= this.timeline.head,
      beforeReopen: () => this.#stillGoing(),
    });
    this.stream.open();
  }

  // Before reopening a stream the browser gave up on: signed in? still running?
  async #stillGoing() {
    await this.auth.ensure();
    const r = await api.get(actorPath(this.id, `/chain?after=${this.stream.after}&limit=1`));
    this.ended = r.ended;
    this.timeline.setHead(r.length);
    return !(r.ended && r.length <= this.stream.after);
  }

  // The chain stream ended with the run, and the run went on (a restart): follow it again.
  #revive(r) {
    if (!this.stream || this.stream.state !== 'ended' || r.chain.length <= this.stream.after) return;
    this.ended = false;
    this.stream.open();
  }

  #event(ev) {
    this.timeline.add(ev);
    this.store.noteChainEvent(this.id, ev);
    if (TERMINAL.has(ev.event_type)) this.ended = true;
    else if (ev.event_type === 'restarted') this.ended = false;   // a new run on the same chain
    if (ev.seq === 1) this.statePanel.setInitial(ev);
    else this.statePanel.poke();
    this.#count();
  }

  #count() {
    const n = this.timeline ? this.timeline.head : 0;
    this.els.count.textContent = `(${n} event${n === 1 ? '' : 's'})`;
  }

  close() {
    this.closed = true;
    clearTimeout(this.killTimer);
    this.statePanel.close();
    if (this.stream) this.stream.close();
    if (this.timeline) this.timeline.destroy();
    this.store.removeEventListener('change', this.onChange);
    this.els.btnVerify.removeEventListener('click', this.handlers.verify);
    this.els.btnStop.removeEventListener('click', this.handlers.stop);
    this.els.btnKill.removeEventListener('click', this.handlers.kill);
    this.#disarmKill();
  }

  #header() {
    const r = this.store.get(this.id);
    if (!r || this.closed) return;
    const els = this.els;
    els.title.textContent = r.name || '(unnamed)';
    document.title = `${r.name || shortId(r.id)} · theater`;
    statusBadge(els.status, r);
    if (r.reason) els.status.append(h('span', { class: 'reason' }, ` · ${r.reason}`));
    const ended = TERMINAL.has(r.status);
    this.messages.setStatus(r.status);
    this.#revive(r);
    els.btnStop.disabled = ended;
    els.btnKill.disabled = ended;
    if (ended) this.#disarmKill();
    const facts = [
      ['ID', h('span', null, h('code', null, r.id), ' ', copyButton(r.id, 'actor id', 'copy'))],
      ['Status', h('span', null, r.status || '—', r.reason ? h('span', { class: 'muted' }, ` (${r.reason})`) : '')],
      ['Parent', r.parent_id ? h('a', { href: `#/actors/${r.parent_id}` }, r.parent_id) : '—'],
      ['Package', r.package_ref || r.manifest_ref || '—'],
      ['Package SHA-256', r.package_sha256 ? h('span', null, h('code', null, shortHash(r.package_sha256)), ' ',
        copyButton(r.package_sha256, 'package sha-256', 'copy')) : '—'],
      ['Created', fmtTime(r.created_at)],
      ['Started', fmtTime(r.started_at)],
      ['Ended', fmtTime(r.stopped_at)],
    ];
    els.facts.replaceChildren(...facts.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
  }

  async #lifecycle(what) {
    const btn = what === 'stop' ? this.els.btnStop : this.els.btnKill;
    btn.disabled = true;
    try {
      await api.post(actorPath(this.id, `/${what}`));
      await this.store.refresh(this.id);
    } catch (e) {
      this.showError(`cannot ${what} the actor: ${e.message}`);
    } finally {
      this.#header();
    }
  }

  // Kill takes two clicks: the first arms the button for a few seconds.
  #kill() {
    const btn = this.els.btnKill;
    if (btn.dataset.armed) {
      this.#disarmKill();
      this.#lifecycle('kill');
      return;
    }
    btn.dataset.armed = 'yes';
    btn.textContent = 'Really kill?';
    this.killTimer = setTimeout(() => this.#disarmKill(), 4000);
  }

  #disarmKill() {
    clearTimeout(this.killTimer);
    delete this.els.btnKill.dataset.armed;
    this.els.btnKill.textContent = 'Kill';
  }

  async #verify() {
    const out = this.els.verify;
    out.className = 'result';
    out.textContent = 'verifying…';
    try {
      const v = await api.get(actorPath(this.id, '/chain/verify'));
      out.className = `result ${v.valid ? 'ok' : 'error'}`;
      out.textContent = v.valid
        ? `✓ valid: ${v.length} events, head ${shortHash(v.head)} (checked ${fmtTime(new Date().toISOString())})`
        : `✗ invalid at seq ${v.first_bad_seq}${v.detail ? `: ${v.detail}` : ''} (${v.length} events read)`;
    } catch (e) {
      out.className = 'result error';
      out.textContent = `cannot verify: ${e.message}`;
    }
  }

  async #inspect(seq, ev) {
    const el = this.els.inspector;
    if (!ev) {
      el.replaceChildren(h('p', { class: 'muted' }, `#${seq}: loading…`));
      try {
        ev = await this.timeline.fetchEvent(seq);
      } catch (e) {
        el.replaceChildren(h('p', { class: 'error' }, `cannot load event #${seq}: ${e.message}`));
        return;
      }
      if (this.timeline.selected !== seq) return;
    }
    el.replaceChildren(...renderEvent(ev, (s) => this.timeline.select(s, { scroll: true })));
  }
}

// The selected event in full: hashes to copy, data pretty-printed or as bytes.
export function renderEvent(ev, goto) {
  const facts = h('dl', { class: 'facts compact' },
    h('dt', null, 'time'), h('dd', null, fmtTime(ev.timestamp), h('span', { class: 'muted' }, ` ${ev.timestamp || ''}`)),
    h('dt', null, 'hash'), h('dd', null, h('code', { class: 'hash' }, ev.hash), ' ', copyButton(ev.hash, 'hash', 'copy')),
    h('dt', null, 'parent'), h('dd', null, h('code', { class: 'hash' }, ev.parent_hash), ' ',
      copyButton(ev.parent_hash, 'parent hash', 'copy'),
      ev.seq > 1 ? h('button', { type: 'button', class: 'quiet', onclick: () => goto(ev.seq - 1) }, `go to #${ev.seq - 1}`) : ''),
    h('dt', null, 'size'), h('dd', null, `${fmtSize(ev.size ?? 0)} (${ev.size ?? 0} bytes)`));
  const head = h('h3', { class: 'ev-title' }, `#${ev.seq} `, h('span', { class: 'mono' }, ev.event_type));
  return [head, facts, ...renderData(ev)];
}

function renderData(ev) {
  if (ev.data_b64 === undefined)
    return [h('h4', null, 'data (JSON)'), h('pre', { class: 'json', tabindex: '0' }, pretty(ev.data))];
  const bytes = ev.data_b64 ? b64ToBytes(ev.data_b64) : new Uint8Array();
  return [
    h('h4', null, `data (${bytes.length} bytes, not JSON)`),
    h('details', { open: true }, h('summary', null, 'hex'), h('pre', { class: 'hex', tabindex: '0' }, hexDump(bytes))),
    h('details', null, h('summary', null, 'base64'), h('pre', { class: 'b64', tabindex: '0' }, ev.data_b64 || '')),
  ];
}
