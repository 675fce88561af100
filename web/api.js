// api.js - the dashboard's calls to the theater REST API (openapi/openapi.yaml).
// Every call goes to this origin with the session cookie (never a token in a URL).
// `raw: true` answers {contentType, bytes} (actor states and responses are bytes).
// An error answer becomes an ApiError carrying the problem+json `detail` and
// `code`, so the page can show what went wrong instead of a bare status; a 401
// also tells the sign-in code (onUnauthorized), which asks for the token again.

export class ApiError extends Error {
  constructor(status, problem, fallback) {
    super((problem && problem.detail) || fallback || `the server answered ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem || null;
    this.code = (problem && problem.code) || null;
    this.title = (problem && problem.title) || null;
  }
}

let unauthorized = null;

export function onUnauthorized(fn) {
  unauthorized = fn;
}

export async function request(method, path, opts = {}) {
  const init = { method, headers: { Accept: 'application/json', ...(opts.headers || {}) },
    cache: 'no-store', credentials: 'same-origin', signal: opts.signal };
  if (opts.json !== undefined) {
    init.body = JSON.stringify(opts.json);
    init.headers['Content-Type'] = 'application/json';
  } else if (opts.body !== undefined) {
    init.body = opts.body;
    if (opts.contentType) init.headers['Content-Type'] = opts.contentType;
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, null, `cannot reach the server (${e.message})`);
  }
  if (resp.status === 204 || resp.status === 304) return null;
  const type = resp.headers.get('Content-Type') || '';
  let data = null;
  try {
    if (opts.raw && resp.ok) return { contentType: type, bytes: new Uint8Array(await resp.arrayBuffer()) };
    data = type.includes('json') ? await resp.json() : await resp.text();
  } catch {
    data = null;
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, typeof data === 'object' ? data : null,
      `${method} ${path} answered ${resp.status}`);
    if (resp.status === 401 && unauthorized) unauthorized(err);
    throw err;
  }
  return data;
}

export const api = {
  get: (path, opts) => request('GET', path, opts),
  post: (path, opts) => request('POST', path, opts),
  put: (path, opts) => request('PUT', path, opts),
  del: (path, opts) => request('DELETE', path, opts),
};

// True when the server has no such route at all (an older server), as opposed
// to "no such actor": the page then leaves that feature out.
export function noRoute(err) {
  return err && err.status === 404 && /^no route for/.test(err.message);
}

export function actorPath(id, rest = '') {
  return `/actors/${encodeURIComponent(id)}${rest}`;
}
