package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/testcluster"
)

// The UI tests drive the web UI in headless Chromium against a real cluster, doing what a
// person does: typing a token, clicking links and buttons, reading what the page shows.
// Chromium comes from `make tools` (Debian's chromium package); DAGFLOW_CHROMIUM names
// another binary.

const uiFlowDAG = `
dag "uiflow" {
  description = "extract, transform and load, for the UI test"
  tags        = ["ui", "nightly"]
  param "rows" {
    type        = number
    default     = 10
    description = "how many rows to extract"
  }
  param "who" {
    type     = string
    required = true
  }
  defaults {
    command = "/bin/sh"
  }
  task "extract" {
    args = ["-c", "echo extracting ${params.rows} rows for ${params.who}"]
  }
  task "transform" {
    depends_on = ["extract"]
    args       = ["-c", "echo transformed"]
  }
  task "load" {
    depends_on = ["transform"]
    args       = ["-c", "echo loaded"]
  }
  task "audit" {
    depends_on = ["extract"]
    args       = ["-c", "echo audited"]
  }
}
`

// TestUIFlow signs in, opens a DAG, triggers a run through the form, watches it succeed
// without a reload, reads a task's log, and clears the task to see a new try succeed.
func TestUIFlow(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(uiFlowDAG)
	op := c.Token(api.RoleOperator)
	b := newBrowser(t)

	b.open(c.Instances[0].URL + "/")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), op),
		chromedp.Click(chromedp.ID("login-submit")))
	b.waitVisible(`#dag-list a.dag-link[data-dag="uiflow"]`)
	// Set on this page only: a reload or a navigation away would lose it.
	b.eval(`window.__samePage = 'yes'`)
	b.waitJS("the header shows the token and the instance role",
		`document.getElementById('who').textContent.includes('test operator') &&
		 document.getElementById('who').textContent.includes('operator') &&
		 document.getElementById('instance').textContent === 'active'`)

	b.click(`#dag-list a.dag-link[data-dag="uiflow"]`)
	b.waitJS("the graph shows every task",
		`(() => {
			const names = [...document.querySelectorAll('svg.graph g.node')].map((n) => n.dataset.task).sort();
			return JSON.stringify(names) === JSON.stringify(['audit', 'extract', 'load', 'transform']) &&
				document.querySelectorAll('svg.graph path.edge').length === 3;
		})()`)

	// Trigger without the required param: the server's message shows next to its input.
	b.click(`a.tab[data-tab="trigger"]`)
	b.waitVisible(`#trigger-form #param-who`)
	b.typeInto("#param-rows", "7")
	b.click(`#trigger-submit`)
	b.waitJS("the missing param is reported next to its input",
		`(() => {
			const e = document.getElementById('param-who-error');
			return e && !e.hidden && e.textContent.includes('required');
		})()`)
	b.do("fill in who", chromedp.SendKeys(chromedp.ID("param-who"), "ada"))
	b.click(`#trigger-submit`)

	b.waitJS("the run page opens", `!!document.getElementById('run-tasks')`, 90*time.Second)
	b.waitJS("every task of the run turns green",
		`(() => {
			const rows = [...document.querySelectorAll('#run-tasks tr.task-row')];
			return rows.length === 4 && rows.every((r) => r.dataset.state === 'success') &&
				document.querySelector('.run-state').dataset.state === 'success';
		})()`, 2*time.Minute)
	b.waitJS("the timeline has a bar per task", `document.querySelectorAll('#run-tasks .track a.bar.st-success').length === 4`)
	b.waitJS("the run's params are shown", `document.getElementById('run-params').textContent.includes('"ada"')`)

	b.click(`#run-tasks tr[data-task="extract"] a.task-link`)
	b.waitJS("the log of extract shows its output",
		`document.getElementById('log-output').textContent.includes('extracting 7 rows for ada')`)
	b.waitJS("the try page shows its exit code and Nomad links",
		`(() => {
			const job = document.querySelector('a.nomad-job');
			return document.getElementById('exit-code').textContent === '0' && job &&
				job.rel.split(' ').includes('noopener') && job.target === '_blank' && job.href.startsWith('http');
		})()`)

	b.click(`#try-clear`)
	b.waitVisible(`dialog[open] .confirm-ok`)
	b.click(`dialog[open] .confirm-ok`)
	b.waitJS("a second try of extract appears and succeeds",
		`!!document.querySelector('.tries-nav a.try-link[data-try="2"][data-state="success"]')`, 2*time.Minute)
	b.click(`.tries-nav a.try-link[data-try="2"]`)
	b.waitJS("the second try's log shows its output",
		`location.hash.endsWith('/tries/2') &&
		 document.getElementById('log-output').textContent.includes('extracting 7 rows for ada')`)

	if got := b.eval(`window.__samePage || 'reloaded'`); got != "yes" {
		t.Fatalf("the page was reloaded: window.__samePage = %q", got)
	}
	b.checkClean()
}

// TestUILoginFailure checks that a bad token is refused with the server's message and the
// login form stays, and that a viewer signs in without operator controls.
func TestUILoginFailure(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(uiFlowDAG)
	viewer := c.Token(api.RoleViewer)
	b := newBrowser(t)

	b.open(c.Instances[0].URL + "/")
	b.do("sign in with a bad token",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), "00000000-0000-0000-0000-000000000000"),
		chromedp.Click(chromedp.ID("login-submit")))
	b.waitJS("the server's message is shown",
		`(() => {
			const e = document.getElementById('login-error');
			return e && !e.hidden && e.textContent.includes('token not found');
		})()`)
	if got := b.eval(`JSON.stringify([!!document.getElementById('login-form'), sessionStorage.getItem('dagflow.token'), document.getElementById('logout').hidden])`); got != `[true,null,true]` {
		t.Fatalf("after a bad token: [login form shown, stored token, logout hidden] = %s", got)
	}

	b.typeInto("#login-token", viewer)
	b.click("#login-submit")
	b.waitVisible(`#dag-list a.dag-link[data-dag="uiflow"]`)
	b.waitJS("a viewer cannot pause", `document.querySelector('#dag-list input.switch').disabled`)
	b.click(`#logout`)
	b.waitJS("logging out shows the login form again",
		`!!document.getElementById('login-form') && sessionStorage.getItem('dagflow.token') === null`)

	// A token revoked while the page is open sends it back to the login form, saying why.
	b.typeInto("#login-token", viewer)
	b.click("#login-submit")
	b.click(`#dag-list a.dag-link[data-dag="uiflow"]`)
	b.waitVisible(`svg.graph`)
	admin := c.Client(0, c.AdminToken).ACL()
	tokens, err := admin.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if tok.Role == api.RoleViewer {
			if err := admin.Delete(context.Background(), tok.AccessorID); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.waitJS("the login form says the token is gone",
		`(() => {
			const e = document.getElementById('login-error');
			return !!document.getElementById('login-form') && e && !e.hidden && e.textContent.includes('token not found') &&
				sessionStorage.getItem('dagflow.token') === null;
		})()`)
	b.checkClean()
}

// xssDAG carries markup and script URLs in everything a DAG author or a task controls.
const xssDAG = `
dag "xss" {
  description = "<script>window.__xss='description'</script><img src=x onerror=\"window.__xss='img';alert('img')\"> <svg onload=\"alert('svg')\"> javascript:alert('js')"
  tags        = ["<img src=x onerror=alert('tag')>", "javascript:alert('tagjs')"]
  param "note" {
    type        = string
    default     = "<script>alert('param default')</script>"
    description = "<img src=x onerror=alert('param desc')>"
  }
  param "targets" {
    type        = list(string)
    default     = ["<svg onload=alert('list')>", "javascript:alert('list2')"]
    description = "<a href=\"javascript:alert('href')\">click</a>"
  }
  defaults {
    command = "/bin/sh"
  }
  task "emit" {
    args = ["-c", "printf '%s\\n' \"<script>alert('stdout')</script>\" \"<img src=x onerror=alert('out')>\"; echo \"<svg onload=alert('stderr')>\" >&2"]
  }
  task "after" {
    depends_on = ["emit"]
    args       = ["-c", "echo \"javascript:alert('after')\""]
  }
}
`

// TestUIEscapesEverything visits every page of a DAG whose texts, params and task output are
// markup, and checks that all of it shows as text and none of it runs.
func TestUIEscapesEverything(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(xssDAG)
	op := c.Token(api.RoleOperator)
	b := newBrowser(t)

	const (
		desc      = `<script>window.__xss='description'</script><img src=x onerror="window.__xss='img';alert('img')"> <svg onload="alert('svg')"> javascript:alert('js')`
		tag       = `<img src=x onerror=alert('tag')>`
		paramDef  = `<script>alert('param default')</script>`
		paramDesc = `<img src=x onerror=alert('param desc')>`
		listDesc  = `<a href="javascript:alert('href')">click</a>`
		stdout    = "<script>alert('stdout')</script>\n<img src=x onerror=alert('out')>\n"
		stderr    = "<svg onload=alert('stderr')>\n"
	)
	shows := func(where, text string) {
		t.Helper()
		visible := `document.body.innerText.includes(` + jsString(text) + `)`
		// Stop waiting as soon as markup became elements, to report that rather than a timeout.
		b.waitJS(where+" shows "+text+" as text", visible+` || !!window.__xss || !!document.querySelector('img, [onerror], [onload]')`)
		b.checkClean()
		if b.eval(visible) != "true" {
			b.fail("%s does not show %s as text", where, text)
		}
	}

	b.open(c.Instances[0].URL + "/")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), op),
		chromedp.Click(chromedp.ID("login-submit")))
	b.waitVisible(`#dag-list a.dag-link[data-dag="xss"]`)
	shows("the DAG list", desc)
	shows("the DAG list", tag)
	b.click(`#dag-list button.tag[data-tag="` + tag + `"]`)
	b.waitJS("the tag filter shows the tag", `document.querySelector('.chips .chip').textContent.includes(`+jsString(tag)+`)`)
	b.checkClean()

	b.click(`#dag-list a.dag-link[data-dag="xss"]`)
	b.waitJS("the graph is drawn", `document.querySelectorAll('svg.graph g.node').length === 2`)
	shows("the DAG page", desc)

	b.click(`a.tab[data-tab="source"]`)
	b.waitVisible(`#dag-source`)
	b.waitJS("the source shows the DAG as written",
		`document.getElementById('dag-source').textContent.includes(`+jsString(`description = "<script>`)+`)`)
	shows("the source", paramDesc)

	b.click(`a.tab[data-tab="trigger"]`)
	b.waitVisible(`#trigger-form`)
	shows("the trigger form", paramDesc)
	shows("the trigger form", listDesc)
	if got := b.eval(`document.getElementById('param-note').value`); got != paramDef {
		t.Fatalf("the note input holds %q, want %q", got, paramDef)
	}
	b.click(`#trigger-submit`)

	b.waitJS("the run page opens", `!!document.getElementById('run-tasks')`, 90*time.Second)
	b.waitJS("the run succeeds",
		`document.querySelector('.run-state') && document.querySelector('.run-state').dataset.state === 'success'`, 2*time.Minute)
	shows("the run page", jsonOf(paramDef))
	shows("the run page", jsonOf([]string{"<svg onload=alert('list')>", "javascript:alert('list2')"}))

	b.click(`#run-tasks tr[data-task="emit"] a.task-link`)
	b.waitJS("the stdout of emit is shown as text",
		`document.getElementById('log-output').textContent === `+jsString(stdout))
	b.checkClean()
	b.click(`button.log-type[data-type="stderr"]`)
	b.waitJS("the stderr of emit is shown as text",
		`document.getElementById('log-output').textContent === `+jsString(stderr))
	b.checkClean()

	b.click(`.crumbs a[href="#/dags/xss"]`)
	b.click(`a.tab[data-tab="grid"]`)
	b.waitJS("the grid shows the run", `document.querySelectorAll('#grid a.cell.st-success').length === 2`)
	b.checkClean()
	b.click(`a.tab[data-tab="runs"]`)
	b.waitVisible(`#run-list`)
	b.click(`a.tab[data-tab="graph"]`)
	b.waitJS("the graph colours the run", `document.querySelectorAll('svg.graph g.node.st-success').length === 2`)
	shows("the DAG page", tag)
}

const keptDAG = `
dag "kept" {
  task "only" {
    command = "/bin/sh"
    args    = ["-c", "echo output of ${run.id}"]
  }
}
`

// TestUIHistory keeps one run per DAG in Consul, so that older runs come from history, and
// pages through them in the UI: the runs tab and the grid mark them, an old run shows its
// timeline with no actions, and its try's log comes from history. When the history database
// stops answering, the runs tab says so.
func TestUIHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A PostgreSQL of its own, to stop it at the end.
	pg := devstack.StartPostgresT(t)
	url, err := pg.CreateDatabase(ctx, "uihistory")
	if err != nil {
		t.Fatal(err)
	}
	c := testcluster.New(t, testcluster.Options{Config: func(cfg *config.Server) {
		cfg.History.URL = url
		cfg.Retention.KeepRuns = 1
	}})
	c.Apply(keptDAG)
	ids := c.TriggerRuns("kept", 4) // oldest first
	// Retention lets the older runs go once history holds them.
	c.WaitKept("kept", 1)
	op := c.Token(api.RoleOperator)
	b := newBrowser(t)

	// Two runs a page, to page through four.
	b.open(c.Instances[0].URL + "/#/dags/kept/runs?per_page=2")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), op),
		chromedp.Click(chromedp.ID("login-submit")))
	// listed is [run, marked as from history] of each row of the runs tab.
	const listed = `JSON.stringify([...document.querySelectorAll('#run-list tbody tr')].map((r) => [r.dataset.run, !!r.querySelector('.pill-history')]))`
	rows := func(what string, want ...any) {
		t.Helper()
		b.waitJS(what, listed+` === `+jsString(jsonOf(want)))
	}
	rows("the first page lists the run Consul keeps and one from history", []any{ids[3], false}, []any{ids[2], true})
	b.waitJS("the history badge says why it is there",
		`(() => {
			const p = document.querySelector('#run-list tr[data-run=`+jsString(ids[2])+`] .pill-history');
			return p.textContent === 'history' && p.title.includes('read-only') && p.title.includes('older than the latest run of its DAG');
		})()`)
	if got := b.eval(`JSON.stringify([!!document.getElementById('history-note'), document.querySelector('.pager .page-newer').disabled, document.querySelector('.pager .page-label').textContent])`); got != `[false,true,"Runs 1–2, the newest"]` {
		t.Fatalf("first page: [history note, newer disabled, label] = %s", got)
	}
	b.click(`.pager .page-older`)
	rows("the older page lists two runs from history", []any{ids[1], true}, []any{ids[0], true})
	b.waitJS("the older page is the last",
		`document.querySelector('.pager .page-older').disabled && document.querySelector('.pager .page-label').textContent === 'Runs 3–4'`)

	// The grid shows the same page, oldest on the left.
	columns := `JSON.stringify([...document.querySelectorAll('#grid th.run-col')].map((th) => [th.querySelector('a.grid-run').dataset.run, th.classList.contains('from-history')]))`
	b.click(`a.tab[data-tab="grid"]`)
	b.waitJS("the grid shows the older page", columns+` === `+jsString(jsonOf([]any{[]any{ids[0], true}, []any{ids[1], true}}))+
		` && document.querySelectorAll('#grid a.cell.st-success').length === 2`)
	b.click(`.pager .page-newer`)
	b.waitJS("the grid goes back to the newest runs", columns+` === `+jsString(jsonOf([]any{[]any{ids[2], true}, []any{ids[3], false}}))+
		` && document.querySelectorAll('#grid a.cell.st-success').length === 2`)
	b.click(`.pager .page-older`)
	b.waitJS("the grid pages back again", columns+` === `+jsString(jsonOf([]any{[]any{ids[0], true}, []any{ids[1], true}})))

	// The oldest run: its timeline, and nothing to act on.
	b.click(`#grid a.grid-run[data-run=` + jsString(ids[0]) + `]`)
	b.waitJS("the old run's page shows it from history with its timeline",
		`document.getElementById('run-id').textContent === `+jsString(ids[0])+` &&
		 document.getElementById('run-source').textContent === 'from history (read-only)' &&
		 document.querySelector('.run-state').dataset.state === 'success' &&
		 document.querySelectorAll('#run-tasks .track a.bar.st-success').length === 1`)
	if got := b.eval(`document.querySelectorAll('#run-tasks button, #cancel-run').length`); got != "0" {
		t.Fatalf("the page of a run only history holds offers %s actions; want none", got)
	}
	b.click(`#run-tasks tr[data-task="only"] a.task-link`)
	b.waitJS("the old try's log comes from history",
		`document.getElementById('log-output').textContent === `+jsString("output of "+ids[0]+"\n")+` &&
		 document.getElementById('log-status').textContent.includes('from the history database') &&
		 document.getElementById('try-source') !== null && document.getElementById('try-clear') === null`)

	// Back on the DAG, the runs tab is where it was.
	b.click(`.crumbs a[href="#/dags/kept"]`)
	b.waitVisible(`svg.graph`)
	b.click(`a.tab[data-tab="runs"]`)
	rows("the runs tab is still on the older page", []any{ids[1], true}, []any{ids[0], true})
	b.click(`.pager .page-newest`)
	rows("the newest runs again", []any{ids[3], false}, []any{ids[2], true})

	// PostgreSQL stops: the first page, polled, holds Consul's run only and says why.
	if err := pg.Down(); err != nil {
		t.Fatal(err)
	}
	b.waitJS("the runs tab says the history database does not answer",
		`(() => {
			const n = document.getElementById('history-note');
			return n && n.dataset.history === 'unavailable' && n.textContent.includes('does not answer');
		})()`)
	rows("only the run Consul keeps is listed", []any{ids[3], false})
	b.checkClean()
}

// TestUIWithoutHistory: without a history database, the runs tab and the grid say how far back
// runs go.
func TestUIWithoutHistory(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(keptDAG)
	viewer := c.Token(api.RoleViewer)
	b := newBrowser(t)

	b.open(c.Instances[0].URL + "/")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), viewer),
		chromedp.Click(chromedp.ID("login-submit")))
	b.click(`#dag-list a.dag-link[data-dag="kept"]`)
	note := fmt.Sprintf("Runs older than the latest %d of each DAG are not kept: this server has no history database. "+
		"Configure a history block (docs/server.md) to keep them in PostgreSQL.", config.Default().Retention.KeepRuns)
	for _, tab := range []string{"runs", "grid"} {
		b.click(`a.tab[data-tab="` + tab + `"]`)
		b.waitJS("the "+tab+" tab says runs go back only as far as Consul keeps them",
			`(() => {
				const n = document.querySelector('.pane-`+tab+` #history-note');
				return n && n.textContent === `+jsString(note)+`;
			})()`)
	}
	if got := b.eval(`document.querySelector('.pager .page-older').disabled`); got != "true" {
		t.Fatalf("with no runs, Older is enabled")
	}
	b.checkClean()
}

// browser is one headless Chromium with one tab, recording what must never happen: a
// JavaScript dialog, an uncaught exception or console error, a Content-Security-Policy
// violation.
type browser struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
}

func chromiumPath(t *testing.T) string {
	if p := os.Getenv("DAGFLOW_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: run make tools (it installs Debian's chromium), or set DAGFLOW_CHROMIUM")
	return ""
}

// recorder runs in the page before its own scripts and notes CSP violations.
const recorder = `
window.__problems = [];
document.addEventListener('securitypolicyviolation', (e) => {
	window.__problems.push('CSP violation: ' + e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sample || ''));
});
`

func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1366, 768),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	b := &browser{t: t, ctx: ctx}
	start, cancelStart := context.WithTimeout(context.Background(), time.Minute)
	defer cancelStart()
	done := make(chan error, 1)
	go func() { done <- chromedp.Do(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-start.Done():
		t.Fatal("start chromium: no tab after a minute")
	}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			b.problem("JavaScript %s dialog opened: %q", ev.Type, ev.Message)
			go func() {
				_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
			}()
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			b.problem("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, msg)
		case *runtime.EventConsoleAPICalled:
			// The UI logs errors that are bugs, not failed requests, with console.error.
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					if a.Description != "" {
						args = append(args, a.Description)
					} else {
						args = append(args, string(a.Value))
					}
				}
				b.problem("console.error: %s", strings.Join(args, " "))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recorder}); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *browser) problem(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

// checkClean fails the test when a dialog opened, a script threw, a CSP rule was broken or
// markup from the DAG became elements: an image, a script of its own, an event handler
// attribute or a javascript: link.
func (b *browser) checkClean() {
	b.t.Helper()
	got := b.eval(`JSON.stringify([
		String(window.__xss || ''),
		document.title,
		(window.__problems || []).join('; '),
		[...document.querySelectorAll('img, iframe, object, embed, script:not([src])')].map((e) => e.outerHTML).join(' '),
		[...document.querySelectorAll('*')].filter((e) => [...e.attributes].some((a) => a.name.startsWith('on'))).map((e) => e.outerHTML.slice(0, 200)).join(' '),
		[...document.querySelectorAll('a[href], [src]')].filter((e) => /^\s*(javascript|data):/i.test(e.getAttribute('href') || e.getAttribute('src') || '')).map((e) => e.outerHTML).join(' '),
	])`)
	var page []string
	if err := json.Unmarshal([]byte(got), &page); err != nil {
		b.t.Fatalf("check page: %v (%s)", err, got)
	}
	if page[0] != "" {
		b.fail("injected script ran: window.__xss = %q", page[0])
	}
	if !strings.HasSuffix(page[1], "dagflow") {
		b.fail("document.title = %q", page[1])
	}
	for i, what := range []string{"", "", "page problems", "injected elements", "event handler attributes", "script URLs"} {
		if i >= 2 && page[i] != "" {
			b.fail("%s: %s", what, page[i])
		}
	}
	b.mu.Lock()
	problems := append([]string(nil), b.problems...)
	b.mu.Unlock()
	if len(problems) > 0 {
		b.fail("%s", strings.Join(problems, "\n"))
	}
}

// fail reports what the page shows, then fails the test.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + '\n' + document.body.innerText.slice(0, 3000)`))
	if err == nil {
		b.t.Logf("page at failure: %s", state)
	}
	b.mu.Lock()
	if len(b.problems) > 0 {
		b.t.Logf("recorded in the page: %s", strings.Join(b.problems, "\n"))
	}
	b.mu.Unlock()
	b.t.Fatalf(format, args...)
}

const stepTimeout = 30 * time.Second

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

func (b *browser) open(url string) {
	b.t.Helper()
	b.do("open "+url, chromedp.Navigate(url))
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// typeInto replaces what an input holds with text, typed.
func (b *browser) typeInto(sel, text string) {
	b.t.Helper()
	b.do("type into "+sel,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+jsString(sel)+`).value = ''`),
		chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (b *browser) waitVisible(sel string) {
	b.t.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// waitJS waits until the JavaScript expression is true (timeout: stepTimeout, or the one given);
// an expression that throws counts as false.
func (b *browser) waitJS(what, expr string, timeout ...time.Duration) {
	b.t.Helper()
	d := stepTimeout
	if len(timeout) > 0 {
		d = timeout[0]
	}
	ctx, cancel := context.WithTimeout(b.ctx, d+5*time.Second)
	defer cancel()
	// The page may be between views when a check runs: a check that throws is not yet true.
	guarded := "(() => { try { return !!(" + expr + "); } catch (e) { return false; } })()"
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](guarded, chromedp.WithPollingTimeout(d), chromedp.WithPollingInterval(100*time.Millisecond)))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout") {
			b.fail("%s: not after %s", what, d)
		}
		b.fail("%s: %v", what, err)
	}
}

// eval returns what a JavaScript expression gives, as a string.
func (b *browser) eval(expr string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`String(`+expr+`)`))
	if err != nil {
		b.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string { return jsonOf(s) }

// jsonOf is v as JSON.stringify writes it: compact, with < and > as they are.
func jsonOf(v any) string {
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(sb.String(), "\n")
}
