// A run's page: its task instances with their tries, a timeline, and the actions on them.

import {h, patch, dagHref, tryHref, badge, stateClass, stateName, timeEl, fmtTime, fmtDur, between, parseTime, short, finished, jsonText} from './dom.js';
import {Follower, can, idle, paths} from './api.js';
import {cancelRun, clearTask, markTask, operatorButton} from './actions.js';
import {breadcrumbs, fromHistory, historyPill, showRun, stateCounts, tryLink, legend, versionOf, runTasks} from './dag.js';

export function runView(ctx, {dag, run}) {
  const head = h('div', {class: 'run-head'});
  const tasks = h('div', {class: 'table-scroll', dataset: {scroll: 'tasks'}});
  const deliveriesEl = h('div', {class: 'deliveries'});
  const el = h('section', {class: 'view view-run'},
    breadcrumbs([['DAGs', '#/dags'], [dag, dagHref(dag)], [run]]),
    head,
    h('div', {class: 'toolbar section-bar'}, h('h2', null, 'Tasks'), h('span', {class: 'spacer'}), legend()),
    tasks,
    deliveriesEl);

  let data = null;
  let text = '';
  let timeline = null;
  let def = null;
  let tasksOf = [];
  let deliveries = {data: [], text: ''};
  const reads = new Follower();

  // refresh reads the run and its deliveries. With wait, both long-poll and the first to answer
  // ends the wait (Follower.race): a delivery is retried, and fails or gets through, long after
  // its run changed last, so neither may wait on the other.
  async function refresh({wait, signal} = {}) {
    // A run only history holds no longer changes: it is read once.
    if (data && fromHistory(data)) {
      if (wait) await idle(signal);
      return;
    }
    const [r, dl] = await reads.race([[paths.run(dag, run)], [paths.deliveries(), {dag, run_id: run}]], {wait, signal});
    data = r.data;
    text = r.text;
    if (!def || def.version !== data.version) {
      try {
        def = await versionOf(dag, data.version);
      } catch (e) {
        def = null; // the run's tasks alone, then
      }
    }
    tasksOf = runTasks(def, data);
    // Deliveries are kept in Consul only: a run read from history has none to show.
    deliveries = fromHistory(data) ? {data: [], text: ''} : dl;
    if (signal) signal.throwIfAborted();
    draw();
  }
  const again = () => ctx.now();

  function draw() {
    const op = can('operator');
    const running = !finished(data.state);
    // A run only history holds is read-only: the server refuses to clear, mark or cancel it.
    const readOnly = fromHistory(data);
    patch(head, text + op + (running ? Math.floor(Date.now() / 5000) : ''), () => [
      h('div', {class: 'title-row'},
        h('h1', {class: 'name', id: 'run-id'}, data.id),
        badge(data.state, 'run-state'),
        data.deadline_missed_at ? h('span', {class: 'pill pill-late', id: 'run-deadline', title: 'Not finished by its DAG\'s deadline; noticed ' + fmtTime(data.deadline_missed_at)}, 'deadline missed') : null,
        readOnly ? historyPill(0, 'from history (read-only)', {id: 'run-source'}) : null,
        h('span', {class: 'spacer'}),
        h('a', {class: 'btn', href: dagHref(dag, 'graph'), onclick: () => showRun(dag, data.id)}, 'Graph'),
        running && !readOnly ? operatorButton('Cancel run…', {class: 'btn btn-danger', id: 'cancel-run', dataset: {key: 'cancel'}}, (ev) => cancelRun(ev.currentTarget, dag, run, again)) : null),
      h('dl', {class: 'facts'},
        fact('Type', data.type),
        fact('Logical date', timeEl(data.logical_date)),
        fact('Data interval', [timeEl(data.data_interval_start), ' → ', timeEl(data.data_interval_end)]),
        fact('Started', timeEl(data.started_at, 'not yet')),
        fact('Ended', timeEl(data.ended_at, running ? 'not yet' : '—')),
        fact('Duration', data.started_at ? fmtDur(between(data.started_at, data.ended_at)) : '—'),
        fact('Version', h('code', {title: data.version}, short(data.version))),
        fact('Tasks', stateCounts(data.task_states))),
      readOnly ? h('p', {class: 'muted small', id: 'run-history-note'},
        'Consul no longer keeps this run: it is read from the history database, with its tries and logs. ' +
        'It cannot be cleared, marked or cancelled; trigger a new run instead.') : null,
      data.params && Object.keys(data.params).length
        ? h('dl', {class: 'facts params', id: 'run-params', 'aria-label': 'params'}, h('div', {class: 'fact'}, h('dt', null, 'Params')),
          Object.keys(data.params).sort().map((k) => h('div', {class: 'fact param'},
            h('dt', {class: 'name'}, k), h('dd', null, h('code', {class: 'value'}, jsonText(data.params[k]))))))
        : null,
    ]);

    patch(tasks, JSON.stringify(tasksOf) + op + readOnly, () => {
      timeline = new Timeline(dag, run);
      return h('table', {class: 'table tasks', id: 'run-tasks'},
        h('colgroup', null, ['c-task', 'c-state', 'c-tries', 'c-time', 'c-dur', 'c-act'].map((c) => h('col', {class: c}))),
        h('thead', null, h('tr', null,
          h('th', {scope: 'col'}, 'Task'), h('th', {scope: 'col'}, 'State'), h('th', {scope: 'col'}, 'Tries'),
          h('th', {scope: 'col', class: 'timeline-head'}, timeline.axis),
          h('th', {scope: 'col'}, 'Duration'), h('th', {scope: 'col'}, h('span', {class: 'sr-only'}, 'Actions')))),
        h('tbody', null, tasksOf.map((ti) => {
          const last = ti.tries.length ? ti.tries[ti.tries.length - 1] : null;
          return h('tr', {class: 'task-row', dataset: {task: ti.task, state: stateName(ti.state)}},
            h('td', {class: 'name task-name'}, last
              ? h('a', {class: 'task-link name', href: tryHref(dag, run, ti.task, last.try), dataset: {task: ti.task, key: 'tl:' + ti.task}}, ti.task)
              : h('span', {class: 'name'}, ti.task)),
            h('td', null, badge(ti.state), ti.state === 'up_for_retry' && ti.retry_at ? h('div', {class: 'muted small'}, 'retries ', timeEl(ti.retry_at)) : null,
              whyNotRunning(ti, last),
              ti.deadline_missed_at ? h('div', {class: 'pill pill-late small', dataset: {late: ti.task}}, 'deadline missed') : null),
            h('td', {class: 'tries'}, ti.tries.length ? ti.tries.map((tr) => tryLink(dag, run, ti.task, tr)) : h('span', {class: 'muted'}, '—')),
            h('td', {class: 'timeline'}, timeline.track(ti)),
            h('td', {class: 'dur'}, last ? timeline.duration(last) : ''),
            h('td', {class: 'actions'}, readOnly ? null : [
              operatorButton('Clear…', {class: 'btn btn-small act-clear', dataset: {task: ti.task, key: 'clear:' + ti.task}, 'aria-label': 'Clear ' + ti.task},
                (ev) => clearTask(ev.currentTarget, dag, run, ti.task, again)),
              operatorButton('Success…', {class: 'btn btn-small act-success', dataset: {task: ti.task, key: 'ms:' + ti.task}, 'aria-label': 'Mark ' + ti.task + ' success'},
                (ev) => markTask(ev.currentTarget, dag, run, ti.task, 'success', again)),
              operatorButton('Failed…', {class: 'btn btn-small act-failed', dataset: {task: ti.task, key: 'mf:' + ti.task}, 'aria-label': 'Mark ' + ti.task + ' failed'},
                (ev) => markTask(ev.currentTarget, dag, run, ti.task, 'failed', again))]));
        })));
    });
    patch(deliveriesEl, deliveries.text, () => deliveryTable(deliveries.data));
    // Between redraws, only the bars and durations of tries in flight move.
    if (timeline) timeline.place();
  }

  // tick moves the bars and durations of tries in flight, and the run's own duration.
  const tick = () => {
    if (data) draw();
  };

  return {el, refresh, tick, title: run + ' · ' + dag};
}

// whyNotRunning says why task instance ti, whose latest try is last, does not run: held back
// by its queue's max_running or its DAG's max_active_tasks, or not placed by Nomad.
function whyNotRunning(ti, last) {
  if (ti.waiting) return h('div', {class: 'why small', dataset: {why: 'waiting'}, title: 'waiting for a slot'}, ti.waiting);
  if (last && last.pending && last.state === 'queued') {
    return h('div', {class: 'why small', dataset: {why: 'pending'}, title: 'Nomad has not placed this try'}, 'not placed: ' + last.pending);
  }
  return null;
}

// deliveryTable lists the run's callback deliveries: which event, where to, and how it went.
function deliveryTable(list) {
  if (!list.length) return null;
  return [
    h('div', {class: 'toolbar section-bar'}, h('h2', null, 'Callbacks')),
    h('div', {class: 'table-scroll'}, h('table', {class: 'table', id: 'run-deliveries'},
      h('thead', null, h('tr', null, ['Event', 'Task', 'Webhook', 'State', 'Attempts', 'Last error'].map((c) => h('th', {scope: 'col'}, c)))),
      h('tbody', null, list.map((d) => h('tr', {class: 'delivery-row', dataset: {state: d.state, id: d.id}},
        h('td', null, d.payload.event.replaceAll('_', ' ')),
        h('td', {class: 'name'}, d.payload.task ? d.payload.task + (d.payload.try ? ' (try ' + d.payload.try + ')' : '') : 'run'),
        h('td', null, h('code', null, d.url || 'Nomad job ' + d.job_id)),
        h('td', null, h('span', {class: ['badge', 'delivery-' + d.state]}, d.state), d.state === 'pending' && d.next_at ? h('div', {class: 'muted small'}, 'next ', timeEl(d.next_at)) : null),
        h('td', null, String(d.attempts)),
        h('td', {class: 'delivery-error'}, d.last_error || '')))))),
  ];
}

function fact(label, value) {
  return h('div', {class: 'fact'}, h('dt', null, label), h('dd', null, value));
}

// Timeline draws each try as a bar in its task's row, from start to end on a scale shared by
// the run (a hatched lead-in while queued). Bars of tries in flight grow in place as time
// passes, without redrawing the table.
class Timeline {
  constructor(dag, run) {
    this.dag = dag;
    this.run = run;
    this.bars = []; // {el, from, to}: times in ms, to null while running
    this.durs = []; // {el, from, to}
    this.start = h('span', {class: 'tick'});
    this.span = h('span', {class: 'tick'});
    this.axis = h('div', {class: 'axis'}, h('span', null, 'Timeline'), this.start, this.span);
  }

  track(ti) {
    const bars = [];
    for (const tr of ti.tries) {
      const q = parseTime(tr.queued_at);
      const s = parseTime(tr.started_at);
      const e = parseTime(tr.ended_at);
      const from = s || q || e;
      if (!from) continue;
      if (q && s && s > q) {
        const lead = h('span', {class: 'bar-queued', title: 'try ' + tr.try + ' queued for ' + fmtDur(s - q)});
        this.bars.push({el: lead, from: q.getTime(), to: s.getTime()});
        bars.push(lead);
      }
      const label = 'try ' + tr.try + ': ' + stateName(tr.state) + ', ' + fmtTime(from.toISOString()) + (e ? ' → ' + fmtTime(tr.ended_at) + ' (' + fmtDur(e - from) + ')' : ' → now');
      const a = h('a', {class: ['bar', stateClass(tr.state)], href: tryHref(this.dag, this.run, ti.task, tr.try), title: label, 'aria-label': ti.task + ' ' + label, tabindex: '-1', dataset: {try: tr.try}});
      this.bars.push({el: a, from: from.getTime(), to: e ? e.getTime() : null});
      bars.push(a);
    }
    return h('div', {class: 'track'}, bars);
  }

  duration(tr) {
    const s = parseTime(tr.started_at);
    if (!s) return '';
    const e = parseTime(tr.ended_at);
    const el = h('span', null, fmtDur((e || new Date()) - s));
    this.durs.push({el, from: s.getTime(), to: e ? e.getTime() : null});
    return el;
  }

  // place positions every bar; CSSOM styles are allowed by the Content-Security-Policy,
  // unlike style attributes.
  place() {
    const now = Date.now();
    let t0 = Infinity;
    let t1 = -Infinity;
    for (const b of this.bars) {
      t0 = Math.min(t0, b.from);
      t1 = Math.max(t1, b.to === null ? now : b.to);
    }
    if (!isFinite(t0)) {
      this.start.textContent = '';
      this.span.textContent = '';
      return;
    }
    if (t1 - t0 < 1000) t1 = t0 + 1000;
    const span = t1 - t0;
    this.start.textContent = fmtTime(new Date(t0).toISOString());
    this.span.textContent = fmtDur(span);
    for (const b of this.bars) {
      const left = ((b.from - t0) / span) * 100;
      const right = (((b.to === null ? now : b.to) - t0) / span) * 100;
      b.el.style.left = left.toFixed(3) + '%';
      b.el.style.width = Math.max(0.5, right - left).toFixed(3) + '%';
    }
    for (const d of this.durs) if (d.to === null) d.el.textContent = fmtDur(now - d.from);
  }
}
