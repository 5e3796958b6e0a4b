package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

const pipeline = `
dag "etl" {
  description = "extract, then load"
  schedule    = "@daily"
  start_date  = "2026-01-01"
  tags        = ["nightly"]
  param "rows" {
    type    = number
    default = 10
  }
  defaults {
    command = "/bin/sh"
  }
  task "extract" {
    args = ["-c", "echo extracting ${params.rows} rows; echo warn >&2"]
  }
  task "load" {
    depends_on = ["extract"]
    args       = ["-c", "echo loaded"]
  }
}
`

func TestTriggerOnStandby(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Instances: 2})
	c.Apply(pipeline)
	op := c.Token(api.RoleOperator)
	standby := c.Client(1, op)
	if c.Instances[1].Server.Role() != "standby" {
		t.Fatal("instance 1 is not standby")
	}
	ctx := context.Background()
	res, err := standby.DAGs().Trigger(ctx, "etl", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RunIDs) != 1 {
		t.Fatalf("run IDs = %v", res.RunIDs)
	}
	r := c.WaitRun("etl", res.RunIDs[0], 2*time.Minute, "finished", testcluster.Finished)
	if r.State != "success" {
		t.Fatalf("run = %+v", r)
	}
	logs, err := standby.Runs().Logs(ctx, "etl", r.ID, "extract", 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(logs.Data) != "extracting 10 rows\n" {
		t.Fatalf("logs = %q (%+v)", logs.Data, logs)
	}
}
