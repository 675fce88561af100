// server.js - the server view (#/server): GET /metrics (the Prometheus text format,
// docs/operations.md) polled every EVERY_MS while the view is open, drawn as small
// charts: actors by status (bars, and the live count over time), spawns, failures
// and restarts, HTTP requests per second and by status class, open event streams,
// parked calls (when the server reports them), chain fsync latency, and the package
// cache. In cluster mode (GET /cluster says enabled) a panel lists the cluster's
// nodes: status, load, heartbeat age and address, this node marked.

import { api } from './api.js';
import { Series, metricCard, bars, fmtNum } from './charts.js';
import { h, fmtSize } from './util.js';

const EVERY_MS = 2000;
const SAMPLES = 60;
const STATUSES = ['starting', 'running', 'stopping', 'stopped', 'failed', 'killed'];

// Parses the text format into [{name, labels: {}, value}] (comments skipped).
export function parseProm(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line[0] === '#') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const p of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[p[1]] = p[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

function sum(samples, name, pred = () => true) {
  return samples.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);
}

export class ServerView {
  constructor(el) {
    this.el = el;
    this.timer = 0;
    this.closed = false;
    this.s = {};
    for (const k of ['live', 'spawns', 'failures', 'restarts', 'http', 'http5', 'sse', 'fsyncN', 'fsyncSum', 'parked'])
      this.s[k] = new Series(SAMPLES);
    this.body = h('div', { id: 'server-metrics' }, h('p', { class: 'muted' }, 'reading /metrics…'));
    this.cluster = h('section', { class: 'panel', id: 'server-cluster', hidden: true, 'aria-labelledby': 'srv-cluster' });
    el.replaceChildren(h('h1', null, 'Server'), this.cluster,
      h('p', { class: 'muted small' }, `From GET /metrics every ${EVERY_MS / 1000} s while this view is open; lines show the last ${SAMPLES} samples.`),
      this.body);
  }

  start() {
    document.title = 'server · theater';
    this.#tick();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
  }

  async #tick() {
    if (document.visibilityState === 'hidden') {   // a background tab asks nothing
      this.timer = setTimeout(() => this.#tick(), EVERY_MS);
      return;
    }
    try {
      const cl = await api.get('/cluster').catch(() => null);   // an older server: none
      if (this.closed) return;
      this.#cluster(cl);
      const text = await api.get('/metrics', { headers: { Accept: 'text/plain' } });
      if (this.closed) return;
      this.#update(parseProm(String(text)));
    } catch (e) {
      if (this.closed) return;
      this.body.replaceChildren(h('p', { class: 'error' }, `cannot read /metrics: ${e.message}`));
    }
    if (!this.closed) this.timer = setTimeout(() => this.#tick(), EVERY_MS);
  }

  #cluster(cl) {
    if (!cl || !cl.enabled) {
      this.cluster.hidden = true;
      return;
    }
    this.cluster.hidden = false;
    const nodes = [...(cl.nodes || [])].sort((a, b) => a.node.localeCompare(b.node));
    const age = (ms) => (ms == null ? '—' : ms < 10000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);
    this.cluster.replaceChildren(
      h('h2', { id: 'srv-cluster' }, `Cluster · this is node ${cl.node}`),
      h('p', { class: 'muted small' }, `NATS ${cl.nats && cl.nats.connected ? `connected to ${cl.nats.server || '?'}` : 'not connected'}` +
        (cl.replicas ? `, ${cl.replicas} replicas` : '')),
      h('table', { class: 'small-table', id: 'srv-nodes' },
        h('thead', null, h('tr', null, ['Node', 'Status', 'Live actors', 'Heartbeat', 'Address'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, nodes.map((n) => h('tr', { 'data-node': n.node },
          h('td', { class: 'mono' }, n.node === cl.node ? `${n.node} (this node)` : n.node),
          h('td', { 'data-status': n.status }, n.status),
          h('td', { class: 'num' }, fmtNum(n.load)),
          h('td', { title: (n.heartbeat_at || '') + (n.lapse_ms ? ` (counted down once ${age(n.lapse_ms)} old)` : '') }, age(n.heartbeat_age_ms)),
          h('td', { class: 'mono' }, n.url || '—'))))));
  }

  #update(samples) {
    const t = Date.now();
    const s = this.s;
    const byStatus = STATUSES.map((st) => ({ label: st, value: sum(samples, 'theater_actors', (l) => l.status === st) }));
    const live = byStatus.filter((b) => ['starting', 'running', 'stopping'].includes(b.label)).reduce((a, b) => a + b.value, 0);
    s.live.push(live, t);
    s.spawns.push(sum(samples, 'theater_actor_spawns_total'), t);
    s.failures.push(sum(samples, 'theater_actor_failures_total'), t);
    s.restarts.push(sum(samples, 'theater_actor_restarts_total'), t);
    s.http.push(sum(samples, 'theater_http_request_duration_seconds_count'), t);
    s.http5.push(sum(samples, 'theater_http_request_duration_seconds_count', (l) => l.code === '5xx'), t);
    s.sse.push(sum(samples, 'theater_sse_clients'), t);
    const parks = samples.some((x) => x.name === 'theater_parked_calls');
    if (parks) s.parked.push(sum(samples, 'theater_parked_calls'), t);
    s.fsyncN.push(sum(samples, 'theater_chain_fsync_duration_seconds_count'), t);
    s.fsyncSum.push(sum(samples, 'theater_chain_fsync_duration_seconds_sum'), t);
    const classes = ['2xx', '3xx', '4xx', '5xx'].map((c) => ({ label: c,
      value: sum(samples, 'theater_http_request_duration_seconds_count', (l) => l.code === c) }));
    const reasons = samples.filter((x) => x.name === 'theater_actor_failures_total')
      .map((x) => ({ label: x.labels.reason || 'all', value: x.value }));
    const n = s.fsyncN.deltas(), secs = s.fsyncSum.deltas();
    const fsyncMs = n.map((k, i) => (k ? (secs[i] / k) * 1000 : 0));
    const avgAll = s.fsyncN.last ? (s.fsyncSum.last / s.fsyncN.last) * 1000 : 0;
    const routes = new Map();
    for (const x of samples) {
      if (x.name !== 'theater_http_request_duration_seconds_count') continue;
      const k = `${x.labels.method} ${x.labels.route}`;
      routes.set(k, (routes.get(k) || 0) + x.value);
    }
    const top = [...routes].sort((a, b) => b[1] - a[1]).slice(0, 8);
    this.body.replaceChildren(
      h('div', { class: 'server-grid' },
        h('section', { class: 'panel', 'aria-labelledby': 'srv-actors' }, h('h2', { id: 'srv-actors' }, 'Actors by status'),
          h('div', { id: 'srv-status-bars' }, bars(byStatus))),
        h('section', { class: 'panel', 'aria-labelledby': 'srv-http' }, h('h2', { id: 'srv-http' }, 'HTTP requests by class'),
          h('div', { id: 'srv-class-bars' }, bars(classes)),
          h('h3', { class: 'sub' }, 'busiest routes'),
          h('table', { class: 'small-table', id: 'srv-routes' }, h('tbody', null,
            top.map(([k, v]) => h('tr', null, h('td', { class: 'mono' }, k), h('td', { class: 'num' }, fmtNum(v)))))))),
      h('div', { class: 'metrics-grid', id: 'server-metrics-grid' },
        metricCard('live', 'live actors', fmtNum(live), s.live.values),
        metricCard('spawns', 'spawns', fmtNum(s.spawns.last), s.spawns.deltas(), 'since the server started; line: per interval'),
        metricCard('failures', 'failures', fmtNum(s.failures.last), s.failures.deltas(),
          reasons.length ? reasons.map((r) => `${r.label} ${r.value}`).join(', ') : 'none'),
        metricCard('restarts', 'restarts', fmtNum(s.restarts.last), s.restarts.deltas()),
        metricCard('http', 'HTTP requests', fmtNum(s.http.last), s.http.rate(), 'line: per second'),
        metricCard('http5', 'HTTP 5xx', fmtNum(s.http5.last), s.http5.deltas()),
        metricCard('sse', 'event streams open', fmtNum(s.sse.last), s.sse.values),
        parks ? metricCard('parked', 'parked calls', fmtNum(s.parked.last), s.parked.values,
          `waiting host calls; ${fmtNum(sum(samples, 'theater_parks_total'))} parked so far`) : '',
        metricCard('fsync', 'chain fsync', `${avgAll.toFixed(2)} ms avg`, fsyncMs, `${fmtNum(s.fsyncN.last)} syncs; line: ms per sync`),
        metricCard('cache', 'package cache', fmtSize(sum(samples, 'theater_package_cache_bytes')), [],
          `${fmtNum(sum(samples, 'theater_package_cache_hits_total'))} hits, ${fmtNum(sum(samples, 'theater_package_cache_misses_total'))} misses`)));
  }
}
