// charts.js - small SVG charts drawn from numbers the page polled (no chart library).
//
// Series keeps the last N samples of one number; sparkline() draws them as a line
// with its area, the newest value as text beside it; bars() draws labelled
// horizontal bars. Both return plain SVG/DOM nodes built with createElementNS, and
// carry a <title> and an aria-label, so a screen reader gets the numbers too.

import { h } from './util.js';

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

// The last `max` values of one number; rate() turns a counter into per-second deltas.
export class Series {
  constructor(max = 60) {
    this.max = max;
    this.values = [];
    this.times = [];
  }

  push(v, t = Date.now()) {
    this.values.push(v);
    this.times.push(t);
    if (this.values.length > this.max) {
      this.values.shift();
      this.times.shift();
    }
  }

  get last() {
    return this.values.length ? this.values[this.values.length - 1] : undefined;
  }

  // Per-second increase between samples (a counter that went down counts from 0).
  rate() {
    const out = [];
    for (let i = 1; i < this.values.length; i++) {
      const dt = (this.times[i] - this.times[i - 1]) / 1000;
      const dv = this.values[i] >= this.values[i - 1] ? this.values[i] - this.values[i - 1] : this.values[i];
      out.push(dt > 0 ? dv / dt : 0);
    }
    return out;
  }

  // Increase between samples (not per second).
  deltas() {
    const out = [];
    for (let i = 1; i < this.values.length; i++)
      out.push(Math.max(0, this.values[i] - this.values[i - 1]));
    return out;
  }
}

export function fmtNum(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '—';
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toFixed(a >= 1e10 ? 0 : 1)}G`;
  if (a >= 1e6) return `${(v / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(v / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`;
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(a < 10 ? 2 : 1);
}

// A line of `values` (oldest first) in a w x h box, scaled from 0 to the largest value.
export function sparkline(values, { w = 160, h: ht = 32, label = '' } = {}) {
  const n = values.length;
  const max = Math.max(1e-9, ...values);
  const x = (i) => (n <= 1 ? w : (i * w) / (n - 1));
  const y = (v) => ht - 2 - (Math.max(0, v) / max) * (ht - 4);
  const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  const summary = n ? `${label}: last ${fmtNum(values[n - 1])}, max ${fmtNum(Math.max(...values))}, ${n} samples`
    : `${label}: no samples yet`;
  const root = svg('svg', { class: 'spark', width: w, height: ht, viewBox: `0 0 ${w} ${ht}`,
    role: 'img', 'aria-label': summary }, svg('title', null, summary));
  root.append(svg('line', { class: 'spark-base', x1: 0, y1: ht - 1, x2: w, y2: ht - 1 }));
  if (n === 1) pts.unshift(`0,${y(values[0]).toFixed(1)}`);
  if (pts.length) {
    root.append(svg('polygon', { class: 'spark-area', points: `0,${ht - 1} ${pts.join(' ')} ${w},${ht - 1}` }));
    root.append(svg('polyline', { class: 'spark-line', points: pts.join(' ') }));
  }
  root.dataset.samples = String(n);
  root.dataset.last = n ? String(values[n - 1]) : '';
  return root;
}

// Horizontal bars: [{label, value}] scaled to the largest.
export function bars(items, { w = 380, row = 18 } = {}) {
  const max = Math.max(1, ...items.map((i) => i.value));
  const labelW = 80, numW = 48;
  const barW = w - labelW - numW;
  const ht = Math.max(row, items.length * row);
  const summary = items.map((i) => `${i.label} ${i.value}`).join(', ');
  const root = svg('svg', { class: 'bars', width: w, height: ht, viewBox: `0 0 ${w} ${ht}`, role: 'img',
    'aria-label': summary }, svg('title', null, summary));
  items.forEach((it, k) => {
    const y = k * row;
    const g = svg('g', { 'data-label': it.label, 'data-value': it.value, class: `bar bar-${it.label}` });
    g.append(svg('text', { x: 0, y: y + row - 5, class: 'bar-label' }, it.label));
    g.append(svg('rect', { x: labelW, y: y + 3, height: row - 6, width: Math.max(it.value ? 2 : 0, (it.value / max) * barW),
      rx: 2 }));
    g.append(svg('text', { x: w, y: y + row - 5, class: 'bar-num', 'text-anchor': 'end' }, fmtNum(it.value)));
    root.append(g);
  });
  return root;
}

// One labelled metric: name, value, sparkline. `key` names it for tests (data-metric).
export function metricCard(key, name, value, values, hint = '') {
  return h('div', { class: 'metric', 'data-metric': key },
    h('div', { class: 'metric-head' }, h('span', { class: 'metric-name' }, name),
      h('span', { class: 'metric-value' }, value)),
    sparkline(values, { label: name }),
    hint ? h('div', { class: 'metric-hint muted' }, hint) : '');
}
