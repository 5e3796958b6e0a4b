package spec

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// checkCycles reports every dependency cycle among tasks, once each, with the path around it.
// It uses Tarjan's algorithm: every strongly connected component of more than one task, or a
// task depending on itself, is a cycle.
func checkCycles(dag string, tasks []*Task) hcl.Diagnostics {
	byName := make(map[string]*Task, len(tasks))
	for _, t := range tasks {
		byName[t.Name] = t
	}
	var (
		diags   hcl.Diagnostics
		index   = map[string]int{}
		low     = map[string]int{}
		onStack = map[string]bool{}
		stack   []string
		next    int
	)
	var visit func(name string)
	visit = func(name string) {
		index[name], low[name] = next, next
		next++
		stack = append(stack, name)
		onStack[name] = true
		for _, dep := range byName[name].DependsOn {
			if byName[dep] == nil {
				continue
			}
			if _, seen := index[dep]; !seen {
				visit(dep)
				low[name] = min(low[name], low[dep])
			} else if onStack[dep] {
				low[name] = min(low[name], index[dep])
			}
		}
		if low[name] != index[name] {
			return
		}
		var component []string
		for {
			top := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[top] = false
			component = append(component, top)
			if top == name {
				break
			}
		}
		self := len(component) == 1 && slices.Contains(byName[name].DependsOn, name)
		if len(component) > 1 || self {
			path := cyclePath(byName, component)
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Dependency cycle",
				Detail:   fmt.Sprintf("The tasks of DAG %q depend on each other in a cycle: %s. A DAG cannot have cycles; remove one of these dependencies.", dag, strings.Join(path, " -> ")),
				Subject:  byName[path[0]].DeclRange.Ptr(),
			})
		}
	}
	for _, t := range tasks {
		if _, seen := index[t.Name]; !seen {
			visit(t.Name)
		}
	}
	return diags
}

// cyclePath walks one cycle through a strongly connected component, starting from its
// alphabetically first task so the message is stable, and returns it closed ("a -> b -> a").
func cyclePath(byName map[string]*Task, component []string) []string {
	in := map[string]bool{}
	start := component[0]
	for _, n := range component {
		in[n] = true
		if n < start {
			start = n
		}
	}
	// Depth-first search from start back to start inside the component; dependencies are
	// sorted, so the path found is deterministic.
	var path []string
	visited := map[string]bool{}
	var walk func(n string) bool
	walk = func(n string) bool {
		path = append(path, n)
		visited[n] = true
		for _, dep := range byName[n].DependsOn {
			if dep == start {
				path = append(path, start)
				return true
			}
			if in[dep] && !visited[dep] && walk(dep) {
				return true
			}
		}
		path = path[:len(path)-1]
		return false
	}
	walk(start)
	return path
}

// TopoOrder returns tasks with every task after those it depends on, ties broken by name, so
// the order is stable. Dependencies on names outside tasks are ignored. The scheduler evaluates
// tasks in this order and the UI lists them in it.
func TopoOrder(tasks []*Task) []*Task {
	indeg := map[string]int{}
	down := map[string][]*Task{}
	byName := map[string]*Task{}
	for _, t := range tasks {
		byName[t.Name] = t
	}
	for _, t := range tasks {
		for _, up := range t.DependsOn {
			if byName[up] != nil {
				indeg[t.Name]++
				down[up] = append(down[up], t)
			}
		}
	}
	var ready, out []*Task
	for _, t := range tasks {
		if indeg[t.Name] == 0 {
			ready = append(ready, t)
		}
	}
	for len(ready) > 0 {
		sort.Slice(ready, func(i, j int) bool { return ready[i].Name < ready[j].Name })
		t := ready[0]
		ready = ready[1:]
		out = append(out, t)
		for _, d := range down[t.Name] {
			if indeg[d.Name]--; indeg[d.Name] == 0 {
				ready = append(ready, d)
			}
		}
	}
	return out
}
