// A try's page: what happened (state, exit code, message, Nomad job and allocation) and its
// output, followed live while the try runs.

import {h, patch, dagHref, runHref, badge, stateName, timeEl, fmtDur, between, isHTTP} from './dom.js';
import {Follower, idle, paths, request, sleep} from './api.js';
import {clearTask, markTask, operatorButton} from './actions.js';
import {breadcrumbs, fromHistory, historyPill, tryLink} from './dag.js';

// MAX_READ is the most the server returns per log read; a shorter read of a finished try was
// the last one.
const MAX_READ = 1 << 20;

// MAX_SHOWN bounds the text kept on the page; older output is dropped from the top.
const MAX_SHOWN = 4 << 20;

// LOG_SOURCES names where the server read a log (X-Dagflow-Log-Source).
const LOG_SOURCES = {
  nomad: 'Nomad',
  stored: 'the copy kept in Consul',
  history: 'the history database',
};

// LOG_MS is how often the output of a try in flight is read. A log has no long-poll (Nomad's
// log API does not block for new output), so this is the one thing the UI reads on a timer,
// and only while the try runs.
const LOG_MS = 2000;

// logPrefs survive moving between tries.
const logPrefs = {type: 'stdout', follow: true, wrap: true};

export function tryView(ctx, {dag, run, task, n}) {
  const num = Number(n);
  const head = h('div', {class: 'try-head'});
  const details = h('div', {class: 'try-details'});
  const status = h('span', {class: 'log-status muted', id: 'log-status', role: 'status'});
  const text = document.createTextNode('');
  const pre = h('pre', {class: ['log', logPrefs.wrap ? 'wrap' : null], id: 'log-output', tabindex: '0', 'aria-label': 'log output'}, text);
  const typeButtons = ['stdout', 'stderr'].map((t) => h('button', {
    type: 'button', class: ['btn', 'btn-small', 'log-type'], dataset: {type: t}, 'aria-pressed': String(logPrefs.type === t),
    onclick: () => setType(t),
  }, t));
  const follow = h('input', {type: 'checkbox', id: 'log-follow', checked: logPrefs.follow});
  const wrap = h('input', {type: 'checkbox', id: 'log-wrap', checked: logPrefs.wrap});
  follow.addEventListener('change', () => {
    logPrefs.follow = follow.checked;
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  });
  wrap.addEventListener('change', () => {
    logPrefs.wrap = wrap.checked;
    pre.classList.toggle('wrap', wrap.checked);
  });
  const el = h('section', {class: 'view view-try'},
    breadcrumbs([['DAGs', '#/dags'], [dag, dagHref(dag)], [run, runHref(dag, run)], [task + ' · try ' + n]]),
    head, details,
    h('div', {class: 'toolbar log-bar'},
      h('h2', null, 'Output'),
      h('span', {class: 'seg', role: 'group', 'aria-label': 'output stream'}, typeButtons),
      h('label', {class: 'check'}, follow, ' follow'),
      h('label', {class: 'check'}, wrap, ' wrap lines'),
      h('span', {class: 'spacer'}), status),
    pre);

  let log = freshLog();
  let tryData = null;
  let text0 = '';
  let fixed = false; // the run is one only history holds: it no longer changes

  function freshLog() {
    return {offset: 0, source: '', done: false, busy: false, dec: new TextDecoder(), error: '', truncated: false};
  }

  function setType(t) {
    if (logPrefs.type === t && log.offset === 0) return;
    logPrefs.type = t;
    for (const b of typeButtons) b.setAttribute('aria-pressed', String(b.dataset.type === t));
    log = freshLog();
    text.data = '';
    pollLog().catch((e) => ctx.report(e));
  }

  const reads = new Follower();

  // refresh reads the run for the try's state, and the try's output. With wait, it long-polls
  // the run, and meanwhile reads more output every LOG_MS until the log is complete.
  async function refresh({wait, signal} = {}) {
    if (fixed) {
      // A run only history holds no longer changes: its log is read to the end, then nothing.
      if (tryData) await pollLog();
      if (wait) await followLog(idle(signal), signal);
      return;
    }
    const changed = reads.get(paths.run(dag, run), null, {wait, signal});
    const r = wait ? await followLog(changed, signal) : await changed;
    if (signal) signal.throwIfAborted();
    const rd = r.data;
    fixed = fromHistory(rd);
    const ti = rd.tasks.find((t) => t.task === task);
    tryData = ti ? ti.tries.find((t) => t.try === num) || null : null;
    if (r.text !== text0) {
      text0 = r.text;
      draw(rd, ti);
    }
    if (tryData) await pollLog();
    else status.textContent = '';
  }
  const again = () => ctx.now();

  // followLog resolves or rejects as done does, reading the log every LOG_MS meanwhile, while
  // it is not complete.
  async function followLog(done, signal) {
    let settled = false;
    const end = done.finally(() => {
      settled = true;
    });
    end.catch(() => {});
    while (!settled) {
      await Promise.race([end, sleep(LOG_MS, signal)]);
      if (!settled && tryData && !log.done) await pollLog();
    }
    return end;
  }

  function draw(rd, ti) {
    patch(head, JSON.stringify([ti, rd.state, rd.source]), () => {
      if (!ti) return h('p', {class: 'error'}, 'Run ', h('span', {class: 'name'}, run), ' has no task ', h('span', {class: 'name'}, task), '.');
      const newer = ti.tries.length > num ? ti.tries[ti.tries.length - 1] : null;
      // A run only history holds is read-only: the server refuses to clear or mark its tasks.
      const readOnly = fromHistory(rd);
      return [
        h('div', {class: 'title-row'},
          h('h1', {class: 'name', id: 'try-title'}, task),
          h('span', {class: 'muted'}, 'try ' + n),
          tryData ? badge(tryData.state, 'try-state') : null,
          readOnly ? historyPill(0, 'from history (read-only)', {id: 'try-source'}) : null,
          h('span', {class: 'spacer'}),
          readOnly ? null : operatorButton('Clear…', {class: 'btn act-clear', id: 'try-clear', dataset: {key: 'clear'}}, (ev) => clearTask(ev.currentTarget, dag, run, task, again)),
          readOnly ? null : operatorButton('Mark success…', {class: 'btn act-success', dataset: {key: 'ms'}}, (ev) => markTask(ev.currentTarget, dag, run, task, 'success', again)),
          readOnly ? null : operatorButton('Mark failed…', {class: 'btn act-failed', dataset: {key: 'mf'}}, (ev) => markTask(ev.currentTarget, dag, run, task, 'failed', again))),
        h('div', {class: 'tries-nav'}, h('span', {class: 'muted'}, 'Tries: '), ti.tries.map((tr) => {
          const a = tryLink(dag, run, task, tr);
          if (tr.try === num) a.setAttribute('aria-current', 'page');
          return a;
        }), ' ', h('span', {class: 'muted'}, 'task state '), badge(ti.state)),
        newer ? h('p', {class: 'notice', id: 'newer-try'}, 'This task has a newer try: ', tryLink(dag, run, task, newer), '.') : null,
      ];
    });
    patch(details, JSON.stringify(tryData), () => {
      if (!tryData) return h('p', {class: 'empty'}, 'Task ', h('span', {class: 'name'}, task), ' has no try ' + n + ' (yet).');
      const t = tryData;
      return [h('dl', {class: 'facts try-facts'},
        fact('Exit code', t.exit_code === undefined || t.exit_code === null ? h('span', {class: 'muted'}, '—') : h('code', {id: 'exit-code'}, String(t.exit_code))),
        t.pending ? fact('Not placed', h('span', {class: 'why', id: 'try-pending'}, t.pending), 'wide') : null,
        t.message ? fact('Message', h('span', {class: 'message', id: 'try-message'}, t.message), t.message.length > 60 ? 'wide' : null) : null,
        fact('Queued', timeEl(t.queued_at, '—')),
        fact('Started', timeEl(t.started_at, '—')),
        fact('Ended', timeEl(t.ended_at, '—')),
        fact('Duration', t.started_at ? fmtDur(between(t.started_at, t.ended_at)) : '—'),
        fact('Node', t.node || h('span', {class: 'muted'}, '—')),
        fact('Nomad job', nomadLink(t.job_id, t.nomad_job_url, 'nomad-job')),
        fact('Allocation', nomadLink(t.alloc_id, t.nomad_alloc_url, 'nomad-alloc'))),
      outputsBlock(t.outputs)];
    });
  }

  async function pollLog() {
    const l = log;
    if (l.done || l.busy || !tryData) return;
    l.busy = true;
    try {
      const resp = await request('GET', paths.logs(dag, run, task, num), {query: {type: logPrefs.type, offset: l.offset || undefined}});
      const buf = await resp.arrayBuffer();
      if (l !== log) return; // the stream was switched meanwhile
      const src = resp.headers.get('X-Dagflow-Log-Source') || '';
      const fin = resp.headers.get('X-Dagflow-Try-Finished') === 'true';
      const next = parseInt(resp.headers.get('X-Dagflow-Log-Offset') || '', 10);
      if (l.source && src !== l.source && l.offset > 0) {
        // The allocation is gone and the stored tail answers: its offsets differ, start over.
        log = freshLog();
        text.data = '';
        return;
      }
      l.source = src;
      l.truncated = resp.headers.get('X-Dagflow-Log-Truncated') === 'true';
      l.error = '';
      if (buf.byteLength) {
        const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
        text.appendData(l.dec.decode(buf, {stream: true}));
        if (text.length > MAX_SHOWN) text.deleteData(0, text.length - MAX_SHOWN);
        if (logPrefs.follow && atBottom) pre.scrollTop = pre.scrollHeight;
      }
      if (!isNaN(next)) l.offset = next;
      if (fin && buf.byteLength < MAX_READ) {
        l.done = true;
        text.appendData(l.dec.decode());
      }
    } catch (e) {
      l.error = e.message;
    } finally {
      l.busy = false;
      showStatus(l);
    }
  }

  function showStatus(l) {
    if (l !== log) return;
    const parts = [];
    if (l.error) parts.push('cannot read the log: ' + l.error);
    else if (l.done) parts.push(text.length ? 'complete' : 'no output');
    else parts.push(text.length ? 'live, following' : 'waiting for output…');
    if (l.source) parts.push('from ' + (LOG_SOURCES[l.source] || l.source));
    if (l.truncated) parts.push('only the tail was kept');
    status.textContent = parts.join(' · ');
    pre.classList.toggle('empty-log', !text.length);
    pre.dataset.done = String(l.done);
  }

  return {el, refresh, title: task + ' #' + n + ' · ' + run};
}

// outputsBlock shows the JSON object a successful try published through DAGFLOW_OUTPUT, as
// text: whatever it holds is never read as markup.
function outputsBlock(outputs) {
  if (outputs === undefined || outputs === null) return null;
  return h('div', {class: 'try-outputs'},
    h('h2', null, 'Outputs'),
    h('pre', {class: 'log wrap outputs', id: 'try-outputs', tabindex: '0', 'aria-label': 'outputs'}, JSON.stringify(outputs, null, 2)));
}

function fact(label, value, cls) {
  return h('div', {class: ['fact', cls]}, h('dt', null, label), h('dd', null, value));
}

// nomadLink shows a Nomad ID, linked to the Nomad UI when the server knows its address.
function nomadLink(id, url, cls) {
  if (!id) return h('span', {class: 'muted'}, '—');
  const code = h('code', {class: 'name'}, id);
  if (!isHTTP(url)) return code;
  return h('a', {href: url, class: cls, target: '_blank', rel: 'noopener noreferrer', title: 'open in the Nomad UI'}, code, ' ↗');
}
