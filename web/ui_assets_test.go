package web_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

const uiAssetsDAGs = `
dag "uiproducer" {
  task "load" {
    command = "/bin/sh"
    args    = ["-c", "echo '{\"rows\": 3, \"note\": \"<img src=x onerror=window.__xss=1>\"}' > \"$DAGFLOW_OUTPUT\""]
    outlets = ["ui.orders"]
  }
}
dag "uiconsumer" {
  schedule_on = all("ui.orders", "ui.prices")
  task "report" {
    command = "/bin/true"
  }
}
`

// TestUIAssets: the assets page lists an asset with its producer and consumer; a producer's
// run shows as an event linked to that run, with its outputs as text; the consumer's page
// shows which of its assets were updated; an operator's click on Emit records the event that
// completes the consumer's condition, which then runs; a viewer's Emit button is disabled.
func TestUIAssets(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(uiAssetsDAGs)
	op := c.Client(0, c.Token(api.RoleOperator))
	res, err := op.DAGs().Trigger(context.Background(), "uiproducer", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	produced := res.RunIDs[0]
	if r := c.WaitRun("uiproducer", produced, time.Minute, "finished", testcluster.Finished); r.State != "success" {
		t.Fatalf("producer run %s", r.State)
	}

	b := newBrowser(t)
	b.open(c.Instances[0].URL + "/")
	b.do("sign in as a viewer",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), c.Token(api.RoleViewer)),
		chromedp.Click(chromedp.ID("login-submit")))
	b.click(`#nav-assets`)
	b.waitJS("the assets page lists both assets, with producer and consumer",
		`(() => {
			const row = document.querySelector('#asset-list tr[data-asset="ui.orders"]');
			return row && row.textContent.includes('uiproducer.load') && row.textContent.includes('uiconsumer') &&
				!!document.querySelector('#asset-list tr[data-asset="ui.prices"]');
		})()`, 30*time.Second)
	b.click(`a.asset-link[data-asset="ui.orders"]`)
	runLink, _ := json.Marshal("#/dags/uiproducer/runs/" + produced)
	b.waitJS("the event links to the producer's run and shows its outputs as text",
		`(() => {
			const a = document.querySelector('#asset-events a.event-run');
			return a && decodeURIComponent(a.getAttribute('href')) === `+string(runLink)+` &&
				document.querySelector('#asset-events code.event-data').textContent.includes('<img src=x onerror=window.__xss=1>');
		})()`, 30*time.Second)
	b.waitJS("a viewer's Emit button is disabled", `document.getElementById('asset-emit').disabled === true`)
	b.checkClean()

	b.open(c.Instances[0].URL + "/#/dags/uiconsumer")
	b.waitJS("the consumer shows ui.orders updated and ui.prices waiting",
		`document.querySelector('#dag-waits-for .asset-wait[data-asset="ui.orders"]').dataset.updated === 'true' &&
		 document.querySelector('#dag-waits-for .asset-wait[data-asset="ui.prices"]').dataset.updated === 'false'`, 30*time.Second)

	b.do("log out", chromedp.Click(chromedp.ID("logout")))
	b.do("sign in as an operator",
		chromedp.WaitVisible(chromedp.ID("login-token")),
		chromedp.SendKeys(chromedp.ID("login-token"), c.Token(api.RoleOperator)),
		chromedp.Click(chromedp.ID("login-submit")))
	b.open(c.Instances[0].URL + "/#/assets/ui.prices")
	b.waitJS("an operator's Emit button is enabled", `document.getElementById('asset-emit').disabled === false`, 30*time.Second)
	b.click(`#asset-emit`)
	b.waitJS("the emitted event shows", `!!document.querySelector('#asset-events tr[data-seq="1"] .event-emitted')`, 30*time.Second)
	deadline := time.Now().Add(time.Minute)
	for {
		runs, _, err := op.Runs().List(context.Background(), &api.RunListOptions{DAG: "uiconsumer"})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && runs[0].Type == "asset_triggered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("uiconsumer runs after the emit: %+v", runs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
