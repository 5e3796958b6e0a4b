// dagflow's web UI: a single page, hash-routed, that follows the API of the instance serving it.
//
//   #/dags                                      the DAG list
//   #/dags/NAME[/graph|grid|runs|source|trigger] a DAG (?per_page=N: runs per page of grid and runs)
//   #/dags/NAME/runs/RUN                        a run
//   #/dags/NAME/runs/RUN/tasks/TASK/tries/N     a try and its output
//   #/assets                                    the assets
//   #/assets/NAME                               an asset and its recent events
//
// Each view has refresh({wait, signal}), which reads the API and redraws what changed. The page
// follows the scheduler without reloading and without a timer: while the tab is visible, the app
// runs one refresh of the shown view after another. The first reads at once; every next one
// passes wait, and the view's reads long-poll (api.js, Follower): the server holds them until
// what the view shows changed, or the wait (a minute) is over, so a page where nothing happens
// costs about one request a minute per URL it follows, and a change shows within a moment. A
// route change, the tab going hidden, or an action of the user aborts the refresh in flight
// (its AbortController); an action then reads at once, so what it did shows without waiting.
// Refreshes start at least MIN_GAP_MS apart, so a burst of changes (the tasks of a run moving
// one after another) costs one refresh a second at most. A refresh that fails shows its error
// in the banner, and the next one is tried after a back-off: 1 s, 2 s, 4 s, ... up to 30 s.
//
// What changes with time alone (how long ago, the bars of tries in flight) is redrawn from what
// was read, every TICK_MS, by the view's tick() if it has one. The output of a running try has no
// long-poll: the try page reads it on a timer of its own while the try runs (try.js).

import {h} from './dom.js';
import {ApiError, WAIT, configure, forget, getJSON, idle, paths, saveToken, session, sleep} from './api.js';
import {dagsView} from './dags.js';
import {dagView} from './dag.js';
import {runView} from './run.js';
import {tryView} from './try.js';
import {assetsView, assetView} from './assets.js';

// MIN_GAP_MS is the least time between the starts of two refreshes of a view, but for those
// an action or a route change asks for: changes that come in a burst are read together.
const MIN_GAP_MS = 1000;

// BACKOFF_MS is the first wait after a failed refresh, doubled after every further failure up to
// MAX_BACKOFF_MS: a server that is down or restarting is not asked ten times a second.
const BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30000;

// TICK_MS is how often a view redraws what time alone changes; it reads nothing.
const TICK_MS = 1000;

const main = document.getElementById('main');
const banner = h('div', {class: 'banner', id: 'banner', role: 'alert', hidden: true});

let view = null; // {key, el, refresh, update?, tick?}
let following = null; // the loop refreshing view: {view, ctl (its AbortController)}
let loginMessage = '';

configure({
  authFailed(message) {
    forget();
    loginMessage = message;
    render();
  },
  instanceRole(role) {
    const el = document.getElementById('instance');
    el.hidden = false;
    el.textContent = role;
    el.className = 'instance instance-' + (role === 'active' ? 'active' : 'standby');
    el.title = role === 'active'
      ? 'This instance is the active one: it runs the scheduler.'
      : 'This instance is a standby: it serves the API and UI, and the active instance carries out actions.';
  },
});

// parse reads the hash into a route: {kind, key, query, ...params}.
function parse() {
  const hash = location.hash.replace(/^#\/?/, '');
  const at = hash.indexOf('?');
  const raw = at < 0 ? hash : hash.slice(0, at);
  const query = new URLSearchParams(at < 0 ? '' : hash.slice(at + 1));
  let parts;
  try {
    parts = raw.split('/').filter((p) => p !== '').map(decodeURIComponent);
  } catch (e) {
    return {kind: 'missing', key: 'missing'};
  }
  const [a, dag, b, run, c, task, d, n] = parts;
  if (parts.length === 0 || (a === 'dags' && parts.length === 1)) return {kind: 'dags', key: 'dags'};
  if (a === 'assets' && parts.length === 1) return {kind: 'assets', key: 'assets'};
  if (a === 'assets' && parts.length === 2) return {kind: 'asset', key: JSON.stringify(['asset', dag]), asset: dag};
  if (a !== 'dags') return {kind: 'missing', key: 'missing'};
  if (parts.length === 2 || (parts.length === 3 && ['graph', 'grid', 'runs', 'source', 'trigger'].includes(b))) {
    return {kind: 'dag', key: JSON.stringify(['dag', dag]), dag, tab: b || 'graph', query};
  }
  if (b === 'runs' && parts.length === 4) return {kind: 'run', key: JSON.stringify(['run', dag, run]), dag, run};
  if (b === 'runs' && c === 'tasks' && d === 'tries' && parts.length === 8 && /^[1-9][0-9]*$/.test(n)) {
    return {kind: 'try', key: JSON.stringify(['try', dag, run, task, n]), dag, run, task, n};
  }
  return {kind: 'missing', key: 'missing'};
}

const ctx = {
  // now aborts the refresh in flight and refreshes the view at once: after an action, so that
  // its outcome shows without waiting for the long-poll.
  now() {
    follow();
  },
  // report shows an error of a view's refresh in the banner; the next refresh retries.
  report(e) {
    if (e && e.name === 'AbortError') return;
    if (e instanceof ApiError && (e.status === 401 || e.status === 403) && !session.token) return;
    banner.textContent = e && e.message ? e.message : String(e);
    banner.hidden = false;
    if (!(e instanceof ApiError)) console.error(e);
  },
};

const views = {
  dags: dagsView,
  dag: dagView,
  run: runView,
  try: tryView,
  assets: assetsView,
  asset: assetView,
  missing: () => ({
    el: h('section', {class: 'view'}, h('h1', null, 'Not found'), h('p', null, 'There is no such page. ', h('a', {href: '#/dags'}, 'Go to the DAG list'), '.')),
    refresh: ({wait, signal} = {}) => (wait ? idle(signal) : Promise.resolve()),
    title: 'not found',
  }),
};

function render() {
  drawWho();
  if (!session.self) {
    view = null;
    follow();
    for (const d of document.querySelectorAll('dialog[open]')) d.close();
    banner.hidden = true;
    if (session.token) {
      main.replaceChildren(h('p', {class: 'muted loading'}, 'Checking the token…'));
      verify();
      return;
    }
    main.replaceChildren(loginView(loginMessage));
    document.title = 'Sign in · dagflow';
    return;
  }
  const r = parse();
  if (view && view.key === r.key && view.update && view.update(r)) return;
  // A question asked on the page being left is answered no.
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  view = {...views[r.kind](ctx, r), key: r.key};
  banner.hidden = true;
  main.replaceChildren(banner, view.el);
  document.title = view.title + ' · dagflow';
  main.focus({preventScroll: true});
  window.scrollTo(0, 0);
  follow();
}

// follow stops the loop refreshing the previous view, if any, and starts one for the current
// view while the tab is visible.
function follow() {
  if (following) following.ctl.abort();
  following = view && !document.hidden ? {view, ctl: new AbortController()} : null;
  if (following) refreshLoop(following);
}

// refreshLoop refreshes f.view one refresh after another until f.ctl aborts: the first at
// once, the next ones long-polling; see the comment at the top.
async function refreshLoop(f) {
  const {view: v, ctl: {signal}} = f;
  let wait = null;
  let failures = 0;
  let started = 0;
  while (!signal.aborted) {
    try {
      if (failures > 0) await sleep(Math.min(BACKOFF_MS * 2 ** (failures - 1), MAX_BACKOFF_MS), signal);
      const gap = started + MIN_GAP_MS - Date.now();
      if (gap > 0) await sleep(gap, signal);
      started = Date.now();
      await v.refresh({wait, signal});
      signal.throwIfAborted();
      if (v === view) banner.hidden = true;
      failures = 0;
      wait = WAIT;
    } catch (e) {
      if (signal.aborted) return;
      if (v === view) ctx.report(e);
      failures++;
      wait = null; // after a failure, read at once
    }
  }
}

// verify checks a stored token (after a reload) before showing anything.
async function verify() {
  try {
    const r = await getJSON(paths.self());
    if (!session.token) return;
    session.self = r.data;
    render();
  } catch (e) {
    if (session.token && !(e instanceof ApiError && (e.status === 401 || e.status === 403))) {
      main.replaceChildren(h('p', {class: 'error'}, e.message), h('p', {class: 'muted'}, 'Retrying…'));
      setTimeout(() => session.token && !session.self && verify(), 2000);
    }
  }
}

function drawWho() {
  const who = document.getElementById('who');
  const out = document.getElementById('logout');
  if (session.self) {
    who.hidden = false;
    who.replaceChildren(h('span', {class: 'name'}, session.self.name), ' ', h('span', {class: 'role-pill'}, session.self.role));
    who.title = 'Signed in with token "' + session.self.name + '", role ' + session.self.role;
  } else {
    who.hidden = true;
  }
  // Anonymous readers (acl.anonymous_role) get a way to sign in instead.
  out.hidden = !session.self;
  out.textContent = session.token ? 'Log out' : 'Sign in';
}

document.getElementById('logout').addEventListener('click', () => {
  loginMessage = session.token ? 'Logged out.' : '';
  forget();
  render();
});

function loginView(message) {
  const input = h('input', {type: 'password', id: 'login-token', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'login-help login-error'});
  const err = h('p', {class: 'error', id: 'login-error', role: 'alert', hidden: !message}, message);
  const submit = h('button', {type: 'submit', class: 'btn btn-primary', id: 'login-submit'}, 'Sign in');
  const form = h('form', {class: 'form login', id: 'login-form'},
    h('h1', null, 'Sign in'),
    h('label', {for: 'login-token'}, 'Token'),
    input,
    h('p', {class: 'help', id: 'login-help'}, 'The secret ID of a dagflow token (', h('code', null, 'dagflow acl token create'), '). It is kept in this tab only, until you log out or close it.'),
    err,
    h('div', {class: 'buttons'}, submit));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) {
      err.textContent = 'Enter a token.';
      err.hidden = false;
      return;
    }
    submit.disabled = true;
    err.hidden = true;
    try {
      const r = await getJSON(paths.self(), null, {token});
      saveToken(token, r.data);
      loginMessage = '';
      render();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
      input.focus();
      input.select();
    } finally {
      submit.disabled = false;
    }
  });
  setTimeout(() => input.focus(), 0);
  return form;
}

// boot: with no token, the server may still let anonymous requests read (acl.anonymous_role).
async function boot() {
  if (!session.token) {
    try {
      const r = await getJSON(paths.self(), null, {token: ''});
      if (r.data && r.data.role) session.self = r.data;
    } catch (e) {
      // a token is needed
    }
  }
  render();
}

window.addEventListener('hashchange', render);
// A hidden tab follows nothing; shown again, it reads at once.
document.addEventListener('visibilitychange', follow);
setInterval(() => {
  if (!view || !view.tick || document.hidden) return;
  try {
    view.tick();
  } catch (e) {
    ctx.report(e);
  }
}, TICK_MS);
boot();
