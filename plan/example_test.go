package plan_test

import (
	"os"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/plan"
)

// Render prints what applying would change, in Terraform's grammar.
func ExampleRender() {
	applied := &spec.DAG{Name: "reports", Schedule: "@daily", Timezone: "UTC", Catchup: "none",
		Tasks: []*spec.Task{{Name: "load", Driver: "raw_exec", Command: "load.sh", Retries: 2}}}
	edited := &spec.DAG{Name: "reports", Schedule: "@hourly", Timezone: "UTC", Catchup: "none",
		Tasks: []*spec.Task{{Name: "load", Driver: "raw_exec", Command: "load.sh", Retries: 3}}}
	local := &spec.Config{DAGs: []*spec.DAG{edited}}

	p := &plan.Plan{
		Changes: plan.Diff(local, map[string]*spec.DAG{"reports": applied}, nil),
		Local:   local,
	}
	if err := plan.Render(os.Stdout, p, false); err != nil {
		panic(err)
	}
	// Output:
	// dagflow will perform the following actions:
	//
	//   # dag.reports will be updated in place
	//   ~ dag "reports" {
	//       ~ schedule = "@daily" -> "@hourly"
	//       ~ task "load" {
	//           ~ retries = 2 -> 3
	//         }
	//     }
	//
	// Plan: 0 to add, 1 to change, 0 to destroy.
}
