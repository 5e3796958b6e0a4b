package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/api"
)

// Clock skew limits. The active server decides from its own clock when an interval has ended
// and its run may start, when a retry is due and when a task has run too long. After a failover
// the next leader decides by its clock instead, so a difference between the servers moves
// every one of those by as much: a leader whose clock runs ahead starts runs before their
// interval has ended, on data that may not all be there yet.
const (
	// clockWarn is about what a run's start already varies by (Nomad reports a finished
	// allocation about once a second), so less is not worth a word.
	clockWarn = time.Second
	// clockFail is a difference no schedule should absorb: runs start early or late, and a
	// retry delay or timeout of seconds changes by its own size.
	clockFail = 10 * time.Second
)

// reason says in one line why a request failed, without the URL that the clients' errors
// repeat.
func (d *doctor) reason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", d.timeout)
	}
	var ue *url.Error
	var se consulapi.StatusError
	var ne nomadapi.UnexpectedResponseError
	switch {
	case errors.As(err, &ue):
		return oneLine(ue.Err.Error())
	case errors.As(err, &se):
		return oneLine(fmt.Sprintf("%d %s", se.Code, se.Body))
	case errors.As(err, &ne) && ne.HasStatusCode():
		return oneLine(fmt.Sprintf("%d %s", ne.StatusCode(), ne.Body()))
	}
	return oneLine(err.Error())
}

// multiErrorHeader starts the multi-line errors of go-multierror, which Nomad answers with.
var multiErrorHeader = regexp.MustCompile(`\d+ errors? occurred:`)

// oneLine joins the lines of an error message with "; ", dropping go-multierror's header and
// bullets.
func oneLine(s string) string {
	s = multiErrorHeader.ReplaceAllString(s, "")
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimPrefix(strings.TrimSpace(l), "* "); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// consulFix is what to do when Consul refuses a request with doctor's token.
const consulTokenFix = "Give the token (CONSUL_HTTP_TOKEN, or consul.token in the -config file) the permissions the Consul token check lists."

func (d *doctor) checkConsul(ctx context.Context) checkResult {
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	leader, err := d.consul.Status().LeaderWithQueryOptions(q)
	if err != nil {
		return failed(fmt.Sprintf("Start Consul, or point CONSUL_HTTP_ADDR (or consul.address in the -config file) at a Consul agent; doctor tried %s.", d.consulAddr),
			"cannot reach Consul at %s: %s", d.consulAddr, d.reason(err))
	}
	if leader == "" {
		return failed("Check the Consul servers (consul operator raft list-peers) and restore their quorum: dagflow's state and its lock live in Consul.",
			"Consul at %s answers, but its cluster has no leader", d.consulAddr)
	}
	msg := fmt.Sprintf("reachable at %s, cluster leader %s", d.consulAddr, leader)
	// The version needs agent read access, which dagflow does not: it is shown when allowed.
	var self struct{ Config struct{ Version string } }
	if _, err := d.consul.Raw().Query("/v1/agent/self", &self, q); err == nil && self.Config.Version != "" {
		msg += ", Consul " + self.Config.Version
	}
	return passed("%s", msg)
}

// aclAuthz is one question to, and answer of, Consul's /v1/internal/acl/authorize, which says
// what the request's token may do without doing it.
type aclAuthz struct {
	Resource string
	Segment  string `json:",omitempty"`
	Access   string
	Allow    bool `json:",omitempty"`
}

func (d *doctor) checkConsulToken(ctx context.Context) checkResult {
	prefix, svc := d.store.Prefix(), d.cfg.ServiceName
	// Sessions are created on the node of the agent each server talks to: those the servers
	// are registered on, or this agent's when none is.
	var nodes []string
	if insts, _, err := d.instances(ctx); err == nil {
		for _, in := range insts {
			if !slices.Contains(nodes, in.Node.Node) {
				nodes = append(nodes, in.Node.Node)
			}
		}
	}
	if len(nodes) == 0 {
		var self struct{ Config struct{ NodeName string } }
		q := (&consulapi.QueryOptions{}).WithContext(ctx)
		if _, err := d.consul.Raw().Query("/v1/agent/self", &self, q); err == nil && self.Config.NodeName != "" {
			nodes = append(nodes, self.Config.NodeName)
		}
	}
	type need struct {
		authz aclAuthz
		what  string // what dagflow does with it
		rule  string // the policy rule that grants it
	}
	needs := []need{
		{aclAuthz{Resource: "key", Segment: prefix + "catalog", Access: "write"}, fmt.Sprintf("write its state under %q", prefix), fmt.Sprintf("key_prefix %q { policy = \"write\" }", prefix)},
		{aclAuthz{Resource: "key", Segment: prefix + "leader", Access: "write"}, fmt.Sprintf("take the lock %sleader", prefix), fmt.Sprintf("key_prefix %q { policy = \"write\" }", prefix)},
		{aclAuthz{Resource: "service", Segment: svc, Access: "write"}, fmt.Sprintf("register the service %q", svc), fmt.Sprintf("service %q { policy = \"write\" }", svc)},
	}
	for _, n := range nodes {
		needs = append(needs, need{aclAuthz{Resource: "session", Segment: n, Access: "write"}, fmt.Sprintf("create its lock session on node %q", n), fmt.Sprintf("session %q { policy = \"write\" }", n)})
	}
	if len(nodes) == 0 {
		needs = append(needs, need{aclAuthz{Resource: "session", Access: "write"}, "create its lock session", `session_prefix "" { policy = "write" }`})
	}
	reqs := make([]aclAuthz, len(needs))
	for i, n := range needs {
		reqs[i] = n.authz
	}
	var answers []aclAuthz
	err := d.consulPost(ctx, "/v1/internal/acl/authorize", reqs, &answers)
	var se consulapi.StatusError
	switch {
	case errors.As(err, &se) && strings.Contains(se.Body, "ACL support disabled"):
		return passed("Consul's ACLs are disabled: every request is allowed")
	case errors.As(err, &se) && strings.Contains(se.Body, "ACL not found"):
		return failed("Set CONSUL_HTTP_TOKEN (or consul.token in the -config file) to the secret ID of a token Consul knows.",
			"Consul does not know the token doctor was given")
	case errors.As(err, &se) && se.Code == http.StatusNotFound:
		return warned("Check by hand that the token's policies grant: "+strings.Join(uniqueRules(needs, func(n need) string { return n.rule }), "; "),
			"this Consul cannot say what a token may do (no /v1/internal/acl/authorize), so the token was not checked")
	case err != nil:
		return failed(consulTokenFix, "cannot ask Consul what the token may do: %s", d.reason(err))
	case len(answers) != len(reqs):
		return warned("Check the token's policies by hand.", "Consul answered %d of %d permission questions", len(answers), len(reqs))
	}
	var missing []need
	for i, a := range answers {
		if !a.Allow {
			missing = append(missing, needs[i])
		}
	}
	if len(missing) == 0 {
		return passed("the token may write keys under %q, register the service %q and create sessions", prefix, svc)
	}
	r := failed("Add to a policy of the token (consul acl policy update), then restart the servers that use it:\n"+
		strings.Join(uniqueRules(missing, func(n need) string { return n.rule }), "\n"),
		"the token may not do all that dagflow server does")
	for _, m := range missing {
		r.Details = append(r.Details, fmt.Sprintf("may not %s (%s %s %q)", m.what, m.authz.Resource, m.authz.Access, m.authz.Segment))
	}
	return r
}

// consulPost sends a POST request to Consul, which the Consul client only sends for its own
// methods, with the client's HTTP client and token.
func (d *doctor) consulPost(ctx context.Context, path string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.consulAddr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if d.consulCfg.Token != "" {
		req.Header.Set("X-Consul-Token", d.consulCfg.Token)
	}
	resp, err := d.consulCfg.HttpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return consulapi.StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// uniqueRules returns rule(x) for each x, without repeats, in order.
func uniqueRules[T any](xs []T, rule func(T) string) []string {
	var out []string
	for _, x := range xs {
		if r := rule(x); !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// instances returns the dagflow server instances of this installation registered in Consul
// (the service, with meta kv_prefix equal to the prefix), sorted by service ID, and whether
// Consul hid some entries from the token.
func (d *doctor) instances(ctx context.Context) ([]*consulapi.ServiceEntry, bool, error) {
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	entries, meta, err := d.consul.Health().Service(d.cfg.ServiceName, "", false, q)
	if err != nil {
		return nil, false, fmt.Errorf("list the instances of service %q: %w", d.cfg.ServiceName, err)
	}
	var out []*consulapi.ServiceEntry
	for _, e := range entries {
		if e.Service != nil && e.Node != nil && e.Service.Meta["kv_prefix"] == d.store.Prefix() {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service.ID < out[j].Service.ID })
	return out, meta.ResultsFilteredByACLs, nil
}

// describeInstance is one line about a registered instance.
func describeInstance(e *consulapi.ServiceEntry) string {
	return fmt.Sprintf("%s on node %s at %s: tagged %s, health %s", e.Service.ID, e.Node.Node,
		orDash(e.Service.Meta["url"]), strings.Join(e.Service.Tags, ","), e.Checks.AggregatedStatus())
}

// startServerFix is what to do when no server runs.
const startServerFix = "Start a dagflow server against this Consul and KV prefix: dagflow server -config server.hcl, or on Nomad: nomad job run jobs/orchestrator.nomad (see docs/server.md)."

func (d *doctor) checkLeader(ctx context.Context) checkResult {
	prefix := d.store.Prefix()
	key := prefix + "leader"
	q := (&consulapi.QueryOptions{RequireConsistent: true}).WithContext(ctx)
	pair, _, err := d.consul.KV().Get(key, q)
	if err != nil {
		return failed(consulTokenFix, "cannot read the lock key %s: %s", key, d.reason(err))
	}
	insts, hidden, err := d.instances(ctx)
	if err != nil {
		return failed(consulTokenFix, "cannot list the registered servers: %s", d.reason(err))
	}
	var details []string
	for _, in := range insts {
		details = append(details, describeInstance(in))
	}
	if hidden {
		details = append(details, "Consul hid some instances from this token: it lacks service or node read access")
	}
	if pair == nil || pair.Session == "" {
		if len(insts) == 0 {
			r := failed(startServerFix, "no dagflow server is registered in Consul for the KV prefix %q, so none leads", prefix)
			r.Details = details
			return r
		}
		r := failed("See the instances' logs: each says why it cannot take the lock (\"contend for leadership\"). A lock whose holder crashed is free again after leader.lock_delay.",
			"none of the %d registered servers holds the lock %s", len(insts), key)
		r.Details = details
		return r
	}
	holder, holderURL, _ := strings.Cut(string(pair.Value), " ")
	sess, _, err := d.consul.Session().Info(pair.Session, q)
	if err != nil {
		return failed(consulTokenFix, "cannot read the lock's session %s: %s", pair.Session, d.reason(err))
	}
	if sess == nil {
		return failed("Consul releases a lock whose session ends, so this should not last: run doctor again, and if it persists, delete the key (consul kv delete "+key+") so a server can take it.",
			"the lock %s is held by session %s, which no longer exists", key, pair.Session)
	}
	var bound []string // Checks, the field of old Consuls, repeats the newer two
	for _, id := range slices.Concat(sess.Checks, sess.NodeChecks) {
		if !slices.Contains(bound, id) {
			bound = append(bound, id)
		}
	}
	for _, sc := range sess.ServiceChecks {
		if !slices.Contains(bound, sc.ID) {
			bound = append(bound, sc.ID)
		}
	}
	checks, _, err := d.consul.Health().Node(sess.Node, q)
	if err != nil {
		return failed(consulTokenFix, "cannot read the health checks of node %s, which the lock's session is bound to: %s", sess.Node, d.reason(err))
	}
	status := map[string]string{}
	for _, c := range checks {
		status[c.CheckID] = c.Status
	}
	var bad []string
	for _, id := range bound {
		if st := status[id]; st != consulapi.HealthPassing {
			bad = append(bad, fmt.Sprintf("%s is %s", id, orDefault(st, "missing")))
		}
	}
	details = append([]string{fmt.Sprintf("lock %s: session %s on node %s, bound to %s", key, sess.ID, sess.Node, orDefault(strings.Join(bound, ", "), "no check"))}, details...)
	var r checkResult
	var entry *consulapi.ServiceEntry
	for _, in := range insts {
		if in.Service.ID == holder {
			entry = in
		}
	}
	switch {
	case len(bad) > 0:
		r = failed("The session ends as soon as a check it is bound to is critical, and the lock with it: see the leader's logs, and the check's output in Consul.",
			"the leader's session is bound to checks that are not passing: %s", strings.Join(bad, "; "))
	case len(bound) == 0:
		r = warned("dagflow server binds its session to its health check: check that only dagflow servers of this installation use the KV prefix "+prefix+".",
			"the lock's session %s is bound to no health check, so a holder that dies keeps the lock", sess.ID)
	case entry == nil:
		r = failed("The lock is held by something not registered as service "+d.cfg.ServiceName+": check that only dagflow servers of this installation use the KV prefix "+prefix+", and that -config names the servers' service_name.",
			"the lock is held by %q, which is not a registered instance of service %q", holder, d.cfg.ServiceName)
	case entry.Checks.AggregatedStatus() != consulapi.HealthPassing:
		r = failed("See the leader's logs, and its health check's output in Consul.", "the leader %s is %s in Consul", holder, entry.Checks.AggregatedStatus())
	case !slices.Contains(entry.Service.Tags, "active"):
		r = warned("A new leader re-tags itself at once: run doctor again. If the tag stays, see the leader's logs (\"register service\").",
			"%s holds the lock, but Consul has it tagged %s, not active", holder, strings.Join(entry.Service.Tags, ","))
	case holderURL == "" && entry.Service.Meta["url"] == "":
		r = warned("dagflow server writes its URL into the lock and its registration: check that only dagflow servers of this installation use the KV prefix "+prefix+".",
			"%s holds the lock, but neither the lock nor its registration says where it serves", holder)
	default:
		holderURL = orDefault(holderURL, entry.Service.Meta["url"])
		h, err := d.health(ctx, holderURL)
		switch {
		case err != nil:
			r = warned("Consul reaches it, but this machine does not: the commands that use the API need to reach an instance (DAGFLOW_ADDR).",
				"%s holds the lock, but doctor cannot reach it at %s: %s", holder, holderURL, d.reason(err))
		case h.Role != "active":
			r = failed("See the leader's logs: it holds the lock but does not act on it.", "%s holds the lock, but answers role %q at %s", holder, h.Role, holderURL)
		default:
			r = passed("%s leads: it holds the lock with a healthy session, is registered active in Consul, and answers at %s", holder, holderURL)
		}
	}
	r.Details = details
	return r
}

// health asks the instance at baseURL for its health, without a token.
func (d *doctor) health(ctx context.Context, baseURL string) (*api.Health, error) {
	c, err := api.NewClient(&api.Config{Address: baseURL})
	if err != nil {
		return nil, err
	}
	return c.Status().Health(ctx)
}

// clockSample is one instance's clock compared with this machine's.
type clockSample struct {
	entry       *consulapi.ServiceEntry
	offset      time.Duration // its clock minus this machine's
	uncertainty time.Duration // half the round trip
	err         error
	noTime      bool // it answered without its time: a dagflow older than doctor
}

func (d *doctor) checkClock(ctx context.Context) checkResult {
	insts, _, err := d.instances(ctx)
	if err != nil {
		return failed(consulTokenFix, "cannot list the registered servers: %s", d.reason(err))
	}
	if len(insts) == 0 {
		return checkResult{Status: checkSkip, Message: fmt.Sprintf("no dagflow server is registered for the KV prefix %q to compare clocks with", d.store.Prefix())}
	}
	samples := make([]clockSample, len(insts))
	var wg sync.WaitGroup
	for i, in := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			samples[i] = d.sampleClock(ctx, in)
		}()
	}
	wg.Wait()
	var (
		details  []string
		measured []clockSample
		problems []string
	)
	for _, s := range samples {
		name := s.entry.Service.ID
		switch {
		case s.err != nil:
			details = append(details, fmt.Sprintf("%s: cannot reach it at %s: %s", name, s.entry.Service.Meta["url"], d.reason(s.err)))
			problems = append(problems, name+" could not be asked")
		case s.noTime:
			details = append(details, fmt.Sprintf("%s: answers without its time (a dagflow older than this one)", name))
			problems = append(problems, name+" does not tell its time")
		default:
			measured = append(measured, s)
			details = append(details, fmt.Sprintf("%s: %s from this machine (±%s)", name, signed(s.offset), roundDuration(s.uncertainty)))
		}
	}
	if len(measured) == 0 {
		r := warned("Make the servers reachable from this machine (their meta url), and run the same dagflow version on them.", "no server's clock could be read")
		r.Details = details
		return r
	}
	// What is judged is how far the servers' clocks are apart at least, the uncertainty of
	// each reading taken off; with one server, how far it is from this machine.
	lo, hi := measured[0], measured[0]
	for _, s := range measured {
		if s.offset < lo.offset {
			lo = s
		}
		if s.offset > hi.offset {
			hi = s
		}
	}
	var skew, bound time.Duration
	var what string
	if len(measured) == 1 {
		skew = lo.offset.Abs()
		bound = max(skew-lo.uncertainty, 0)
		what = fmt.Sprintf("the only server's clock (%s) is %s from this machine's", lo.entry.Service.ID, roundDuration(skew))
	} else {
		skew = hi.offset - lo.offset
		bound = max(skew-hi.uncertainty-lo.uncertainty, 0)
		what = fmt.Sprintf("the %d servers' clocks are %s apart", len(measured), roundDuration(skew))
	}
	const ntpFix = "Run NTP (chrony or systemd-timesyncd) on every server's machine. The active server starts runs, retries and timeouts by its own clock, so after a failover they shift by the difference; a clock ahead starts runs before their interval has ended."
	var r checkResult
	switch {
	case bound >= clockFail:
		r = failed(ntpFix, "%s (more than %s)", what, clockFail)
	case bound >= clockWarn:
		r = warned(ntpFix, "%s (more than %s)", what, clockWarn)
	case len(problems) > 0:
		r = warned("Make every server reachable from this machine (its meta url), and run the same dagflow version on all.", "%s; %s", what, strings.Join(problems, ", "))
	default:
		r = passed("%s", what)
	}
	r.Details = details
	return r
}

// sampleClock asks an instance for its time and compares it with the middle of the round trip.
func (d *doctor) sampleClock(ctx context.Context, e *consulapi.ServiceEntry) clockSample {
	s := clockSample{entry: e}
	u := e.Service.Meta["url"]
	if u == "" {
		s.err = errors.New("it is registered without meta url")
		return s
	}
	start := time.Now()
	h, err := d.health(ctx, u)
	rtt := time.Since(start)
	if err != nil {
		s.err = err
		return s
	}
	if h.Time.IsZero() {
		s.noTime = true
		return s
	}
	// Wall-clock arithmetic: h.Time carries no monotonic reading.
	mid := start.Round(0).Add(rtt / 2)
	s.offset = h.Time.Sub(mid)
	s.uncertainty = rtt / 2
	return s
}

// signed prints a duration with its sign: +1.2ms, -3s.
func signed(d time.Duration) string {
	if d < 0 {
		return "-" + roundDuration(-d)
	}
	return "+" + roundDuration(d)
}

// roundDuration rounds a duration for people: to the millisecond, or 0.1 s above a second.
func roundDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(100 * time.Millisecond).String()
	}
}

func (d *doctor) checkAPI(ctx context.Context) checkResult {
	c, err := api.NewClient(&api.Config{Address: d.apiAddr, Token: d.apiToken})
	if err != nil {
		return failed("Set -address or DAGFLOW_ADDR to a dagflow server's URL, such as http://127.0.0.1:8080.", "the address %q is not a URL: %v", d.apiAddr, err)
	}
	addr := c.Address()
	h, err := c.Status().Health(ctx)
	if err != nil {
		return failed("Check that dagflow server runs there, or point -address or DAGFLOW_ADDR at one: the commands that use the API reach the server there.",
			"cannot reach the dagflow server at %s: %s", addr, d.reason(err))
	}
	if d.apiToken == "" {
		return passed("the server at %s answers (%s); no token to check (-token or DAGFLOW_TOKEN)", addr, h.Role)
	}
	tok, err := c.ACL().Self(ctx)
	var ae *api.Error
	switch {
	case errors.As(err, &ae) && (ae.StatusCode == http.StatusUnauthorized || ae.StatusCode == http.StatusForbidden):
		return failed("Pass -token or set DAGFLOW_TOKEN to the secret ID of a token of this installation; an admin creates one with dagflow acl token create.",
			"the server at %s answers (%s), but refuses the token: %s", addr, h.Role, ae.Message)
	case err != nil:
		return failed("Check the server's logs.", "the server at %s answers (%s), but cannot check the token: %s", addr, h.Role, d.reason(err))
	}
	return passed("the server at %s answers (%s) and accepts the token %q, role %s", addr, h.Role, tok.Name, tok.Role)
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
