package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	nomadapi "github.com/hashicorp/nomad/api"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/netns"
	"github.com/dagflow/dagflow/internal/serverproc"
)

// The partition scenario: the first server of the installation runs in a network namespace
// of its own (package internal/netns), joined to the host by two veth pairs. Over the first it
// talks to the cluster's Consul client agent, and Consul's health check of it comes back the
// same way; over the second it talks to the first Nomad client, and the test reaches its API.
// The fault cuts the first link while that server leads and registers a fan-out: it is cut
// off from Consul, its lock session is invalidated when its health check fails, and a standby
// takes over, while it still reaches Nomad, the dangerous case: it must register no job once
// its successor holds the lock. Once the successor has finished the run, the link is healed,
// and the old leader must stand by and contend again.

// partition is the partition scenario's namespace, links and forwarders, made by prepare.
type partition struct {
	ns                  *netns.Namespace
	consulLink, nomadLk *netns.Link
	consul, nomad       *netns.Forwarder
}

// partitionScenario returns the scenario.
func partitionScenario() Scenario {
	pt := &partition{}
	return Scenario{
		Name: "partition",
		Title: "cut the active server off from Consul (a network namespace; it still reaches Nomad) while it " +
			"registers a fan-out, until its successor has finished the run, then heal",
		Faults:  1,
		Cluster: true,
		// JSON logs: the fault reads the times of what the servers did from them.
		Config: func(context.Context, *Stack) (string, error) { return "log_json = true\n", nil },
		DAG: func(p Params) DAG {
			// More tries at once than the engine registers at once (32), so some wait.
			return DAG{Name: "chaos", Lanes: 4 * p.Lanes, Depth: 1, Sleep: 2 * p.Sleep}
		},
		Prepare: pt.prepare,
		Inject:  pt.inject,
	}
}

// prepare makes the namespace, its two links and the forwarders from their host ends to the
// stack's Consul agent and Nomad client, and returns what puts the first server in it.
func (pt *partition) prepare(_ context.Context, s *Stack) (func(int, *serverproc.Options), func(), error) {
	var err error
	if pt.ns, err = netns.New(); err != nil {
		return nil, nil, err
	}
	undo := func() {
		if pt.consul != nil {
			pt.consul.Close()
		}
		if pt.nomad != nil {
			pt.nomad.Close()
		}
		pt.ns.Close()
	}
	if pt.consulLink, err = pt.ns.AddLink(); err != nil {
		undo()
		return nil, nil, err
	}
	if pt.nomadLk, err = pt.ns.AddLink(); err != nil {
		undo()
		return nil, nil, err
	}
	if pt.consul, err = netns.Forward(net.JoinHostPort(pt.consulLink.HostIP.String(), "0"), s.Consul.HTTPAddr); err != nil {
		undo()
		return nil, nil, err
	}
	if pt.nomad, err = netns.Forward(net.JoinHostPort(pt.nomadLk.HostIP.String(), "0"), s.Nomad.HTTPAddr); err != nil {
		undo()
		return nil, nil, err
	}
	adjust := func(i int, o *serverproc.Options) {
		if i != 0 {
			return
		}
		o.Netns = pt.ns
		o.ConsulAddr = pt.consul.Addr()
		o.NomadAddr = "http://" + pt.nomad.Addr()
		o.AdvertiseHost = pt.consulLink.PeerIP.String() // Consul's check comes over the cut link
		o.ReachHost = pt.nomadLk.PeerIP.String()        // the test's requests do not
	}
	return adjust, undo, nil
}

// inject makes the server in the namespace lead, triggers a run of the fan-out, cuts the
// server's link to Consul as soon as the run's tries are recorded (while it registers their
// jobs), waits until another server leads, the cut-off one stands down and the run is finished,
// then heals the link and waits until the old leader contends again. From the servers' logs
// and Nomad it measures when Nomad took the last job the cut-off leader registered and when
// its successor took the lock, and fails unless the one is before the other.
func (pt *partition) inject(ctx context.Context, c *Cluster, n int) (time.Duration, string, error) {
	a := c.Servers[0]
	if err := leadFrom(ctx, c, a); err != nil {
		return 0, "", err
	}
	id, err := c.Trigger(ctx)
	if err != nil {
		return 0, "", err
	}
	if _, err := c.WaitRun(ctx, id, recoverTimeout, "no try queued", func(r *api.Run) bool { return r.TaskStates["queued"] > 0 }); err != nil {
		return 0, "", err
	}
	offsets := map[*serverproc.Server]int64{}
	for _, s := range c.Servers {
		offsets[s] = fileSize(s.LogPath())
	}
	cutAt := time.Now()
	if err := pt.consulLink.Cut(); err != nil {
		return 0, "", err
	}
	c.setPaused(a, true) // its API cannot read Consul: requests go to the others
	healed := false
	heal := func() error {
		if healed {
			return nil
		}
		healed = true
		c.setPaused(a, false)
		return pt.consulLink.Heal()
	}
	defer heal()

	next, err := waitActive(ctx, c.Others(a)...)
	if err != nil {
		return 0, "", fmt.Errorf("after cutting %s off from Consul: %w", a.URL(), err)
	}
	took := time.Since(cutAt)
	// The cut-off server still answers over the other link: it must give its leadership up.
	if err := waitRole(ctx, a, "standby"); err != nil {
		return took, "", fmt.Errorf("cut off from Consul, %s never stood down (%s leads): %w", a.URL(), next.URL(), err)
	}
	stoodDown := time.Since(cutAt)
	if !waitFinished(ctx, c, []string{id}, recoverTimeout) {
		return took, "", fmt.Errorf("run %s did not finish while %s was cut off", id, a.URL())
	}
	deregistered := time.Duration(0)
	if n == 2 {
		// The second cut of a repetition (the long version's) lasts until Consul deregistered
		// the cut-off server, its check critical for deregister_after: back, it must register
		// again to contend.
		if err := waitDeregistered(ctx, c, a); err != nil {
			return took, "", err
		}
		deregistered = time.Since(cutAt)
	}
	lastRequest := pt.consul.LastFromClient()
	healOffset := fileSize(a.LogPath())
	healAt := time.Now()
	if err := heal(); err != nil {
		return took, "", err
	}
	// Back, it stands by and contends again: its log shows a new session, bound to its check.
	if err := waitLog(ctx, a, healOffset, "session created"); err != nil {
		return took, "", fmt.Errorf("healed, %s does not contend again: %w", a.URL(), err)
	}
	contends := time.Since(healAt)
	if err := waitRole(ctx, a, "standby"); err != nil {
		return took, "", fmt.Errorf("healed, %s (%s leads): %w", a.URL(), next.URL(), err)
	}

	// What the cut-off leader did after the cut (and after the heal: nothing, as it stands
	// by), and when its successor took the lock.
	old := readLog(a.LogPath(), offsets[a])
	acquired, ok := firstLine(readLog(next.LogPath(), offsets[next]), "lock acquired")
	if !ok {
		return took, "", fmt.Errorf("the log of %s, which leads, does not say when it acquired the lock", next.URL())
	}
	// It learns of the loss after consullock's UnreachableGrace without an answer, or gives the
	// leadership up sooner when a write fails outright (no route to the agent).
	lost, ok := firstLine(old, "leadership lost")
	if gaveUp, given := firstLine(old, "scheduler stopped; giving leadership up"); given && (!ok || gaveUp.At.Before(lost.At)) {
		lost = gaveUp
	}
	var registered []serverLine
	for _, l := range old {
		if l.Message == "registered job" {
			registered = append(registered, l)
		}
	}
	submitted, err := submitTimes(ctx, c)
	if err != nil {
		return took, "", err
	}
	rel := func(t time.Time) string {
		d := t.Sub(cutAt).Round(10 * time.Millisecond)
		if d < 0 {
			return d.String()
		}
		return "+" + d.String()
	}
	var late []string
	var latest time.Time // Nomad's latest submit time of those jobs
	lastReg, lastSubmit := "none", "none"
	for _, l := range registered {
		lastReg = rel(l.At)
		if s, ok := submitted[l.JobID]; ok {
			if s.After(latest) {
				latest = s
				lastSubmit = rel(s)
			}
			if !s.Before(acquired.At) {
				late = append(late, fmt.Sprintf("%s (Nomad's submit time %s)", l.JobID, rel(s)))
			}
		}
	}
	if len(late) > 0 {
		return took, "", fmt.Errorf("cut off from Consul, %s registered %d jobs after %s took the lock (%s): %s",
			a.URL(), len(late), next.URL(), rel(acquired.At), strings.Join(late, ", "))
	}
	lostAt := "never logged"
	if !lost.At.IsZero() {
		lostAt = rel(lost.At)
	}
	lastReq := "none"
	if !lastRequest.IsZero() {
		lastReq = rel(lastRequest)
	}
	note := fmt.Sprintf("cut at 0: the cut-off leader's last request reached Consul at %s; Nomad answered %d of its registrations "+
		"after the cut, the last at %s, and took the last of them at %s; %s took the lock at %s and led at %s; the cut-off one logged its "+
		"leadership lost (or given up) at %s and stood by at %s; healed at %s, it contended again %s later",
		lastReq, len(registered), lastReg, lastSubmit, next.URL(), rel(acquired.At), rel(cutAt.Add(took)),
		lostAt, rel(cutAt.Add(stoodDown)), rel(healAt), contends.Round(10*time.Millisecond))
	if deregistered > 0 {
		note += fmt.Sprintf(" (held until Consul had deregistered it, at +%s)", deregistered.Round(100*time.Millisecond))
	}
	return took, note, nil
}

// deregisterWait bounds the wait for Consul to deregister a cut-off server: its check's
// deregister_critical_service_after (dagflow's default, 1 minute), plus the 30 s between the
// agent's reaps of critical services, plus a margin.
const deregisterWait = 2*time.Minute + 30*time.Second

// waitDeregistered waits until the Consul agent no longer lists the service of s.
func waitDeregistered(ctx context.Context, c *Cluster, s *serverproc.Server) error {
	_, port, _ := net.SplitHostPort(s.Addr())
	ctx, cancel := context.WithTimeout(ctx, deregisterWait)
	defer cancel()
	for {
		services, err := c.Stack.consul.Agent().ServicesWithFilterOpts("", (&consulapi.QueryOptions{}).WithContext(ctx))
		if err == nil {
			found := false
			for _, svc := range services {
				if svc.Service == "dagflow-chaos-"+c.Name && strconv.Itoa(svc.Port) == port {
					found = true
				}
			}
			if !found {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consul still lists the service of %s, cut off for %s (last error: %v)", s.URL(), deregisterWait, err)
		case <-time.After(time.Second):
		}
	}
}

// leadFrom makes s the active server: when another leads, the others are stopped (a stop
// hands the lock over) until s leads, and started again.
func leadFrom(ctx context.Context, c *Cluster, s *serverproc.Server) error {
	cur, err := c.WaitActive(ctx)
	if err != nil {
		return err
	}
	if cur == s {
		return nil
	}
	others := c.Others(s)
	for _, o := range others {
		if err := o.Stop(); err != nil {
			return err
		}
	}
	_, err = waitActive(ctx, s)
	for _, o := range others {
		if rerr := o.Restart(ctx); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return fmt.Errorf("make %s lead: %w", s.URL(), err)
	}
	return nil
}

// serverLine is one line of a server's JSON log (log_json), with the fields read here.
type serverLine struct {
	At      time.Time `json:"@timestamp"`
	Message string    `json:"@message"`
	Module  string    `json:"@module"`
	JobID   string    `json:"job_id"`
}

// readLog reads the JSON lines of the log at path from offset; other lines (serverproc's
// own) are skipped.
func readLog(path string, offset int64) []serverLine {
	var out []serverLine
	sc := bufio.NewScanner(strings.NewReader(readFrom(path, offset)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l serverLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && !l.At.IsZero() {
			out = append(out, l)
		}
	}
	return out
}

// firstLine returns the first line with message msg.
func firstLine(lines []serverLine, msg string) (serverLine, bool) {
	for _, l := range lines {
		if l.Message == msg {
			return l, true
		}
	}
	return serverLine{}, false
}

// waitLog waits up to recoverTimeout until the log of s from offset has a line with message
// msg.
func waitLog(ctx context.Context, s *serverproc.Server, offset int64, msg string) error {
	ctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	for {
		if _, ok := firstLine(readLog(s.LogPath(), offset), msg); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no %q in %s after %s", msg, s.LogPath(), recoverTimeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// submitTimes returns when Nomad took each job of the installation, by job ID.
func submitTimes(ctx context.Context, c *Cluster) (map[string]time.Time, error) {
	nc, err := nomadapi.NewClient(&nomadapi.Config{Address: "http://" + c.Stack.Nomad.HTTPAddr, TLSConfig: &nomadapi.TLSConfig{}})
	if err != nil {
		return nil, err
	}
	q := (&nomadapi.QueryOptions{Prefix: "chaos." + c.Name + ".", Namespace: "*"}).WithContext(ctx)
	jobs, _, err := nc.Jobs().List(q)
	if err != nil {
		return nil, fmt.Errorf("list nomad jobs: %w", err)
	}
	out := make(map[string]time.Time, len(jobs))
	for _, j := range jobs {
		out[j.ID] = time.Unix(0, j.SubmitTime)
	}
	return out, nil
}
