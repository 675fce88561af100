// stream.js - one resumable server-sent-event stream (the actor list's /events, or
// an actor's /actors/<id>/chain).
//
// The browser's EventSource reconnects by itself after a dropped connection and
// sends Last-Event-ID, so the server resumes right after the last event it sent.
// When the browser gives up instead (the server answered 204 for an ended run, or
// an error such as 401 for an expired session), this class reopens the stream with
// ?after=<last id> after a growing pause, once `beforeReopen` (sign-in, "has the
// run ended?") allows it. Either way every id is delivered once: an event at or
// below the last id seen is dropped. One instance holds at most one EventSource.
//
// States passed to onState: connecting, live, reconnecting, ended, closed.

export class ResumableStream {
  constructor({ path, types, after = 0, onEvent, onState, finished, beforeReopen }) {
    this.path = path;
    this.types = types;
    this.after = after;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.finished = finished || (() => false);
    this.beforeReopen = beforeReopen;
    this.es = null;
    this.timer = null;
    this.backoff = 1000;
    this.closed = false;
    this.state = '';
  }

  open() {
    this.closed = false;
    if (this.finished()) {
      this.#setState('ended');
      return;
    }
    this.#setState('connecting');
    this.#connect();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.es) this.es.close();
    this.es = null;
    this.#setState('closed');
  }

  #setState(s) {
    if (s === this.state) return;
    this.state = s;
    this.onState(s);
  }

  #connect() {
    const sep = this.path.includes('?') ? '&' : '?';
    const es = new EventSource(`${this.path}${sep}after=${this.after}`);
    this.es = es;
    for (const t of this.types) es.addEventListener(t, (e) => this.#message(t, e));
    es.addEventListener('open', () => {
      this.backoff = 1000;
      this.#setState('live');
    });
    es.addEventListener('error', () => this.#error(es));
  }

  #message(type, e) {
    const id = Number(e.lastEventId);
    if (!Number.isSafeInteger(id) || id <= this.after) return;
    let data;
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    this.after = id;
    this.onEvent(type, data, id);
  }

  #error(es) {
    if (es !== this.es || this.closed) return;
    if (this.finished()) {
      es.close();
      this.es = null;
      this.#setState('ended');
      return;
    }
    this.#setState('reconnecting');
    if (es.readyState !== EventSource.CLOSED) return;   // the browser retries by itself
    es.close();
    this.es = null;
    const pause = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 30000);
    this.timer = setTimeout(() => this.#reopen(), pause);
  }

  async #reopen() {
    if (this.closed) return;
    let go = true;
    try {
      if (this.beforeReopen) go = (await this.beforeReopen()) !== false;
    } catch {
      go = true;   // the check failed (server unreachable?): try the stream anyway
    }
    if (this.closed) return;
    if (!go || this.finished()) {
      this.#setState('ended');
      return;
    }
    this.#connect();
  }
}
