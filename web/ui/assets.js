// The assets pages: every asset with its producers, consumers and latest event, and one asset
// with its recent events, each linked to the run that produced it or marked as emitted.

import {h, patch, route, dagHref, runHref, timeEl, jsonText} from './dom.js';
import {Follower, paths, post} from './api.js';
import {act, operatorButton} from './actions.js';
import {breadcrumbs} from './dag.js';

export const assetHref = (name) => route('assets', name);

// producerLink links "DAG.TASK", a producer, to its DAG.
function producerLink(p) {
  const dag = p.slice(0, p.indexOf('.'));
  return h('a', {href: dagHref(dag), class: 'name'}, p);
}

const dagLinks = (dags) => dags.length
  ? dags.map((d, i) => [i ? ', ' : '', h('a', {href: dagHref(d), class: 'name'}, d)])
  : h('span', {class: 'muted'}, 'none');

export function assetsView() {
  const body = h('div');
  const el = h('section', {class: 'view view-assets'}, h('h1', null, 'Assets'), body);
  const reads = new Follower();
  return {
    el,
    title: 'assets',
    // refresh long-polls the list with wait: it answers on an apply or an event of an asset.
    async refresh({wait, signal} = {}) {
      const r = await reads.get(paths.assets(), null, {wait, signal});
      if (signal) signal.throwIfAborted();
      const assets = r.data || [];
      patch(body, JSON.stringify(assets), () => assets.length
        ? h('table', {class: 'table', id: 'asset-list'},
          h('thead', null, h('tr', null, ['Asset', 'Producers', 'Consumers', 'Latest event'].map((c) => h('th', null, c)))),
          h('tbody', null, assets.map((a) => h('tr', {dataset: {asset: a.name}},
            h('td', null, h('a', {href: assetHref(a.name), class: 'name asset-link', dataset: {asset: a.name}}, a.name)),
            h('td', null, a.producers.length ? a.producers.map((p, i) => [i ? ', ' : '', producerLink(p)]) : h('span', {class: 'muted'}, 'none')),
            h('td', null, dagLinks(a.consumers)),
            h('td', null, a.seq ? ['#' + a.seq + ' ', timeEl(a.updated_at)] : h('span', {class: 'muted'}, 'none yet'))))))
        : h('p', {class: 'empty'}, 'No assets yet. A task declares the assets it updates with outlets; a DAG waits for them with schedule_on.'));
    },
  };
}

export function assetView(ctx, {asset}) {
  const head = h('div', {class: 'title-row'});
  const facts = h('div');
  const events = h('div');
  const el = h('section', {class: 'view view-asset'},
    breadcrumbs([['Assets', '#/assets'], [asset]]), head, facts, h('h2', null, 'Recent events'), events);
  const reads = new Follower();
  const emit = (ev) => act(ev.currentTarget, 'Emit an event of ' + asset, () => post(paths.assetEvents(asset), {})).then(() => ctx.now());
  // refresh long-polls the asset with wait: it answers on an apply or an event of an asset.
  const refresh = async function ({wait, signal} = {}) {
    const r = await reads.get(paths.asset(asset), null, {wait, signal});
    if (signal) signal.throwIfAborted();
    const a = r.data;
    patch(head, '', () => [h('h1', {class: 'name', id: 'asset-name'}, asset), h('span', {class: 'spacer'}),
      operatorButton('Emit event', {id: 'asset-emit', title: 'Record an event of this asset, as dagflow asset emit does'}, emit)]);
    patch(facts, JSON.stringify([a.producers, a.consumers]), () => h('dl', {class: 'facts'},
      h('div', null, h('dt', null, 'Produced by'), h('dd', null, a.producers.length ? a.producers.map((p, i) => [i ? ', ' : '', producerLink(p)]) : h('span', {class: 'muted'}, 'no task: events come from outside'))),
      h('div', null, h('dt', null, 'Consumed by'), h('dd', null, dagLinks(a.consumers)))));
    patch(events, JSON.stringify(a.events), () => a.events.length
      ? h('table', {class: 'table', id: 'asset-events'},
        h('thead', null, h('tr', null, ['#', 'At', 'Source', 'Outputs or extra'].map((c) => h('th', null, c)))),
        h('tbody', null, a.events.map((e) => h('tr', {dataset: {seq: String(e.seq)}},
          h('td', null, String(e.seq)),
          h('td', null, timeEl(e.at)),
          h('td', null, e.run_id
            ? h('a', {href: runHref(e.dag, e.run_id), class: 'name event-run'}, e.dag + ' / ' + e.run_id + ' / ' + e.task)
            : h('span', {class: 'muted event-emitted'}, 'emitted')),
          h('td', null, h('code', {class: 'event-data'}, e.outputs ? jsonText(e.outputs) : e.extra ? jsonText(e.extra) : ''))))))
      : h('p', {class: 'empty'}, 'No events yet.'));
  };
  return {el, title: asset + ' · assets', refresh};
}
