// messaging.js - the actor page's state panel and its message and request forms.
//
// State: GET /actors/<id>/state, read again (at most a few times a second) after
// chain events arrive, since any call may change it. A server without that route
// gets the initial state from the `spawned` event instead.
// Messages (POST /actors/<id>/messages, 202) and requests (POST .../requests, 200
// with the actor's response) send the text as bytes; the forms are enabled while
// the actor is live, and every refusal shows the server's `detail`. Responses and
// states are shown as JSON when they are JSON, else as text, else as a hex dump.

import { api, actorPath, noRoute } from './api.js';
import { h, pretty, hexDump, fmtSize, LIVE } from './util.js';

const STATE_EVERY_MS = 400;

export function bytesView(contentType, bytes) {
  let text = null;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    text = null;
  }
  if (text !== null && contentType.includes('json')) {
    try {
      return { kind: 'JSON', text: pretty(JSON.parse(text)) };
    } catch { /* shown as text */ }
  }
  if (text !== null) return { kind: 'text', text };
  return { kind: 'bytes', text: hexDump(bytes) };
}

export class StatePanel {
  constructor(el, id) {
    this.el = el;
    this.id = id;
    this.available = true;
    this.initial = undefined;
    this.timer = 0;
    this.busy = false;
    this.again = false;
    this.closed = false;
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
  }

  // The spawned event's initial state, for a server without /state.
  setInitial(first) {
    if (first && first.event_type === 'spawned' && first.data) this.initial = first.data.initial_state;
    if (!this.available) this.#showInitial();
  }

  // Something happened: read the state again soon.
  poke() {
    if (!this.available || this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = 0;
      this.refresh();
    }, STATE_EVERY_MS);
  }

  async refresh() {
    if (this.busy) {
      this.again = true;
      return;
    }
    this.busy = true;
    try {
      const r = await api.get(actorPath(this.id, '/state'), { raw: true });
      if (this.closed) return;
      const v = bytesView(r.contentType, r.bytes);
      this.el.replaceChildren(
        h('p', { class: 'muted small' }, `Current state (${v.kind}, ${fmtSize(r.bytes.length)}).`),
        h('pre', { class: 'json', tabindex: '0', id: 'state-value' }, v.text));
    } catch (e) {
      if (this.closed) return;
      if (noRoute(e)) {
        this.available = false;
        this.#showInitial();
      } else {
        this.el.replaceChildren(h('p', { class: 'error' }, `cannot read the state: ${e.message}`));
      }
    } finally {
      this.busy = false;
      if (this.again && !this.closed) {
        this.again = false;
        this.poke();
      }
    }
  }

  #showInitial() {
    this.el.replaceChildren(
      h('p', { class: 'muted small' }, 'The initial state, from the spawned event (this server does not report the current state).'),
      this.initial === undefined || this.initial === null ? h('p', { class: 'muted' }, 'No initial state was recorded.')
        : h('pre', { class: 'json', tabindex: '0', id: 'state-value' }, pretty(this.initial)));
  }
}

export class MessagePanel {
  constructor(el, id) {
    this.el = el;
    this.id = id;
    this.available = true;
    this.live = false;
    this.#build();
    this.#enable();
  }

  #build() {
    this.note = h('p', { class: 'note', hidden: true });
    this.msg = this.#form('msg', 'Message', 'one way; handle-send gets the bytes', 'Send message',
      (text) => this.#send(text));
    this.req = this.#form('req', 'Request', 'handle-request answers', 'Send request',
      (text) => this.#request(text));
    this.response = h('div', { id: 'req-response', role: 'status', 'aria-live': 'polite' });
    this.el.replaceChildren(this.note, this.msg.form, this.req.form, this.response);
  }

  #form(key, label, hint, button, submit) {
    const id = `${key}-body`;
    const input = h('textarea', { id, rows: '2', spellcheck: 'false', placeholder: key === 'msg' ? '5' : 'get' });
    const btn = h('button', { type: 'submit', id: `${key}-send` }, button);
    const out = h('span', { class: 'result', id: `${key}-result`, role: 'status', 'aria-live': 'polite' });
    const form = h('form', { class: 'msg-form', novalidate: true },
      h('label', { for: id }, label, h('span', { class: 'muted' }, ` (${hint})`)), input,
      h('div', { class: 'actions' }, btn, out));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      btn.disabled = true;
      try {
        await submit(input.value);
      } finally {
        this.#enable();
      }
    });
    return { form, input, btn, out };
  }

  // The run's status changed.
  setStatus(status) {
    this.live = LIVE.has(status);
    this.#enable();
  }

  #enable() {
    const on = this.live && this.available;
    for (const f of [this.msg, this.req]) {
      f.input.disabled = !on;
      f.btn.disabled = !on;
    }
    this.note.hidden = on;
    this.note.textContent = !this.available
      ? 'This server has no message API: the forms stay off.'
      : 'The actor is not running: it takes no messages or requests.';
  }

  #unavailable(e) {
    if (!noRoute(e)) return false;
    this.available = false;
    this.#enable();
    return true;
  }

  async #send(text) {
    const out = this.msg.out;
    out.className = 'result';
    out.textContent = 'sending…';
    try {
      const r = await api.post(actorPath(this.id, '/messages'),
        { body: text, contentType: 'application/octet-stream' });
      out.className = 'result ok';
      out.textContent = `accepted (${r && r.size !== undefined ? r.size : new TextEncoder().encode(text).length} bytes)`;
    } catch (e) {
      if (this.#unavailable(e)) return;
      out.className = 'result error';
      out.textContent = `refused: ${e.message}`;
    }
  }

  async #request(text) {
    const out = this.req.out;
    out.className = 'result';
    out.textContent = 'waiting for the answer…';
    this.response.replaceChildren();
    try {
      const r = await api.post(actorPath(this.id, '/requests'),
        { body: text, contentType: 'application/octet-stream', raw: true });
      const v = bytesView(r.contentType, r.bytes);
      out.className = 'result ok';
      out.textContent = `answered (${v.kind}, ${fmtSize(r.bytes.length)})`;
      this.response.replaceChildren(h('pre', { class: 'json', tabindex: '0' }, v.text));
    } catch (e) {
      if (this.#unavailable(e)) return;
      out.className = 'result error';
      out.textContent = `failed${e.code ? ` (${e.code})` : ''}: ${e.message}`;
    }
  }
}
