package plan

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"sort"

	"github.com/dagflow/dagflow/hcl/spec"
)

// Diff compares local definitions with the applied ones and returns the changes that make the
// applied ones match, queues first, then DAGs, each sorted by name. A name in a remote map but
// not in local is deleted; only its name is read, so a caller may pass a definition holding
// nothing else. Identical definitions yield no change.
//
// Attributes are compared in the definitions' JSON form, so paths use the JSON field names.
// Tasks and params are keyed by name: an edit to one task attribute is one AttrChange with path
// ["task", NAME, ATTR], and a task added to or removed from a DAG is one AttrChange with path
// ["task", NAME] whose Before or After is nil. Nested objects (resources, env, driver config)
// are compared key by key; lists are compared as a whole. Params are ordered (a trigger form
// follows their order), so reordering them is a change of ["params"], from the old names to
// the new ones.
//
// A remote definition that is the local one itself (the same pointer, which Build passes when
// the local hash equals the applied version) is unchanged without comparing: with 10,000
// unchanged DAGs, encoding both sides to JSON and back was a third of a plan's time.
//
// A definition that cannot be encoded as JSON (an invalid json.RawMessage) compares as if it
// had no attributes; Build reports it as an error before diffing.
func Diff(local *spec.Config, remoteDAGs map[string]*spec.DAG, remoteQueues map[string]*spec.Queue) []Change {
	var localDAGs []*spec.DAG
	var localQueues []*spec.Queue
	if local != nil {
		localDAGs, localQueues = local.DAGs, local.Queues
	}

	var changes []Change
	seen := map[string]bool{}
	for _, q := range sortedBy(localQueues, func(q *spec.Queue) string { return q.Name }) {
		seen[q.Name] = true
		remote, ok := remoteQueues[q.Name]
		if !ok {
			changes = append(changes, Change{Kind: KindQueue, Name: q.Name, Action: ActionCreate})
			continue
		}
		if remote == q {
			continue
		}
		if attrs := diffObject(nil, toMap(remote), toMap(q), "name"); len(attrs) > 0 {
			changes = append(changes, Change{Kind: KindQueue, Name: q.Name, Action: ActionUpdate, Attrs: attrs})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(remoteQueues)) {
		if !seen[name] {
			changes = append(changes, Change{Kind: KindQueue, Name: name, Action: ActionDelete})
		}
	}

	seen = map[string]bool{}
	for _, d := range sortedBy(localDAGs, func(d *spec.DAG) string { return d.Name }) {
		seen[d.Name] = true
		remote, ok := remoteDAGs[d.Name]
		if !ok {
			changes = append(changes, Change{Kind: KindDAG, Name: d.Name, Action: ActionCreate})
			continue
		}
		if remote == d {
			continue
		}
		if attrs := diffDAG(toMap(remote), toMap(d)); len(attrs) > 0 {
			changes = append(changes, Change{Kind: KindDAG, Name: d.Name, Action: ActionUpdate, Attrs: attrs})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(remoteDAGs)) {
		if !seen[name] {
			changes = append(changes, Change{Kind: KindDAG, Name: name, Action: ActionDelete})
		}
	}
	kindOrder := map[string]int{KindQueue: 0, KindDAG: 1}
	sort.SliceStable(changes, func(i, j int) bool {
		a, b := changes[i], changes[j]
		if a.Kind != b.Kind {
			return kindOrder[a.Kind] < kindOrder[b.Kind]
		}
		return a.Name < b.Name
	})
	return changes
}

// diffDAG lists the changes from before to after: the DAG's own attributes (sorted), then
// params by name, then tasks by name, which is the order Render prints them in.
func diffDAG(before, after map[string]any) []AttrChange {
	attrs := diffObject(nil, before, after, "name", "params", "tasks")

	bp, bOrder := byName(before["params"])
	ap, aOrder := byName(after["params"])
	if !sameRelativeOrder(bOrder, aOrder) {
		attrs = append(attrs, AttrChange{Path: []string{"params"}, Before: names(bOrder), After: names(aOrder)})
		sortAttrs(attrs)
	}
	attrs = append(attrs, diffNamed("param", bp, ap)...)

	bt, _ := byName(before["tasks"])
	at, _ := byName(after["tasks"])
	return append(attrs, diffNamed("task", bt, at)...)
}

// diffNamed compares two sets of named blocks (tasks or params).
func diffNamed(kind string, before, after map[string]map[string]any) []AttrChange {
	all := map[string]bool{}
	for n := range before {
		all[n] = true
	}
	for n := range after {
		all[n] = true
	}
	var attrs []AttrChange
	for _, n := range slices.Sorted(maps.Keys(all)) {
		b, inBefore := before[n]
		a, inAfter := after[n]
		switch {
		case !inBefore:
			attrs = append(attrs, AttrChange{Path: []string{kind, n}, After: a})
		case !inAfter:
			attrs = append(attrs, AttrChange{Path: []string{kind, n}, Before: b})
		default:
			attrs = append(attrs, diffObject([]string{kind, n}, b, a, "name")...)
		}
	}
	return attrs
}

// diffObject compares two JSON objects key by key, recursing into nested objects, skipping the
// keys in skip, and returns the changes sorted by key.
func diffObject(prefix []string, before, after map[string]any, skip ...string) []AttrChange {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var attrs []AttrChange
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if slices.Contains(skip, k) {
			continue
		}
		path := append(slices.Clip(prefix), k)
		b, a := before[k], after[k]
		bm, bIsMap := b.(map[string]any)
		am, aIsMap := a.(map[string]any)
		if bIsMap && aIsMap {
			attrs = append(attrs, diffObject(path, bm, am)...)
			continue
		}
		if !reflect.DeepEqual(b, a) {
			attrs = append(attrs, AttrChange{Path: path, Before: b, After: a})
		}
	}
	return attrs
}

// byName indexes a JSON list of named objects (tasks, params) by name, without the name, and
// returns the names in list order.
func byName(v any) (map[string]map[string]any, []string) {
	list, _ := v.([]any)
	m := make(map[string]map[string]any, len(list))
	var order []string
	for _, e := range list {
		obj, ok := e.(map[string]any)
		if !ok {
			continue
		}
		name, _ := obj["name"].(string)
		m[name] = obj
		order = append(order, name)
	}
	return m, order
}

// sameRelativeOrder reports whether the names both lists hold appear in the same order in each;
// additions and removals are changes of their own.
func sameRelativeOrder(a, b []string) bool {
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, n := range a {
		inA[n] = true
	}
	for _, n := range b {
		inB[n] = true
	}
	var ca, cb []string
	for _, n := range a {
		if inB[n] {
			ca = append(ca, n)
		}
	}
	for _, n := range b {
		if inA[n] {
			cb = append(cb, n)
		}
	}
	return slices.Equal(ca, cb)
}

// names converts a list of names to the JSON-decoded form AttrChange values have.
func names(ns []string) []any {
	out := make([]any, len(ns))
	for i, n := range ns {
		out[i] = n
	}
	return out
}

func sortAttrs(attrs []AttrChange) {
	sort.SliceStable(attrs, func(i, j int) bool { return slices.Compare(attrs[i].Path, attrs[j].Path) < 0 })
}

// toMap is the JSON form of a definition, decoded into generic values.
func toMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return map[string]any{}
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return map[string]any{}
	}
	return m
}

// sortedBy returns the non-nil elements of list sorted by key, leaving list as it is.
func sortedBy[T any](list []*T, key func(*T) string) []*T {
	out := make([]*T, 0, len(list))
	for _, e := range list {
		if e != nil {
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}
