// Package nomadexec runs task attempts as Nomad batch jobs.
//
// This file decides which Nomad nodes a queue's tasks can be placed on, by the rules Nomad's
// scheduler applies to a job's node pool, datacenters and constraints. It lets dagflow tell a
// queue that matches no node (a typo in a constraint, a pool with no clients) from a queue that
// is merely busy, before it submits anything.
package nomadexec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-version"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
)

// MatchingNodes returns the Nomad nodes a task of queue q could be placed on now, sorted by
// name then ID: nodes that are ready, scheduling-eligible and not draining, in q's node pool
// ("" means "default"; the pool "all" holds every node), in one of q's datacenters (none means
// any; glob patterns such as "dc*" are matched with path.Match), that satisfy every constraint
// of q as Nomad's scheduler evaluates it. A nil q is the implicit default queue.
//
// Resources are not considered: a full node still matches, as a queue's tasks wait for room
// on it rather than fail. Nodes are not namespaced, so q.Namespace plays no part.
//
// A constraint Nomad would refuse at job registration (an unknown operator, a regexp or
// version constraint that does not parse, a missing attribute or value) is an error naming it,
// as is a malformed datacenter pattern; nothing is listed then.
func MatchingNodes(ctx context.Context, client *nomadapi.Client, q *spec.Queue) ([]*nomadapi.Node, error) {
	if q == nil {
		q = &spec.Queue{Name: spec.DefaultQueue}
	}
	m, err := newQueueMatcher(q)
	if err != nil {
		return nil, fmt.Errorf("match nodes for queue %q: %w", q.Name, err)
	}
	opts := (&nomadapi.QueryOptions{}).WithContext(ctx)
	stubs, _, err := client.Nodes().List(opts)
	if err != nil {
		return nil, fmt.Errorf("match nodes for queue %q: list nodes: %w", q.Name, err)
	}
	var nodes []*nomadapi.Node
	for _, s := range stubs {
		// The stub has all but attributes and meta: skip the fetch for nodes that cannot match.
		if !m.placeable(s.Status, s.SchedulingEligibility, s.Drain, s.NodePool, s.Datacenter) {
			continue
		}
		node, _, err := client.Nodes().Info(s.ID, opts)
		if err != nil {
			var ue nomadapi.UnexpectedResponseError
			if errors.As(err, &ue) && ue.StatusCode() == http.StatusNotFound {
				continue // garbage-collected since the list
			}
			return nil, fmt.Errorf("match nodes for queue %q: get node %s: %w", q.Name, s.ID, err)
		}
		// Checked again on the full node: it may have changed since the list.
		if m.placeable(node.Status, node.SchedulingEligibility, node.Drain || node.DrainStrategy != nil, node.NodePool, node.Datacenter) &&
			m.satisfiedBy(node) {
			nodes = append(nodes, node)
		}
	}
	sort.Slice(nodes, func(i, j int) bool {
		if nodes[i].Name != nodes[j].Name {
			return nodes[i].Name < nodes[j].Name
		}
		return nodes[i].ID < nodes[j].ID
	})
	return nodes, nil
}

// queueMatcher is a queue's placement rules, checked once and ready to test nodes against.
type queueMatcher struct {
	pool        string
	datacenters []string
	constraints []*constraint
}

// newQueueMatcher checks q's datacenter patterns and constraints.
func newQueueMatcher(q *spec.Queue) (*queueMatcher, error) {
	m := &queueMatcher{pool: q.NodePool, datacenters: q.Datacenters}
	if m.pool == "" {
		m.pool = nomadapi.NodePoolDefault
	}
	for _, dc := range q.Datacenters {
		// path.Match checks the whole pattern even when the name does not match.
		if _, err := path.Match(dc, ""); err != nil {
			return nil, fmt.Errorf("datacenter pattern %q: %w", dc, err)
		}
	}
	for i, sc := range q.Constraints {
		c, err := compileConstraint(sc)
		if err != nil {
			return nil, fmt.Errorf("constraint %d (%s): %w", i+1, formatConstraint(sc), err)
		}
		m.constraints = append(m.constraints, c)
	}
	return m, nil
}

// placeable reports whether a node in this state, pool and datacenter can take new work for
// the queue.
func (m *queueMatcher) placeable(status, eligibility string, draining bool, pool, dc string) bool {
	if status != nomadapi.NodeStatusReady || eligibility != nomadapi.NodeSchedulingEligible || draining {
		return false
	}
	if pool == "" {
		pool = nomadapi.NodePoolDefault // clients older than node pools
	}
	if m.pool != nomadapi.NodePoolAll && pool != m.pool {
		return false
	}
	if len(m.datacenters) == 0 {
		return true
	}
	for _, pattern := range m.datacenters {
		if ok, _ := path.Match(pattern, dc); ok {
			return true
		}
	}
	return false
}

// satisfiedBy reports whether n satisfies every constraint.
func (m *queueMatcher) satisfiedBy(n *nomadapi.Node) bool {
	for _, c := range m.constraints {
		if !c.satisfiedBy(n) {
			return false
		}
	}
	return true
}

// Constraint operators, as Nomad spells them.
const (
	opEqual            = "="
	opNotEqual         = "!="
	opRegexp           = "regexp"
	opSetContains      = "set_contains"
	opSetContainsAll   = "set_contains_all"
	opSetContainsAny   = "set_contains_any"
	opIsSet            = "is_set"
	opIsNotSet         = "is_not_set"
	opVersion          = "version"
	opSemver           = "semver"
	opDistinctHosts    = "distinct_hosts"
	opDistinctProperty = "distinct_property"
)

// operatorAliases maps every operator Nomad accepts to the one this file evaluates.
var operatorAliases = map[string]string{
	"": opEqual, "=": opEqual, "==": opEqual, "is": opEqual,
	"!=": opNotEqual, "not": opNotEqual,
	"<": "<", "<=": "<=", ">": ">", ">=": ">=",
	opRegexp:           opRegexp,
	opSetContains:      opSetContains,
	opSetContainsAll:   opSetContains,
	opSetContainsAny:   opSetContainsAny,
	opIsSet:            opIsSet,
	opIsNotSet:         opIsNotSet,
	opVersion:          opVersion,
	opSemver:           opSemver,
	opDistinctHosts:    opDistinctHosts,
	opDistinctProperty: opDistinctProperty,
}

// constraint is one queue constraint, checked and with its literal regexp or version
// constraint parsed once.
type constraint struct {
	spec.Constraint
	op string // canonical operator

	re  *regexp.Regexp      // regexp with a literal value
	ver version.Constraints // version with a literal value
	sem semverConstraints   // semver with a literal value
}

// compileConstraint checks c the way Nomad validates a job's constraint and prepares it.
func compileConstraint(c spec.Constraint) (*constraint, error) {
	op, ok := operatorAliases[c.Operator]
	if !ok {
		return nil, fmt.Errorf("unknown operator %q", c.Operator)
	}
	cc := &constraint{Constraint: c, op: op}
	if c.Attribute == "" && op != opDistinctHosts {
		return nil, fmt.Errorf("operator %q needs an attribute", c.Operator)
	}
	// A value that interpolates a node property is only known per node: it is parsed then,
	// and a node whose value does not parse fails the constraint, as in Nomad.
	literal := !strings.HasPrefix(c.Value, "${")
	var err error
	switch op {
	case opEqual, opNotEqual, "<", "<=", ">", ">=", opSetContains, opSetContainsAny:
		if c.Value == "" {
			return nil, fmt.Errorf("operator %q needs a value", c.Operator)
		}
	case opIsSet, opIsNotSet:
		if c.Value != "" {
			return nil, fmt.Errorf("operator %q takes no value, got %q", c.Operator, c.Value)
		}
	case opRegexp:
		if literal {
			if cc.re, err = regexp.Compile(c.Value); err != nil {
				return nil, fmt.Errorf("parse regexp: %w", err)
			}
		}
	case opVersion:
		if literal {
			if cc.ver, err = version.NewConstraint(c.Value); err != nil {
				return nil, fmt.Errorf("parse version constraint: %w", err)
			}
		}
	case opSemver:
		if literal {
			if cc.sem, err = parseSemverConstraints(c.Value); err != nil {
				return nil, fmt.Errorf("parse semver constraint: %w", err)
			}
		}
	case opDistinctProperty:
		if c.Value != "" {
			if _, err := strconv.ParseUint(c.Value, 10, 64); err != nil {
				return nil, fmt.Errorf("distinct_property count %q is not a number: %w", c.Value, err)
			}
		}
	}
	return cc, nil
}

// satisfiedBy reports whether node n satisfies the constraint, with Nomad's semantics: an
// attribute the node lacks fails every operator but "!=" (where it compares as "") and
// is_not_set.
func (c *constraint) satisfiedBy(n *nomadapi.Node) bool {
	l, lok := resolveTarget(c.Attribute, n)
	r, rok := resolveTarget(c.Value, n)
	both := lok && rok
	switch c.op {
	case opDistinctHosts, opDistinctProperty:
		// Both limit how allocations of one job spread over nodes; a single placement, which
		// is all a task attempt is, always satisfies them.
		return true
	case opEqual:
		return both && l == r
	case opNotEqual:
		return l != r
	case "<", "<=", ">", ">=":
		return both && checkOrder(c.op, l, r)
	case opIsSet:
		return lok
	case opIsNotSet:
		return !lok
	case opRegexp:
		if !both {
			return false
		}
		re := c.re
		if re == nil {
			var err error
			if re, err = regexp.Compile(r); err != nil {
				return false
			}
		}
		return re.MatchString(l)
	case opSetContains:
		return both && setContains(l, r, true)
	case opSetContainsAny:
		return both && setContains(l, r, false)
	case opVersion:
		if !both {
			return false
		}
		vc := c.ver
		if vc == nil {
			var err error
			if vc, err = version.NewConstraint(r); err != nil {
				return false
			}
		}
		v, err := version.NewVersion(l)
		return err == nil && vc.Check(v)
	case opSemver:
		if !both {
			return false
		}
		sc := c.sem
		if sc == nil {
			var err error
			if sc, err = parseSemverConstraints(r); err != nil {
				return false
			}
		}
		v, err := version.NewVersion(l)
		return err == nil && sc.check(v)
	}
	return false // unreachable: compileConstraint admits only the operators above
}

// resolveTarget returns the value a constraint's attribute or value stands for on node n, and
// whether n has it. A string not starting with "${" is a literal.
func resolveTarget(target string, n *nomadapi.Node) (string, bool) {
	if !strings.HasPrefix(target, "${") {
		return target, true
	}
	switch target {
	case "${node.unique.id}":
		return n.ID, true
	case "${node.unique.name}":
		return n.Name, true
	case "${node.datacenter}":
		return n.Datacenter, true
	case "${node.class}":
		return n.NodeClass, true
	case "${node.pool}":
		return n.NodePool, true
	}
	if name, ok := strings.CutPrefix(target, "${attr."); ok {
		v, ok := n.Attributes[strings.TrimSuffix(name, "}")]
		return v, ok
	}
	if name, ok := strings.CutPrefix(target, "${meta."); ok {
		v, ok := n.Meta[strings.TrimSuffix(name, "}")]
		return v, ok
	}
	return "", false
}

// checkOrder returns (l op r), comparing as integers when both parse as integers, else as
// floats when both parse as floats, else lexically, as Nomad does.
func checkOrder(op, l, r string) bool {
	if li, err := strconv.ParseInt(l, 10, 64); err == nil {
		if ri, err := strconv.ParseInt(r, 10, 64); err == nil {
			return compareOrder(op, li, ri)
		}
	}
	if lf, err := strconv.ParseFloat(l, 64); err == nil {
		if rf, err := strconv.ParseFloat(r, 64); err == nil {
			return compareOrder(op, lf, rf)
		}
	}
	return compareOrder(op, l, r)
}

// compareOrder returns (l op r) for one of <, <=, >, >=.
func compareOrder[T int64 | float64 | string](op string, l, r T) bool {
	switch op {
	case "<":
		return l < r
	case "<=":
		return l <= r
	case ">":
		return l > r
	case ">=":
		return l >= r
	}
	return false
}

// setContains reports whether the comma-separated set l holds every (all) or any (!all)
// element of the comma-separated list r. Elements are trimmed of spaces.
func setContains(l, r string, all bool) bool {
	have := map[string]bool{}
	for _, e := range strings.Split(l, ",") {
		have[strings.TrimSpace(e)] = true
	}
	for _, e := range strings.Split(r, ",") {
		found := have[strings.TrimSpace(e)]
		if all && !found {
			return false
		}
		if !all && found {
			return true
		}
	}
	return all
}

// semverConstraints is a parsed semver constraint: a comma-separated list of comparisons that
// must all hold. Unlike go-version's constraints (the version operator), it orders
// pre-releases by Semantic Versioning 2.0, so "1.2.0-beta.1 >= 1.0.0" holds, and it has no
// "~>"; this is what Nomad's semver operator does.
type semverConstraints []semverConstraint

type semverConstraint struct {
	op string // "=", "!=", "<", "<=", ">", ">="
	v  *version.Version
}

// semverRe matches one comparison: an optional operator, then a strict semver version.
var semverRe = regexp.MustCompile(`^\s*(=|!=|<=|>=|<|>)?\s*(` + version.SemverRegexpRaw + `)\s*$`)

// parseSemverConstraints parses a semver constraint such as ">= 1.2.0, < 2.0.0".
func parseSemverConstraints(s string) (semverConstraints, error) {
	var cs semverConstraints
	for _, part := range strings.Split(s, ",") {
		m := semverRe.FindStringSubmatch(part)
		if m == nil {
			return nil, fmt.Errorf("malformed constraint %q", strings.TrimSpace(part))
		}
		v, err := version.NewSemver(m[2])
		if err != nil {
			return nil, fmt.Errorf("parse version %q: %w", m[2], err)
		}
		op := m[1]
		if op == "" {
			op = "="
		}
		cs = append(cs, semverConstraint{op: op, v: v})
	}
	return cs, nil
}

// check reports whether v satisfies every comparison.
func (cs semverConstraints) check(v *version.Version) bool {
	for _, c := range cs {
		cmp := v.Compare(c.v)
		var ok bool
		switch c.op {
		case "=":
			ok = cmp == 0
		case "!=":
			ok = cmp != 0
		case "<":
			ok = cmp < 0
		case "<=":
			ok = cmp <= 0
		case ">":
			ok = cmp > 0
		case ">=":
			ok = cmp >= 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// formatConstraint renders c the way Nomad prints a constraint, for messages.
func formatConstraint(c spec.Constraint) string {
	op := c.Operator
	if op == "" {
		op = opEqual
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", c.Attribute, op, c.Value))
}
