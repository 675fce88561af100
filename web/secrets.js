// secrets.js - the secrets view (#/secrets): names and metadata from GET /secrets
// (size, fingerprint, times; the server never answers a value, and neither does
// this page). A form sets one (PUT /secrets/<name>, the value from a password
// field that is cleared right after and never stored or shown); Delete takes two
// clicks (DELETE /secrets/<name>).

import { api } from './api.js';
import { h, fmtTime } from './util.js';

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

export class SecretsView {
  constructor(el) {
    this.el = el;
    this.closed = false;
    this.armed = null;
    this.armTimer = 0;
  }

  start() {
    document.title = 'secrets · theater';
    this.name = h('input', { id: 'secret-name', type: 'text', spellcheck: 'false', autocomplete: 'off', placeholder: 'OPENAI_KEY' });
    this.value = h('input', { id: 'secret-value', type: 'password', autocomplete: 'new-password', spellcheck: 'false' });
    this.result = h('span', { id: 'secret-result', class: 'result', role: 'status', 'aria-live': 'polite' });
    this.tbody = h('tbody');
    this.empty = h('p', { class: 'muted', id: 'secret-empty', hidden: true }, 'No secrets.');
    const form = h('form', { class: 'panel secret-form', novalidate: true },
      h('h2', null, 'Set a secret'),
      h('div', { class: 'row-fields' },
        h('div', { class: 'field' }, h('label', { for: 'secret-name' }, 'Name'), this.name),
        h('div', { class: 'field grow' }, h('label', { for: 'secret-value' }, 'Value ', h('span', { class: 'muted' }, '(write-only: sent once, never shown)')), this.value)),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'secret-save' }, 'Save'), this.result));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#save();
    });
    this.el.replaceChildren(h('h1', null, 'Secrets'),
      h('p', { class: 'muted small' }, 'Actors get a secret only through a grant in their manifest (docs/secrets.md).'),
      form,
      h('div', { class: 'table-wrap' }, h('table', { class: 'actors', id: 'secrets' },
        h('thead', null, h('tr', null, ...['Name', 'Size', 'Fingerprint', 'Created', 'Updated', ''].map((t) => h('th', { scope: 'col' }, t)))),
        this.tbody)),
      this.empty);
    this.#load();
  }

  close() {
    this.closed = true;
    clearTimeout(this.armTimer);
  }

  async #load() {
    try {
      const r = await api.get('/secrets');
      if (this.closed) return;
      const items = r.items || [];
      this.tbody.replaceChildren(...items.map((s) => this.#row(s)));
      this.empty.hidden = items.length > 0;
    } catch (e) {
      if (!this.closed) this.el.append(h('p', { class: 'error', role: 'alert' }, `cannot list the secrets: ${e.message}`));
    }
  }

  #row(s) {
    const del = h('button', { type: 'button', class: 'danger quiet', 'data-delete': s.name }, 'Delete');
    del.addEventListener('click', () => this.#delete(s.name, del));
    return h('tr', { 'data-name': s.name }, h('td', { class: 'mono' }, s.name), h('td', null, `${s.size ?? '?'} B`),
      h('td', { class: 'mono', title: s.fingerprint || '' }, (s.fingerprint || '').slice(0, 16)),
      h('td', null, fmtTime(s.created_at)), h('td', null, fmtTime(s.updated_at)), h('td', null, del));
  }

  #say(kind, text) {
    this.result.className = `result ${kind}`;
    this.result.textContent = text;
  }

  async #save() {
    const name = this.name.value.trim();
    const value = this.value.value;
    if (!NAME.test(name)) {
      this.#say('error', 'A name is letters, digits, "_", "-" and "." (at most 128).');
      return;
    }
    if (!value) {
      this.#say('error', 'Enter the value.');
      return;
    }
    this.value.value = '';      // the page keeps no copy
    try {
      const r = await api.put(`/secrets/${encodeURIComponent(name)}`,
        { body: value, contentType: 'application/octet-stream' });
      this.#say('ok', `Saved '${name}' (${r && r.size !== undefined ? r.size : '?'} bytes).`);
      this.name.value = '';
      await this.#load();
    } catch (e) {
      this.#say('error', `cannot save: ${e.message}`);
    }
  }

  async #delete(name, btn) {
    if (this.armed !== btn) {
      if (this.armed) this.armed.textContent = 'Delete';
      this.armed = btn;
      btn.textContent = `Really delete ${name}?`;
      clearTimeout(this.armTimer);
      this.armTimer = setTimeout(() => {
        btn.textContent = 'Delete';
        this.armed = null;
      }, 4000);
      return;
    }
    clearTimeout(this.armTimer);
    this.armed = null;
    btn.disabled = true;
    try {
      await api.del(`/secrets/${encodeURIComponent(name)}`);
      this.#say('ok', `Deleted '${name}'.`);
      await this.#load();
    } catch (e) {
      btn.disabled = false;
      btn.textContent = 'Delete';
      this.#say('error', `cannot delete: ${e.message}`);
    }
  }
}
