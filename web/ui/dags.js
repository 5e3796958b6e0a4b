// The DAG list: what is applied, what ran recently, what runs next.

import {h, patch, dagHref, runHref, stateClass, timeEl, fmtTime, stateName, ago} from './dom.js';
import {Follower, can, paths, post} from './api.js';
import {act} from './actions.js';

// filter survives leaving the list and coming back.
export const filter = {q: '', tag: ''};

export function dagsView(ctx) {
  const search = h('input', {
    type: 'search', id: 'dag-search', class: 'search', placeholder: 'Search names and descriptions',
    'aria-label': 'Search DAGs by name or description', value: filter.q, autocomplete: 'off',
  });
  const chips = h('div', {class: 'chips'});
  const count = h('span', {class: 'muted count'});
  const body = h('div', {class: 'dag-list-body'});
  const el = h('section', {class: 'view view-dags'},
    h('div', {class: 'toolbar'}, h('h1', null, 'DAGs'), search, chips, h('span', {class: 'spacer'}), count),
    body);

  let dags = null;
  let text = '';
  const reads = new Follower();

  search.addEventListener('input', () => {
    filter.q = search.value;
    draw();
  });

  function setTag(tag) {
    filter.tag = tag;
    draw();
  }

  function matches(d) {
    const q = filter.q.trim().toLowerCase();
    if (filter.tag && !(d.tags || []).includes(filter.tag)) return false;
    if (!q) return true;
    return d.name.toLowerCase().includes(q) || (d.description || '').toLowerCase().includes(q);
  }

  function draw() {
    if (!dags) return;
    patch(chips, filter.tag, () => filter.tag
      ? h('button', {type: 'button', class: 'chip', 'aria-label': 'remove the filter by tag ' + filter.tag, onclick: () => setTag('')},
        'tag: ', h('span', {class: 'name'}, filter.tag), ' ×')
      : null);
    const shown = dags.filter(matches);
    count.textContent = shown.length === dags.length ? dags.length + ' DAGs' : shown.length + ' of ' + dags.length + ' DAGs';
    patch(body, JSON.stringify([text, filter.q, filter.tag, can('operator'), Math.floor(Date.now() / 30000)]), () => {
      if (!dags.length) {
        return h('p', {class: 'empty'}, 'No DAGs are applied yet. Run ', h('code', null, 'dagflow apply'), ' in a directory of DAG files.');
      }
      if (!shown.length) return h('p', {class: 'empty'}, 'No DAG matches the filter.');
      return h('table', {class: 'table dags', id: 'dag-list'},
        h('colgroup', null, h('col', {class: 'c-switch'}), h('col', {class: 'c-dag'}), h('col', {class: 'c-sched'}), h('col', {class: 'c-next'}), h('col', {class: 'c-recent'}), h('col', {class: 'c-tasks'})),
        h('thead', null, h('tr', null,
          h('th', {scope: 'col', title: 'On: runs on its schedule. Off: paused.'}, 'On'),
          h('th', {scope: 'col'}, 'DAG'),
          h('th', {scope: 'col'}, 'Schedule'),
          h('th', {scope: 'col'}, 'Next run'),
          h('th', {scope: 'col'}, 'Recent runs'),
          h('th', {scope: 'col', class: 'num'}, 'Tasks'))),
        h('tbody', null, shown.map(row)));
    });
  }

  function row(d) {
    return h('tr', {dataset: {dag: d.name}, class: d.paused ? 'paused' : null},
      h('td', null, pauseSwitch(d, ctx.now)),
      h('td', {class: 'dag-cell'},
        h('a', {class: 'dag-link name', href: dagHref(d.name), dataset: {dag: d.name, key: 'dag:' + d.name}}, d.name),
        d.description ? h('div', {class: 'desc', title: d.description}, d.description) : null,
        (d.tags || []).length ? h('div', {class: 'tags'}, d.tags.map((t) => tagButton(t, setTag))) : null),
      h('td', null, d.schedule
        ? [h('code', {class: 'name'}, d.schedule), ' ', h('span', {class: 'muted tz'}, d.timezone)]
        : h('span', {class: 'muted'}, 'manual only')),
      h('td', null, d.next_run ? [timeEl(d.next_run), h('div', {class: 'muted small'}, ago(d.next_run))] : h('span', {class: 'muted'}, d.paused ? 'paused' : '—')),
      h('td', null, recentDots(d.name, d.recent_runs)),
      h('td', {class: 'num'}, String(d.tasks)));
  }

  // refresh long-polls the list with wait: it answers on an apply, a pause, or a change of a
  // DAG's latest runs.
  async function refresh({wait, signal} = {}) {
    const r = await reads.get(paths.dags(), null, {wait, signal});
    if (signal) signal.throwIfAborted();
    dags = r.data;
    text = r.text;
    draw();
  }

  // tick redraws how long ago and in how long every 30 s, as draw's signature does, without
  // building that signature every second.
  let shownAt = -1;
  function tick() {
    const at = Math.floor(Date.now() / 30000);
    if (at === shownAt) return;
    shownAt = at;
    draw();
  }

  return {el, refresh, tick, title: 'DAGs'};
}

// tagButton is a tag that filters the list by itself when clicked.
export function tagButton(tag, onclick) {
  return h('button', {type: 'button', class: ['tag', filter.tag === tag ? 'active' : null], dataset: {tag, key: 'tag:' + tag}, title: 'Show only DAGs tagged ' + tag, onclick: () => onclick(tag)}, tag);
}

// recentDots shows recent runs (newest first) as coloured dots linking to each run.
export function recentDots(dag, runs) {
  if (!runs || !runs.length) return h('span', {class: 'muted'}, 'no runs yet');
  return h('span', {class: 'dots'}, runs.map((r) => h('a', {
    class: ['dot', stateClass(r.state)], href: runHref(dag, r.id), dataset: {state: stateName(r.state), run: r.id},
    title: r.id + ' — ' + stateName(r.state) + ' — ' + fmtTime(r.logical_date),
    'aria-label': 'run ' + r.id + ', ' + stateName(r.state),
  })));
}

// pauseSwitch turns scheduling of a DAG on and off, then calls refresh.
export function pauseSwitch(d, refresh) {
  const ok = can('operator');
  const input = h('input', {
    type: 'checkbox', role: 'switch', class: 'switch', checked: !d.paused, disabled: !ok,
    dataset: {key: 'pause:' + d.name, dag: d.name},
    'aria-label': (d.paused ? 'Unpause ' : 'Pause ') + d.name,
    title: !ok ? 'needs a token with role operator or admin' : d.paused ? 'Paused: click to run on schedule again' : 'On: click to pause',
  });
  input.addEventListener('change', async () => {
    const pause = !input.checked;
    const res = await act(input, (pause ? 'Pause ' : 'Unpause ') + d.name, () => post(paths.pause(d.name, pause)));
    if (!res) input.checked = !pause;
    refresh();
  });
  return input;
}
