// A DAG's page: graph, grid, runs, source and trigger tabs.

import {h, patch, route, dagHref, runHref, tryHref, badge, stateClass, stateName, timeEl, fmtTime, fmtDur, between, short, finished} from './dom.js';
import {ApiError, Follower, RUN_FROM_HISTORY, can, getJSON, historyStatus, paths, post} from './api.js';
import {layout, Graph} from './graph.js';
import {fold, groupState} from './groups.js';
import {clearTask, operatorButton} from './actions.js';
import {filter, pauseSwitch, recentDots, tagButton} from './dags.js';

// GRID_RUNS is how many runs a page of the grid and of the runs tab shows, unless the route
// says otherwise (?per_page=N, up to MAX_PER_PAGE, the most the API lists at once).
const GRID_RUNS = 25;
const MAX_PER_PAGE = 500;

// HISTORY_WAIT is the long-poll wait of a tab of runs when the server has a history database:
// whether that database answers is not kept in Consul, so no long-poll wakes when it stops or
// comes back; the tab reads again at least this often to say so.
const HISTORY_WAIT = '15s';

const TABS = [
  ['graph', 'Graph'],
  ['grid', 'Grid'],
  ['runs', 'Runs'],
  ['source', 'Source'],
  ['trigger', 'Trigger'],
];

// prefs keeps per-DAG choices (shown run, zoom, source version, page of runs) while the page
// is open. pages is where the grid and the runs tab are: tokens[i] is the next_token of page i
// (page 0, the newest runs, has none), idx the page shown.
const prefs = new Map();

function prefsOf(dag) {
  if (!prefs.has(dag)) prefs.set(dag, {run: '', scale: 0, version: '', task: '', perPage: GRID_RUNS, pages: firstPage()});
  return prefs.get(dag);
}

function firstPage() {
  return {tokens: [''], idx: 0};
}

// fromHistory reports whether a run or run stub was read from the history database: Consul no
// longer keeps it, and the server refuses to act on it.
export function fromHistory(run) {
  return !!run && run.source === RUN_FROM_HISTORY;
}

// historyPill marks a run read from the history database; keep is how many runs of each DAG
// Consul keeps, when known.
export function historyPill(keep, label = 'history', props = {}) {
  const kept = keep === 1 ? 'the latest run' : keep ? 'the latest ' + keep + ' runs' : 'the latest runs';
  return h('span', {
    class: 'pill pill-history',
    title: 'Read from the history database (PostgreSQL): this run is older than ' + kept + ' of its DAG, which Consul keeps. ' +
      'It is read-only: it cannot be cleared, marked or cancelled.',
    ...props,
  }, label);
}

// showRun makes the graph of dag show run (from the run page's "graph" link).
export function showRun(dag, run) {
  prefsOf(dag).run = run;
}

// breadcrumbs is the trail of links above every page but the list.
// waitsFor shows a DAG's schedule_on condition, each asset linked to its page and marked with
// whether an event arrived since the DAG's last asset-triggered run.
function waitsFor(info) {
  const at = new Map((info.waits_for || []).map((w) => [w.asset, w]));
  const cond = (c) => {
    if (c.asset) {
      const w = at.get(c.asset);
      const updated = w && w.updated;
      return h('span', {class: 'asset-wait', dataset: {asset: c.asset, updated: String(!!updated)}},
        h('a', {href: route('assets', c.asset), class: 'name'}, c.asset), ' ',
        h('span', {class: updated ? 'pill pill-ok' : 'pill'}, updated ? 'updated' : 'waiting'));
    }
    const op = c.all ? 'all' : 'any';
    return [op + '(', (c.all || c.any).map((x, i) => [i ? ', ' : '', cond(x)]), ')'];
  };
  return h('span', {id: 'dag-waits-for'}, cond(info.schedule_on));
}

export function breadcrumbs(items) {
  const ol = h('ol');
  items.forEach(([label, href], i) => {
    const last = i === items.length - 1;
    ol.appendChild(h('li', null, href && !last
      ? h('a', {href, class: 'name'}, label)
      : h('span', {class: 'name', 'aria-current': last ? 'page' : null}, label)));
  });
  return h('nav', {class: 'crumbs', 'aria-label': 'breadcrumbs'}, ol);
}

// versions caches DAG versions by DAG and version: a version never changes.
const versions = new Map();

// versionOf returns a version of a DAG (task_list, edges, params, source), from cache or the API.
export async function versionOf(dag, version, current) {
  const key = JSON.stringify([dag, version]);
  if (current && current.version === version && !versions.has(key)) versions.set(key, current);
  if (!versions.has(key)) versions.set(key, (await getJSON(paths.dag(dag), {version})).data);
  return versions.get(key);
}

// runTasks lists every task of a run's version in the graph's layer order, with its instance in
// the run (the API lists every task, with an empty state until it is scheduled).
export function runTasks(def, run) {
  const inst = new Map(run.tasks.map((t) => [t.task, t]));
  const names = def ? def.task_list.map((t) => t.name) : run.tasks.map((t) => t.task);
  for (const t of run.tasks) if (!names.includes(t.task)) names.push(t.task);
  const deps = new Map(def ? def.task_list.map((t) => [t.name, t.depends_on]) : []);
  for (const t of run.tasks) deps.set(t.task, t.depends_on);
  const g = layout(names, names.flatMap((n) => (deps.get(n) || []).map((from) => ({from, to: n}))));
  const rank = new Map(g.nodes.map((n) => [n.name, n.layer]));
  const order = names.slice().sort((a, b) => rank.get(a) - rank.get(b) || (a < b ? -1 : a > b ? 1 : 0));
  return order.map((name) => inst.get(name) || {task: name, state: '', depends_on: deps.get(name) || [], tries: []});
}

// runCache keeps run details by ID, fetched again only when the run's summary changed.
export class RunCache {
  constructor(dag) {
    this.dag = dag;
    this.runs = new Map();
  }

  // get returns the details of each stub, fetching those that changed.
  async get(stubs) {
    const out = new Map();
    const want = [];
    for (const st of stubs) {
      const sig = JSON.stringify(st);
      const have = this.runs.get(st.id);
      if (have && have.sig === sig && finished(st.state)) out.set(st.id, have.run);
      else want.push([st, sig]);
    }
    const got = await Promise.all(want.map(async ([st, sig]) => {
      try {
        const r = await getJSON(paths.run(this.dag, st.id));
        return [st.id, sig, r.data, r.text];
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return [st.id, sig, null, ''];
        throw e;
      }
    }));
    for (const [id, sig, run, text] of got) {
      if (!run) continue;
      this.runs.set(id, {sig, run, text});
      out.set(id, run);
    }
    return out;
  }
}

export function dagView(ctx, params) {
  const dag = params.dag;
  const pr = prefsOf(dag);
  let tab = params.tab;

  const head = h('div', {class: 'dag-head'});
  const tabs = h('nav', {class: 'tabs', 'aria-label': 'DAG views'});
  const panes = {};
  const holder = h('div', {class: 'pane-holder'});
  const el = h('section', {class: 'view view-dag'}, breadcrumbs([['DAGs', '#/dags'], [dag]]), head, tabs, holder);

  let info = null;
  let infoText = '';
  let runs = []; // the newest runs, for the graph
  // A page of runs: {token, per, runs (newest first), next (token of the page after it, or
  // ''), historyDown (the history database did not answer the list)}. latest is page 0, older
  // the older page shown, if any. An older page is read once, then again only while some of
  // its runs are unfinished; page 0 is read on every refresh unless an older page is shown.
  let latest = null;
  let older = null;
  let latestStale = false;
  let hist = null; // /v1/status/history, read once per page load
  const cache = new RunCache(dag);
  const sources = new Map();
  const reads = new Follower();
  takeQuery(params.query);

  // takeQuery applies ?per_page=N from the route; another page size starts from the newest runs.
  function takeQuery(q) {
    const v = q ? q.get('per_page') : null;
    if (!v || !/^[1-9][0-9]*$/.test(v)) return;
    const n = Math.min(Number(v), MAX_PER_PAGE);
    if (n === pr.perPage) return;
    pr.perPage = n;
    pr.pages = firstPage();
    latest = null;
    older = null;
  }

  const paging = () => tab === 'grid' || tab === 'runs';

  async function runsPage(token, signal) {
    const per = pr.perPage;
    const r = await getJSON(paths.runs(), {dag, per_page: per, next_token: token}, {signal});
    return {
      token, per, runs: r.data,
      next: r.headers.get('X-Dagflow-Next-Token') || '',
      historyDown: r.headers.get('X-Dagflow-History') === 'unavailable',
    };
  }

  // shownPage is the page the grid and the runs tab show; null until it is read.
  function shownPage() {
    const pg = pr.pages;
    if (pg.idx === 0) return latest && latest.per === pr.perPage ? latest : null;
    return older && older.token === pg.tokens[pg.idx] && older.per === pr.perPage ? older : null;
  }

  // refresh reads the DAG and the pages of runs shown. With wait, it first long-polls the DAG
  // alone, then reads the pages of runs fresh: the DAG's long-poll watches its runs too
  // (web/dags.go), so it answers on every change a run list shows, and racing a long-poll of
  // the run list as well would only answer twice for the same change.
  async function refresh({wait, signal} = {}) {
    if (wait && paging() && hist && hist.enabled) wait = HISTORY_WAIT;
    const changed = wait ? await reads.get(paths.dag(dag), null, {wait, signal}) : null;
    const pg = pr.pages;
    const token = pg.tokens[pg.idx];
    const onOlder = paging() && pg.idx > 0;
    const wantLatest = !onOlder || !latest || latest.per !== pr.perPage;
    const wantOlder = onOlder && (!shownPage() || older.runs.some((r) => !finished(r.state)));
    const [d, l, o, hs] = await Promise.all([
      changed || reads.get(paths.dag(dag), null, {signal}),
      wantLatest ? runsPage('', signal) : null,
      wantOlder ? runsPage(token, signal) : null,
      paging() ? historyStatus() : hist,
    ]);
    if (signal) signal.throwIfAborted();
    info = d.data;
    infoText = d.text;
    if (l && l.per === pr.perPage) {
      latest = l;
      runs = l.runs;
    }
    latestStale = !wantLatest;
    if (o && o.token === pr.pages.tokens[pr.pages.idx]) older = o; // else another page was picked meanwhile
    hist = hs;
    sources.set(info.version, info.source);
    drawHead();
    drawTabs();
    await drawTab();
  }

  function update(p) {
    const wasPaging = paging();
    tab = p.tab;
    takeQuery(p.query);
    drawTabs();
    drawTab().catch((e) => ctx.report(e));
    // What the tab shows may not be read yet: read it now rather than when the long-poll in
    // flight answers. A tab of runs with a history database waits less (HISTORY_WAIT).
    if ((paging() && (!shownPage() || !hist)) || (tab === 'graph' && (latestStale || !latest)) ||
      (paging() !== wasPaging && hist && hist.enabled)) refreshSoon();
    return true;
  }

  // goPage shows page idx of runs: the next older one, a newer one, or the newest (0).
  function goPage(idx) {
    const pg = pr.pages;
    if (idx === pg.idx + 1) {
      const cur = shownPage();
      if (!cur || !cur.next) return;
      pg.tokens[idx] = cur.next;
    } else if (idx < 0 || idx > pg.idx) {
      return;
    }
    pg.tokens.length = idx + 1;
    pg.idx = idx;
    drawTab().catch((e) => ctx.report(e));
    refreshSoon();
  }

  // pager is the bar above the grid and the runs list: buttons to page through the runs, and a
  // note on how far back runs go.
  function pager() {
    const bar = h('div', {class: 'toolbar pager', role: 'navigation', 'aria-label': 'pages of runs'});
    const note = h('div', {class: 'history-note-box'});
    function draw() {
      const idx = pr.pages.idx;
      const p = shownPage();
      const first = idx * pr.perPage + 1;
      patch(bar, JSON.stringify([idx, p && [p.runs.length, !!p.next]]), () => [
        h('button', {type: 'button', class: 'btn btn-small page-older', disabled: !p || !p.next, dataset: {key: 'page-older'},
          title: 'Show the ' + pr.perPage + ' runs before these', onclick: () => goPage(pr.pages.idx + 1)}, '‹ Older'),
        h('button', {type: 'button', class: 'btn btn-small page-newer', disabled: idx === 0, dataset: {key: 'page-newer'},
          title: 'Show the ' + pr.perPage + ' runs after these', onclick: () => goPage(pr.pages.idx - 1)}, 'Newer ›'),
        h('button', {type: 'button', class: 'btn btn-small page-newest', disabled: idx === 0, dataset: {key: 'page-newest'},
          title: 'Show the newest runs, and follow them', onclick: () => goPage(0)}, 'Newest »'),
        h('span', {class: 'muted page-label'}, !p ? 'Loading runs…'
          : p.runs.length ? (p.runs.length === 1 ? 'Run ' + first : 'Runs ' + first + '–' + (first + p.runs.length - 1)) + (idx === 0 ? ', the newest' : '')
            : idx === 0 ? '' : 'No older runs'),
      ]);
      patch(note, JSON.stringify([hist, p && p.historyDown]), () => historyNote(hist, p));
    }
    return {el: [bar, note], draw};
  }

  function drawHead() {
    patch(head, infoText + can('operator'), () => [
      h('div', {class: 'title-row'},
        pauseSwitch(info, ctx.now),
        h('h1', {class: 'name', id: 'dag-name'}, info.name),
        info.paused ? h('span', {class: 'pill'}, 'paused') : null,
        h('span', {class: 'spacer'}),
        can('operator') ? h('a', {class: 'btn btn-primary', href: dagHref(dag, 'trigger'), id: 'trigger-open'}, 'Trigger run…') : null),
      info.description ? description(info.description, pr) : null,
      h('dl', {class: 'facts'},
        fact('Schedule', info.schedule ? [h('code', {class: 'name'}, info.schedule), ' ', h('span', {class: 'muted'}, info.timezone)] : h('span', {class: 'muted'}, 'manual only')),
        info.schedule_on ? fact('Waits for', waitsFor(info)) : null,
        fact('Next run', info.next_run ? timeEl(info.next_run) : h('span', {class: 'muted'}, '—')),
        fact('Catch-up', info.catchup || '—'),
        fact('Max active runs', String(info.max_active_runs || '—')),
        fact('Tasks', String(info.tasks)),
        fact('Version', h('code', {title: info.version}, short(info.version))),
        fact('Recent runs', recentDots(dag, info.recent_runs)),
        (info.tags || []).length ? fact('Tags', h('span', {class: 'tags'}, info.tags.map((t) => tagButton(t, (tag) => {
          filter.tag = tag;
          location.hash = '#/dags';
        })))) : null),
    ]);
  }

  function drawTabs() {
    patch(tabs, tab, () => TABS.map(([id, label]) => h('a', {
      class: ['tab', id === tab ? 'active' : null], href: dagHref(dag, id), dataset: {tab: id, key: 'tab:' + id},
      'aria-current': id === tab ? 'page' : null,
    }, label)));
  }

  async function drawTab() {
    if (!info) return;
    if (!panes[tab]) panes[tab] = makePane[tab]();
    const pane = panes[tab];
    if (holder.firstChild !== pane.el) holder.replaceChildren(pane.el);
    await pane.draw();
  }

  const makePane = {
    graph: graphPane,
    grid: gridPane,
    runs: runsPane,
    source: sourcePane,
    trigger: triggerPane,
  };

  // The graph: the shown run's tasks (it may be of an older version) coloured by state, or
  // the current version's tasks when there is no run yet.
  function graphPane() {
    const select = h('select', {id: 'graph-run', 'aria-label': 'Run shown in the graph'});
    const open = h('span', {class: 'open-run'});
    const scroll = h('div', {class: 'graph-scroll', dataset: {scroll: 'graph'}, tabindex: '-1'});
    const panel = h('div', {class: 'task-panel'});
    let graph = null;
    let structure = '';
    let shown = null;
    let shownDef = info;
    const unfolded = new Set(); // the groups drawn task by task; the others are one node each
    let members = new Map(); // the tasks of each folded group, by its node's name
    select.addEventListener('change', () => {
      pr.run = select.value;
      draw().catch((e) => ctx.report(e));
    });
    const zoom = (f) => () => {
      if (!graph) return;
      if (f === 'fit') graph.fit(scroll.clientWidth - 4, Math.max(scroll.clientHeight - 4, 200));
      else graph.setScale(f === 1 ? 1 : graph.scale * f);
      pr.scale = graph.scale;
    };
    const el = h('div', {class: 'pane pane-graph'},
      h('div', {class: 'toolbar'},
        h('label', {for: 'graph-run'}, 'Run '), select, open,
        h('span', {class: 'spacer'}),
        h('span', {class: 'zoom', role: 'group', 'aria-label': 'zoom'},
          h('button', {type: 'button', class: 'btn btn-small', onclick: zoom(1 / 1.25), 'aria-label': 'zoom out'}, '−'),
          h('button', {type: 'button', class: 'btn btn-small', onclick: zoom(1), title: 'actual size'}, '100%'),
          h('button', {type: 'button', class: 'btn btn-small', onclick: zoom(1.25), 'aria-label': 'zoom in'}, '+'),
          h('button', {type: 'button', class: 'btn btn-small', onclick: zoom('fit')}, 'Fit'))),
      legend(),
      scroll,
      panel);

    async function draw() {
      patch(select, JSON.stringify([runs.map((r) => [r.id, r.state]), pr.run]), () => {
        const opts = [h('option', {value: '', selected: !pr.run}, runs.length ? 'latest run' : 'no runs yet')];
        if (pr.run && !runs.some((r) => r.id === pr.run)) opts.push(h('option', {value: pr.run, selected: true}, pr.run));
        for (const r of runs) opts.push(h('option', {value: r.id, selected: r.id === pr.run}, r.id + ' — ' + stateName(r.state)));
        return opts;
      });
      const id = pr.run || (runs[0] && runs[0].id) || '';
      shown = null;
      if (id) {
        const stub = runs.find((r) => r.id === id) || {id, state: 'unknown'};
        shown = (await cache.get([stub])).get(id) || null;
      }
      patch(open, shown ? shown.id + shown.state + shown.source : '', () => shown
        ? [badge(shown.state), fromHistory(shown) ? historyPill(hist && hist.keep_runs) : null, ' ',
          h('a', {href: runHref(dag, shown.id), class: 'name', id: 'graph-open-run'}, 'open run')]
        : null);
      // The shown run may be of an older version, with other tasks.
      let def = info;
      if (shown && shown.version && shown.version !== info.version) {
        try {
          def = await versionOf(dag, shown.version, info);
        } catch (e) {
          def = null;
        }
      }
      shownDef = def || info;
      const folded = def
        ? fold(def.task_list, def.edges, unfolded)
        : {names: shown.tasks.map((t) => t.task), edges: shown.tasks.flatMap((t) => t.depends_on.map((from) => ({from, to: t.task}))), members: new Map()};
      const {names, edges} = folded;
      members = folded.members;
      const sig = JSON.stringify([names, edges]);
      if (sig !== structure) {
        structure = sig;
        graph = new Graph(layout(names, edges), {groups: members, onSelect: (name) => {
          if (members.has(name)) {
            // A click on a folded group unfolds it.
            unfolded.add(name);
            draw().catch((e) => ctx.report(e));
            return;
          }
          pr.task = pr.task === name ? '' : name;
          colour();
          drawPanel();
        }});
        if (pr.scale) graph.setScale(pr.scale);
        scroll.replaceChildren(graph.svg);
        if (!pr.scale && el.isConnected) {
          // A large DAG starts fitted to the width, never below half size.
          const w = scroll.clientWidth - 4;
          if (w > 0 && graph.g.width > w) graph.setScale(Math.max(0.5, w / graph.g.width));
        }
      }
      colour();
      drawPanel();
    }

    function colour() {
      const states = new Map();
      const counts = new Map();
      if (shown) for (const t of shown.tasks) {
        states.set(t.task, t.state);
        if (t.map_over) counts.set(t.task, (t.map_keys || []).length);
      }
      for (const [group, tasks] of members) {
        states.set(group, groupState(tasks, states));
        counts.set(group, tasks.length);
      }
      graph.color(states, pr.task);
      graph.setCounts(counts);
    }

    function drawPanel() {
      const name = pr.task;
      const def = name ? shownDef.task_list.find((t) => t.name === name) : null;
      const ti = name && shown ? shown.tasks.find((t) => t.task === name) : null;
      patch(panel, JSON.stringify([name, def, ti, shown && shown.id, shown && shown.source, can('operator')]), () => {
        if (!name || (!def && !ti)) return h('p', {class: 'muted hint'}, 'Select a task to see its details.');
        const last = ti && ti.tries.length ? ti.tries[ti.tries.length - 1] : null;
        return [
          h('div', {class: 'title-row'},
            h('h2', {class: 'name'}, name),
            ti ? badge(ti.state) : null,
            h('span', {class: 'spacer'}),
            last ? h('a', {class: 'btn', href: tryHref(dag, shown.id, name, last.try)}, 'Log of try ' + last.try) : null,
            ti && !fromHistory(shown) ? operatorButton('Clear…', {class: 'btn', dataset: {key: 'panel-clear'}}, (ev) => clearTask(ev.currentTarget, dag, shown.id, name, refreshSoon)) : null,
            def && def.group && unfolded.has(def.group) ? h('button', {type: 'button', class: 'btn', id: 'fold-group', onclick: () => {
              unfolded.delete(def.group);
              pr.task = '';
              draw().catch((e) => ctx.report(e));
            }}, 'Fold group ' + def.group) : null),
          h('dl', {class: 'facts'},
            def ? fact('Trigger rule', def.trigger_rule) : null,
            def ? fact('Queue', def.queue) : null,
            def ? fact('Driver', def.driver) : null,
            def ? fact('Retries', String(def.retries)) : null,
            def && def.timeout ? fact('Timeout', def.timeout) : null,
            fact('Depends on', (ti ? ti.depends_on : def.depends_on).length ? (ti ? ti.depends_on : def.depends_on).join(', ') : '—'),
            ti ? fact('Tries', ti.tries.length ? h('span', null, ti.tries.map((tr) => tryLink(dag, shown.id, name, tr))) : '—') : null),
        ];
      });
    }

    return {el, draw};
  }

  // refreshSoon reads at once, after an action or when the page shown changed.
  function refreshSoon() {
    ctx.now();
  }

  // The grid: tasks × a page of runs, each cell the task instance's state.
  function gridPane() {
    const pages = pager();
    const body = h('div', {class: 'grid-scroll', dataset: {scroll: 'grid'}});
    const el = h('div', {class: 'pane pane-grid'}, pages.el, legend(), body);
    let order = {sig: '', names: []};

    async function draw() {
      pages.draw();
      const page = shownPage();
      if (!page) {
        patch(body, 'loading', () => h('p', {class: 'muted loading'}, 'Loading runs…'));
        return;
      }
      const runs = page.runs;
      const details = await cache.get(runs);
      const sig = JSON.stringify([info.task_list.map((t) => t.name), info.edges]);
      if (order.sig !== sig) order = {sig, names: layout(info.task_list.map((t) => t.name), info.edges).order};
      const cols = runs.slice().reverse();
      const rows = order.names.slice();
      const known = new Set(rows);
      const instances = new Set();
      for (const r of cols) {
        const d = details.get(r.id);
        if (d) for (const t of d.tasks) if (!known.has(t.task)) {
          known.add(t.task);
          // An instance of a mapped task follows it and its other instances.
          let at = t.parent ? rows.findLastIndex((n) => n === t.parent || n.startsWith(t.parent + '[')) : -1;
          if (at >= 0) rows.splice(at + 1, 0, t.task);
          else rows.push(t.task);
          if (t.parent) instances.add(t.task);
        }
      }
      // A task of the run's version without an instance yet is undecided; one outside it is absent.
      const defs = new Map();
      for (const v of new Set(cols.map((r) => r.version))) {
        try {
          defs.set(v, new Set((await versionOf(dag, v, info)).task_list.map((t) => t.name)));
        } catch (e) {
          defs.set(v, new Set());
        }
      }
      const cells = cols.map((r) => {
        const d = details.get(r.id);
        const m = new Map();
        for (const name of defs.get(r.version)) m.set(name, {task: name, state: '', tries: []});
        if (d) for (const t of d.tasks) m.set(t.task, t);
        return m;
      });
      if (page !== shownPage()) return; // another page was picked meanwhile
      patch(body, JSON.stringify([rows, cols, cells.map((m) => [...m.values()].map((t) => [t.task, t.state, t.tries.length])), hist && hist.keep_runs]), () => {
        if (!cols.length) {
          return h('p', {class: 'empty'}, pr.pages.idx ? 'No older runs.' : 'No runs yet. Trigger one, or wait for the schedule.');
        }
        return h('table', {class: 'grid', id: 'grid'},
          h('thead', null, h('tr', null,
            h('th', {class: 'corner', scope: 'col'}, 'Task ', h('span', {class: 'muted'}, '╲ run (oldest → newest)')),
            cols.map((r) => h('th', {scope: 'col', class: ['run-col', fromHistory(r) ? 'from-history' : null]},
              h('a', {href: runHref(dag, r.id), class: ['grid-run', stateClass(r.state)], dataset: {run: r.id, key: 'gh:' + r.id, source: r.source},
                title: r.id + ' — ' + stateName(r.state) + ' — ' + fmtTime(r.logical_date) + (fromHistory(r) ? ' — from history (read-only)' : ''),
                'aria-label': 'run ' + r.id + ', ' + stateName(r.state) + (fromHistory(r) ? ', from history' : '')}))))),
          h('tbody', null, rows.map((name) => h('tr', {class: instances.has(name) ? 'mapped-instance' : null, dataset: {task: name}},
            h('th', {scope: 'row', class: 'task-name name', title: name}, name),
            cols.map((r, i) => {
              const ti = cells[i].get(name);
              if (!ti) return h('td', {class: 'cell-none'}, h('span', {class: 'cell absent', title: name + ' is not in run ' + r.id}));
              const last = ti.tries.length ? ti.tries[ti.tries.length - 1] : null;
              const st = stateName(ti.state);
              return h('td', null, h('a', {
                class: ['cell', stateClass(ti.state)],
                href: last ? tryHref(dag, r.id, name, last.try) : runHref(dag, r.id),
                dataset: {state: st, run: r.id, key: 'gc:' + r.id + '/' + name},
                title: name + ' — ' + r.id + ' — ' + st + (last ? ' — try ' + last.try : ''),
                'aria-label': name + ' in run ' + r.id + ': ' + st,
              }));
            })))));
      });
    }
    return {el, draw};
  }

  // The runs tab: a page of runs as a table, newest first.
  function runsPane() {
    const pages = pager();
    const body = h('div', {class: 'table-scroll', dataset: {scroll: 'runs'}});
    const el = h('div', {class: 'pane pane-runs'}, pages.el, body);
    async function draw() {
      pages.draw();
      const page = shownPage();
      patch(body, JSON.stringify([page && page.runs, pr.pages.idx, hist && hist.keep_runs]) + Math.floor(Date.now() / 5000), () => {
        if (!page) return h('p', {class: 'muted loading'}, 'Loading runs…');
        if (!page.runs.length) return h('p', {class: 'empty'}, pr.pages.idx ? 'No older runs.' : 'No runs yet.');
        return h('table', {class: 'table runs', id: 'run-list'},
          h('thead', null, h('tr', null, ['Run', 'State', 'Type', 'Logical date', 'Started', 'Duration', 'Tasks'].map((c) => h('th', {scope: 'col'}, c)))),
          h('tbody', null, page.runs.map((r) => h('tr', {class: fromHistory(r) ? 'from-history' : null, dataset: {run: r.id, source: r.source}},
            h('td', {class: 'name'}, h('a', {href: runHref(dag, r.id), class: 'name', dataset: {key: 'rl:' + r.id}}, r.id),
              fromHistory(r) ? [' ', historyPill(hist && hist.keep_runs)] : null),
            h('td', null, badge(r.state)),
            h('td', null, r.type),
            h('td', null, timeEl(r.logical_date)),
            h('td', null, timeEl(r.started_at, '—')),
            h('td', null, r.started_at ? fmtDur(between(r.started_at, r.ended_at)) : ''),
            h('td', null, stateCounts(r.task_states))))));
      });
    }
    return {el, draw};
  }

  // The source: the dag block of each applied version.
  function sourcePane() {
    const list = h('ol', {class: 'versions', 'aria-label': 'versions, newest first'});
    const code = h('div', {class: 'source-box'});
    const el = h('div', {class: 'pane pane-source'}, h('div', {class: 'versions-col'}, h('h2', null, 'Versions'), list), code);
    async function draw() {
      const current = info.version;
      const v = pr.version && info.versions.some((x) => x.version === pr.version) ? pr.version : current;
      patch(list, JSON.stringify([info.versions, v]), () => info.versions.map((x) => h('li', null,
        h('button', {
          type: 'button', class: ['version', x.version === v ? 'active' : null], dataset: {version: x.version, key: 'v:' + x.version},
          'aria-pressed': x.version === v ? 'true' : 'false',
          onclick: () => {
            pr.version = x.version;
            draw().catch((e) => ctx.report(e));
          },
        }, h('code', null, short(x.version)), ' ', timeEl(x.created_at), x.version === current ? h('span', {class: 'pill'}, 'current') : null))));
      if (!sources.has(v)) sources.set(v, (await versionOf(dag, v, info)).source);
      patch(code, v, () => [
        h('p', {class: 'muted'}, 'Version ', h('code', null, v), v === current ? ' (current)' : ''),
        h('pre', {class: 'source', id: 'dag-source', dataset: {scroll: 'source'}}, h('code', null, sources.get(v) || '')),
      ]);
    }
    return {el, draw};
  }

  function triggerPane() {
    const trig = h('div', {class: 'trigger-box'});
    const back = h('div', {class: 'backfill-box'});
    const el = h('div', {class: 'pane pane-trigger'}, trig, back);
    async function draw() {
      patch(trig, JSON.stringify([info.version, info.params, can('operator')]), () => triggerForm(dag, info.params));
      patch(back, JSON.stringify([!!info.schedule, can('operator')]), () => info.schedule ? backfillForm(dag) : null);
    }
    return {el, draw};
  }

  // tick redraws the durations of the runs tab (every 5 s, its draw's signature); the other
  // tabs show nothing that time alone changes.
  function tick() {
    if (info && tab === 'runs' && panes.runs) panes.runs.draw().catch((e) => ctx.report(e));
  }

  return {el, refresh, update, tick, title: dag};
}

function fact(label, value) {
  return h('div', {class: 'fact'}, h('dt', null, label), h('dd', null, value));
}

// historyNote says how far back runs go, from /v1/status/history (hist) and the page of runs
// shown (whether the history database answered it).
function historyNote(hist, page) {
  const keep = hist && hist.keep_runs ? hist.keep_runs : 0;
  const latest = keep === 1 ? 'the latest one' : keep ? 'the latest ' + keep : 'the latest runs Consul keeps';
  if (hist && !hist.enabled) {
    return h('p', {class: 'history-note muted small', id: 'history-note', dataset: {history: 'none'}},
      'Runs older than ' + latest + ' of each DAG are not kept: this server has no history database. Configure a ',
      h('code', null, 'history'), ' block (', h('code', null, 'docs/server.md'), ') to keep them in PostgreSQL.');
  }
  const down = page ? page.historyDown : !!hist && !hist.available;
  if (!down) return null;
  return h('p', {class: 'history-note notice', id: 'history-note', role: 'status', dataset: {history: 'unavailable'}, title: (hist && hist.error) || null},
    'The history database does not answer: runs older than ' + latest + ' of each DAG are hidden until it does.');
}

// description shows the first lines of a long description; a click shows all of it.
function description(text, pr) {
  const p = h('p', {class: ['desc', pr.descOpen ? 'open' : null], tabindex: '0', role: 'button', 'aria-expanded': String(!!pr.descOpen), title: 'Click to show or hide the whole description'}, text);
  const toggle = () => {
    pr.descOpen = !pr.descOpen;
    p.classList.toggle('open', pr.descOpen);
    p.setAttribute('aria-expanded', String(pr.descOpen));
  };
  p.addEventListener('click', toggle);
  p.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      toggle();
    }
  });
  return p;
}

// legend names the colour of each state.
export function legend() {
  return h('ul', {class: 'legend', 'aria-label': 'state colours'},
    ['none', 'scheduled', 'queued', 'running', 'success', 'failed', 'up_for_retry', 'upstream_failed', 'skipped'].map((st) =>
      h('li', null, h('span', {class: ['swatch', stateClass(st)]}), st.replaceAll('_', ' '))));
}

export function tryLink(dag, run, task, tr) {
  return h('a', {
    class: ['try-link', stateClass(tr.state)], href: tryHref(dag, run, task, tr.try),
    dataset: {try: tr.try, state: stateName(tr.state), key: 'try:' + task + '/' + tr.try},
    title: 'try ' + tr.try + ': ' + stateName(tr.state), 'aria-label': 'try ' + tr.try + ', ' + stateName(tr.state),
  }, '#' + tr.try);
}

export function stateCounts(counts) {
  const order = ['running', 'queued', 'scheduled', 'up_for_retry', 'failed', 'upstream_failed', 'skipped', 'success', 'none'];
  const keys = Object.keys(counts || {}).sort((a, b) => order.indexOf(a) - order.indexOf(b));
  return h('span', {class: 'counts'}, keys.map((k) => h('span', {class: ['count-pill', stateClass(k)], title: k}, counts[k] + ' ' + k.replaceAll('_', ' '))));
}

// paramKind picks the input for a param type: text, number, bool or JSON.
function paramKind(type) {
  if (type === 'string') return 'text';
  if (type === 'number') return 'number';
  if (type === 'bool') return 'bool';
  return 'json';
}

// triggerForm builds the trigger form from the DAG's params. The server checks the values
// again and answers with a message per field, shown next to its input.
function triggerForm(dag, params) {
  const fields = new Map();
  const formError = h('div', {class: 'error', id: 'trigger-error', role: 'alert', hidden: true});
  const ok = can('operator');
  const rows = params.map((p) => {
    const id = 'param-' + p.name;
    const kind = paramKind(p.type);
    const def = p.default === undefined ? undefined : p.default;
    let input;
    if (kind === 'bool') {
      input = h('input', {type: 'checkbox', id, name: p.name, checked: def === true});
    } else if (kind === 'number') {
      input = h('input', {type: 'number', id, name: p.name, step: 'any', value: def === undefined ? '' : String(def)});
    } else if (kind === 'text') {
      input = h('input', {type: 'text', id, name: p.name, value: def === undefined ? '' : String(def), autocomplete: 'off', spellcheck: 'false'});
    } else {
      input = h('textarea', {id, name: p.name, rows: '3', spellcheck: 'false', value: def === undefined ? '' : JSON.stringify(def, null, 2)});
    }
    const err = h('p', {class: 'field-error', id: id + '-error', role: 'alert', hidden: true});
    input.setAttribute('aria-describedby', id + '-error' + (p.description ? ' ' + id + '-desc' : ''));
    fields.set(p.name, {p, kind, input, err});
    return h('div', {class: ['field', 'field-' + kind], dataset: {param: p.name}},
      h('label', {for: id}, h('span', {class: 'name'}, p.name), ' ', h('span', {class: 'type'}, p.type), p.required ? h('span', {class: 'req', title: 'required'}, ' *') : null),
      p.description ? h('p', {class: 'help', id: id + '-desc'}, p.description) : null,
      kind === 'json' ? h('p', {class: 'help muted'}, 'JSON, for example ', h('code', null, exampleOf(p.type))) : null,
      kind === 'bool' ? h('div', {class: 'check'}, input, h('label', {for: id}, 'true')) : input,
      err);
  });
  const runID = h('input', {type: 'text', id: 'trigger-run-id', name: 'run_id', autocomplete: 'off', spellcheck: 'false', placeholder: 'manual__<now>'});
  const runIDErr = h('p', {class: 'field-error', id: 'trigger-run-id-error', role: 'alert', hidden: true});
  const submit = h('button', {type: 'submit', class: 'btn btn-primary', id: 'trigger-submit', disabled: !ok}, 'Trigger run');
  const form = h('form', {class: 'form', id: 'trigger-form', novalidate: true},
    h('h2', null, 'Trigger a run'),
    params.length ? null : h('p', {class: 'muted'}, 'This DAG takes no params.'),
    rows,
    h('details', {class: 'field'}, h('summary', null, 'Run ID'),
      h('label', {for: 'trigger-run-id'}, 'Run ID ', h('span', {class: 'muted'}, '(optional)')), runID, runIDErr),
    formError,
    h('div', {class: 'buttons'}, submit, ok ? null : h('span', {class: 'muted'}, 'Triggering needs a token with role operator or admin.')));

  const showErr = (el, msg) => {
    el.textContent = msg || '';
    el.hidden = !msg;
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showErr(formError, '');
    showErr(runIDErr, '');
    const values = {};
    let bad = false;
    for (const [name, f] of fields) {
      showErr(f.err, '');
      f.input.removeAttribute('aria-invalid');
      const raw = f.kind === 'bool' ? null : f.input.value;
      if (f.kind === 'bool') {
        values[name] = f.input.checked;
      } else if (raw.trim() === '') {
        // left empty: the default applies, or the server says the param is required
      } else if (f.kind === 'number') {
        const n = Number(raw);
        if (!isFinite(n)) {
          showErr(f.err, 'want a number');
          bad = true;
        } else values[name] = n;
      } else if (f.kind === 'text') {
        values[name] = raw;
      } else {
        try {
          values[name] = JSON.parse(raw);
        } catch (e) {
          showErr(f.err, 'not valid JSON: ' + e.message);
          f.input.setAttribute('aria-invalid', 'true');
          bad = true;
        }
      }
    }
    if (bad) return;
    const body = {params: values};
    if (runID.value.trim()) body.run_id = runID.value.trim();
    submit.disabled = true;
    submit.textContent = 'Triggering…';
    try {
      const res = await post(paths.trigger(dag), body);
      const ids = (res.data && res.data.run_ids) || [];
      if (res.status === 202) {
        showErr(formError, 'The run is queued but no active instance has created it yet: ' + ((res.data && res.data.error) || '') + ' It will appear in the runs tab.');
        formError.className = 'notice';
      } else if (ids.length) {
        location.hash = runHref(dag, ids[0]);
      }
    } catch (e) {
      formError.className = 'error';
      showErr(formError, e.message);
      for (const fe of (e.fields || [])) {
        const name = fe.field.startsWith('params.') ? fe.field.slice(7) : null;
        const f = name && fields.get(name);
        if (f) {
          showErr(f.err, fe.message);
          f.input.setAttribute('aria-invalid', 'true');
        } else if (fe.field === 'run_id') {
          showErr(runIDErr, fe.message);
        } else {
          formError.appendChild(h('div', null, h('span', {class: 'name'}, fe.field), ': ', fe.message));
        }
      }
    } finally {
      submit.disabled = !ok;
      submit.textContent = 'Trigger run';
    }
  });
  return form;
}

function exampleOf(type) {
  if (type.startsWith('list') || type.startsWith('set') || type.startsWith('tuple')) return '["a", "b"]';
  if (type.startsWith('map') || type.startsWith('object')) return '{"key": "value"}';
  return '"text", 1, true';
}

// backfillForm asks for runs of every interval with a logical date from..to (UTC).
function backfillForm(dag) {
  const ok = can('operator');
  const from = h('input', {type: 'datetime-local', id: 'backfill-from', step: '1', required: true});
  const to = h('input', {type: 'datetime-local', id: 'backfill-to', step: '1', required: true});
  const fromErr = h('p', {class: 'field-error', role: 'alert', hidden: true});
  const toErr = h('p', {class: 'field-error', role: 'alert', hidden: true});
  const out = h('div', {class: 'form-result', role: 'status'});
  const submit = h('button', {type: 'submit', class: 'btn', id: 'backfill-submit', disabled: !ok}, 'Backfill');
  const form = h('form', {class: 'form', id: 'backfill-form', novalidate: true},
    h('h2', null, 'Backfill'),
    h('p', {class: 'muted'}, 'Creates a run for every interval of the schedule whose logical date is in the range. Times are UTC.'),
    h('div', {class: 'row'},
      h('div', {class: 'field'}, h('label', {for: 'backfill-from'}, 'From'), from, fromErr),
      h('div', {class: 'field'}, h('label', {for: 'backfill-to'}, 'To'), to, toErr)),
    out,
    h('div', {class: 'buttons'}, submit));
  const iso = (v) => (v ? new Date(v + (v.length === 16 ? ':00' : '') + 'Z').toISOString() : undefined);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const e of [fromErr, toErr]) e.hidden = true;
    out.replaceChildren();
    submit.disabled = true;
    try {
      const res = await post(paths.backfill(dag), {from: iso(from.value) || '0001-01-01T00:00:00Z', to: iso(to.value) || '0001-01-01T00:00:00Z'});
      const ids = (res.data && res.data.run_ids) || [];
      if (res.status === 202) out.append(h('p', {class: 'notice'}, 'Queued: ' + ((res.data && res.data.error) || '')));
      else if (!ids.length) out.append(h('p', {class: 'notice'}, 'No runs created: every interval in the range already has a run, or none ends in it.'));
      else out.append(h('p', null, 'Created ' + ids.length + ' run' + (ids.length === 1 ? '' : 's') + ':'), h('ul', {class: 'created'}, ids.map((id) => h('li', null, h('a', {href: runHref(dag, id), class: 'name'}, id)))));
    } catch (e) {
      out.append(h('p', {class: 'error', role: 'alert'}, e.message));
      for (const fe of (e.fields || [])) {
        const el = fe.field === 'from' ? fromErr : fe.field === 'to' ? toErr : null;
        if (el) {
          el.textContent = fe.message;
          el.hidden = false;
        }
      }
    } finally {
      submit.disabled = !ok;
    }
  });
  return form;
}
