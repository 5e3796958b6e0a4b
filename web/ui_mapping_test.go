package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

const uiMappingDAG = `
dag "uimap" {
  max_active_tasks = 1
  defaults {
    command = "/bin/sh"
  }
  task "list" {
    args = ["-c", "echo '{\"files\": [\"a\", \"b\", \"c\"], \"note\": \"<img src=x onerror=window.__xss=1>\"}' > \"$DAGFLOW_OUTPUT\""]
  }
  task "process" {
    for_each = tasks.list.outputs.files
    args     = ["-c", "sleep 2; echo \"{\\\"file\\\": \\\"$F\\\"}\" > \"$DAGFLOW_OUTPUT\""]
    env      = { F = "${each.value}" }
  }
  task "merge" {
    depends_on = ["process"]
    args       = ["-c", "echo \"$FILES\""]
    env        = { FILES = "${tasks.process.outputs.file}" }
  }
}
`

// TestUIMapping watches a run of a mapped task in the grid: its instances appear as rows
// below it while the run goes on and turn green one by one; the graph shows the mapped task
// as one node with its instance count; a try page shows the outputs the try published, as
// text.
func TestUIMapping(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(uiMappingDAG)
	b := newBrowser(t)

	b.open(c.Instances[0].URL + "/")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), c.Token(api.RoleViewer)),
		chromedp.Click(chromedp.ID("login-submit")))
	b.waitVisible(`#dag-list a.dag-link[data-dag="uimap"]`)
	b.click(`#dag-list a.dag-link[data-dag="uimap"]`)
	b.click(`a.tab[data-tab="grid"]`)

	res, err := c.Client(0, c.Token(api.RoleOperator)).DAGs().Trigger(context.Background(), "uimap", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.RunIDs[0]
	// With one instance at a time, each sleeping 2 s, the run lasts over 6 s after list ends:
	// the instances must show up, below process, while some are still to run.
	b.waitJS("the grid shows the instances below process while the run goes on",
		`(() => {
			const rows = [...document.querySelectorAll('#grid tbody tr')].map((r) => r.dataset.task);
			const i = rows.indexOf('process');
			const cells = [...document.querySelectorAll('#grid tbody tr.mapped-instance a.cell')];
			return i >= 0 && JSON.stringify(rows.slice(i + 1, i + 4)) === JSON.stringify(['process[0]', 'process[1]', 'process[2]']) &&
				cells.length === 3 && cells.some((c) => c.dataset.state !== 'success');
		})()`, time.Minute)
	b.waitJS("every instance turns green",
		`[...document.querySelectorAll('#grid tbody tr.mapped-instance a.cell')].filter((c) => c.dataset.state === 'success').length === 3 &&
		 document.querySelector('#grid tbody tr[data-task="merge"] a.cell').dataset.state === 'success'`, time.Minute)
	if r := c.WaitRun("uimap", id, time.Minute, "finished", testcluster.Finished); r.State != "success" {
		t.Fatalf("run %s", r.State)
	}

	b.click(`a.tab[data-tab="graph"]`)
	b.waitJS("the graph shows process once, with its 3 instances",
		`(() => {
			const nodes = [...document.querySelectorAll('svg.graph g.node')].map((n) => n.dataset.task).sort();
			const p = document.querySelector('svg.graph g.node[data-task="process"]');
			return JSON.stringify(nodes) === JSON.stringify(['list', 'merge', 'process']) &&
				p.dataset.instances === '3' && p.querySelector('text.count').textContent === '×3';
		})()`)

	b.open(c.Instances[0].URL + "/#/dags/uimap/runs/" + id + "/tasks/list/tries/1")
	b.waitJS("the try page shows the outputs, markup as text",
		`document.getElementById('try-outputs').textContent.includes('"note": "<img src=x onerror=window.__xss=1>"') &&
		 document.getElementById('try-outputs').textContent.includes('"files": [')`)
	b.checkClean()
}
