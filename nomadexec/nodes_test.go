package nomadexec

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
)

// testNode is a hand-built node with one of each kind of property constraints can refer to.
func testNode() *nomadapi.Node {
	return &nomadapi.Node{
		ID:         "0b7c1f6e-node-id",
		Name:       "worker-1",
		Datacenter: "dc1",
		NodeClass:  "batch",
		NodePool:   "default",
		Attributes: map[string]string{
			"kernel.name":   "linux",
			"cpu.numcores":  "8",
			"cpu.frequency": "2400.5",
			"nomad.version": "1.11.3",
			"tags":          "a,b, c",
		},
		Meta: map[string]string{
			"rack":      "r1",
			"rack_copy": "r1",
			"gpu":       "true",
			"pre":       "1.2.0-beta.1",
		},
	}
}

func TestConstraintSatisfiedBy(t *testing.T) {
	tests := map[string]struct {
		c    spec.Constraint
		want bool
	}{
		// Equality and its aliases; a missing operator is "=".
		"equal":                       {con("${attr.kernel.name}", "=", "linux"), true},
		"equal ==":                    {con("${attr.kernel.name}", "==", "linux"), true},
		"equal is":                    {con("${attr.kernel.name}", "is", "linux"), true},
		"equal without operator":      {con("${attr.kernel.name}", "", "linux"), true},
		"equal other value":           {con("${attr.kernel.name}", "=", "windows"), false},
		"equal missing attribute":     {con("${attr.no.such}", "=", "linux"), false},
		"equal two literals":          {con("x", "=", "x"), true},
		"equal two interpolations":    {con("${meta.rack}", "=", "${meta.rack_copy}"), true},
		"equal unknown interpolation": {con("${nope.x}", "=", "x"), false},

		// Inequality: a missing attribute compares as "", as in Nomad.
		"not equal":                    {con("${attr.kernel.name}", "!=", "windows"), true},
		"not equal same":               {con("${attr.kernel.name}", "!=", "linux"), false},
		"not":                          {con("${attr.kernel.name}", "not", "windows"), true},
		"not equal missing attribute":  {con("${attr.no.such}", "!=", "linux"), true},
		"not equal missing to missing": {con("${attr.no.such}", "!=", "${meta.no.such}"), false},

		// Node properties.
		"node id":         {con("${node.unique.id}", "=", "0b7c1f6e-node-id"), true},
		"node name":       {con("${node.unique.name}", "=", "worker-1"), true},
		"node datacenter": {con("${node.datacenter}", "=", "dc1"), true},
		"node class":      {con("${node.class}", "=", "batch"), true},
		"node pool":       {con("${node.pool}", "=", "default"), true},
		"meta":            {con("${meta.rack}", "=", "r1"), true},

		// Ordering: numeric when both sides are numbers ("8" > "10" lexically), else lexical.
		"greater numeric":         {con("${attr.cpu.numcores}", ">", "10"), false},
		"less numeric":            {con("${attr.cpu.numcores}", "<", "10"), true},
		"greater or equal":        {con("${attr.cpu.numcores}", ">=", "8"), true},
		"less or equal":           {con("${attr.cpu.numcores}", "<=", "7"), false},
		"greater float":           {con("${attr.cpu.frequency}", ">", "2400"), true},
		"less or equal float":     {con("${attr.cpu.frequency}", "<=", "2400.5"), true},
		"less lexical":            {con("${node.datacenter}", "<", "dc2"), true},
		"greater lexical":         {con("${node.datacenter}", ">", "dc2"), false},
		"order missing attribute": {con("${attr.no.such}", "<", "1"), false},

		"regexp":                   {con("${attr.kernel.name}", "regexp", "^lin"), true},
		"regexp no match":          {con("${attr.kernel.name}", "regexp", "^win"), false},
		"regexp missing attribute": {con("${attr.no.such}", "regexp", ".*"), false},
		"regexp interpolated":      {con("${meta.rack}", "regexp", "${meta.rack_copy}"), true},

		"set_contains":          {con("${attr.tags}", "set_contains", "a, c"), true},
		"set_contains missing":  {con("${attr.tags}", "set_contains", "a,d"), false},
		"set_contains_all":      {con("${attr.tags}", "set_contains_all", "c,b"), true},
		"set_contains_any":      {con("${attr.tags}", "set_contains_any", "d,c"), true},
		"set_contains_any none": {con("${attr.tags}", "set_contains_any", "d,e"), false},

		"is_set":             {con("${meta.gpu}", "is_set", ""), true},
		"is_set missing":     {con("${meta.no.such}", "is_set", ""), false},
		"is_not_set":         {con("${meta.no.such}", "is_not_set", ""), true},
		"is_not_set present": {con("${meta.gpu}", "is_not_set", ""), false},

		"version range":       {con("${attr.nomad.version}", "version", ">= 1.10, < 2.0"), true},
		"version pessimistic": {con("${attr.nomad.version}", "version", "~> 1.11.0"), true},
		"version too old":     {con("${attr.nomad.version}", "version", "< 1.0"), false},
		// go-version leaves pre-releases out of ranges without one; semver orders them.
		"version prerelease":   {con("${meta.pre}", "version", ">= 1.0"), false},
		"semver prerelease":    {con("${meta.pre}", "semver", ">= 1.0.0"), true},
		"semver equal":         {con("${attr.nomad.version}", "semver", "1.11.3"), true},
		"semver range":         {con("${attr.nomad.version}", "semver", ">= 1.11.0, < 1.12.0"), true},
		"semver too new":       {con("${attr.nomad.version}", "semver", ">= 1.12.0"), false},
		"semver not a version": {con("${attr.kernel.name}", "semver", ">= 1.0.0"), false},

		"distinct_hosts":    {con("", "distinct_hosts", ""), true},
		"distinct_property": {con("${meta.rack}", "distinct_property", "2"), true},
	}
	node := testNode()
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := compileConstraint(tt.c)
			if err != nil {
				t.Fatalf("compileConstraint(%+v): %v", tt.c, err)
			}
			if got := c.satisfiedBy(node); got != tt.want {
				t.Errorf("%s: satisfied = %v, want %v", formatConstraint(tt.c), got, tt.want)
			}
		})
	}
}

func TestCompileConstraintErrors(t *testing.T) {
	tests := map[string]struct {
		c    spec.Constraint
		want string // in the error
	}{
		"unknown operator":    {con("${attr.kernel.name}", "~=", "linux"), `unknown operator "~="`},
		"bad regexp":          {con("${attr.kernel.name}", "regexp", "("), "parse regexp"},
		"bad version":         {con("${attr.nomad.version}", "version", "banana"), "parse version constraint"},
		"pessimistic semver":  {con("${attr.nomad.version}", "semver", "~> 1.0.0"), "parse semver constraint"},
		"is_set with a value": {con("${meta.gpu}", "is_set", "true"), "takes no value"},
		"equal without value": {con("${meta.gpu}", "=", ""), "needs a value"},
		"no attribute":        {con("", "=", "linux"), "needs an attribute"},
		"bad distinct count":  {con("${meta.rack}", "distinct_property", "two"), "not a number"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := compileConstraint(tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("compileConstraint(%+v) error = %v, want one containing %q", tt.c, err, tt.want)
			}
		})
	}
}

func TestQueueMatcherPlaceable(t *testing.T) {
	type state struct {
		status, eligibility string
		draining            bool
		pool, dc            string
	}
	ready := state{nomadapi.NodeStatusReady, nomadapi.NodeSchedulingEligible, false, "default", "dc1"}
	tests := map[string]struct {
		q     spec.Queue
		state state
		want  bool
	}{
		"default queue":       {spec.Queue{}, ready, true},
		"down":                {spec.Queue{}, state{"down", "eligible", false, "default", "dc1"}, false},
		"initializing":        {spec.Queue{}, state{"initializing", "eligible", false, "default", "dc1"}, false},
		"ineligible":          {spec.Queue{}, state{"ready", "ineligible", false, "default", "dc1"}, false},
		"draining":            {spec.Queue{}, state{"ready", "eligible", true, "default", "dc1"}, false},
		"other pool":          {spec.Queue{NodePool: "gpu"}, ready, false},
		"own pool":            {spec.Queue{NodePool: "gpu"}, state{"ready", "eligible", false, "gpu", "dc1"}, true},
		"pool all":            {spec.Queue{NodePool: "all"}, state{"ready", "eligible", false, "gpu", "dc1"}, true},
		"node without a pool": {spec.Queue{}, state{"ready", "eligible", false, "", "dc1"}, true},
		"datacenter exact":    {spec.Queue{Datacenters: []string{"dc1"}}, ready, true},
		"datacenter glob":     {spec.Queue{Datacenters: []string{"dc*"}}, ready, true},
		"datacenter star":     {spec.Queue{Datacenters: []string{"*"}}, ready, true},
		"datacenter other":    {spec.Queue{Datacenters: []string{"eu-*"}}, ready, false},
		"datacenter any of":   {spec.Queue{Datacenters: []string{"eu-*", "dc?"}}, ready, true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := newQueueMatcher(&tt.q)
			if err != nil {
				t.Fatal(err)
			}
			s := tt.state
			if got := m.placeable(s.status, s.eligibility, s.draining, s.pool, s.dc); got != tt.want {
				t.Errorf("placeable(%+v) = %v, want %v", s, got, tt.want)
			}
		})
	}

	if _, err := newQueueMatcher(&spec.Queue{Datacenters: []string{"dc["}}); err == nil {
		t.Errorf("malformed datacenter pattern accepted")
	}
}

func TestMatchingNodes(t *testing.T) {
	n := devstack.StartNomadT(t, nil)
	client, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + n.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	stubs, _, err := client.Nodes().List(nil)
	if err != nil || len(stubs) != 1 {
		t.Fatalf("list nodes: %d nodes, error %v; want the one dev node", len(stubs), err)
	}
	devNode := stubs[0].ID

	tests := map[string]struct {
		q    *spec.Queue
		want []string // node IDs
	}{
		"nil queue":            {nil, []string{devNode}},
		"default queue":        {&spec.Queue{Name: "default"}, []string{devNode}},
		"gpu pool":             {&spec.Queue{Name: "gpu", NodePool: "gpu"}, nil},
		"all pool":             {&spec.Queue{Name: "any", NodePool: "all"}, []string{devNode}},
		"linux":                {&spec.Queue{Name: "linux", Constraints: []spec.Constraint{con("${attr.kernel.name}", "=", "linux")}}, []string{devNode}},
		"windows":              {&spec.Queue{Name: "windows", Constraints: []spec.Constraint{con("${attr.kernel.name}", "=", "windows")}}, nil},
		"raw_exec and linux":   {&spec.Queue{Name: "both", Constraints: []spec.Constraint{con("${attr.kernel.name}", "=", "linux"), con("${attr.driver.raw_exec}", "is_set", "")}}, []string{devNode}},
		"datacenter glob":      {&spec.Queue{Name: "dc", Datacenters: []string{"dc*"}}, []string{devNode}},
		"datacenter elsewhere": {&spec.Queue{Name: "eu", Datacenters: []string{"eu-*"}}, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			nodes, err := MatchingNodes(ctx, client, tt.q)
			if err != nil {
				t.Fatalf("MatchingNodes: %v", err)
			}
			if diff := cmp.Diff(tt.want, nodeIDs(nodes)); diff != "" {
				t.Errorf("matching nodes (-want +got):\n%s", diff)
			}
			for _, node := range nodes {
				if len(node.Attributes) == 0 {
					t.Errorf("node %s returned without attributes", node.ID)
				}
			}
		})
	}

	t.Run("unknown operator", func(t *testing.T) {
		q := &spec.Queue{Name: "odd", Constraints: []spec.Constraint{con("${attr.kernel.name}", "like", "lin%")}}
		_, err := MatchingNodes(ctx, client, q)
		if err == nil || !strings.Contains(err.Error(), `"like"`) || !strings.Contains(err.Error(), `"odd"`) {
			t.Errorf("error = %v, want one naming the operator and the queue", err)
		}
	})

	t.Run("ineligible node", func(t *testing.T) {
		if _, err := client.Nodes().ToggleEligibility(devNode, false, nil); err != nil {
			t.Fatalf("mark node ineligible: %v", err)
		}
		defer client.Nodes().ToggleEligibility(devNode, true, nil)
		nodes, err := MatchingNodes(ctx, client, nil)
		if err != nil {
			t.Fatalf("MatchingNodes: %v", err)
		}
		if len(nodes) != 0 {
			t.Errorf("ineligible node matched: %v", nodeIDs(nodes))
		}
	})
}

func nodeIDs(nodes []*nomadapi.Node) []string {
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

// con is a constraint, written the way Nomad prints one.
func con(attribute, operator, value string) spec.Constraint {
	return spec.Constraint{Attribute: attribute, Operator: operator, Value: value}
}
