package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

const uiQuietDAGs = `
dag "uiquiet" {
  task "only" {
    command = "/bin/true"
  }
}
`

// TestUILongPoll: a DAG page where nothing happens makes almost no requests (its long-poll
// watches prefixes that hold no key, which wait for one rather than wake at other writes), as its reads
// long-poll instead of re-reading on a timer; a pause made elsewhere shows within seconds; a
// hidden tab holds no request open; while the server does not answer, the page says so and
// asks again less and less often, then recovers by itself; another page aborts the long-poll
// of the one left, and a run's page long-polls the run and its deliveries at once.
func TestUILongPoll(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(uiQuietDAGs)
	run := c.TriggerRuns("uiquiet", 1)[0]
	op := c.Token(api.RoleOperator)
	p := newCountingProxy(t, c.Instances[0].URL)
	b := newBrowser(t)

	b.open(p.URL + "/#/dags/uiquiet")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), op),
		chromedp.Click(chromedp.ID("login-submit")))
	b.waitJS("the graph shows the run", `document.querySelectorAll('svg.graph g.node.st-success').length === 1`)

	// Quiet: once the first reads are done, the page waits in a long-poll of the DAG.
	waitFor(t, 30*time.Second, "a long-poll of the DAG in flight", func() bool { return p.polling("/v1/dags/uiquiet") > 0 })
	const quiet = 6 * time.Second
	from := p.mark()
	time.Sleep(quiet)
	// With the 1.5 s timer of before, the page read the DAG and its runs four times each.
	got := p.since(from)
	t.Logf("requests in %s of quiet: %q", quiet, got)
	if len(got) > 2 {
		t.Errorf("in %s with nothing changing, the DAG page made %d requests; want at most 2:\n%s", quiet, len(got), strings.Join(got, "\n"))
	}
	if p.polling("/v1/dags/uiquiet") == 0 {
		t.Errorf("after %s, no long-poll of the DAG is in flight: %v", quiet, p.since(0))
	}

	// A change made elsewhere answers the long-poll: the page shows it within seconds.
	if err := c.Client(0, op).DAGs().Pause(context.Background(), "uiquiet"); err != nil {
		t.Fatal(err)
	}
	b.waitJS("the page shows the DAG paused",
		`document.querySelector('.dag-head .pill') && document.querySelector('.dag-head .pill').textContent === 'paused' &&
		 !document.querySelector('.dag-head input.switch').checked`, 5*time.Second)

	// A hidden tab holds no request open; shown again, it follows the DAG again.
	b.eval(`(() => {
		Object.defineProperty(document, 'hidden', {value: true, configurable: true});
		document.dispatchEvent(new Event('visibilitychange'));
		return true;
	})()`)
	waitFor(t, 10*time.Second, "no long-poll in flight while the tab is hidden", func() bool { return p.polling("") == 0 })
	b.eval(`(() => {
		delete document.hidden;
		document.dispatchEvent(new Event('visibilitychange'));
		return true;
	})()`)
	waitFor(t, 10*time.Second, "a long-poll of the DAG once the tab shows again", func() bool { return p.polling("/v1/dags/uiquiet") > 0 })

	// The server stops answering: the banner says so, and the page backs off (1 s, 2 s, 4 s, ...)
	// instead of asking every second.
	p.setDown(true)
	b.waitJS("the banner says the server is down", `(() => {
		const e = document.getElementById('banner');
		return e && !e.hidden && e.textContent.includes('proxy down');
	})()`, 10*time.Second)
	from = p.mark()
	const down = 10 * time.Second
	time.Sleep(down)
	// Each refresh reads the DAG once (and its runs): count the refreshes. Every 1.5 s, as
	// before, would be six or seven; backing off from the first failure, three.
	var reads []string
	for _, r := range p.since(from) {
		if (strings.HasPrefix(r, "GET /v1/dags/uiquiet?") && !strings.Contains(r, "version=")) || r == "GET /v1/dags/uiquiet" {
			reads = append(reads, r)
		}
	}
	t.Logf("requests in %s of the server down: %q", down, p.since(from))
	if len(reads) > 4 {
		t.Errorf("in %s of a server down, the DAG page read the DAG %d times; want at most 4 (a back-off):\n%s", down, len(reads), strings.Join(p.since(from), "\n"))
	}
	p.setDown(false)
	if err := c.Client(0, op).DAGs().Unpause(context.Background(), "uiquiet"); err != nil {
		t.Fatal(err)
	}
	b.waitJS("the page recovers and shows the DAG unpaused",
		`document.getElementById('banner').hidden && document.querySelector('.dag-head input.switch').checked &&
		 !document.querySelector('.dag-head .pill')`, 40*time.Second)

	// Another page: the DAG's long-poll is aborted, the list's takes its place.
	b.click(`.crumbs a[href="#/dags"]`)
	waitFor(t, 10*time.Second, "the list's long-poll instead of the DAG's", func() bool {
		return p.polling("/v1/dags/uiquiet") == 0 && p.polling("/v1/dags") == 1
	})
	// A run's page waits on the run and on its deliveries at once: either may change alone.
	b.click(`#dag-list a.dot[data-run="` + run + `"]`)
	waitFor(t, 10*time.Second, "long-polls of the run and of its deliveries", func() bool {
		return p.polling("/v1/dags") == 0 && p.polling("/v1/dags/uiquiet/runs/"+run) == 1 && p.polling("/v1/deliveries") == 1
	})
	b.checkClean()
}

// countingProxy forwards to a dagflow instance and notes every API request the page makes;
// setDown makes it answer 503 to every API request, and end those in flight.
type countingProxy struct {
	*httptest.Server
	t *testing.T

	mu       sync.Mutex
	log      []string // "METHOD path?query", in the order they came
	inFlight map[*http.Request]context.CancelFunc
	down     bool
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{t: t, inFlight: map[*http.Request]context.CancelFunc{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	rp.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"proxy down"}` + "\n"))
	}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			rp.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		r = r.WithContext(ctx)
		p.mu.Lock()
		p.log = append(p.log, r.Method+" "+r.URL.RequestURI())
		down := p.down
		if !down {
			p.inFlight[r] = cancel
		}
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			delete(p.inFlight, r)
			p.mu.Unlock()
			cancel()
		}()
		if down {
			rp.ErrorHandler(w, r, nil)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// mark is where the log is now, for since.
func (p *countingProxy) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.log)
}

// since returns the requests logged after mark.
func (p *countingProxy) since(mark int) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.log[mark:]...)
}

// polling counts the long-polls of path in flight; of any path when path is "".
func (p *countingProxy) polling(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for r := range p.inFlight {
		if (path == "" || r.URL.Path == path) && r.URL.Query().Get("index") != "" {
			n++
		}
	}
	return n
}

func (p *countingProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, cancel := range p.inFlight {
			cancel()
		}
	}
}

// waitFor polls cond every 50 ms until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const uiLiveDAG = `
dag "uilive" {
  task "speak" {
    command = "/bin/sh"
    args    = ["-c", "echo first; sleep 8; echo second"]
  }
}
`

// TestUILiveLog: the page of a running try follows its output, which has no long-poll, on a
// timer of its own (every 2 s) while it long-polls the run for the try's state; once the try
// ended and its output is complete, the timer reads nothing more.
func TestUILiveLog(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(uiLiveDAG)
	op := c.Token(api.RoleOperator)
	res, err := c.Client(0, op).DAGs().Trigger(context.Background(), "uilive", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	run := res.RunIDs[0]
	c.WaitRun("uilive", run, 2*time.Minute, "speak running", func(r *api.Run) bool {
		return len(r.Tasks) == 1 && len(r.Tasks[0].Tries) == 1 && r.Tasks[0].Tries[0].State == "running"
	})
	p := newCountingProxy(t, c.Instances[0].URL)
	b := newBrowser(t)

	b.open(p.URL + "/#/dags/uilive/runs/" + url.PathEscape(run) + "/tasks/speak/tries/1")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), op),
		chromedp.Click(chromedp.ID("login-submit")))
	b.waitJS("the first line shows, followed live",
		`document.getElementById('log-output').textContent === 'first\n' &&
		 document.getElementById('log-status').textContent.includes('live')`)
	waitFor(t, 10*time.Second, "a long-poll of the run", func() bool { return p.polling("/v1/dags/uilive/runs/"+run) == 1 })
	from := p.mark()
	b.waitJS("the second line shows and the log is complete",
		`document.getElementById('log-output').textContent === 'first\nsecond\n' &&
		 document.getElementById('log-status').textContent.includes('complete') &&
		 document.querySelector('.try-state').dataset.state === 'success'`, time.Minute)
	logs := func(reqs []string) int {
		n := 0
		for _, r := range reqs {
			if strings.Contains(r, "/tries/1/logs") {
				n++
			}
		}
		return n
	}
	if n := logs(p.since(from)); n < 2 {
		t.Errorf("while the try ran, the page read its log %d times; want one every 2 s: %q", n, p.since(from))
	}
	from = p.mark()
	time.Sleep(5 * time.Second)
	if got := p.since(from); logs(got) > 0 || len(got) > 2 {
		t.Errorf("in 5 s after the try ended, the page made %d requests, %d of its log; want no log reads: %q", len(got), logs(got), got)
	}
	b.checkClean()
}
