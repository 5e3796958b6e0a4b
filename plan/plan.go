// Package plan computes what `dagflow plan` shows and `dagflow apply` carries out: the
// difference between the DAG and queue definitions in a directory and the ones applied in
// Consul, the catch-up runs that applying would start, and warnings about queues no Nomad node
// can serve. Render and RenderJSON print a plan in Terraform's grammar and as JSON.
package plan

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/bounded"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/schedule"
	"github.com/dagflow/dagflow/state"
)

// Action is what applying does to one DAG or queue.
type Action string

// Actions, with Terraform's meaning.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// Kinds of definitions a Change is about.
const (
	KindDAG   = "dag"
	KindQueue = "queue"
)

// Change is what applying does to one DAG or queue.
type Change struct {
	Kind   string // KindDAG or KindQueue
	Name   string
	Action Action
	Attrs  []AttrChange // for ActionUpdate: every changed attribute, down to task attributes
}

// AttrChange is one changed attribute of an updated definition.
type AttrChange struct {
	// Path names the attribute by JSON field names: ["schedule"], ["task", "load", "retries"],
	// ["param", "day", "default"], ["task", "load", "resources", "cpu"]; ["task", "load"] for
	// a whole task added or removed.
	Path []string

	// Before and After are JSON-decoded values (string, float64, bool, []any, map[string]any);
	// nil when the attribute is absent on that side.
	Before, After any
}

// Plan is what applying local definitions would do.
type Plan struct {
	Changes  []Change   // queues first, then DAGs, each sorted by name
	Backlogs []Backlog  // catch-up runs that applying would start, sorted by DAG
	Warnings []string   // problems that do not stop an apply, such as a queue no node serves
	Assets   []AssetUse // the assets the local DAGs produce and consume, sorted by name

	// Base is the catalog the plan was computed against; applying the plan is a
	// check-and-set on its Index, so it fails if anything was applied since.
	Base *state.Catalog

	// Local is the configuration the plan would apply.
	Local *spec.Config
}

// Backlog is the catch-up runs applying would start for one new DAG.
type Backlog struct {
	DAG     string
	Catchup string // the DAG's catch-up policy
	schedule.Backlog
}

// Summary counts the changes by action, as in "Plan: 1 to add, 1 to change, 1 to destroy."
func (p *Plan) Summary() (add, change, destroy int) {
	for _, c := range p.Changes {
		switch c.Action {
		case ActionCreate:
			add++
		case ActionUpdate:
			change++
		case ActionDelete:
			destroy++
		}
	}
	return add, change, destroy
}

// Empty reports whether applying the plan would change nothing.
func (p *Plan) Empty() bool { return len(p.Changes) == 0 }

// fetchConcurrency bounds the remote definitions Build reads at once: enough to hide Consul's
// round trips when every DAG changed (a parser upgrade can change every hash), few enough not
// to flood a Consul server shared with everything else.
const fetchConcurrency = 8

// nomadCheckTimeout bounds the queue check, which only produces warnings: an unreachable or
// hanging Nomad must not hold up a plan for longer than this.
const nomadCheckTimeout = 10 * time.Second

// Build compares local definitions with the catalog applied in store.
//
// Only the applied definitions whose version differs from the local hash are read, so planning
// unchanged DAGs costs one consistent read of the catalog. For every DAG that will be created,
// is not paused and has a schedule, it adds the Backlog of catch-up runs at now (from the
// DAG's start_date until its end_date, by its catchup policy).
//
// When nomad is not nil, every local queue is checked against Nomad's nodes: a queue no ready
// node matches gets a warning, since its tasks would wait. If Nomad cannot be asked, Build adds
// one warning saying so instead of failing: the check is advice, and applying does not need
// Nomad.
func Build(ctx context.Context, local *spec.Config, store *state.Store, nomad *nomadapi.Client, now time.Time) (*Plan, error) {
	if local == nil {
		return nil, errors.New("build plan: local configuration is nil")
	}
	if store == nil {
		return nil, errors.New("build plan: state store is nil")
	}
	// The catalog is read while the local definitions hash, which 10,000 DAGs take about as
	// long as Consul's answer to arrive.
	type read struct {
		catalog *state.Catalog
		err     error
	}
	catalog := make(chan read, 1)
	go func() {
		c, err := store.Catalog(ctx)
		catalog <- read{c, err}
	}()
	dagHashes, queueHashes := hashAll(local.DAGs), hashAll(local.Queues)
	r := <-catalog
	if r.err != nil {
		return nil, fmt.Errorf("build plan: %w", r.err)
	}
	base := r.catalog

	remoteDAGs := map[string]*spec.DAG{}
	remoteQueues := map[string]*spec.Queue{}
	localDAGs := map[string]*spec.DAG{}
	localQueues := map[string]bool{}
	var fetches []func(context.Context) error
	var mu sync.Mutex
	for i, d := range local.DAGs {
		if d == nil {
			return nil, errors.New("build plan: nil dag definition")
		}
		if localDAGs[d.Name] != nil {
			return nil, fmt.Errorf("build plan: dag %q is defined twice", d.Name)
		}
		localDAGs[d.Name] = d
		// Hashing every definition, not only the applied ones, also rejects any that
		// cannot be encoded before Diff has to compare them.
		h, err := dagHashes[i].hash, dagHashes[i].err
		if err != nil {
			return nil, fmt.Errorf("build plan: hash dag %q: %w", d.Name, err)
		}
		e, ok := base.DAGs[d.Name]
		if !ok {
			continue
		}
		if h == e.Version {
			// Same content by construction; Diff finds no change without reading it.
			remoteDAGs[d.Name] = d
			continue
		}
		fetches = append(fetches, func(ctx context.Context) error {
			v, err := store.DAGVersion(ctx, d.Name, e.Version)
			if err != nil {
				return err
			}
			mu.Lock()
			remoteDAGs[d.Name] = v.DAG
			mu.Unlock()
			return nil
		})
	}
	for i, q := range local.Queues {
		if q == nil {
			return nil, errors.New("build plan: nil queue definition")
		}
		if localQueues[q.Name] {
			return nil, fmt.Errorf("build plan: queue %q is defined twice", q.Name)
		}
		localQueues[q.Name] = true
		// Hashing every definition, not only the applied ones, also rejects any that
		// cannot be encoded before Diff has to compare them.
		h, err := queueHashes[i].hash, queueHashes[i].err
		if err != nil {
			return nil, fmt.Errorf("build plan: hash queue %q: %w", q.Name, err)
		}
		e, ok := base.Queues[q.Name]
		if !ok {
			continue
		}
		if h == e.Version {
			remoteQueues[q.Name] = q
			continue
		}
		fetches = append(fetches, func(ctx context.Context) error {
			rq, err := store.Queue(ctx, q.Name, e.Version)
			if err != nil {
				return err
			}
			mu.Lock()
			remoteQueues[q.Name] = rq
			mu.Unlock()
			return nil
		})
	}
	if err := bounded.Run(ctx, fetchConcurrency, fetches); err != nil {
		return nil, fmt.Errorf("build plan: read applied definition: %w", err)
	}
	// Every applied name still defined locally is in the remote maps by now. The others are
	// deletions, which show only the name, so there is nothing to read for them.
	for name := range base.DAGs {
		if _, ok := remoteDAGs[name]; !ok {
			remoteDAGs[name] = &spec.DAG{Name: name}
		}
	}
	for name := range base.Queues {
		if _, ok := remoteQueues[name]; !ok {
			remoteQueues[name] = &spec.Queue{Name: name}
		}
	}

	p := &Plan{Base: base, Local: local}
	p.Changes = Diff(local, remoteDAGs, remoteQueues)

	for _, c := range p.Changes {
		if c.Kind != KindDAG || c.Action != ActionCreate {
			continue
		}
		b, ok, err := backlog(localDAGs[c.Name], now)
		if err != nil {
			return nil, fmt.Errorf("build plan: %w", err)
		}
		if ok {
			p.Backlogs = append(p.Backlogs, b)
		}
	}

	var assetWarnings []string
	p.Assets, assetWarnings = Assets(local)
	p.Warnings = append(p.Warnings, assetWarnings...)

	if nomad != nil {
		warnings, err := queueWarnings(ctx, nomad, local.Queues)
		if err != nil {
			return nil, fmt.Errorf("build plan: %w", err)
		}
		p.Warnings = append(p.Warnings, warnings...)
	}
	return p, nil
}

// hashed is the spec.Hash of one definition, or why it has none.
type hashed struct {
	hash string
	err  error
}

// hashAll hashes every non-nil definition of list on every core (10,000 DAGs take a fifth of a
// second of one), keeping each result at its definition's index so that Build reports the
// first problem in list order, as hashing one after another would.
func hashAll[T any](list []*T) []hashed {
	out := make([]hashed, len(list))
	fns := make([]func(context.Context) error, 0, len(list))
	for i, v := range list {
		if v == nil {
			continue
		}
		fns = append(fns, func(context.Context) error {
			out[i].hash, out[i].err = spec.Hash(v)
			return nil
		})
	}
	_ = bounded.Run(context.Background(), runtime.GOMAXPROCS(0), fns) // the functions never fail
	return out
}

// backlog is the catch-up runs creating d at now would start, and whether there are any.
func backlog(d *spec.DAG, now time.Time) (Backlog, bool, error) {
	if d == nil || d.Paused || d.Schedule == "" || d.StartDate.IsZero() {
		return Backlog{}, false, nil
	}
	loc, err := schedule.LoadLocation(d.Timezone)
	if err != nil {
		return Backlog{}, false, fmt.Errorf("dag %q: timezone: %w", d.Name, err)
	}
	s, err := schedule.Parse(d.Schedule, loc, d.StartDate)
	if err != nil {
		return Backlog{}, false, fmt.Errorf("dag %q: schedule: %w", d.Name, err)
	}
	b, err := s.Catchup(d.Catchup, d.StartDate, d.EndDate, now)
	if err != nil {
		return Backlog{}, false, fmt.Errorf("dag %q: count catch-up runs: %w", d.Name, err)
	}
	if b.Count == 0 {
		return Backlog{}, false, nil
	}
	return Backlog{DAG: d.Name, Catchup: d.Catchup, Backlog: b}, true, nil
}

// queueWarnings checks every queue against Nomad's nodes. It fails only when ctx is done.
//
// When Nomad cannot answer (unreachable, timed out, or refusing the request, such as for a
// token that may not read nodes), the check stops with one warning: every other queue would
// fail the same way. A queue Nomad could never place (a constraint it would refuse) gets a
// warning of its own and the check goes on.
func queueWarnings(ctx context.Context, nomad *nomadapi.Client, queues []*spec.Queue) ([]string, error) {
	cctx, cancel := context.WithTimeout(ctx, nomadCheckTimeout)
	defer cancel()
	var warnings []string
	for _, q := range sortedBy(queues, func(q *spec.Queue) string { return q.Name }) {
		nodes, err := nomadexec.MatchingNodes(cctx, nomad, q)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, fmt.Errorf("check queue %q against nomad: %w", q.Name, ctx.Err())
		case err != nil && nomadUnavailable(err):
			return append(warnings, fmt.Sprintf("could not check queues against Nomad at %s, so queues no node serves are not reported: %v", nomad.Address(), err)), nil
		case err != nil:
			// MatchingNodes names the queue in its error; the warning names it already.
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			warnings = append(warnings, fmt.Sprintf("queue %q: Nomad would refuse its tasks: %v", q.Name, err))
		case !anyReady(nodes):
			warnings = append(warnings, fmt.Sprintf("queue %q: no ready Nomad node matches %s; its tasks would wait until one joins", q.Name, describeQueue(q)))
		}
	}
	return warnings, nil
}

// nomadUnavailable reports whether err is Nomad failing to answer, rather than a problem with
// the queue being checked.
func nomadUnavailable(err error) bool {
	var ue *url.Error
	var re nomadapi.UnexpectedResponseError
	return errors.As(err, &ue) || errors.As(err, &re) || errors.Is(err, context.DeadlineExceeded)
}

// anyReady reports whether a node can take work now: up, eligible and not draining.
func anyReady(nodes []*nomadapi.Node) bool {
	for _, n := range nodes {
		if n != nil && n.Status == nomadapi.NodeStatusReady && n.SchedulingEligibility == nomadapi.NodeSchedulingEligible && !n.Drain {
			return true
		}
	}
	return false
}

// describeQueue says which nodes a queue asks for, in its own attribute names.
func describeQueue(q *spec.Queue) string {
	pool := q.NodePool
	if pool == "" {
		pool = "default"
	}
	s := fmt.Sprintf("node_pool %q", pool)
	if len(q.Datacenters) > 0 {
		quoted := make([]string, len(q.Datacenters))
		for i, dc := range q.Datacenters {
			quoted[i] = fmt.Sprintf("%q", dc)
		}
		s += fmt.Sprintf(" in datacenters [%s]", strings.Join(quoted, ", "))
	}
	switch n := len(q.Constraints); n {
	case 0:
	case 1:
		s += " with 1 constraint"
	default:
		s += fmt.Sprintf(" with %d constraints", n)
	}
	return s
}

func findDAG(c *spec.Config, name string) *spec.DAG {
	for _, d := range c.DAGs {
		if d != nil && d.Name == name {
			return d
		}
	}
	return nil
}
