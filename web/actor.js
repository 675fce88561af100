// actor.js - one actor's page: its facts and status, the verify/stop/kill/restart/
// replay/delete buttons, the chain timeline fed by one EventSource with its filter
// (chainfilter.js), the selected event in full (events.js), the state and
// message/request panels (messaging.js), the state diff (statediff.js) and the
// metrics panel (metrics.js).
//
// Start-up: the run (from the store, else GET /actors/<id>), then the first chain
// page (which says the chain's length and whether the run has ended), then ONE
// chain stream from ?after=<length>: everything before comes from pages, on
// demand; everything after comes live, once. close() ends the stream, so the
// dashboard never holds more than two (this one and the actor list's).
// Every panel is reset when a page opens, so nothing of the previous actor stays
// on screen; an id the server does not know turns every action off.

import { api, actorPath } from './api.js';
import { ResumableStream } from './stream.js';
import { Timeline } from './timeline.js';
import { statusBadge } from './actors.js';
import { StatePanel, MessagePanel } from './messaging.js';
import { renderEvent } from './events.js';
import { ChainFilter } from './chainfilter.js';
import { StateDiffPanel } from './statediff.js';
import { ActorMetrics } from './metrics.js';
import {
  h, fmtTime, shortHash, shortId, copyButton, TERMINAL, LIVE,
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
  constructor(id, { store, els, auth, showError, showNotice }) {
    this.id = id;
    this.store = store;
    this.els = els;
    this.auth = auth;
    this.showError = showError;
    this.showNotice = showNotice || (() => {});
    this.ended = false;
    this.stream = null;
    this.timeline = null;
    this.closed = false;
    this.onChange = (e) => {
      if (!e.detail.id || e.detail.id === this.id) this.#header();
    };
    this.armTimers = {};
    this.handlers = {
      verify: () => this.#verify(),
      stop: () => this.#lifecycle('stop'),
      kill: () => this.#confirm('kill', 'Really kill?', () => this.#lifecycle('kill')),
      restart: () => this.#confirm('restart', 'Really restart?', () => this.#restart()),
      replay: () => this.#replay(),
      del: () => this.#confirm('delete', 'Really delete?', () => this.#delete()),
    };
  }

  #buttons() {
    const e = this.els;
    return [[e.btnVerify, 'verify'], [e.btnStop, 'stop'], [e.btnKill, 'kill'], [e.btnRestart, 'restart'],
      [e.btnReplay, 'replay'], [e.btnDelete, 'del']];
  }

  async open() {
    const els = this.els;
    // Nothing of the page before stays: title, badge, count, facts, results, panels.
    els.title.textContent = shortId(this.id);
    statusBadge(els.status, null);
    els.count.textContent = '';
    els.facts.replaceChildren();
    els.verify.textContent = '';
    els.verify.className = 'result';
    els.action.textContent = '';
    els.action.className = 'result';
    for (const [b] of this.#buttons()) b.disabled = true;
    this.#disarmAll();
    els.inspector.replaceChildren(h('p', { class: 'muted' }, 'Select an event (click, or arrow keys in the chain).'));
    els.state.replaceChildren(h('p', { class: 'muted' }, 'loading…'));
    this.statePanel = new StatePanel(els.state, this.id);
    this.messages = new MessagePanel(els.messaging, this.id);
    this.metrics = new ActorMetrics(els.metrics, this.id);
    this.diff = new StateDiffPanel(els.diff, this.id, (seq) => this.#fetchEvent(seq));
    this.filter = new ChainFilter(els.filter, { actorId: this.id,
      onPick: (seq) => this.timeline && this.timeline.select(seq, { scroll: true }) });
    showStreamState(els.pill, 'connecting');
    for (const [b, k] of this.#buttons()) b.addEventListener('click', this.handlers[k]);
    this.store.addEventListener('change', this.onChange);
    let run = this.store.get(this.id);
    if (!run) {
      try {
        run = await this.store.refresh(this.id);
      } catch (e) {
        if (this.closed) return;
        this.#unknown(`cannot read the actor: ${e.message}`, 'Cannot read the actor');
        throw e;
      }
    }
    if (this.closed) return;
    if (!run) {
      this.#unknown(`The server has no actor '${this.id}'.`);
      return;
    }
    this.#header();
    this.metrics.start();
    this.timeline = new Timeline(els.timeline, {
      actorId: this.id,
      onSelect: (seq, ev) => this.#inspect(seq, ev),
      onError: (e) => this.showError(`cannot load chain events: ${e.message}`),
    });
    await this.#startChain();
  }

  // No such actor (or it could not be read): every action off, every panel says so.
  #unknown(text, title = 'No such actor') {
    const els = this.els;
    els.title.textContent = title;
    document.title = 'no such actor · theater';
    statusBadge(els.status, null);
    els.count.textContent = '';
    els.facts.replaceChildren(h('p', { class: 'error', id: 'actor-missing' }, text));
    for (const [b] of this.#buttons()) b.disabled = true;
    this.messages.setStatus(null);
    this.statePanel.close();
    els.state.replaceChildren(h('p', { class: 'muted' }, 'No state: there is no such actor.'));
    els.inspector.replaceChildren(h('p', { class: 'muted' }, 'No events.'));
    els.metrics.replaceChildren(h('p', { class: 'muted' }, 'No metrics.'));
    els.diff.replaceChildren(h('p', { class: 'muted' }, 'Nothing to compare.'));
    els.filter.replaceChildren();
    showStreamState(els.pill, 'closed');
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
      onState: (s) => {
        showStreamState(this.els.pill, s, 'complete (the run has ended)');
        // The run may have gone on before its stream's end reached us (a restart
        // answered first): follow it again now, not only at the next update.
        if (s === 'ended') {
          queueMicrotask(() => {
            const r = this.store.get(this.id);
            if (r && !this.closed) this.#revive(r);
          });
        }
      },
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

  // The chain stream ended with the run, and the run went on (a restart): follow it
  // again. Called when the run changes and when the stream ends, whichever is last.
  #revive(r) {
    if (!this.stream || this.stream.state !== 'ended' || !r.chain || r.chain.length <= this.stream.after) return;
    this.ended = false;
    this.stream.open();
  }

  #fetchEvent(seq) {
    if (this.timeline) return this.timeline.fetchEvent(seq);
    return api.get(actorPath(this.id, `/chain/events/${seq}`));
  }

  #event(ev) {
    this.timeline.add(ev);
    this.filter.live(ev);
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
    this.statePanel.close();
    this.metrics.close();
    if (this.stream) this.stream.close();
    if (this.timeline) this.timeline.destroy();
    this.store.removeEventListener('change', this.onChange);
    for (const [b, k] of this.#buttons()) b.removeEventListener('click', this.handlers[k]);
    this.#disarmAll();
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
    els.btnVerify.disabled = false;
    els.btnReplay.disabled = false;
    els.btnStop.disabled = ended;
    els.btnKill.disabled = ended;
    els.btnRestart.disabled = r.status === 'starting' || r.status === 'stopping';
    els.btnDelete.disabled = false;
    els.btnDelete.title = LIVE.has(r.status) ? 'kill the actor and remove the run from the list (its chain file is kept)'
      : 'remove the run from the list (its chain file is kept)';
    if (ended) this.#disarm('kill');
    const facts = [
      ['ID', h('span', null, h('code', null, r.id), ' ', copyButton(r.id, 'actor id', 'copy'))],
      ['Status', h('span', null, r.status || '—', r.reason ? h('span', { class: 'muted' }, ` (${r.reason})`) : '')],
      ['Parent', r.parent_id ? h('a', { href: `#/actors/${r.parent_id}` }, r.parent_id) : '—'],
      ...(r.node ? [['Node', h('span', { id: 'actor-node' }, r.node)]] : []),
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
      this.metrics.poke();
    } catch (e) {
      this.showError(`cannot ${what} the actor: ${e.message}`);
    } finally {
      this.#header();
    }
  }

  #say(kind, ...parts) {
    this.els.action.className = `result ${kind}`;
    this.els.action.replaceChildren(...parts);
  }

  async #restart() {
    this.els.btnRestart.disabled = true;
    this.#say('', 'restarting…');
    try {
      const run = await api.post(actorPath(this.id, '/restart'));
      if (run) this.store.merge(run);
      this.#say('ok', `✓ restarted: ${run ? run.status : 'done'} (same package, the last good state)`);
      this.metrics.poke();
    } catch (e) {
      this.#say('error', `cannot restart: ${e.message}`);
    } finally {
      this.#header();
    }
  }

  async #replay() {
    this.els.btnReplay.disabled = true;
    this.#say('', 'replaying every recorded call…');
    try {
      const r = await api.post(actorPath(this.id, '/replay'));
      if (this.closed) return;
      if (r.diverged_at === null || r.diverged_at === undefined) {
        this.#say('ok', `✓ replay matches the chain: ${r.replayed} call${r.replayed === 1 ? '' : 's'} replayed identically, ${r.events} events examined`);
      } else {
        const seq = r.diverged_at;
        this.#say('error', `✗ replay diverged at `,
          h('button', { type: 'button', class: 'link seq-link', onclick: () => this.timeline && this.timeline.select(seq, { scroll: true }) }, `#${seq}`),
          ` after ${r.replayed} identical call${r.replayed === 1 ? '' : 's'}: expected ${JSON.stringify(r.expected)}, got ${JSON.stringify(r.got)}`);
      }
    } catch (e) {
      this.#say('error', `cannot replay${e.code ? ` (${e.code})` : ''}: ${e.message}`);
    } finally {
      if (!this.closed) this.els.btnReplay.disabled = false;
    }
  }

  async #delete() {
    const r = this.store.get(this.id);
    const force = r && LIVE.has(r.status);
    this.els.btnDelete.disabled = true;
    this.#say('', 'deleting…');
    try {
      await api.del(actorPath(this.id, force ? '?force=true' : ''));
      this.store.applyLifecycle({ event_type: 'deleted', actor_id: this.id });
      this.showNotice(`Deleted ${r && r.name ? r.name : 'the actor'} (${this.id}); its chain file is kept.`);
      location.hash = '#/';
    } catch (e) {
      this.#say('error', `cannot delete: ${e.message}`);
      this.els.btnDelete.disabled = false;
    }
  }

  // Destructive buttons take two clicks: the first arms the button for a few seconds.
  #confirm(key, armedText, action) {
    const btn = this.#btnOf(key);
    if (btn.dataset.armed) {
      this.#disarm(key);
      action();
      return;
    }
    btn.dataset.armed = 'yes';
    btn.dataset.label ||= btn.textContent;
    btn.textContent = armedText;
    this.armTimers[key] = setTimeout(() => this.#disarm(key), 4000);
  }

  #btnOf(key) {
    return { kill: this.els.btnKill, restart: this.els.btnRestart, delete: this.els.btnDelete }[key];
  }

  #disarm(key) {
    const btn = this.#btnOf(key);
    clearTimeout(this.armTimers[key]);
    if (!btn.dataset.armed) return;
    delete btn.dataset.armed;
    btn.textContent = btn.dataset.label;
  }

  #disarmAll() {
    for (const k of ['kill', 'restart', 'delete']) this.#disarm(k);
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
    const goto = (s) => this.timeline.select(s, { scroll: true });
    let tools = null;
    if (ev.event_type === 'wasm') {
      tools = h('div', { class: 'actions ev-tools' },
        h('button', { type: 'button', class: 'quiet', id: 'diff-from', onclick: () => this.diff.set('a', ev.seq) }, 'diff from here'),
        h('button', { type: 'button', class: 'quiet', id: 'diff-to', onclick: () => this.diff.set('b', ev.seq) }, 'diff to here'));
    }
    el.replaceChildren(...renderEvent(ev, goto, tools));
  }
}
