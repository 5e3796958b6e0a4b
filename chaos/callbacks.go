package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dagflow/dagflow/api"
)

// The kill-callbacks scenario: every task fails its first try, so each run fires a DAG-level
// on_retry per task instance and an on_success at its end, while the active server is killed
// with SIGKILL. A receiver the scenario runs refuses the first call of every delivery, so
// deliveries are pending, retried after their backoff, when a leader dies. Once the runs are
// done, every notification the runs' records call for must have arrived, and every call of
// one notification must carry the same delivery ID.

// receiverWait bounds the wait, after every run finished, for the last deliveries to arrive:
// a pending one waits for its backoff (a few seconds here) and for a leader.
const receiverWait = 2 * time.Minute

// receiver is the scenario's webhook receiver.
type receiver struct {
	once  sync.Once
	srv   *http.Server
	url   string
	err   error
	mu    sync.Mutex
	calls []receivedCall
}

type receivedCall struct {
	id string
	p  api.DeliveryPayload
	ok bool // answered 2xx
}

// notification is what a delivery is about, as the receiver compares them.
type notification struct {
	event, run, task string
	try              int
}

func (n notification) String() string {
	if n.task == "" {
		return fmt.Sprintf("%s of run %s", n.event, n.run)
	}
	return fmt.Sprintf("%s of %s try %d in run %s", n.event, n.task, n.try, n.run)
}

// start listens on a free local port, once.
func (rc *receiver) start() (string, error) {
	rc.once.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			rc.err = fmt.Errorf("start the webhook receiver: %w", err)
			return
		}
		rc.url = "http://" + ln.Addr().String() + "/hook"
		rc.srv = &http.Server{Handler: http.HandlerFunc(rc.serve), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = rc.srv.Serve(ln) }()
	})
	return rc.url, rc.err
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	var c receivedCall
	if err := json.NewDecoder(r.Body).Decode(&c.p); err != nil {
		http.Error(w, "not a JSON payload", http.StatusBadRequest)
		return
	}
	c.id = r.Header.Get("X-Dagflow-Delivery")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen := false
	for _, o := range rc.calls {
		seen = seen || o.id == c.id
	}
	// The first call of each delivery is refused, so it is retried after its backoff.
	c.ok = seen
	rc.calls = append(rc.calls, c)
	if !c.ok {
		http.Error(w, "try again", http.StatusServiceUnavailable)
	}
}

// expected returns the notifications the records of runs call for: a retry per try that
// failed with a later try after it, and the run's success or failure.
func expected(runs map[string]*api.Run) map[notification]bool {
	want := map[notification]bool{}
	for id, r := range runs {
		event := "success"
		if r.State == "failed" {
			event = "failure"
		}
		want[notification{event: event, run: id}] = true
		for _, ti := range r.Tasks {
			for i, tr := range ti.Tries {
				if tr.State == "failed" && i < len(ti.Tries)-1 {
					want[notification{event: "retry", run: id, task: ti.Task, try: tr.Try}] = true
				}
			}
		}
	}
	return want
}

// verify waits until every expected notification arrived, then checks that each arrived under
// one delivery ID, and that nothing else arrived.
func (rc *receiver) verify(_ context.Context, _ *Cluster, runs map[string]*api.Run, _ Params) (notes, problems []string) {
	want := expected(runs)
	deadline := time.Now().Add(receiverWait)
	var missing []string
	for {
		missing = missing[:0]
		delivered := rc.delivered()
		for n := range want {
			if !delivered[n] {
				missing = append(missing, n.String())
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	sort.Strings(missing)
	for _, m := range missing {
		problems = append(problems, "notification never delivered: "+m)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ids := map[notification]map[string]bool{}
	for _, c := range rc.calls {
		n := notification{c.p.Event, c.p.RunID, c.p.Task, c.p.Try}
		if ids[n] == nil {
			ids[n] = map[string]bool{}
		}
		ids[n][c.id] = true
		if c.id != c.p.DeliveryID {
			problems = append(problems, fmt.Sprintf("%s: header delivery ID %s, payload %s", n, c.id, c.p.DeliveryID))
		}
	}
	for n, set := range ids {
		if len(set) > 1 {
			problems = append(problems, fmt.Sprintf("%s arrived under %d delivery IDs", n, len(set)))
		}
		if !want[n] && runs[n.run] != nil {
			problems = append(problems, fmt.Sprintf("%s arrived, but the run's records call for no such notification", n))
		}
	}
	okCalls := map[notification]int{}
	for _, c := range rc.calls {
		if c.ok {
			okCalls[notification{c.p.Event, c.p.RunID, c.p.Task, c.p.Try}]++
		}
	}
	again := 0
	for _, n := range okCalls {
		again += n - 1
	}
	notes = append(notes, fmt.Sprintf("%d notifications expected, %d calls received (the first of each refused), %d repeated deliveries after success, each with its notification's ID", len(want), len(rc.calls), again))
	return notes, problems
}

// delivered returns the notifications answered 2xx at least once.
func (rc *receiver) delivered() map[notification]bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[notification]bool{}
	for _, c := range rc.calls {
		if c.ok {
			out[notification{c.p.Event, c.p.RunID, c.p.Task, c.p.Try}] = true
		}
	}
	return out
}

// callbacksSource returns the HCL of Lanes chains of Depth tasks whose tries fail the first
// time, after recording their start in l, with a DAG-level on_retry and on_success calling url.
func (d DAG) callbacksSource(l *Ledger) string {
	keys := make([]string, d.Lanes)
	for i := range keys {
		keys[i] = strconv.Quote(fmt.Sprintf("l%03d", i))
	}
	script := l.Command() + "; sleep " + strconv.FormatFloat(d.Sleep.Seconds(), 'f', -1, 64) + `; test "$DAGFLOW_TRY" -ge 2`
	var b strings.Builder
	fmt.Fprintf(&b, `dag %q {
  description      = "chaos: %d lanes of %d tasks failing their first try, with callbacks"
  max_active_runs  = 16
  max_active_tasks = 1024

  on_retry {
    webhook {
      url = %q
    }
  }
  on_success {
    webhook {
      url = %q
    }
  }
  on_failure {
    webhook {
      url = %q
    }
  }

  defaults {
    command     = "/bin/sh"
    args        = [%q, %q]
    retries     = 3
    retry_delay = "1s"

    resources {
      cpu    = 20
      memory = 16
    }
  }
`, d.Name, d.Lanes, d.Depth, d.Callbacks, d.Callbacks, d.Callbacks, "-c", script)
	for i := 1; i <= d.Depth; i++ {
		fmt.Fprintf(&b, "\n  task \"t%d\" {\n    for_each = [%s]\n", i, strings.Join(keys, ", "))
		if i > 1 {
			fmt.Fprintf(&b, "    depends_on = [\"t%d[${each.key}]\"]\n", i-1)
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// callbacksScenario is the kill-callbacks scenario, with a receiver of its own.
func callbacksScenario() Scenario {
	rc := &receiver{}
	return Scenario{
		Name: "kill-callbacks",
		Title: "kill -9 the active server while every task's first try fails and fires on_retry, " +
			"and the receiver refuses each delivery's first call; every notification must arrive, duplicates with one ID",
		Faults: 3,
		DAG: func(p Params) DAG {
			url, err := rc.start()
			if err != nil {
				// An unreachable URL: every notification is then reported missing.
				url = "http://127.0.0.1:1/unreachable"
			}
			return DAG{Name: "chaos", Lanes: p.Lanes, Depth: 2, Sleep: p.Sleep, Callbacks: url}
		},
		Inject: killActive,
		Verify: rc.verify,
	}
}
