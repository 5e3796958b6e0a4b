package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

// TestUIDeliveries: a failed run past its deadline is marked late on its page, which lists its
// callback deliveries with their states and the last error of the one its receiver refuses;
// GET /v1/deliveries returns the same, filtered, and refuses an unknown state.
func TestUIDeliveries(t *testing.T) {
	t.Parallel()
	hooks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			http.Error(w, "receiver down", http.StatusBadGateway)
		}
	}))
	t.Cleanup(hooks.Close)
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(fmt.Sprintf(`
dag "uihooks" {
  on_failure {
    webhook {
      url = "%[1]s/down"
    }
  }
  deadline {
    after_start = "1s"
    on_miss {
      webhook {
        url = "%[1]s/ok"
      }
    }
  }
  task "a" {
    command = "/bin/sh"
    args    = ["-c", "sleep 3; exit 1"]
  }
}
`, hooks.URL))
	ctx := context.Background()
	viewer := c.Client(0, c.Token(api.RoleViewer))
	res, err := c.Client(0, c.Token(api.RoleOperator)).DAGs().Trigger(ctx, "uihooks", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	id := res.RunIDs[0]
	run := c.WaitRun("uihooks", id, 2*time.Minute, "finished", testcluster.Finished)
	if run.State != "failed" || run.DeadlineMissedAt.IsZero() {
		t.Fatalf("run: %+v", run)
	}
	var list []api.Delivery
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		list, _, err = viewer.Deliveries().List(ctx, &api.DeliveryQuery{DAG: "uihooks", RunID: id})
		if err == nil && len(list) == 2 && list[0].Attempts > 0 && list[1].Attempts > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	byEvent := map[string]api.Delivery{}
	for _, d := range list {
		byEvent[d.Payload.Event] = d
	}
	if d := byEvent["deadline_missed"]; d.State != "delivered" || d.Payload.RunID != id {
		t.Errorf("deadline delivery: %+v", d)
	}
	if d := byEvent["failure"]; d.State != "pending" || !strings.Contains(d.LastError, "502") {
		t.Errorf("failure delivery: %+v", d)
	}
	if got, _, err := viewer.Deliveries().List(ctx, &api.DeliveryQuery{State: "delivered", DAG: "uihooks"}); err != nil || len(got) != 1 {
		t.Errorf("delivered deliveries: %+v, %v", got, err)
	}
	if resp, body := call(t, "GET", c.Instances[0].URL+"/v1/deliveries?state=lost", c.Token(api.RoleViewer), ""); resp.StatusCode != 400 || !strings.Contains(body, "pending, delivered or failed") {
		t.Errorf("unknown state: %d %s", resp.StatusCode, body)
	}

	b := newBrowser(t)
	b.open(c.Instances[0].URL + "/")
	b.do("sign in",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), c.Token(api.RoleViewer)),
		chromedp.Click(chromedp.ID("login-submit")))
	b.waitVisible(`#dag-list a.dag-link[data-dag="uihooks"]`)
	b.open(c.Instances[0].URL + "/#/dags/uihooks/runs/" + url.PathEscape(id))
	b.waitVisible("#run-deadline")
	b.waitJS("the run page lists both deliveries", `(() => {
		const rows = [...document.querySelectorAll('#run-deliveries tr.delivery-row')];
		const failure = rows.find((r) => r.dataset.state === 'pending');
		return rows.length === 2 && rows.some((r) => r.dataset.state === 'delivered') &&
			failure && failure.querySelector('.delivery-error').textContent.includes('502');
	})()`, 30*time.Second)
	b.checkClean()
}
