// A layered drawing of a DAG, left to right, as SVG: longest-path layering, a virtual node on
// every layer a long edge crosses, barycenter ordering sweeps that keep the ordering with the
// fewest crossings, then vertical placement that pulls each node towards its neighbours while
// keeping the order (isotonic regression). It stays readable at a few hundred tasks; the SVG
// is as large as the drawing and scrolls in its container.

import {s, stateClass, stateName} from './dom.js';

export const NODE_W = 190;
export const NODE_H = 32;
const GAP_X = 64;
const ROW = 44; // the vertical room of a task
const LANE = 12; // the vertical room of an edge passing through a layer
const PAD = 16;
const SWEEPS = 12;

// layout places tasks (names) joined by edges ({from, to}: to runs after from).
export function layout(names, edges) {
  const n = names.length;
  const index = new Map(names.map((name, i) => [name, i]));
  const preds = names.map(() => []);
  const succs = names.map(() => []);
  const seen = new Set();
  for (const e of edges) {
    const a = index.get(e.from);
    const b = index.get(e.to);
    if (a === undefined || b === undefined || a === b || seen.has(a + ':' + b)) continue;
    seen.add(a + ':' + b);
    succs[a].push(b);
    preds[b].push(a);
  }

  // Longest-path layering in topological order; a cycle (never applied) falls back to layer 0.
  const layer = new Array(n).fill(0);
  const indeg = preds.map((p) => p.length);
  const byName = (a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0);
  let ready = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) ready.push(i);
  ready.sort(byName);
  const topo = [];
  while (ready.length) {
    const v = ready.shift();
    topo.push(v);
    for (const w of succs[v]) {
      layer[w] = Math.max(layer[w], layer[v] + 1);
      if (--indeg[w] === 0) ready.push(w);
    }
  }

  // Virtual graph: tasks, then a dummy vertex per layer that a long edge passes through.
  const vLayer = layer.slice();
  const vPreds = names.map(() => []);
  const vSuccs = names.map(() => []);
  const chains = [];
  for (let a = 0; a < n; a++) {
    for (const b of succs[a]) {
      const chain = [a];
      let prev = a;
      for (let l = layer[a] + 1; l < layer[b]; l++) {
        const d = vLayer.length;
        vLayer.push(l);
        vPreds.push([prev]);
        vSuccs.push([]);
        vSuccs[prev].push(d);
        chain.push(d);
        prev = d;
      }
      vSuccs[prev].push(b);
      vPreds[b].push(prev);
      chain.push(b);
      chains.push({from: names[a], to: names[b], chain});
    }
  }
  const total = vLayer.length;
  const depth = n ? Math.max(...layer) + 1 : 0;
  const layers = Array.from({length: depth}, () => []);
  // Initial order: tasks by topological position, dummies after the vertex they come from.
  const orderKey = new Array(total).fill(0);
  topo.forEach((v, i) => (orderKey[v] = i));
  for (let v = n; v < total; v++) orderKey[v] = orderKey[vPreds[v][0]] + 0.5;
  const all = Array.from({length: total}, (_, i) => i).sort((a, b) => orderKey[a] - orderKey[b]);
  for (const v of all) layers[vLayer[v]].push(v);

  const pos = new Array(total).fill(0);
  const setPos = () => layers.forEach((ly) => ly.forEach((v, i) => (pos[v] = i)));
  setPos();
  let best = layers.map((ly) => ly.slice());
  let bestCross = crossings(layers, vSuccs, pos);
  for (let it = 0; it < SWEEPS && bestCross > 0; it++) {
    const down = it % 2 === 0;
    const range = down ? [...Array(depth).keys()].slice(1) : [...Array(depth).keys()].reverse().slice(1);
    for (const l of range) {
      const ly = layers[l];
      const bc = new Map();
      for (const v of ly) {
        const nb = down ? vPreds[v] : vSuccs[v];
        bc.set(v, nb.length ? nb.reduce((acc, u) => acc + pos[u], 0) / nb.length : pos[v]);
      }
      ly.sort((a, b) => bc.get(a) - bc.get(b) || pos[a] - pos[b]);
      ly.forEach((v, i) => (pos[v] = i));
    }
    const c = crossings(layers, vSuccs, pos);
    if (c < bestCross) {
      bestCross = c;
      best = layers.map((ly) => ly.slice());
    }
  }
  best.forEach((ly, l) => (layers[l] = ly));
  setPos();

  // Vertical placement: start stacked, then pull towards the neighbours' mean, keeping order
  // and spacing.
  const room = (v) => (v < n ? ROW : LANE);
  const y = new Array(total).fill(0);
  for (const ly of layers) {
    let acc = 0;
    for (const v of ly) {
      y[v] = acc + room(v) / 2;
      acc += room(v);
    }
  }
  for (let it = 0; it < 8; it++) {
    const down = it % 2 === 0;
    const order = down ? layers : layers.slice().reverse();
    for (const ly of order) {
      const want = ly.map((v) => {
        const nb = (down ? vPreds[v] : vSuccs[v]).concat(it > 3 ? (down ? vSuccs[v] : vPreds[v]) : []);
        return nb.length ? nb.reduce((acc, u) => acc + y[u], 0) / nb.length : y[v];
      });
      const gaps = ly.map((v, i) => (i === 0 ? 0 : (room(ly[i - 1]) + room(v)) / 2));
      const placed = isotonic(want, gaps);
      ly.forEach((v, i) => (y[v] = placed[i]));
    }
  }
  let top = Infinity;
  let bottom = -Infinity;
  for (let v = 0; v < total; v++) {
    top = Math.min(top, y[v] - room(v) / 2);
    bottom = Math.max(bottom, y[v] + room(v) / 2);
  }
  if (!total) top = bottom = 0;
  const x = (v) => PAD + vLayer[v] * (NODE_W + GAP_X);
  const nodes = names.map((name, v) => ({name, layer: layer[v], x: x(v), y: PAD + y[v] - top, preds: preds[v].map((u) => names[u])}));
  const edgesOut = chains.map(({from, to, chain}) => {
    const pts = chain.map((v) => ({x: x(v), y: PAD + y[v] - top, dummy: v >= n}));
    return {from, to, d: edgePath(pts)};
  });
  return {
    nodes,
    edges: edgesOut,
    width: PAD * 2 + Math.max(depth, 1) * NODE_W + Math.max(depth - 1, 0) * GAP_X,
    height: PAD * 2 + Math.max(bottom - top, ROW),
    crossings: bestCross,
    // order lists the tasks layer by layer, top to bottom: the rows of the grid view.
    order: layers.flat().filter((v) => v < n).map((v) => names[v]),
  };
}

// crossings counts edge crossings between adjacent layers (Fenwick tree per layer pair).
function crossings(layers, vSuccs, pos) {
  let count = 0;
  for (let l = 0; l + 1 < layers.length; l++) {
    const pairs = [];
    for (const v of layers[l]) for (const w of vSuccs[v]) pairs.push([pos[v], pos[w]]);
    pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const size = layers[l + 1].length + 1;
    const tree = new Array(size + 1).fill(0);
    let seenCount = 0;
    for (const [, b] of pairs) {
      // edges seen so far whose target lies after b cross this one
      let le = 0;
      for (let i = b + 1; i > 0; i -= i & -i) le += tree[i];
      count += seenCount - le;
      for (let i = b + 1; i <= size; i += i & -i) tree[i]++;
      seenCount++;
    }
  }
  return count;
}

// isotonic returns the positions nearest (least squares) to want such that each is at least
// gaps[i] below the one before: pool-adjacent-violators on want[i] - offset[i].
function isotonic(want, gaps) {
  const off = [];
  let acc = 0;
  for (let i = 0; i < want.length; i++) {
    acc += gaps[i];
    off.push(acc);
  }
  const blocks = []; // [mean, count]
  for (let i = 0; i < want.length; i++) {
    blocks.push([want[i] - off[i], 1]);
    while (blocks.length > 1 && blocks[blocks.length - 2][0] > blocks[blocks.length - 1][0]) {
      const [m2, c2] = blocks.pop();
      const [m1, c1] = blocks.pop();
      blocks.push([(m1 * c1 + m2 * c2) / (c1 + c2), c1 + c2]);
    }
  }
  const out = [];
  let i = 0;
  for (const [m, c] of blocks) {
    for (let k = 0; k < c; k++, i++) out.push(m + off[i]);
  }
  return out;
}

// edgePath runs from the right side of the first task to the left side of the last, straight
// through each layer it crosses and curved in the gaps between layers.
function edgePath(pts) {
  const first = pts[0];
  const last = pts[pts.length - 1];
  let x1 = first.x + NODE_W;
  let y1 = first.y;
  let d = 'M' + r(x1) + ' ' + r(y1);
  const curve = (x2, y2) => {
    const dx = (x2 - x1) / 2;
    d += ' C' + r(x1 + dx) + ' ' + r(y1) + ' ' + r(x2 - dx) + ' ' + r(y2) + ' ' + r(x2) + ' ' + r(y2);
  };
  for (const p of pts.slice(1, -1)) {
    curve(p.x, p.y);
    d += ' L' + r(p.x + NODE_W) + ' ' + r(p.y);
    x1 = p.x + NODE_W;
    y1 = p.y;
  }
  curve(last.x - 2, last.y);
  return d;
}

const r = (v) => Math.round(v * 10) / 10;

let markers = 0;

// Graph draws a layout and recolours it as states change, without redrawing.
export class Graph {
  // opts: onSelect(name), called on click or Enter; groups, a map of the nodes that stand for a
  // folded task group to their tasks.
  constructor(g, opts = {}) {
    this.g = g;
    this.opts = opts;
    this.scale = 1;
    this.nodes = new Map();
    this.edgesOf = new Map();
    const id = 'df-arrow-' + ++markers;
    const defs = s('defs', null,
      s('marker', {id, viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse'},
        s('path', {d: 'M0 0 L10 5 L0 10 z', class: 'arrow'})));
    const edges = s('g', {class: 'edges'});
    for (const e of g.edges) {
      const p = s('path', {d: e.d, class: 'edge', 'marker-end': 'url(#' + id + ')', dataset: {from: e.from, to: e.to}});
      edges.appendChild(p);
      for (const end of [e.from, e.to]) {
        if (!this.edgesOf.has(end)) this.edgesOf.set(end, []);
        this.edgesOf.get(end).push(p);
      }
    }
    const nodes = s('g', {class: 'nodes'});
    const maxChars = Math.floor((NODE_W - 26) / 7.1);
    for (const nd of g.nodes) {
      const label = nd.name.length > maxChars ? nd.name.slice(0, maxChars - 1) + '…' : nd.name;
      const title = s('title', null, nd.name);
      const group = this.opts.groups && this.opts.groups.has(nd.name);
      const el = s('g', {class: 'node st-none' + (group ? ' group' : ''), transform: 'translate(' + nd.x + ',' + r(nd.y - NODE_H / 2) + ')', tabindex: '0', role: 'button', 'aria-label': (group ? 'group ' : 'task ') + nd.name, dataset: group ? {group: nd.name, state: 'none'} : {task: nd.name, state: 'none'}},
        title,
        s('rect', {class: 'box', width: NODE_W, height: NODE_H, rx: '5'}),
        s('rect', {class: 'stripe', width: '7', height: NODE_H, rx: '3'}),
        s('text', {x: '15', y: String(NODE_H / 2 + 4.5)}, label));
      const hl = (on) => () => (this.edgesOf.get(nd.name) || []).forEach((p) => p.classList.toggle('hl', on));
      el.addEventListener('mouseenter', hl(true));
      el.addEventListener('mouseleave', hl(false));
      el.addEventListener('focus', hl(true));
      el.addEventListener('blur', hl(false));
      el.addEventListener('click', () => this.opts.onSelect && this.opts.onSelect(nd.name));
      el.addEventListener('keydown', (ev) => {
        if ((ev.key === 'Enter' || ev.key === ' ') && this.opts.onSelect) {
          ev.preventDefault();
          this.opts.onSelect(nd.name);
        }
      });
      this.nodes.set(nd.name, {el, title});
      nodes.appendChild(el);
    }
    this.svg = s('svg', {class: 'graph', role: 'img', 'aria-label': 'task graph: ' + g.nodes.length + ' tasks', viewBox: '0 0 ' + g.width + ' ' + g.height}, defs, edges, nodes);
    this.setScale(1);
  }

  setScale(scale) {
    this.scale = Math.min(2, Math.max(0.2, scale));
    this.svg.setAttribute('width', String(Math.round(this.g.width * this.scale)));
    this.svg.setAttribute('height', String(Math.round(this.g.height * this.scale)));
  }

  // fit scales the drawing to fit width × height, never above full size.
  fit(width, height) {
    this.setScale(Math.min(1, width / this.g.width, height / this.g.height));
  }

  // color sets each task's state (a map of name to state; missing means not decided) and which
  // one is selected.
  color(states, selected) {
    for (const [name, {el, title}] of this.nodes) {
      const st = stateName(states ? states.get(name) : '');
      const group = this.opts.groups && this.opts.groups.has(name);
      el.setAttribute('class', 'node ' + stateClass(st) + (group ? ' group' : '') + (name === selected ? ' selected' : ''));
      el.dataset.state = st;
      el.setAttribute('aria-label', (group ? 'group ' : 'task ') + name + ', ' + st.replaceAll('_', ' '));
      title.textContent = name + ' (' + st.replaceAll('_', ' ') + ')';
    }
  }

  // setCounts shows, on the node of each task mapped over outputs, how many instances it has in
  // the run shown (a map of name to count; a task missing from it shows none).
  setCounts(counts) {
    for (const [name, {el}] of this.nodes) {
      let badge = el.querySelector('text.count');
      const n = counts ? counts.get(name) : undefined;
      if (n === undefined) {
        if (badge) badge.remove();
        continue;
      }
      if (!badge) {
        badge = s('text', {class: 'count', x: String(NODE_W - 8), y: String(NODE_H / 2 + 4.5), 'text-anchor': 'end'});
        el.appendChild(badge);
      }
      badge.textContent = '×' + n;
      el.dataset.instances = String(n);
    }
  }
}
