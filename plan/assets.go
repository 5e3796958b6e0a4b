package plan

import (
	"fmt"
	"maps"
	"slices"

	"github.com/dagflow/dagflow/hcl/spec"
)

// AssetUse is one asset the local DAGs name: the tasks that update it and the DAGs scheduled
// on it.
type AssetUse struct {
	Name      string
	Producers []string // "DAG.TASK", sorted
	Consumers []string // DAG names, sorted
}

// Assets returns every asset the DAGs of local name in outlets or schedule_on, sorted by name,
// and a warning for each asset some DAG is scheduled on but no task produces. That is not an
// error: a producer outside dagflow may post its events (dagflow asset emit), but a typo in a
// name would leave the DAG waiting forever.
func Assets(local *spec.Config) ([]AssetUse, []string) {
	byName := map[string]*AssetUse{}
	get := func(name string) *AssetUse {
		if byName[name] == nil {
			byName[name] = &AssetUse{Name: name}
		}
		return byName[name]
	}
	for _, d := range local.DAGs {
		for _, t := range d.Tasks {
			for _, o := range t.Outlets {
				u := get(o)
				u.Producers = append(u.Producers, d.Name+"."+t.Name)
			}
		}
		if d.ScheduleOn != nil {
			for _, a := range d.ScheduleOn.Assets() {
				u := get(a)
				u.Consumers = append(u.Consumers, d.Name)
			}
		}
	}
	var out []AssetUse
	var warnings []string
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		u := byName[name]
		slices.Sort(u.Producers)
		slices.Sort(u.Consumers)
		out = append(out, *u)
		if len(u.Producers) == 0 {
			dags := "DAG " + joinQuoted(u.Consumers) + " is"
			if len(u.Consumers) > 1 {
				dags = "DAGs " + joinQuoted(u.Consumers) + " are"
			}
			warnings = append(warnings, fmt.Sprintf("asset %q: %s scheduled on it, but no task has it in outlets; their runs wait for events posted with dagflow asset emit", name, dags))
		}
	}
	return out, warnings
}

func joinQuoted(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%q", n)
	}
	return s
}
