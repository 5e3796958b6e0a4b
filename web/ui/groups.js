// Folding of task groups in the graph: a folded group is drawn as one node, named for the
// group (a group never shares its name with a task), standing for all its tasks; edges into
// and out of its tasks become edges of that node.

// The order in which a folded group's node shows its tasks' states: the first state any of
// its tasks is in, so that one failure or one running task shows on the folded node.
const WORST = ['failed', 'upstream_failed', 'up_for_retry', 'running', 'queued', 'scheduled', 'none', 'skipped', 'success'];

// fold returns the names and edges to draw for tasks (a task_list: name and group) and edges,
// with every group not in unfolded replaced by one node, and members: the tasks of each folded
// group by its node's name.
export function fold(tasks, edges, unfolded) {
  const nodeOf = new Map();
  const members = new Map();
  const names = [];
  for (const t of tasks) {
    const node = t.group && !unfolded.has(t.group) ? t.group : t.name;
    nodeOf.set(t.name, node);
    if (node !== t.name) {
      if (!members.has(node)) {
        members.set(node, []);
        names.push(node);
      }
      members.get(node).push(t.name);
    } else {
      names.push(t.name);
    }
  }
  const seen = new Set();
  const out = [];
  for (const e of edges) {
    const from = nodeOf.get(e.from) || e.from;
    const to = nodeOf.get(e.to) || e.to;
    const key = from + '\u0000' + to;
    if (from === to || seen.has(key)) continue;
    seen.add(key);
    out.push({from, to});
  }
  return {names, edges: out, members};
}

// groupState is the state a folded group's node shows, from its members' states.
export function groupState(members, states) {
  let best = WORST.length;
  for (const m of members) {
    const i = WORST.indexOf(states.get(m) || 'none');
    if (i >= 0 && i < best) best = i;
  }
  return best < WORST.length ? WORST[best] : 'none';
}
