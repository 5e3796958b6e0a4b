package engine

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// Mapped tasks: a task whose for_each names an upstream's output (spec.Task.MapOver) is one
// task instance record, its parent, until the trigger rule lets it run; the engine then
// expands it: it reads the collection from the upstream's stored outputs and records the
// instance keys on the parent (TaskInstance.MapKeys), in one fenced write. From then on the
// run holds an instance "NAME[KEY]" per key, each a task instance of its own. Since the keys
// come from one record and each instance's try job IDs are deterministic, a leader that
// takes over at any point creates and runs the same instances, each once.
//
// The parent's state follows its instances': running while one is not finished, then failed
// when one failed, skipped when all were skipped, success otherwise. Downstream tasks apply
// their trigger rules over the instances' states. Instances of an earlier expansion that the
// latest one no longer has (a clear, then an upstream that published other keys) keep their
// records and tries, so a later expansion that has their key again goes on numbering their
// tries; they take no part in the run meanwhile.

// instanceOf links an instance of a mapped task to its parent.
type instanceOf struct {
	parent *task
	key    string
}

// isMapped reports whether t is the parent of a mapped task.
func (t *task) isMapped() bool { return t.spec.MapOver != nil }

// active reports whether instance t belongs to its parent's latest expansion.
func (t *task) active() bool {
	return t.mapped != nil && t.mapped.parent.keys[t.mapped.key]
}

// loadInstances adds to run r the stored instances of its mapped tasks, and those their
// expansions name that have no record yet.
func (r *run) loadInstances(tis map[string]*state.TaskInstance) {
	for name, stored := range tis {
		block, key, ok := instanceKey(name)
		if p := r.tasks[block]; ok && p != nil && p.isMapped() {
			r.instance(p, key).ti = *stored
		}
	}
	for _, t := range r.def.Tasks {
		if p := r.tasks[t.Name]; p.isMapped() {
			r.setKeys(p, p.ti.MapKeys)
		}
	}
}

// instanceKey splits a task instance name "block[key]".
func instanceKey(name string) (block, key string, ok bool) {
	block, rest, ok := strings.Cut(name, "[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", "", false
	}
	return block, strings.TrimSuffix(rest, "]"), true
}

// instance returns instance key of mapped task p, adding it to r when r does not have it.
func (r *run) instance(p *task, key string) *task {
	name := spec.InstanceName(p.spec.Name, key)
	if t := r.tasks[name]; t != nil {
		return t
	}
	s := *p.spec
	s.Name, s.MapOver, s.MaxMapLength = name, nil, 0
	t := &task{spec: &s, ti: state.TaskInstance{DAG: r.rec.DAG, RunID: r.rec.ID, Task: name}, mapped: &instanceOf{parent: p, key: key}}
	r.tasks[name] = t
	p.instances = append(p.instances, t)
	r.down[name] = r.down[p.spec.Name]
	return t
}

// setKeys makes keys the instances of mapped task p's expansion (nil: none), and places
// every instance p has right after it in r.order: those of the expansion first, in its order.
func (r *run) setKeys(p *task, keys []string) {
	p.keys = make(map[string]bool, len(keys))
	for _, k := range keys {
		p.keys[k] = true
		r.instance(p, k)
	}
	order := make(map[string]int, len(keys))
	for i, k := range keys {
		order[k] = i
	}
	slices.SortStableFunc(p.instances, func(a, b *task) int {
		ia, aok := order[a.mapped.key]
		ib, bok := order[b.mapped.key]
		switch {
		case aok && bok:
			return ia - ib
		case aok:
			return -1
		case bok:
			return 1
		}
		return strings.Compare(a.mapped.key, b.mapped.key)
	})
	rest := slices.DeleteFunc(r.order, func(t *spec.Task) bool {
		b, _, ok := instanceKey(t.Name)
		return ok && b == p.spec.Name && r.tasks[t.Name].mapped != nil
	})
	at := slices.Index(rest, p.spec) + 1
	specs := make([]*spec.Task, len(p.instances))
	for i, t := range p.instances {
		specs[i] = t.spec
	}
	r.order = slices.Insert(rest, at, specs...)
}

// upStates returns the states of task t's upstream task instances, with those of a mapped
// task's instances in place of its own once it was expanded.
func (r *run) upStates(t *spec.Task) []rules.State {
	up := make([]rules.State, 0, len(t.DependsOn))
	for _, name := range t.DependsOn {
		u := r.tasks[name]
		switch {
		case u == nil:
		case u.isMapped() && len(u.ti.MapKeys) > 0:
			for _, i := range u.instances {
				if i.active() {
					up = append(up, i.ti.State)
				}
			}
		default:
			up = append(up, u.ti.State)
		}
	}
	return up
}

// evaluateMapping evaluates t when it is a mapped task or one of its instances, and reports
// whether it did (handled) and whether t counts as finished for its run. An instance of an
// earlier expansion counts as finished once no try of it is in flight.
func (e *engine) evaluateMapping(r *run, t *task) (finished, handled bool) {
	switch {
	case t.isMapped():
		e.evaluateMapped(r, t)
		return t.ti.State.Finished(), true
	case t.mapped != nil && !t.active():
		cur := t.ti.Current()
		return cur == nil || e.jobs[cur.JobID] == nil, true
	}
	return false, false
}

// evaluateMapped expands mapped task p once its trigger rule lets it run, and keeps its state
// in step with its instances'.
func (e *engine) evaluateMapped(r *run, p *task) {
	if p.ti.State == rules.None {
		switch rules.Decide(p.spec.TriggerRule, r.upStates(p.spec)) {
		case rules.Run:
			e.expand(r, p)
		case rules.Skip:
			e.endMapped(r, p, rules.Skipped, "")
		case rules.UpstreamFail:
			e.endMapped(r, p, rules.UpstreamFailed, "")
		}
		return
	}
	if len(p.ti.MapKeys) == 0 {
		return // ended without instances
	}
	if st := instancesState(p); st != p.ti.State {
		p.ti.State = st
		e.markTask(r, p)
	}
}

// instancesState is the state of an expanded mapped task, from its instances'.
func instancesState(p *task) rules.State {
	failed, skipped, n := false, 0, 0
	for _, t := range p.instances {
		if !t.active() {
			continue
		}
		n++
		switch t.ti.State {
		case rules.Failed, rules.UpstreamFailed:
			failed = true
		case rules.Skipped:
			skipped++
		case rules.Success:
		default:
			return rules.Running
		}
	}
	switch {
	case failed:
		return rules.Failed
	case skipped == n:
		return rules.Skipped
	}
	return rules.Success
}

// expand records the instances of mapped task p from its upstream's stored outputs: one per
// element of the collection, none (skipped) for an empty one; failed, before anything runs,
// when there is no collection or it has more elements than the task's max_map_length.
func (e *engine) expand(r *run, p *task) {
	over := p.spec.MapOver
	up := r.tasks[over.Task]
	if up == nil || up.ti.State != rules.Success {
		st := rules.None
		if up != nil {
			st = up.ti.State
		}
		e.endMapped(r, p, rules.UpstreamFailed, fmt.Sprintf("nothing to map over: task %q did not succeed (%s)", over.Task, st))
		return
	}
	keys, values, err := over.Collection(latestOutputs(up))
	switch limit := maxMapLength(p.spec); {
	case err != nil:
		e.endMapped(r, p, rules.Failed, err.Error())
		return
	case len(keys) > limit:
		e.endMapped(r, p, rules.Failed, fmt.Sprintf("%s has %d elements, more than the task's max_map_length of %d: nothing was started", over, len(keys), limit))
		return
	case len(keys) == 0:
		e.endMapped(r, p, rules.Skipped, fmt.Sprintf("%s is empty: nothing to map over", over))
		return
	}
	p.values = values
	p.ti.MapKeys, p.ti.State, p.ti.Message = keys, rules.Running, ""
	r.setKeys(p, keys)
	e.markTask(r, p)
	// The instances depend on what p depends on, whose trigger rule just let p run: they are
	// scheduled at once, so this step's dispatch starts them and the expansion's record goes
	// out in the transaction of their first tries (it comes first in r.order).
	for _, t := range p.instances {
		if t.active() && t.ti.State == rules.None {
			t.ti.State, t.readyAt = rules.Scheduled, e.now
		}
	}
	e.log.Info("mapped task expanded", "dag", r.rec.DAG, "run_id", r.rec.ID, "task", p.spec.Name, "instances", len(keys))
}

// endMapped ends mapped task p without instances, in state st, saying why.
func (e *engine) endMapped(r *run, p *task, st rules.State, msg string) {
	p.ti.MapKeys, p.ti.State, p.ti.Message = nil, st, msg
	r.setKeys(p, nil)
	e.markTask(r, p)
}

// maxMapLength is how many instances mapped task t may have.
func maxMapLength(t *spec.Task) int {
	if t.MaxMapLength > 0 {
		return t.MaxMapLength
	}
	return spec.DefaultMaxMapLength
}

// each returns each.key and each.value of instance t, whose parent was expanded.
func (r *run) each(t *task) (*spec.Each, error) {
	p := t.mapped.parent
	if p.values == nil {
		_, values, err := p.spec.MapOver.Collection(latestOutputs(r.tasks[p.spec.MapOver.Task]))
		if err != nil {
			return nil, err
		}
		p.values = values
	}
	v, ok := p.values[t.mapped.key]
	if !ok {
		return nil, fmt.Errorf("%s has no element %q any more: clear %q to map it again", p.spec.MapOver, t.mapped.key, p.spec.Name)
	}
	return &spec.Each{Key: t.mapped.key, Value: v}, nil
}

// latestOutputs returns the outputs of task t's latest successful try; nil when it has none.
func latestOutputs(t *task) json.RawMessage {
	if t == nil {
		return nil
	}
	for i := len(t.ti.Tries) - 1; i >= 0; i-- {
		if t.ti.Tries[i].State == rules.Success {
			return t.ti.Tries[i].Outputs
		}
	}
	return nil
}

// instanceNames returns the names of the instances of mapped task name's latest expansion;
// none for other tasks.
func (r *run) instanceNames(name string) []string {
	p := r.tasks[name]
	if p == nil || !p.isMapped() {
		return nil
	}
	var out []string
	for _, t := range p.instances {
		if t.active() {
			out = append(out, t.spec.Name)
		}
	}
	return out
}
