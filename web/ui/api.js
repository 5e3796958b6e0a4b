// The dagflow HTTP API as the UI uses it. The token lives in sessionStorage (never a cookie) and
// goes in the X-Dagflow-Token header of every request.

const TOKEN_KEY = 'dagflow.token';

// session is who is signed in: the token's secret, and its name and role once verified.
export const session = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  self: null,
};

const hooks = {
  authFailed: () => {},
  instanceRole: () => {},
};

// configure sets what happens when the server rejects the token (authFailed(message)) and when
// a response says which role the instance has (instanceRole(role)).
export function configure(h) {
  Object.assign(hooks, h);
}

export function saveToken(token, self) {
  session.token = token;
  session.self = self;
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function forget() {
  saveToken('', null);
}

// can reports whether the signed-in token's role allows what role needs.
export function can(role) {
  const rank = {viewer: 1, operator: 2, admin: 3};
  return !!session.self && (rank[session.self.role] || 0) >= (rank[role] || 99);
}

// ApiError is a response outside 2xx, with the server's message and per-field problems.
export class ApiError extends Error {
  constructor(status, message, fields) {
    super(message);
    this.status = status;
    this.fields = fields || [];
  }
}

// request sends one request. Options: query (object), body (sent as JSON), token (overrides the
// session's; the caller handles a rejection itself).
export async function request(method, path, opts = {}) {
  const headers = {Accept: 'application/json, text/plain'};
  const own = Object.prototype.hasOwnProperty.call(opts, 'token');
  const token = own ? opts.token : session.token;
  if (token) headers['X-Dagflow-Token'] = token;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  let url = path;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) {
      if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    }
    const qs = q.toString();
    if (qs) url += '?' + qs;
  }
  let resp;
  try {
    resp = await fetch(url, {method, headers, body, cache: 'no-store', credentials: 'omit', signal: opts.signal});
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    if (e instanceof TypeError && token && /[^\x21-\x7e]/.test(token)) {
      throw new ApiError(0, 'a token has only printable ASCII characters; check what was pasted');
    }
    throw new ApiError(0, 'cannot reach the dagflow server (' + e.message + '); retrying');
  }
  const role = resp.headers.get('X-Dagflow-Role');
  if (role) hooks.instanceRole(role);
  if (resp.ok) return resp;
  let msg = resp.status + ' ' + resp.statusText;
  let fields = [];
  try {
    const b = await resp.json();
    if (b && typeof b.error === 'string' && b.error) msg = b.error;
    if (b && Array.isArray(b.fields)) fields = b.fields;
  } catch (e) {
    // not JSON: keep the status line
  }
  const err = new ApiError(resp.status, msg, fields);
  // 401: no token; 403 on a token: revoked or mistyped. A 403 that is only about the role
  // ("permission denied") is shown where the action was tried instead.
  if (!own && (resp.status === 401 || (resp.status === 403 && !msg.startsWith('permission denied')))) {
    hooks.authFailed(msg);
  }
  throw err;
}

// getJSON returns the parsed body and its text, which callers compare to skip re-rendering.
export async function getJSON(path, query, opts = {}) {
  const resp = await request('GET', path, {...opts, query});
  const text = await resp.text();
  return {data: JSON.parse(text), text, headers: resp.headers};
}

// Long-polls. GET /v1/dags, a DAG, a run, the run lists, the deliveries and the assets answer
// with X-Dagflow-Index; asked again with ?index= that value and ?wait=, the server holds the
// request until what the answer shows changed, or the wait is over (docs/api.md, Long-polls).

// WAIT is how long a long-poll waits for a change: the server's default, well under the
// 2-minute timeouts of common proxies, so a quiet page costs one request a minute per URL.
export const WAIT = '60s';

// Follower reads URLs, remembering the X-Dagflow-Index of the last answer of each, so that the
// next read of the same URL can wait for a change instead of re-reading. A view keeps one: a
// new view starts with fresh reads.
export class Follower {
  constructor() {
    this.last = new Map(); // URL → {index, r}
  }

  // get is race with one URL: it resolves to getJSON's answer.
  async get(path, query, opts) {
    return (await this.race([[path, query]], opts))[0];
  }

  // race reads every [path, query] of reads and resolves to their answers, in order. Without
  // opts.wait, each is read at once. With it, each URL read before long-polls from the index
  // of its last answer, and the first to answer (or to fail) ends the race: the others are
  // aborted and resolve to their last answer, whose index is kept, so a change they missed
  // answers the next race at once. When one of the URLs was not read before, all are read at
  // once. opts.signal aborts every read.
  async race(reads, {wait, signal} = {}) {
    const keys = reads.map(([path, query]) => path + '?' + new URLSearchParams(query || {}));
    if (!wait || keys.some((k) => !this.last.has(k))) return Promise.all(reads.map(([path, query], i) => this.read(keys[i], path, query, 0, '', signal)));
    const inner = new AbortController();
    const stop = () => inner.abort(signal.reason);
    if (signal) {
      signal.throwIfAborted();
      signal.addEventListener('abort', stop);
    }
    const polls = reads.map(([path, query], i) => {
      const had = this.last.get(keys[i]);
      return this.read(keys[i], path, query, had ? had.index : 0, wait, inner.signal);
    });
    for (const p of polls) p.catch(() => {}); // the losers' aborts are expected
    try {
      await Promise.race(polls);
    } finally {
      inner.abort();
      if (signal) signal.removeEventListener('abort', stop);
    }
    return keys.map((k) => this.last.get(k).r);
  }

  async read(key, path, query, index, wait, signal) {
    const q = index ? {...query, index, wait} : query;
    const r = await getJSON(path, q, {signal});
    const next = Number(r.headers.get('X-Dagflow-Index')) || 0;
    // As with Consul, an index that goes backwards (a restored snapshot) starts over.
    this.last.set(key, {index: next < index ? 0 : next, r});
    return r;
  }
}

// sleep resolves after ms, or rejects with an AbortError when signal aborts first.
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) {
      reject(signal.reason);
      return;
    }
    const done = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      if (signal) signal.removeEventListener('abort', done);
      resolve();
    }, ms);
    if (signal) signal.addEventListener('abort', done, {once: true});
  });
}

// idle waits until signal aborts, then rejects with its AbortError: the refresh of a view with
// nothing that can change, such as a run only history holds.
export function idle(signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), {once: true});
  });
}

// post sends an action and returns {status, data}: 200 done, 202 queued (data.error says why).
export async function post(path, body) {
  const resp = await request('POST', path, {body: body === undefined ? {} : body});
  let data = null;
  if (resp.status !== 204) {
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
  }
  return {status: resp.status, data};
}

const seg = encodeURIComponent;

export const paths = {
  self: () => '/v1/acl/token/self',
  historyStatus: () => '/v1/status/history',
  dags: () => '/v1/dags',
  dag: (d) => '/v1/dags/' + seg(d),
  runs: () => '/v1/runs',
  run: (d, r) => '/v1/dags/' + seg(d) + '/runs/' + seg(r),
  trigger: (d) => '/v1/dags/' + seg(d) + '/runs',
  backfill: (d) => '/v1/dags/' + seg(d) + '/backfill',
  pause: (d, paused) => '/v1/dags/' + seg(d) + (paused ? '/pause' : '/unpause'),
  clear: (d, r, t) => paths.run(d, r) + '/tasks/' + seg(t) + '/clear',
  mark: (d, r, t) => paths.run(d, r) + '/tasks/' + seg(t) + '/mark',
  cancel: (d, r) => paths.run(d, r) + '/cancel',
  logs: (d, r, t, n) => paths.run(d, r) + '/tasks/' + seg(t) + '/tries/' + seg(n) + '/logs',
  deliveries: () => '/v1/deliveries',
  assets: () => '/v1/assets',
  asset: (a) => '/v1/assets/' + seg(a),
  assetEvents: (a) => '/v1/assets/' + seg(a) + '/events',
};

// historyStatus resolves to what /v1/status/history says ({enabled, available, error,
// keep_runs}), read once per page load: the configuration does not change while the page is
// open, and whether the database answers right now is in each run list's X-Dagflow-History
// header. It resolves to null when the server cannot say; a failed request is tried again on
// the next call.
let historyAnswer = null;

export function historyStatus() {
  if (!historyAnswer) {
    historyAnswer = getJSON(paths.historyStatus()).then((r) => r.data, (e) => {
      if (!(e instanceof ApiError && e.status === 404)) historyAnswer = null;
      return null;
    });
  }
  return historyAnswer;
}

// RUN_FROM_HISTORY is the source of a run Consul no longer keeps, read from the history
// database: it can be read, not acted on.
export const RUN_FROM_HISTORY = 'history';
