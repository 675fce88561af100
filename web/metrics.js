// metrics.js - the actor page's metrics panel: GET /actors/<id>/metrics polled
// every EVERY_MS while the page is open (one request at a time), the last SAMPLES
// values kept per number and drawn as sparklines: calls and failures per interval,
// fuel per interval, mailbox depth, memory. The numbers are the server's totals
// for the run; the lines show how they moved while you watched.

import { api, actorPath } from './api.js';
import { Series, metricCard, fmtNum } from './charts.js';
import { h, fmtSize } from './util.js';

const EVERY_MS = 2000;
const SAMPLES = 60;

export class ActorMetrics {
  constructor(el, id, every = EVERY_MS) {
    this.el = el;
    this.id = id;
    this.every = every;
    this.timer = 0;
    this.closed = false;
    this.series = {};
    for (const k of ['calls', 'failures', 'fuel', 'depth', 'memory', 'messages', 'requests'])
      this.series[k] = new Series(SAMPLES);
    this.last = null;
    el.replaceChildren(h('p', { class: 'muted' }, 'reading metrics…'));
  }

  start() {
    this.#tick();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
  }

  // Read again now (after an action), keeping the schedule.
  poke() {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.#tick();
  }

  async #tick() {
    if (document.visibilityState === 'hidden') {   // a background tab asks nothing
      this.timer = setTimeout(() => this.#tick(), this.every);
      return;
    }
    try {
      const m = await api.get(actorPath(this.id, '/metrics'));
      if (this.closed) return;
      const t = Date.now();
      const s = this.series;
      s.calls.push(m.calls ?? 0, t);
      s.failures.push(m.failures ?? 0, t);
      s.fuel.push(m.fuel ?? 0, t);
      s.depth.push(m.mailbox?.depth ?? 0, t);
      s.memory.push(m.memory_bytes ?? 0, t);
      s.messages.push(m.messages ?? 0, t);
      s.requests.push(m.requests ?? 0, t);
      this.last = m;
      this.#render();
    } catch (e) {
      if (this.closed) return;
      this.el.replaceChildren(h('p', { class: e.status === 404 ? 'muted' : 'error' },
        e.status === 404 ? 'No metrics: the server has no such actor.' : `cannot read metrics: ${e.message}`));
      if (e.status === 404) return;
    }
    if (!this.closed) this.timer = setTimeout(() => this.#tick(), this.every);
  }

  #render() {
    const m = this.last;
    const s = this.series;
    const cap = m.mailbox?.capacity;
    this.el.replaceChildren(
      h('p', { class: 'muted small' }, `Totals for this run; lines: change per ${this.every / 1000} s, last ${SAMPLES} samples.`),
      h('div', { class: 'metrics-grid', id: 'actor-metrics-grid' },
        metricCard('calls', 'calls', fmtNum(m.calls), s.calls.deltas(),
          `${fmtNum(m.messages)} messages, ${fmtNum(m.requests)} requests`),
        metricCard('failures', 'failures', fmtNum(m.failures), s.failures.deltas(),
          m.restarts ? `${m.restarts} restart${m.restarts === 1 ? '' : 's'}` : ''),
        metricCard('fuel', 'fuel', fmtNum(m.fuel), s.fuel.deltas(), `busy ${fmtNum((m.busy_us ?? 0) / 1000)} ms`),
        metricCard('mailbox', 'mailbox depth', `${fmtNum(m.mailbox?.depth ?? 0)}${cap ? ` / ${fmtNum(cap)}` : ''}`,
          s.depth.values),
        metricCard('memory', 'memory', fmtSize(m.memory_bytes ?? 0), s.memory.values)));
  }
}
