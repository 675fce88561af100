// events.js - one chain event in full, shown the way a user reads it.
//
// Every event gets its time, hashes and size. Then, by type (docs/actor-abi.md,
// "What the chain records"):
//   wasm                      the function, the message it processed (input) and the
//                             answer (output) or error, fuel and time, the mail it
//                             came from and the state it left;
//   message-server/received   who sent it (from), the kind, and the data;
//   message-server/dropped    the mails and why;
//   <interface>/<function>    a host call: its input, output, return value, args;
//   anything else             its data as JSON.
// The raw data is always there too (JSON pretty-printed, or hex and base64).
//
// Bytes in events come as a string (UTF-8 text), {"b64": ...}, or, when large,
// {"sha256", "size", "ref": "store://<id>/hash/<sha>"}: those are loaded from the
// content store on request (GET /store/<id>/hash/<sha>).

import { api } from './api.js';
import {
  h, fmtTime, fmtSize, copyButton, pretty, b64ToBytes, hexDump,
} from './util.js';


export function isHostCall(type) {
  return type.includes('/') && !type.startsWith('message-server/');
}

// Parses store://<store>/hash/<sha256>.
export function parseRef(ref) {
  const m = /^store:\/\/([A-Za-z0-9_.-]+)\/hash\/([0-9a-f]{64})$/.exec(ref || '');
  return m ? { store: m[1], sha: m[2] } : null;
}

// Reads the bytes a recorded bytes value stands for: {text} or {bytes}; null when
// only a digest was kept.
export async function loadBytes(v) {
  if (typeof v === 'string') return { text: v };
  if (v && typeof v === 'object' && typeof v.b64 === 'string') return { bytes: b64ToBytes(v.b64) };
  const ref = v && parseRef(v.ref);
  if (!ref) return null;
  const r = await api.get(`/store/${encodeURIComponent(ref.store)}/hash/${ref.sha}`, { raw: true });
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(r.bytes) };
  } catch {
    return { bytes: r.bytes };
  }
}

// Text that is JSON is shown pretty-printed; other text as it is; bytes as hex.
function shownText(text) {
  const t = text.trim();
  if (t && (t[0] === '{' || t[0] === '[')) {
    try { return { kind: 'JSON', text: pretty(JSON.parse(t)) }; } catch { /* plain text */ }
  }
  return { kind: 'text', text };
}

// A recorded bytes value as a block: <label> (kind, size) and its content.
export function bytesBlock(label, v, cls = '') {
  const wrap = h('div', { class: `ev-block ${cls}`, 'data-block': label });
  const title = (kind, size) => h('h4', null, label, h('span', { class: 'muted' }, ` (${kind}${size !== undefined ? `, ${fmtSize(size)}` : ''})`));
  if (v === undefined) return null;
  if (v === null) {
    wrap.append(title('none'));
    return wrap;
  }
  if (typeof v === 'string') {
    const s = shownText(v);
    wrap.append(title(s.kind, new TextEncoder().encode(v).length), h('pre', { class: 'json ev-value', tabindex: '0' }, s.text || '(empty)'));
    return wrap;
  }
  if (typeof v === 'object' && typeof v.b64 === 'string') {
    const bytes = b64ToBytes(v.b64);
    wrap.append(title('bytes', bytes.length), h('pre', { class: 'hex ev-value', tabindex: '0' }, hexDump(bytes)));
    return wrap;
  }
  if (typeof v === 'object' && typeof v.sha256 === 'string') {
    const out = h('div', { class: 'ev-ref' });
    const ref = parseRef(v.ref);
    wrap.append(title('stored by reference', v.size), out);
    out.append(h('span', { class: 'muted' }, `sha256 ${v.sha256.slice(0, 16)}… `));
    if (!ref) {
      out.append(h('span', { class: 'muted' }, '(only its digest was kept)'));
      return wrap;
    }
    const btn = h('button', { type: 'button', class: 'quiet' }, `load from store '${ref.store}'`);
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        const got = await loadBytes(v);
        const pre = got.text !== undefined
          ? h('pre', { class: 'json ev-value', tabindex: '0' }, shownText(got.text).text)
          : h('pre', { class: 'hex ev-value', tabindex: '0' }, hexDump(got.bytes));
        out.replaceWith(pre);
      } catch (e) {
        out.append(h('span', { class: 'error' }, ` cannot load: ${e.message}`));
        btn.disabled = false;
      }
    });
    out.append(btn);
    return wrap;
  }
  wrap.append(title('JSON'), h('pre', { class: 'json ev-value', tabindex: '0' }, pretty(v)));
  return wrap;
}

function jsonBlock(label, v) {
  if (v === undefined) return null;
  return h('div', { class: 'ev-block', 'data-block': label }, h('h4', null, label),
    h('pre', { class: 'json ev-value', tabindex: '0' }, pretty(v)));
}

function kv(pairs) {
  const dl = h('dl', { class: 'facts compact ev-summary' });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    dl.append(h('dt', null, k), h('dd', { 'data-key': k }, v));
  }
  return dl;
}

function seqLink(seq, goto, text = `#${seq}`) {
  return h('button', { type: 'button', class: 'link seq-link', 'data-goto': seq, onclick: () => goto(seq) }, text);
}

// The parts of the view that depend on the event's type.
function summary(ev, goto, tools) {
  const d = ev.data;
  if (!d || typeof d !== 'object' || Array.isArray(d)) return [];
  const t = ev.event_type;
  if (t === 'wasm') {
    const failed = d.error !== undefined;
    const stateFacts = [];
    if (d.state !== undefined) stateFacts.push('held in this event');
    else if (d.state_ref) stateFacts.push(`in the store (${d.state_ref.slice(0, 40)}…)`);
    else if (d.state_seq) stateFacts.push(h('span', null, 'unchanged; held by ', seqLink(d.state_seq, goto)));
    const out = [
      kv([
        ['function', h('code', null, d.function || '?')],
        ['outcome', h('span', { class: failed ? 'error' : 'ok' }, failed ? `error${d.error_code ? ` (${d.error_code})` : ''}` : 'ok')],
        ['message', d.mail ? h('span', null, 'from mail ', seqLink(d.mail, goto)) : undefined],
        ['fuel', d.fuel !== undefined ? String(d.fuel) : undefined],
        ['time', d.duration_us !== undefined ? `${d.duration_us} µs` : undefined],
        ['state', stateFacts.length ? h('span', null, ...stateFacts) : (failed ? 'unchanged (the call failed)' : undefined)],
        ['state sha-256', d.state_sha256 ? h('code', { class: 'hash' }, d.state_sha256.slice(0, 16) + '…') : undefined],
      ]),
      bytesBlock('Message (input)', d.input === undefined ? undefined : d.input, 'ev-input'),
      failed ? bytesBlock('Error', d.error, 'ev-error') : bytesBlock('Answer (output)', d.output === undefined ? null : d.output, 'ev-output'),
    ];
    if (d.state !== undefined) out.push(bytesBlock('State after the call', d.state, 'ev-state'));
    if (tools) out.push(tools);
    return out;
  }
  if (t === 'message-server/received') {
    return [
      kv([['from', h('code', null, d.from ?? '?')], ['kind', h('code', null, d.kind ?? '?')],
        ['size', d.size !== undefined ? `${d.size} bytes` : undefined]]),
      bytesBlock('Data', d.data, 'ev-input'),
    ];
  }
  if (t === 'message-server/dropped') {
    const mails = Array.isArray(d.mails) ? d.mails : [];
    return [kv([['reason', d.reason], ['mails', mails.length ? h('span', null, ...mails.flatMap((m, i) => [i ? ', ' : '', seqLink(m, goto)])) : undefined]])];
  }
  if (isHostCall(t)) {
    return [
      kv([['host call', h('code', null, t)], ['return', d.return !== undefined ? String(d.return) : undefined],
        ['args', Array.isArray(d.args) ? h('code', null, d.args.join(', ')) : undefined],
        ['effects', Array.isArray(d.effects) ? `${d.effects.length} memory effect${d.effects.length === 1 ? '' : 's'}` : undefined]]),
      jsonBlock('Input', d.input),
      jsonBlock('Output', d.output),
    ];
  }
  const pairs = Object.entries(d).filter(([, v]) => v === null || typeof v !== 'object')
    .map(([k, v]) => [k, String(v)]);
  return pairs.length ? [kv(pairs)] : [];
}

// The selected event in full. goto(seq) selects another event; tools is an optional
// node (the state-diff buttons) shown with a wasm event.
export function renderEvent(ev, goto, tools = null) {
  const facts = h('dl', { class: 'facts compact' },
    h('dt', null, 'time'), h('dd', null, fmtTime(ev.timestamp), h('span', { class: 'muted' }, ` ${ev.timestamp || ''}`)),
    h('dt', null, 'hash'), h('dd', null, h('code', { class: 'hash' }, ev.hash), ' ', copyButton(ev.hash, 'hash', 'copy')),
    h('dt', null, 'parent'), h('dd', null, h('code', { class: 'hash' }, ev.parent_hash), ' ',
      copyButton(ev.parent_hash, 'parent hash', 'copy'),
      ev.seq > 1 ? h('button', { type: 'button', class: 'quiet', onclick: () => goto(ev.seq - 1) }, `go to #${ev.seq - 1}`) : ''),
    h('dt', null, 'size'), h('dd', null, `${fmtSize(ev.size ?? 0)} (${ev.size ?? 0} bytes)`));
  const head = h('h3', { class: 'ev-title' }, `#${ev.seq} `, h('span', { class: 'mono' }, ev.event_type));
  const parts = summary(ev, goto, tools).filter(Boolean);
  const raw = renderData(ev);
  if (parts.length) return [head, ...parts, h('details', { class: 'ev-raw' }, h('summary', null, 'raw data'), ...raw), facts];
  return [head, facts, ...raw];
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

// One line saying what an event was, for the timeline and search results.
export function describe(ev) {
  const d = ev.data;
  if (!d || typeof d !== 'object') return null;
  const short = (v) => {
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
    if (v.b64 !== undefined) return `${b64ToBytes(v.b64).length} bytes`;
    if (v.sha256) return `${v.size} bytes (stored)`;
    return JSON.stringify(v).slice(0, 40);
  };
  if (ev.event_type === 'wasm') {
    const inp = d.input !== undefined ? `(${short(d.input)})` : '()';
    const res = d.error !== undefined ? `✗ ${short(d.error)}` : d.output !== undefined ? `→ ${short(d.output)}` : '';
    return `${d.function || '?'}${inp} ${res}`.trim();
  }
  if (ev.event_type === 'message-server/received') return `${d.kind || '?'} from ${d.from || '?'}: ${short(d.data)}`;
  return null;
}
