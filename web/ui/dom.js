// DOM helpers. Every string that reaches the page goes through textContent or setAttribute:
// nothing is ever parsed as HTML, so DAG names, descriptions, params and logs render as text.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h builds an HTML element: h('a', {href: '#/dags', class: 'x'}, 'text', child, [more]).
// Props: class (string or array), text, on<event> (a function), dataset (object), value,
// checked, selected (set as properties), href/src (checked by safeURL), anything else as an
// attribute. A null, undefined or false prop is left out; true sets an empty attribute.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

// s builds an SVG element, with the same props as h.
export function s(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const PROPERTIES = new Set(['value', 'checked', 'selected', 'indeterminate']);

function setProps(el, props) {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') {
      const cls = Array.isArray(v) ? v.filter(Boolean).join(' ') : String(v);
      if (cls) el.setAttribute('class', cls);
    } else if (k === 'text') {
      el.textContent = String(v);
    } else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) {
        if (dv !== null && dv !== undefined) el.dataset[dk] = String(dv);
      }
    } else if (k.startsWith('on')) {
      if (typeof v !== 'function') throw new Error('event handler ' + k + ' must be a function');
      el.addEventListener(k.slice(2), v);
    } else if (k === 'style') {
      throw new Error('inline styles break the Content-Security-Policy; use a class');
    } else if (k === 'href' || k === 'src' || k === 'action') {
      el.setAttribute(k, safeURL(v));
    } else if (PROPERTIES.has(k)) {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

// append adds children: nodes, strings (as text), arrays of them; null and false are skipped.
export function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

// safeURL returns u when it is an in-page hash route, a same-origin path or an http(s) address,
// and '#' otherwise: a javascript: or data: URL can never become a link.
export function safeURL(u) {
  u = String(u);
  if (u.startsWith('#')) return u;
  if (u.startsWith('/') && !u.startsWith('//')) return u;
  try {
    const p = new URL(u);
    if (p.protocol === 'http:' || p.protocol === 'https:') return p.href;
  } catch (e) {
    // not a URL
  }
  return '#';
}

// isHTTP reports whether u is an absolute http(s) address.
export function isHTTP(u) {
  return typeof u === 'string' && /^https?:\/\//i.test(u) && safeURL(u) !== '#';
}

// patch replaces the children of el with what build returns, unless sig is the same as last
// time. Focus and scroll positions inside el survive: the focused element is found again by its
// data-key attribute.
export function patch(el, sig, build) {
  if (el.dfSig === sig) return false;
  el.dfSig = sig;
  const active = document.activeElement;
  const key = active && el.contains(active) && active.dataset ? active.dataset.key : undefined;
  const scrolls = [];
  for (const sc of el.querySelectorAll('[data-scroll]')) scrolls.push([sc.dataset.scroll, sc.scrollLeft, sc.scrollTop]);
  const out = build();
  el.replaceChildren(...[out].flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  for (const [name, left, top] of scrolls) {
    const sc = el.querySelector('[data-scroll="' + CSS.escape(name) + '"]');
    if (sc) {
      sc.scrollLeft = left;
      sc.scrollTop = top;
    }
  }
  if (key !== undefined) {
    const again = el.querySelector('[data-key="' + CSS.escape(key) + '"]');
    if (again) again.focus({preventScroll: true});
  }
  return true;
}

// route builds a hash route from path segments, each escaped.
export function route(...parts) {
  return '#/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
}

export const dagHref = (dag, tab) => (tab ? route('dags', dag, tab) : route('dags', dag));
export const runHref = (dag, run) => route('dags', dag, 'runs', run);
export const tryHref = (dag, run, task, n) => route('dags', dag, 'runs', run, 'tasks', task, 'tries', n);

// Times. The API sends RFC 3339 times; Go's zero time means "not yet".

export function parseTime(t) {
  if (!t) return null;
  const d = new Date(t);
  if (isNaN(d.getTime()) || d.getUTCFullYear() <= 1) return null;
  return d;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// fmtTime shows a time in UTC, as the scheduler and the CLI do.
export function fmtTime(t) {
  const d = parseTime(t);
  if (!d) return '';
  return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
    pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds()) + 'Z';
}

// fmtDur shows a duration in milliseconds: 850ms, 12.3s, 4m 05s, 2h 03m, 3d 4h.
export function fmtDur(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '';
  if (ms < 0) ms = 0;
  if (ms < 1000) return Math.round(ms) + 'ms';
  const sec = ms / 1000;
  if (sec < 60) return sec.toFixed(1) + 's';
  const m = Math.floor(sec / 60);
  if (m < 60) return m + 'm ' + pad(Math.floor(sec % 60)) + 's';
  const hr = Math.floor(m / 60);
  if (hr < 48) return hr + 'h ' + pad(m % 60) + 'm';
  return Math.floor(hr / 24) + 'd ' + (hr % 24) + 'h';
}

// between is the duration from a to b (b empty: now).
export function between(a, b) {
  const s = parseTime(a);
  if (!s) return null;
  const e = parseTime(b) || new Date();
  return e - s;
}

// ago says how long ago (or in how long) t is.
export function ago(t) {
  const d = parseTime(t);
  if (!d) return '';
  const ms = Date.now() - d.getTime();
  return ms >= 0 ? fmtDur(ms) + ' ago' : 'in ' + fmtDur(-ms);
}

// timeEl is a <time> showing t in UTC, with how long ago in its tooltip.
export function timeEl(t, empty = '') {
  const d = parseTime(t);
  if (!d) return h('span', {class: 'muted'}, empty);
  return h('time', {datetime: d.toISOString(), title: ago(t)}, fmtTime(t));
}

// States, with the names of scheduler/state.go. "none" is a task instance not decided yet.
export const TASK_STATES = ['none', 'scheduled', 'queued', 'running', 'success', 'failed', 'up_for_retry', 'upstream_failed', 'skipped'];
export const RUN_STATES = ['queued', 'running', 'success', 'failed'];

export function stateName(st) {
  return st ? st : 'none';
}

// stateClass is the CSS class colouring a state; unknown states get a neutral colour.
export function stateClass(st) {
  const n = stateName(st);
  return TASK_STATES.includes(n) ? 'st-' + n : 'st-unknown';
}

// badge shows a state as coloured text.
export function badge(st, extra) {
  const n = stateName(st);
  return h('span', {class: ['badge', stateClass(st), extra], dataset: {state: n}}, n.replaceAll('_', ' '));
}

// finished reports whether a task or run state is final.
export function finished(st) {
  return st === 'success' || st === 'failed' || st === 'upstream_failed' || st === 'skipped';
}

// short returns the first n characters of a long identifier such as a version hash.
export function short(v, n = 12) {
  v = String(v || '');
  return v.length > n ? v.slice(0, n) : v;
}

// jsonText shows a JSON value compactly: strings without quotes are ambiguous, so they keep them.
export function jsonText(v) {
  try {
    return JSON.stringify(v);
  } catch (e) {
    return String(v);
  }
}
