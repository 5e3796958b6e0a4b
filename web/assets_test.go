package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

const assetPair = `
dag "lake_load" {
  task "copy" {
    command = "/bin/true"
    outlets = ["s3://lake/orders/"]
  }
}

dag "lake_report" {
  schedule_on = any("s3://lake/orders/", "warehouse.customers")
  task "report" { command = "/bin/true" }
}
`

// TestEmitOnStandby posts an asset event to a standby, which hands it to the leader like any
// other action: the consumer runs, the event is listed with the asset's producers and
// consumers, and posting the same event ID again records nothing new.
func TestEmitOnStandby(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Instances: 2})
	c.Apply(assetPair)
	ctx := context.Background()
	standby := c.Client(1, c.Token(api.RoleOperator))
	req := &api.EmitRequest{ID: "drop-42", Extra: json.RawMessage(`{"files":3}`)}
	res, err := standby.Assets().Emit(ctx, "s3://lake/orders/", req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicate || res.Event == nil || res.Event.Seq != 1 || res.Event.ID != "drop-42" {
		t.Fatalf("emit = %+v", res)
	}
	again, err := standby.Assets().Emit(ctx, "s3://lake/orders/", req)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Event == nil || again.Event.Seq != 1 {
		t.Errorf("repeated emit = %+v", again)
	}
	if _, err := standby.Assets().Emit(ctx, "warehouse.customers", &api.EmitRequest{Extra: json.RawMessage(`[1]`)}); err == nil {
		t.Errorf("an extra that is not an object was accepted")
	}

	var runID string
	deadline := time.Now().Add(time.Minute)
	for runID == "" && time.Now().Before(deadline) {
		runs, _, err := standby.Runs().List(ctx, &api.RunListOptions{DAG: "lake_report"})
		if err == nil && len(runs) > 0 {
			runID = runs[0].ID
		}
		time.Sleep(200 * time.Millisecond)
	}
	if runID == "" {
		t.Fatal("lake_report got no run")
	}
	r := c.WaitRun("lake_report", runID, 2*time.Minute, "finished", testcluster.Finished)
	if r.Type != "asset_triggered" {
		t.Errorf("run type %s", r.Type)
	}

	list, _, err := standby.Assets().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "s3://lake/orders/" || list[0].Seq != 1 ||
		len(list[0].Producers) != 1 || list[0].Producers[0] != "lake_load.copy" ||
		len(list[0].Consumers) != 1 || list[0].Consumers[0] != "lake_report" {
		t.Errorf("list = %+v", list)
	}
	a, _, err := standby.Assets().Info(ctx, "s3://lake/orders/")
	if err != nil {
		t.Fatal(err)
	}
	var extra bytes.Buffer
	if len(a.Events) != 1 || json.Compact(&extra, a.Events[0].Extra) != nil || extra.String() != `{"files":3}` {
		t.Errorf("asset = %+v", a)
	}
}
