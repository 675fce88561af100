// spawn.js - the spawn form: paste or upload a manifest and POST /actors.
//
// JSON text is sent as {"manifest": ...} (or as a whole spawn request when it
// already has "manifest" or "manifest_ref"), with the optional initial state.
// Text that is not JSON but looks like TOML is sent as it is with Content-Type
// application/toml (a server that does not read TOML says so, and that answer is
// shown; one that does reports errors with line and column). The spawn waits until the
// actor runs (?wait=running), so a failure comes back with the server's `detail`,
// which is shown with a link to the failed run when there is one.

import { api } from './api.js';
import { h, shortId } from './util.js';

export function setupSpawn(els, { onSpawned }) {
  els.file.addEventListener('change', async () => {
    const f = els.file.files[0];
    if (!f) return;
    if (f.size > 1024 * 1024) {
      result(els.result, 'error', `'${f.name}' is larger than 1 MiB; a manifest is much smaller.`);
      return;
    }
    els.manifest.value = await f.text();
    result(els.result, '', `Loaded '${f.name}'.`);
  });
  els.form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let req;
    try {
      req = buildRequest(els.manifest.value, els.state.value);
    } catch (err) {
      result(els.result, 'error', err.message);
      els.manifest.focus();
      return;
    }
    els.submit.disabled = true;
    result(els.result, '', 'Spawning…');
    try {
      const run = await api.post('/actors?wait=running', req);
      const ok = run.status === 'running';
      result(els.result, ok ? 'ok' : '', `Spawned ${run.name || 'actor'} `, link(run.id),
        ok ? ': running.' : `: ${run.status} (still starting; watch it on its page).`);
      onSpawned(run, els.open.checked);
    } catch (err) {
      const p = err.problem;
      result(els.result, 'error', `Spawn failed${p && p.code ? ` (${p.code})` : ''}: ${err.message}`,
        p && p.actor_id ? h('span', null, ' — see the failed run ', link(p.actor_id)) : '');
    } finally {
      els.submit.disabled = false;
    }
  });
}

function link(id) {
  return h('a', { href: `#/actors/${id}` }, shortId(id));
}

function result(el, kind, ...parts) {
  el.className = `result ${kind}`;
  el.replaceChildren(...parts);
}

// Returns {json} or {body, contentType}; throws an Error whose message says what is wrong.
export function buildRequest(text, stateText) {
  const src = text.trim();
  if (!src) throw new Error('Paste a manifest (JSON) or choose a file first.');
  let state;
  if (stateText.trim()) {
    try {
      state = JSON.parse(stateText);
    } catch (e) {
      throw new Error(`The initial state is not JSON: ${e.message}`);
    }
  }
  let doc;
  try {
    doc = JSON.parse(src);
  } catch (e) {
    if (!src.startsWith('{') && looksLikeToml(src)) {
      if (state !== undefined) throw new Error('An initial state can only go with a JSON manifest.');
      return { body: src, contentType: 'application/toml' };
    }
    throw new Error(`The manifest is not valid JSON: ${e.message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    throw new Error('The manifest must be a JSON object, such as {"name": "hello", "package": "hello.wasm"}.');
  const req = 'manifest' in doc || 'manifest_ref' in doc ? { ...doc } : { manifest: doc };
  if (state !== undefined) req.initial_state = state;
  return { json: req };
}

function looksLikeToml(src) {
  return /^\s*(#.*|\[[^\]\n]+\]|[A-Za-z0-9_."'-]+\s*=.*)\s*$/m.test(src.split('\n')[0]);
}
