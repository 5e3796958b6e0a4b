package plan_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/plan"
	"github.com/dagflow/dagflow/state"
)

const assetDAGs = `
dag "load" {
  task "orders" {
    command = "true"
    outlets = ["warehouse.orders"]
  }
  task "customers" {
    command = "true"
    outlets = ["warehouse.customers", "warehouse.orders"]
  }
}

dag "report" {
  schedule_on = all("warehouse.orders", any("warehouse.customers", "raw.vendors"))
  task "t" { command = "true" }
}

dag "audit" {
  schedule_on = ["raw.vendors"]
  task "t" { command = "true" }
}
`

// TestAssets: plan lists each asset's producers and consumers and warns about an asset DAGs
// are scheduled on that no task produces, in the human and the JSON view.
func TestAssets(t *testing.T) {
	local, diags := spec.NewParser().LoadSource([]byte(assetDAGs), "assets.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	uses, warnings := plan.Assets(local)
	want := []plan.AssetUse{
		{Name: "raw.vendors", Consumers: []string{"audit", "report"}},
		{Name: "warehouse.customers", Producers: []string{"load.customers"}, Consumers: []string{"report"}},
		{Name: "warehouse.orders", Producers: []string{"load.customers", "load.orders"}, Consumers: []string{"report"}},
	}
	if diff := cmp.Diff(want, uses); diff != "" {
		t.Errorf("Assets() mismatch (-want +got):\n%s", diff)
	}
	wantWarnings := []string{`asset "raw.vendors": DAGs "audit", "report" are scheduled on it, but no task has it in outlets; their runs wait for events posted with dagflow asset emit`}
	if diff := cmp.Diff(wantWarnings, warnings); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}

	p := &plan.Plan{Changes: plan.Diff(local, nil, nil), Assets: uses, Warnings: warnings, Base: &state.Catalog{}, Local: local}
	var buf bytes.Buffer
	if err := plan.Render(&buf, p, false); err != nil {
		t.Fatal(err)
	}
	goldenFile(t, "assets", buf.Bytes())

	buf.Reset()
	if err := plan.RenderJSON(&buf, p); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Assets []struct {
			Name      string   `json:"name"`
			Producers []string `json:"producers"`
			Consumers []string `json:"consumers"`
		} `json:"assets"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Assets) != 3 || got.Assets[0].Producers == nil || len(got.Assets[2].Producers) != 2 {
		t.Errorf("JSON assets = %+v", got.Assets)
	}
}
