package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

const uiGroupsDAG = `
dag "uigroups" {
  defaults {
    command = "/bin/true"
  }
  task "start" {}
  group "load" {
    depends_on = ["start"]
    task "extract" {}
    task "transform" {
      depends_on = ["extract"]
    }
  }
  task "end" {
    depends_on = ["load"]
  }
}
`

// TestUIGroups: the graph draws a group as one node with its task count and its tasks' state;
// a click unfolds it into its tasks, and the selected task's panel folds it again.
func TestUIGroups(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(uiGroupsDAG)
	res, err := c.Client(0, c.Token(api.RoleOperator)).DAGs().Trigger(context.Background(), "uigroups", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.WaitRun("uigroups", res.RunIDs[0], time.Minute, "finished", testcluster.Finished); r.State != "success" {
		t.Fatalf("run %s", r.State)
	}
	b := newBrowser(t)
	b.open(c.Instances[0].URL + "/")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), c.Token(api.RoleViewer)),
		chromedp.Click(chromedp.ID("login-submit")))
	b.click(`#dag-list a.dag-link[data-dag="uigroups"]`)
	b.click(`a.tab[data-tab="graph"]`)

	nodes := `JSON.stringify([...document.querySelectorAll('svg.graph g.node')].map((n) => (n.dataset.group ? 'group:' : '') + (n.dataset.group || n.dataset.task)).sort())`
	b.waitJS("the group is one folded node, green, with its 2 tasks",
		`(() => {
			const g = document.querySelector('svg.graph g.node[data-group="load"]');
			return `+nodes+` === JSON.stringify(['end', 'group:load', 'start']) &&
				g.dataset.state === 'success' && g.dataset.instances === '2';
		})()`, 30*time.Second)
	b.click(`svg.graph g.node[data-group="load"]`)
	b.waitJS("a click unfolds it into its tasks",
		nodes+` === JSON.stringify(['end', 'load.extract', 'load.transform', 'start'])`, 30*time.Second)
	b.click(`svg.graph g.node[data-task="load.extract"]`)
	b.click(`#fold-group`)
	b.waitJS("the panel's button folds it again",
		nodes+` === JSON.stringify(['end', 'group:load', 'start'])`, 30*time.Second)
}
