package web_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

// uiPlacementDAG has a task whose queue's constraint no node meets, with markup in the
// constraint's value that Nomad's reason repeats, and two tasks of a queue that runs one at a
// time.
const uiPlacementDAG = `
queue "nowhere" {
  constraint {
    attribute = "${meta.ui_placement}"
    value     = "<img src=x onerror=window.__xss=1>"
  }
}
queue "one" {
  max_running = 1
}
dag "uiwhy" {
  defaults {
    command        = "/bin/sleep"
    args           = ["30"]
    queue          = "one"
    queued_timeout = "5m"
  }
  task "gated" {
    queue = "nowhere"
  }
  task "first" {}
  task "second" {}
}
`

// TestUIWhyNotRunning: the run page says why each task does not run: Nomad's reason for the
// try it has not placed, shown as text, and the queue at max_running for the instance held
// back; the try page shows the reason too. The API returns the same.
func TestUIWhyNotRunning(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(uiPlacementDAG)
	op := c.Client(0, c.Token(api.RoleOperator))
	res, err := op.DAGs().Trigger(context.Background(), "uiwhy", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.RunIDs[0]
	t.Cleanup(func() { _, _ = op.Runs().Cancel(context.Background(), "uiwhy", id) })

	const reason = "constraint ${meta.ui_placement} = <img src=x onerror=window.__xss=1> filtered 1 node"
	run := c.WaitRun("uiwhy", id, 30*time.Second, "showing why its tasks wait", func(r *api.Run) bool {
		var pending, waiting bool
		for _, ti := range r.Tasks {
			if ti.Task == "gated" && len(ti.Tries) == 1 && ti.Tries[0].Pending == reason {
				pending = true
			}
			if ti.Waiting == `queue "one" at max_running (1)` && len(ti.Tries) == 0 {
				waiting = true
			}
		}
		return pending && waiting
	})
	var held string
	for _, ti := range run.Tasks {
		if ti.Waiting != "" {
			held = ti.Task
		}
	}

	b := newBrowser(t)
	b.open(c.Instances[0].URL + "/")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), c.Token(api.RoleViewer)),
		chromedp.Click(chromedp.ID("login-submit")))
	b.waitVisible(`#dag-list a.dag-link[data-dag="uiwhy"]`)
	b.open(c.Instances[0].URL + "/#/dags/uiwhy/runs/" + url.PathEscape(id))
	b.waitJS("the run page shows Nomad's reason for gated and the queue limit for "+held,
		`(() => {
			const why = (task) => {
				const el = document.querySelector('#run-tasks tr[data-task=' + JSON.stringify(task) + '] .why');
				return el ? [el.dataset.why, el.textContent] : null;
			};
			return JSON.stringify(why('gated')) === JSON.stringify(['pending', 'not placed: ' + `+jsString(reason)+`]) &&
				JSON.stringify(why(`+jsString(held)+`)) === JSON.stringify(['waiting', 'queue "one" at max_running (1)']);
		})()`, 30*time.Second)
	if got := b.eval(`String(document.querySelectorAll('#run-tasks .why img').length) + ' ' + String(window.__xss)`); got != "0 undefined" {
		t.Errorf("the reason's markup was not escaped: %s", got)
	}

	b.click(`#run-tasks tr[data-task="gated"] a.task-link`)
	b.waitJS("the try page shows the reason", `(() => {
		const el = document.getElementById('try-pending');
		return el && el.textContent === `+jsString(reason)+`;
	})()`)
	if got := b.eval(`String(document.querySelectorAll('.try-facts img').length) + ' ' + String(window.__xss)`); got != "0 undefined" {
		t.Errorf("the reason's markup was not escaped on the try page: %s", got)
	}
	b.checkClean()
}
