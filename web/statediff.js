// statediff.js - the state diff between two chain events.
//
// A `wasm` event holds the state its call left (docs/durability.md): inline as
// "state" (text, or {"b64"}), in the content store as "state_ref"
// (store://theater-state/hash/<sha>), or, when the call did not change it, as
// "state_seq": the event that holds it. resolveState() follows those to the bytes.
// An event of another type stands for the state of the newest `wasm` event before
// it; the panel asks the chain for it (?type=wasm pages).
//
// When both states are JSON the diff lists keys (as paths: a.b[2]) that were added,
// removed or changed; otherwise it is a line diff (longest common subsequence).

import { api, actorPath } from './api.js';
import { loadBytes } from './events.js';
import { h, pretty } from './util.js';

const MAX_LINES = 4000;

// The state after event `ev`: {seq, text} or {seq, bytes}; throws with a reason.
export async function resolveState(actorId, ev, fetchEvent, depth = 0) {
  const d = ev.data;
  // restarted and recovered events name the event that holds the state they resumed.
  if (ev.event_type !== 'wasm' && d && typeof d === 'object' && d.state_seq && depth < 4 && d.state_seq < ev.seq)
    return resolveState(actorId, await fetchEvent(d.state_seq), fetchEvent, depth + 1);
  if (ev.event_type !== 'wasm') {
    const prev = await lastWasmAtOrBefore(actorId, ev.seq);
    if (!prev) throw new Error(`no call before #${ev.seq} recorded a state`);
    return resolveState(actorId, prev, fetchEvent, depth);
  }
  if (!d || typeof d !== 'object') throw new Error(`#${ev.seq} has no readable data`);
  if (d.state !== undefined) return { seq: ev.seq, ...(await loadBytes(d.state)) };
  if (d.state_ref) {
    const got = await loadBytes({ sha256: '', ref: d.state_ref });
    if (!got) throw new Error(`#${ev.seq}: cannot read ${d.state_ref}`);
    return { seq: ev.seq, ...got };
  }
  if (d.state_seq && depth < 4 && d.state_seq !== ev.seq)
    return resolveState(actorId, await fetchEvent(d.state_seq), fetchEvent, depth + 1);
  // A failed call leaves the state as it was: the state of the call before it.
  if (ev.seq > 1 && depth < 4) {
    const prev = await lastWasmAtOrBefore(actorId, ev.seq - 1);
    if (prev) return resolveState(actorId, prev, fetchEvent, depth + 1);
  }
  throw new Error(`#${ev.seq} records no state`);
}

// The newest `wasm` event at or before seq (pages of the type filter, backwards in
// windows of 1000 events).
async function lastWasmAtOrBefore(actorId, seq) {
  for (let hi = seq; hi > 0; hi -= 2000) {
    let after = Math.max(0, hi - 2000);
    let found = null;
    for (let guard = 0; guard < 10 && after < hi; guard++) {
      const r = await api.get(actorPath(actorId, `/chain?after=${after}&limit=1000&type=wasm`));
      for (const ev of r.items) if (ev.seq <= hi) found = ev;
      if (r.next_after === null || r.next_after === undefined || r.next_after <= after) break;
      after = r.next_after;
    }
    if (found) return found;
  }
  return null;
}

function asJson(state) {
  if (state.text === undefined) return undefined;
  try { return JSON.parse(state.text); } catch { return undefined; }
}

// Every leaf of a JSON value by path; objects and arrays are walked, empty ones are leaves.
function flatten(v, path = '', out = new Map()) {
  if (v && typeof v === 'object' && Object.keys(v).length) {
    if (Array.isArray(v)) v.forEach((x, i) => flatten(x, `${path}[${i}]`, out));
    else for (const [k, x] of Object.entries(v)) flatten(x, path ? `${path}.${k}` : k, out);
  } else {
    out.set(path || '(the whole state)', v);
  }
  return out;
}

export function jsonDiff(a, b) {
  const fa = flatten(a), fb = flatten(b);
  const rows = [];
  for (const [k, v] of fa) {
    if (!fb.has(k)) rows.push({ op: 'removed', path: k, from: v });
    else if (JSON.stringify(v) !== JSON.stringify(fb.get(k))) rows.push({ op: 'changed', path: k, from: v, to: fb.get(k) });
  }
  for (const [k, v] of fb) if (!fa.has(k)) rows.push({ op: 'added', path: k, to: v });
  return rows.sort((x, y) => x.path.localeCompare(y.path));
}

// A line diff: [{op: ' '|'-'|'+', line}], from the longest common subsequence.
export function lineDiff(textA, textB) {
  const a = textA.split('\n').slice(0, MAX_LINES), b = textB.split('\n').slice(0, MAX_LINES);
  const n = a.length, m = b.length;
  const w = m + 1;
  const L = new Uint32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      L[i * w + j] = a[i] === b[j] ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push({ op: ' ', line: a[i] }); i++; j++; }
    else if (L[(i + 1) * w + j] >= L[i * w + j + 1]) out.push({ op: '-', line: a[i++] });
    else out.push({ op: '+', line: b[j++] });
  }
  while (i < n) out.push({ op: '-', line: a[i++] });
  while (j < m) out.push({ op: '+', line: b[j++] });
  return out;
}

function show(v) {
  return v === undefined ? '' : JSON.stringify(v);
}

function asText(state) {
  if (state.text !== undefined) {
    const j = asJson(state);
    return j !== undefined ? pretty(j) : state.text;
  }
  return Array.from(state.bytes, (x) => x.toString(16).padStart(2, '0')).join(' ').replace(/(.{48})/g, '$1\n');
}

// The panel: two seqs, Compare, the result.
export class StateDiffPanel {
  constructor(el, actorId, fetchEvent) {
    this.el = el;
    this.actorId = actorId;
    this.fetchEvent = fetchEvent;
    this.a = h('input', { id: 'diff-a', type: 'number', min: '1', inputmode: 'numeric', placeholder: 'seq' });
    this.b = h('input', { id: 'diff-b', type: 'number', min: '1', inputmode: 'numeric', placeholder: 'seq' });
    this.btn = h('button', { type: 'submit', id: 'diff-run' }, 'Compare');
    this.out = h('div', { id: 'diff-result', role: 'status', 'aria-live': 'polite' });
    const form = h('form', { class: 'diff-form', novalidate: true },
      h('label', { for: 'diff-a' }, 'from #'), this.a, h('label', { for: 'diff-b' }, 'to #'), this.b, this.btn);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.run();
    });
    el.replaceChildren(h('p', { class: 'muted small' },
      'The state after two events (a call\'s own, or the last call before). Pick them here or with "diff from" / "diff to" on a call.'),
    form, this.out);
  }

  set(which, seq) {
    (which === 'a' ? this.a : this.b).value = String(seq);
    if (this.a.value && this.b.value) this.run();
  }

  async run() {
    const sa = Number(this.a.value), sb = Number(this.b.value);
    if (!(sa >= 1 && sb >= 1)) {
      this.out.replaceChildren(h('p', { class: 'error' }, 'Give two event seqs.'));
      return;
    }
    this.btn.disabled = true;
    this.out.replaceChildren(h('p', { class: 'muted' }, 'reading both states…'));
    try {
      const [ea, eb] = await Promise.all([this.fetchEvent(sa), this.fetchEvent(sb)]);
      const [x, y] = await Promise.all([resolveState(this.actorId, ea, this.fetchEvent),
        resolveState(this.actorId, eb, this.fetchEvent)]);
      this.out.replaceChildren(...render(x, y, sa, sb));
    } catch (e) {
      this.out.replaceChildren(h('p', { class: 'error' }, `cannot compare: ${e.message}`));
    } finally {
      this.btn.disabled = false;
    }
  }
}

function render(x, y, sa, sb) {
  const where = (asked, st) => `#${asked}${st.seq !== asked ? ` (state held by #${st.seq})` : ''}`;
  const head = h('p', { class: 'muted small', id: 'diff-head' }, `state after ${where(sa, x)} → after ${where(sb, y)}`);
  const ja = asJson(x), jb = asJson(y);
  if (ja !== undefined && jb !== undefined) {
    const rows = jsonDiff(ja, jb);
    if (!rows.length) return [head, h('p', { class: 'ok diff-same' }, 'The two states are the same.')];
    const table = h('table', { class: 'diff-table', 'data-kind': 'json' },
      h('thead', null, h('tr', null, h('th', null, ''), h('th', null, 'key'), h('th', null, 'before'), h('th', null, 'after'))),
      h('tbody', null, rows.map((r) => h('tr', { class: `diff-${r.op}`, 'data-path': r.path },
        h('td', null, r.op), h('td', { class: 'mono' }, r.path), h('td', { class: 'mono' }, show(r.from)),
        h('td', { class: 'mono' }, show(r.to))))));
    return [head, table];
  }
  const lines = lineDiff(asText(x), asText(y));
  if (lines.every((l) => l.op === ' ')) return [head, h('p', { class: 'ok diff-same' }, 'The two states are the same.')];
  const pre = h('pre', { class: 'diff-lines', 'data-kind': 'lines', tabindex: '0' },
    lines.map((l) => h('span', { class: `diff-line diff-${l.op === '+' ? 'added' : l.op === '-' ? 'removed' : 'same'}` }, `${l.op} ${l.line}\n`)));
  return [head, pre];
}
