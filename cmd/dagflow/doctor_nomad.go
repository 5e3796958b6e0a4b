package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	goversion "github.com/hashicorp/go-version"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/nomadexec"
)

// minNomadVersion is the oldest Nomad dagflow works with. Each try's job carries a disconnect
// block (new in Nomad 1.8) so that Nomad never replaces a try on a lost node behind dagflow's
// back: older servers drop the block without a word. Queues' node pools need 1.6, and the
// allocation event stream dagflow follows 1.0.
var minNomadVersion = goversion.Must(goversion.NewVersion("1.8.0"))

// nomadCapabilities are what dagflow server needs in each namespace its queues use: it
// registers, stops and purges each try's job, lists and reads them, and reads their logs.
var nomadCapabilities = []string{"submit-job", "list-jobs", "read-job", "read-logs"}

func (d *doctor) checkNomad(ctx context.Context) checkResult {
	addr := d.nomad.Address()
	var leader string
	_, err := d.nomad.Raw().Query("/v1/status/leader", &leader, (&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return failed(fmt.Sprintf("Start Nomad, or point NOMAD_ADDR (or nomad.address in the -config file) at a Nomad agent; doctor tried %s.", addr),
			"cannot reach Nomad at %s: %s", addr, d.reason(err))
	}
	if leader == "" {
		return failed("Check the Nomad servers (nomad server members) and restore their quorum: no try can be placed until Nomad has a leader.",
			"Nomad at %s answers, but its cluster has no leader", addr)
	}
	return passed("reachable at %s, cluster leader %s", addr, leader)
}

func (d *doctor) checkNomadVersion(ctx context.Context) checkResult {
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	type server struct {
		name string
		v    *goversion.Version
	}
	var servers []server
	var bad []string
	add := func(name, build string) {
		v, err := goversion.NewVersion(build)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s (%q)", name, build))
			return
		}
		servers = append(servers, server{name, v})
	}
	members, err := d.nomad.Agent().MembersOpts(q)
	source := "servers"
	if err == nil {
		for _, m := range members.Members {
			if m.Status == "alive" {
				add(m.Name, m.Tags["build"])
			}
		}
	} else {
		// The members need node read access; the agent's own version needs agent read.
		var self nomadapi.AgentSelf
		if _, err2 := d.nomad.Raw().Query("/v1/agent/self", &self, q); err2 != nil {
			return warned("Give the token node { policy = \"read\" } so doctor can read the servers' versions, or check them with nomad server members: dagflow needs Nomad "+minNomadVersion.String()+" or later.",
				"cannot read Nomad's version: %s", d.reason(err))
		}
		source = "agent"
		if b := self.Member.Tags["build"]; b != "" {
			add(self.Member.Name, b)
		} else if v, ok := self.Config["Version"].(map[string]any); ok {
			s, _ := v["Version"].(string)
			add(d.nomad.Address(), s)
		}
	}
	if len(servers) == 0 {
		return warned("Check the Nomad servers' versions with nomad server members: dagflow needs "+minNomadVersion.String()+" or later.",
			"Nomad did not say its version%s", map[bool]string{true: ": unreadable " + strings.Join(bad, ", "), false: ""}[len(bad) > 0])
	}
	sort.Slice(servers, func(i, j int) bool { return servers[i].v.LessThan(servers[j].v) })
	oldest := servers[0]
	var details []string
	for _, s := range servers {
		details = append(details, fmt.Sprintf("%s: %s", s.name, s.v))
	}
	var r checkResult
	if core(oldest.v).LessThan(minNomadVersion) {
		r = failed(fmt.Sprintf("Upgrade the Nomad servers to %s or later.", minNomadVersion),
			"Nomad %s runs %s; dagflow needs %s or later (each try's job has a disconnect block, which older Nomad ignores)", oldest.name, oldest.v, minNomadVersion)
	} else if source == "agent" {
		r = passed("the agent doctor talks to runs Nomad %s (dagflow needs %s or later); the token cannot list the servers", oldest.v, minNomadVersion)
	} else {
		r = passed("the oldest of %d Nomad servers runs %s (dagflow needs %s or later)", len(servers), oldest.v, minNomadVersion)
	}
	if len(servers) > 1 {
		r.Details = details
	}
	return r
}

// core returns v without pre-release or metadata, so that 1.8.0-dev counts as 1.8.0.
func core(v *goversion.Version) *goversion.Version {
	s := v.Segments()
	c, _ := goversion.NewVersion(fmt.Sprintf("%d.%d.%d", s[0], s[1], s[2]))
	return c
}

// nomadNamespace is the namespace of doctor's Nomad client, and of queues that name none.
func (d *doctor) nomadNamespace() string {
	if d.cfg.Nomad.Namespace != "" {
		return d.cfg.Nomad.Namespace
	}
	return orDefault(os.Getenv("NOMAD_NAMESPACE"), "default")
}

func (d *doctor) checkNomadToken(ctx context.Context) checkResult {
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	tok, _, err := d.nomad.ACLTokens().Self(q)
	var ne nomadapi.UnexpectedResponseError
	switch {
	// Nomad says ACLs are off with an error, or (1.11) with a token of its own.
	case err != nil && strings.Contains(err.Error(), "ACL support disabled"),
		err == nil && tok.AccessorID == "acls-disabled":
		return passed("Nomad's ACLs are disabled: every request is allowed")
	case err != nil && (strings.Contains(err.Error(), "ACL token not found") || strings.Contains(err.Error(), "failed to parse signed token")):
		return failed("Set NOMAD_TOKEN (or nomad.token in the -config file) to the secret ID of a token Nomad knows.",
			"Nomad does not know the token doctor was given")
	case err != nil && errors.As(err, &ne) && ne.StatusCode() == http.StatusForbidden:
		return failed("Set NOMAD_TOKEN (or nomad.token in the -config file) to the secret ID of a token Nomad knows.",
			"Nomad refuses the token doctor was given: %s", d.reason(err))
	case err != nil:
		return failed("Check the Nomad servers' logs.", "cannot ask Nomad about the token: %s", d.reason(err))
	case tok.Type == "management":
		return passed("the token %q is a management token: it may do everything", tok.Name)
	}

	// Where dagflow submits: the namespaces and node pools of the applied queues.
	pools := map[string][]string{d.nomadNamespace(): {nomadapi.NodePoolDefault}}
	var details []string
	if st := d.outcome("consul"); st != checkOK && st != checkWarn {
		details = append(details, fmt.Sprintf("checked namespace %q only: the applied queues are in Consul, which failed its check", d.nomadNamespace()))
	} else if a, err := d.loadApplied(ctx); err != nil {
		details = append(details, fmt.Sprintf("checked namespace %q only: the applied queues could not be read (%s)", d.nomadNamespace(), d.reason(err)))
	} else {
		for _, qu := range a.queues {
			ns := orDefault(qu.Namespace, d.nomadNamespace())
			pool := orDefault(qu.NodePool, nomadapi.NodePoolDefault)
			if !slices.Contains(pools[ns], pool) {
				pools[ns] = append(pools[ns], pool)
			}
		}
	}
	namespaces := slices.Sorted(maps.Keys(pools))

	missing := map[string][]string{} // namespace: capabilities
	lack := func(ns string, caps ...string) {
		for _, c := range caps {
			if !slices.Contains(missing[ns], c) {
				missing[ns] = append(missing[ns], c)
			}
		}
	}
	var refused []string // what Nomad refuses for reasons other than the token
	for _, ns := range namespaces {
		lq := &nomadapi.QueryOptions{Namespace: ns, Prefix: d.cfg.JobPrefix, PerPage: 1}
		_, _, err := d.nomad.Jobs().List(lq.WithContext(ctx))
		switch {
		case forbidden(err):
			lack(ns, "list-jobs", "read-job")
		case err != nil:
			return failed("Check the Nomad servers' logs.", "cannot list jobs in namespace %q: %s", ns, d.reason(err))
		}
		// A plan registers nothing, but Nomad checks it as it would the job itself.
		for _, pool := range pools[ns] {
			_, _, err := d.nomad.Jobs().Plan(probeJob(d.cfg.JobPrefix, ns, pool), false, (&nomadapi.WriteOptions{}).WithContext(ctx))
			switch {
			case forbidden(err):
				lack(ns, "submit-job")
			case err != nil && ctx.Err() != nil:
				return failed("Check the Nomad servers' logs.", "cannot plan a job in namespace %q: %s", ns, d.reason(err))
			case err != nil:
				refused = append(refused, fmt.Sprintf("namespace %q, node pool %q: Nomad refuses a job there: %s", ns, pool, d.reason(err)))
			}
		}
		caps, err := d.probeTombstone(ctx, ns)
		if err != nil {
			return failed("Check the Nomad servers' logs.", "cannot write a variable in namespace %q: %s", ns, d.reason(err))
		}
		for _, c := range caps {
			lack(ns, "variables "+c+" on "+nomadexec.GuardPrefix+"*")
		}
	}
	// Logs cannot be probed without an allocation: read the token's policies instead.
	rules, err := d.nomadNamespaceRules(ctx, tok)
	logsKnown := err == nil
	if err != nil {
		details = append(details, fmt.Sprintf("read-logs not checked: the token's policies could not be read (%s)", d.reason(err)))
	} else {
		for _, ns := range namespaces {
			if !rules.allows(ns, "read-logs") {
				lack(ns, "read-logs")
			}
		}
	}
	nodeRead := true
	if _, _, err := d.nomad.Nodes().List((&nomadapi.QueryOptions{PerPage: 1}).WithContext(ctx)); forbidden(err) {
		nodeRead = false
	}

	var fixRules []string
	for _, ns := range namespaces {
		if len(missing[ns]) > 0 {
			details = append(details, fmt.Sprintf("namespace %q: lacks %s", ns, strings.Join(missing[ns], ", ")))
			fixRules = append(fixRules, fmt.Sprintf("namespace %q {\n  capabilities = [%s]\n  variables {\n    path \"%s*\" { capabilities = [%s] }\n  }\n}",
				ns, quoteList(nomadCapabilities), nomadexec.GuardPrefix, quoteList(tombstoneCapabilities)))
		}
	}
	if !nodeRead {
		details = append(details, "may not read nodes: dagflow plan and doctor cannot check queues against Nomad's nodes")
		fixRules = append(fixRules, `node { policy = "read" }`)
	}
	details = append(details, refused...)
	fix := ""
	if len(fixRules) > 0 {
		fix = "Add to a policy of the token (nomad acl policy apply), then restart the servers that use it:\n" + strings.Join(fixRules, "\n")
	}
	if len(refused) > 0 {
		fix = strings.TrimPrefix(fix+"\nCreate the namespaces and node pools the queues name (nomad namespace apply, nomad node pool apply), or change the queues and apply.", "\n")
	}
	var r checkResult
	switch {
	case len(missing) > 0:
		r = failed(fix, "the token %q may not do all that dagflow server does in Nomad", tok.Name)
	case len(refused) > 0:
		r = failed(fix, "Nomad refuses jobs where queues send them")
	case !nodeRead:
		r = warned(fix, "the token %q may run dagflow's jobs, but not read nodes", tok.Name)
	case !logsKnown:
		r = warned("Check that the token's policies grant read-logs in "+strings.Join(namespaces, ", ")+".",
			"the token %q may submit, list and read jobs; whether it may read their logs is unknown", tok.Name)
	default:
		r = passed("the token %q may submit, list and read jobs and read their logs in %s, and read nodes", tok.Name, quoteList(namespaces))
	}
	r.Details = details
	return r
}

// tombstoneCapabilities are what dagflow server does with the tombstones of the jobs it purges
// (nomadexec/guard.go): write one before each purge, list, read and destroy old ones.
var tombstoneCapabilities = []string{"write", "read", "list", "destroy"}

// probeTombstone writes, lists, reads and deletes a tombstone in namespace ns, as the server
// does, and returns the capabilities Nomad refused. A tombstone names a job, and this one a
// job that never exists, so no try is ever guarded by it.
func (d *doctor) probeTombstone(ctx context.Context, ns string) (refused []string, err error) {
	at := nomadexec.GuardPath(d.cfg.JobPrefix + "doctor-probe")
	wo := (&nomadapi.WriteOptions{Namespace: ns}).WithContext(ctx)
	q := (&nomadapi.QueryOptions{Namespace: ns}).WithContext(ctx)
	v := &nomadapi.Variable{Namespace: ns, Path: at, Items: nomadapi.VariableItems{nomadexec.GuardItem: "doctor"}}
	if _, _, err := d.nomad.Variables().Update(v, wo); forbidden(err) {
		// Without write there is nothing to list, read or destroy: what the token may do
		// with one is unknown, and the rule to add names them all.
		return tombstoneCapabilities, nil
	} else if err != nil {
		return nil, err
	}
	// Nomad leaves out of a listing what the token may not list, without an error.
	if list, _, err := d.nomad.Variables().PrefixList(at, q); forbidden(err) || err == nil && len(list) == 0 {
		refused = append(refused, "list")
	} else if err != nil {
		return nil, err
	}
	if _, _, err := d.nomad.Variables().Read(at, q); forbidden(err) {
		refused = append(refused, "read")
	} else if err != nil {
		return nil, err
	}
	if _, err := d.nomad.Variables().Delete(at, wo); forbidden(err) {
		refused = append(refused, "destroy")
	} else if err != nil {
		return nil, err
	}
	return refused, nil
}

// forbidden reports whether err is Nomad's 403.
func forbidden(err error) bool {
	var ne nomadapi.UnexpectedResponseError
	return errors.As(err, &ne) && ne.StatusCode() == http.StatusForbidden
}

// quoteList prints ["a", "b"]'s inside: "a", "b".
func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return strings.Join(q, ", ")
}

// probeJob is the job doctor plans to learn whether Nomad would take dagflow's jobs in a
// namespace and node pool. It is never registered.
func probeJob(prefix, ns, pool string) *nomadapi.Job {
	id := prefix + "doctor-probe"
	job := nomadapi.NewBatchJob(id, id, "", 0)
	job.Namespace = &ns
	job.NodePool = &pool
	job.Datacenters = []string{"*"}
	task := nomadapi.NewTask("probe", "raw_exec").SetConfig("command", "/bin/true")
	job.AddTaskGroup(nomadapi.NewTaskGroup("probe", 1).AddTask(task))
	return job
}

// nomadRule is a namespace rule of a policy, with its policy expanded into capabilities, as
// Nomad returns it in a policy's RulesJSON.
type nomadRule struct {
	Name         string
	Policy       string
	Capabilities []string
}

type nomadRules []nomadRule

// nomadNamespaceRules reads the namespace rules of the token's policies, its roles' included.
// A token may read the policies and roles it holds.
func (d *doctor) nomadNamespaceRules(ctx context.Context, tok *nomadapi.ACLToken) (nomadRules, error) {
	q := (&nomadapi.QueryOptions{}).WithContext(ctx)
	names := slices.Clone(tok.Policies)
	for _, link := range tok.Roles {
		role, _, err := d.nomad.ACLRoles().Get(link.ID, q)
		if err != nil {
			return nil, fmt.Errorf("read role %s: %w", link.ID, err)
		}
		for _, p := range role.Policies {
			names = append(names, p.Name)
		}
	}
	var rules nomadRules
	for _, name := range slices.Compact(slices.Sorted(slices.Values(names))) {
		var p struct {
			RulesJSON *struct{ Namespaces []nomadRule }
		}
		_, err := d.nomad.Raw().Query("/v1/acl/policy/"+url.PathEscape(name), &p, q)
		var ne nomadapi.UnexpectedResponseError
		if errors.As(err, &ne) && ne.StatusCode() == http.StatusNotFound {
			continue // a token may name a policy nobody created, as the anonymous token does
		}
		if err != nil {
			return nil, fmt.Errorf("read policy %s: %w", name, err)
		}
		if p.RulesJSON != nil {
			rules = append(rules, p.RulesJSON.Namespaces...)
		}
	}
	return rules, nil
}

// allows reports whether the rules grant capability in namespace ns: the rules naming ns
// exactly decide when there are any, else those whose glob matches it; a deny among them
// denies. (Nomad picks the closest glob; taking every matching one is the same for the usual
// "*" and one exact rule.)
func (rs nomadRules) allows(ns, capability string) bool {
	var exact, glob []nomadRule
	for _, r := range rs {
		if r.Name == ns {
			exact = append(exact, r)
		} else if ok, _ := path.Match(r.Name, ns); ok && strings.Contains(r.Name, "*") {
			glob = append(glob, r)
		}
	}
	use := exact
	if len(use) == 0 {
		use = glob
	}
	allowed := false
	for _, r := range use {
		if r.Policy == "deny" || slices.Contains(r.Capabilities, "deny") {
			return false
		}
		if slices.Contains(r.Capabilities, capability) {
			allowed = true
		}
	}
	return allowed
}

// appliedState is what the queue and token checks read of the applied catalog.
type appliedState struct {
	queues []*spec.Queue       // sorted by name; the implicit default queue when none was applied
	usedBy map[string][]string // queue name: the DAGs with a task in it, sorted
	asks   deviceAsks          // queue name: the devices its tasks ask for
	none   bool                // nothing was applied yet
}

// loadApplied reads the applied queues, and which DAGs use them, once for every check.
func (d *doctor) loadApplied(ctx context.Context) (*appliedState, error) {
	d.appliedOnce.Do(func() { d.applied, d.appliedErr = d.readApplied(ctx) })
	return d.applied, d.appliedErr
}

func (d *doctor) readApplied(ctx context.Context) (*appliedState, error) {
	cat, err := d.store.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	a := &appliedState{usedBy: map[string][]string{}, asks: deviceAsks{}}
	if len(cat.Queues) == 0 && len(cat.DAGs) == 0 {
		a.none = true
		a.queues = []*spec.Queue{{Name: spec.DefaultQueue}}
		return a, nil
	}
	var (
		mu   sync.Mutex // guards a and errs
		wg   sync.WaitGroup
		errs []error
		sem  = make(chan struct{}, 8) // reads in flight
	)
	read := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := f(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	for name, e := range cat.Queues {
		read(func() error {
			q, err := d.store.Queue(ctx, name, e.Version)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			a.queues = append(a.queues, q)
			return nil
		})
	}
	for name, e := range cat.DAGs {
		read(func() error {
			v, err := d.store.DAGVersion(ctx, name, e.Version)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for _, t := range v.DAG.Tasks {
				qn := orDefault(t.Queue, spec.DefaultQueue)
				if !slices.Contains(a.usedBy[qn], name) {
					a.usedBy[qn] = append(a.usedBy[qn], name)
				}
				a.asks.add(qn, name, t)
			}
			return nil
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(a.queues, func(i, j int) bool { return a.queues[i].Name < a.queues[j].Name })
	for _, dags := range a.usedBy {
		sort.Strings(dags)
	}
	return a, nil
}

// nomadUnavailable reports whether err is Nomad failing to answer (unreachable, refusing, or
// too slow), rather than a problem with the queue being matched.
func nomadUnavailable(err error) bool {
	var ue *url.Error
	var re nomadapi.UnexpectedResponseError
	return errors.As(err, &ue) || errors.As(err, &re) || errors.Is(err, context.DeadlineExceeded)
}

func (d *doctor) checkQueues(ctx context.Context) checkResult {
	a, err := d.loadApplied(ctx)
	if err != nil {
		return failed(consulTokenFix, "cannot read the applied queues: %s", d.reason(err))
	}
	stubs, _, err := d.nomad.Nodes().List((&nomadapi.QueryOptions{}).WithContext(ctx))
	if err != nil {
		fix := "Check the Nomad check above."
		if forbidden(err) {
			fix = `Give the Nomad token node { policy = "read" }.`
		}
		return failed(fix, "cannot list Nomad's nodes: %s", d.reason(err))
	}
	var details, fixes []string
	var failing, warning []string
	missingNS := map[string]bool{} // namespaces Nomad says do not exist
	for _, q := range a.queues {
		ns := orDefault(q.Namespace, d.nomadNamespace())
		if _, seen := missingNS[ns]; seen {
			continue
		}
		_, _, err := d.nomad.Namespaces().Info(ns, (&nomadapi.QueryOptions{}).WithContext(ctx))
		var ne nomadapi.UnexpectedResponseError
		missingNS[ns] = errors.As(err, &ne) && ne.StatusCode() == http.StatusNotFound
		// Any other error (such as a token that may not read it) leaves the namespace to the
		// token check.
	}
	for _, q := range a.queues {
		used := a.usedBy[q.Name]
		usage := "used by no DAG"
		switch {
		case a.none:
			usage = "nothing applied yet"
		case len(used) == 1:
			usage = "used by DAG " + used[0]
		case len(used) > 1:
			usage = fmt.Sprintf("used by %d DAGs", len(used))
		}
		nodes, err := nomadexec.MatchingNodes(ctx, d.nomad, q)
		var why, fix string
		switch {
		case err != nil && nomadUnavailable(err):
			return failed("Check the Nomad check above.", "cannot match queue %q against Nomad's nodes: %s", q.Name, d.reason(err))
		case err != nil:
			why = "Nomad would refuse its tasks: " + err.Error()
			fix = "fix the queue's constraints or datacenters, and apply"
		case missingNS[orDefault(q.Namespace, d.nomadNamespace())]:
			ns := orDefault(q.Namespace, d.nomadNamespace())
			why = fmt.Sprintf("Nomad has no namespace %q, so it refuses its tasks", ns)
			fix = fmt.Sprintf("create it (nomad namespace apply %s), or set the queue's namespace to one Nomad has (nomad namespace list) and apply", ns)
		case len(nodes) > 0:
			var counts string
			if counts, why, fix = a.asks.check(q.Name, nodes); why == "" {
				details = append(details, fmt.Sprintf("queue %q (%s): %s%s", q.Name, usage, nodeNames(nodes), counts))
				continue
			}
			why = fmt.Sprintf("%s, but %s", nodeNames(nodes), why)
		default:
			if why, fix, err = d.explainQueue(ctx, q, stubs); err != nil {
				return failed("Check the Nomad check above.", "cannot match queue %q against Nomad's nodes: %s", q.Name, d.reason(err))
			}
		}
		details = append(details, fmt.Sprintf("queue %q (%s): %s", q.Name, usage, why))
		fixes = append(fixes, fmt.Sprintf("queue %q: %s.", q.Name, fix))
		if len(used) > 0 {
			failing = append(failing, q.Name)
		} else {
			warning = append(warning, q.Name)
		}
	}
	fix := strings.Join(fixes, "\n")
	var r checkResult
	switch {
	case len(failing) > 0:
		r = failed(fix, "%s on any ready, eligible Nomad node", queueCount(failing, len(a.queues)))
	case len(warning) > 0:
		r = warned(fix, "%s on any ready, eligible Nomad node, but no DAG uses %s yet", queueCount(warning, len(a.queues)), map[bool]string{true: "it", false: "them"}[len(warning) == 1])
	default:
		r = passed("%s ready, eligible Nomad nodes", map[bool]string{true: "the queue has", false: fmt.Sprintf("each of the %d queues has", len(a.queues))}[len(a.queues) == 1])
	}
	r.Details = details
	return r
}

// queueCount names the queues that cannot run their tasks: `queue "gpu" cannot run its tasks`
// or `2 of 3 queues ("a", "b") cannot run their tasks`.
func queueCount(names []string, total int) string {
	if len(names) == 1 {
		return fmt.Sprintf("queue %q cannot run its tasks", names[0])
	}
	return fmt.Sprintf("%d of %d queues (%s) cannot run their tasks", len(names), total, quoteList(names))
}

// nodeNames lists up to three nodes by name.
func nodeNames(nodes []*nomadapi.Node) string {
	const shown = 3
	var names []string
	for _, n := range nodes[:min(len(nodes), shown)] {
		names = append(names, n.Name)
	}
	s := fmt.Sprintf("%d node%s (%s", len(nodes), map[bool]string{true: "", false: "s"}[len(nodes) == 1], strings.Join(names, ", "))
	if len(nodes) > shown {
		s += fmt.Sprintf(", and %d more", len(nodes)-shown)
	}
	return s + ")"
}

// explainQueue says why no node matches q, and what would change that: its node pool, then
// its datacenters, then each constraint, narrowing with nomadexec.MatchingNodes at each step.
func (d *doctor) explainQueue(ctx context.Context, q *spec.Queue, stubs []*nomadapi.NodeListStub) (why, fix string, err error) {
	pool := orDefault(q.NodePool, nomadapi.NodePoolDefault)
	var inPool []*nomadapi.NodeListStub
	for _, s := range stubs {
		if pool == nomadapi.NodePoolAll || orDefault(s.NodePool, nomadapi.NodePoolDefault) == pool {
			inPool = append(inPool, s)
		}
	}
	if len(inPool) == 0 {
		return fmt.Sprintf("no Nomad node is in node pool %q", pool),
			fmt.Sprintf("start a Nomad client with client { node_pool = %q } (nomad node pool apply creates the pool), or set the queue's node_pool to a pool that has nodes (nomad node pool list) and apply", pool), nil
	}
	ready, err := nomadexec.MatchingNodes(ctx, d.nomad, &spec.Queue{Name: q.Name, NodePool: q.NodePool})
	if err != nil {
		return "", "", err
	}
	if len(ready) == 0 {
		var states, fixes []string
		for _, s := range inPool {
			switch {
			case s.Status != nomadapi.NodeStatusReady:
				states = append(states, fmt.Sprintf("%s is %s", s.Name, s.Status))
				fixes = append(fixes, fmt.Sprintf("bring node %s back (its Nomad client is not heartbeating)", s.Name))
			case s.Drain:
				states = append(states, fmt.Sprintf("%s is draining", s.Name))
				fixes = append(fixes, fmt.Sprintf("nomad node drain -disable %s", shortID(s.ID)))
			default:
				states = append(states, fmt.Sprintf("%s is ineligible", s.Name))
				fixes = append(fixes, fmt.Sprintf("nomad node eligibility -enable %s", shortID(s.ID)))
			}
		}
		return fmt.Sprintf("no node of pool %q can take work: %s", pool, strings.Join(states, ", ")),
			strings.Join(fixes, ", or ") + ", or start another Nomad client in pool " + pool, nil
	}
	if len(q.Datacenters) > 0 {
		inDC, err := nomadexec.MatchingNodes(ctx, d.nomad, &spec.Queue{Name: q.Name, NodePool: q.NodePool, Datacenters: q.Datacenters})
		if err != nil {
			return "", "", err
		}
		if len(inDC) == 0 {
			var dcs []string
			for _, n := range ready {
				if !slices.Contains(dcs, n.Datacenter) {
					dcs = append(dcs, n.Datacenter)
				}
			}
			sort.Strings(dcs)
			return fmt.Sprintf("the ready nodes of pool %q are in datacenters %s, none in %s", pool, quoteList(dcs), quoteList(q.Datacenters)),
				fmt.Sprintf("add one of %s to the queue's datacenters and apply, or start a Nomad client in one of %s", quoteList(dcs), quoteList(q.Datacenters)), nil
		}
		ready = inDC
	}
	var unmet []spec.Constraint
	for _, c := range q.Constraints {
		one := &spec.Queue{Name: q.Name, NodePool: q.NodePool, Datacenters: q.Datacenters, Constraints: []spec.Constraint{c}}
		nodes, err := nomadexec.MatchingNodes(ctx, d.nomad, one)
		if err != nil {
			return "", "", err
		}
		if len(nodes) == 0 {
			unmet = append(unmet, c)
		}
	}
	if len(unmet) == 0 {
		return fmt.Sprintf("each of its %d constraints is met by some ready node, but no node meets them all", len(q.Constraints)),
			"give one node everything the queue's constraints ask (nomad node status -verbose NODE lists its attributes and meta), or relax them and apply", nil
	}
	var texts, fixes []string
	for _, c := range unmet {
		texts = append(texts, formatConstraint(c))
		fixes = append(fixes, constraintFix(c, ready[0]))
	}
	where := fmt.Sprintf("pool %q", pool)
	if len(q.Datacenters) > 0 {
		where += " in " + quoteList(q.Datacenters)
	}
	return fmt.Sprintf("no ready node of %s satisfies %s", where, strings.Join(texts, ", nor ")),
		strings.Join(fixes, "; ") + "; or change the queue's constraints and apply", nil
}

// constraintFix says how a node could come to satisfy c; example is a ready node to name.
func constraintFix(c spec.Constraint, example *nomadapi.Node) string {
	op := orDefault(c.Operator, "=")
	if key, ok := strings.CutPrefix(c.Attribute, "${meta."); ok && (op == "=" || op == "==" || op == "is") && !strings.HasPrefix(c.Value, "${") {
		key = strings.TrimSuffix(key, "}")
		return fmt.Sprintf("give a node the meta %s = %q: nomad node meta apply -node-id %s %s=%s, or client { meta { %s = %q } } in its agent configuration",
			key, c.Value, shortID(example.ID), key, c.Value, key, c.Value)
	}
	if strings.HasPrefix(c.Attribute, "${attr.") {
		return fmt.Sprintf("no ready node has %s as asked: node attributes come from Nomad's fingerprinting (nomad node status -verbose %s lists them)", c.Attribute, shortID(example.ID))
	}
	return fmt.Sprintf("give a node what %s asks (nomad node status -verbose %s lists its attributes and meta)", formatConstraint(c), shortID(example.ID))
}

// formatConstraint prints a constraint as Nomad does: ${meta.gpu} = true.
func formatConstraint(c spec.Constraint) string {
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", c.Attribute, orDefault(c.Operator, "="), c.Value))
}

// shortID is the first 8 characters of a Nomad ID, which its CLI accepts.
func shortID(id string) string {
	return id[:min(len(id), 8)]
}
