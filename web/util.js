// util.js - small helpers shared by the dashboard's modules: DOM nodes built from
// text (never HTML made from data, so nothing an actor writes can run here),
// formatting of times, sizes, ids, hashes and bytes, and copying to the clipboard.

export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const TERMINAL = new Set(['stopped', 'failed', 'killed']);
export const LIVE = new Set(['starting', 'running', 'stopping']);

export function shortId(id) {
  return id ? id.slice(0, 8) : '—';
}

export function shortHash(hex) {
  return hex ? hex.slice(0, 12) : '—';
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const t = d.toLocaleTimeString([], { hour12: false }) + '.' +
    String(d.getMilliseconds()).padStart(3, '0');
  return d.toDateString() === new Date().toDateString() ? t : d.toLocaleDateString() + ' ' + t;
}

export function relTime(iso, now = Date.now()) {
  if (!iso) return '';
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(s)) return '';
  if (s < 5) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function fmtSize(n) {
  if (n === undefined || n === null) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function b64ToBytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// Classic hex dump: offset, 16 bytes in hex, the printable ones as text.
export function hexDump(bytes, limit = 4096) {
  const lines = [];
  const n = Math.min(bytes.length, limit);
  for (let off = 0; off < n; off += 16) {
    const row = bytes.subarray(off, Math.min(off + 16, n));
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, '0')).join(' ');
    const text = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  |${text}|`);
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes`);
  return lines.join('\n');
}

// The clipboard API needs a secure context (127.0.0.1 is one; a plain-HTTP
// address elsewhere is not): fall back to a selected, off-screen text area.
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch { /* fall through to the old way */ }
  const ta = h('textarea', { class: 'offscreen', 'aria-hidden': 'true', readonly: true });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  ta.remove();
  return ok;
}

// A button that shows `shown` and copies `value`; says "copied" for a moment.
export function copyButton(value, what, shown = value, focusable = true) {
  const b = h('button', {
    type: 'button', class: 'copy', title: `copy ${what}: ${value}`,
    'aria-label': `copy ${what} ${value}`, tabindex: focusable ? null : '-1',
  }, shown);
  b.addEventListener('click', (e) => {
    e.stopPropagation();
    copyValue(b, b.dataset.value ?? value);
  });
  return b;
}

export async function copyValue(button, value) {
  const ok = await copyText(value);
  button.dataset.copied = ok ? 'yes' : 'no';
  setTimeout(() => { delete button.dataset.copied; }, 1200);
}

export function pretty(value, maxChars = 262144) {
  let text;
  try { text = JSON.stringify(value, null, 2); } catch { text = String(value); }
  if (text === undefined) text = String(value);
  return text.length > maxChars ? text.slice(0, maxChars) + `\n… (${text.length - maxChars} more characters)` : text;
}

// One line of an event's data for the timeline row.
export function preview(ev, max = 160) {
  if (ev.data_b64 !== undefined) {
    const bytes = ev.data_b64 === null ? new Uint8Array() : b64ToBytes(ev.data_b64);
    const hex = Array.from(bytes.subarray(0, 12), (b) => b.toString(16).padStart(2, '0')).join(' ');
    return `bytes: ${hex}${bytes.length > 12 ? ' …' : ''}`;
  }
  let text;
  try { text = JSON.stringify(ev.data); } catch { text = ''; }
  text = text === undefined ? '' : text;
  return text.length > max ? text.slice(0, max) + '…' : text;
}
