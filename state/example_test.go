package state_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/state"
)

// An apply reads the catalog, decides, then applies against what it read, so a concurrent
// apply is detected instead of overwritten.
func ExampleStore_Apply() {
	client, err := consulapi.NewClient(consulapi.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	store, err := state.New(client, state.DefaultPrefix)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	base, err := store.Catalog(ctx)
	if err != nil {
		log.Fatal(err)
	}
	dags := []*spec.DAG{{Name: "nightly", Schedule: "0 2 * * *", Timezone: "UTC", Catchup: spec.CatchupNone}}
	queues := []*spec.Queue{{Name: spec.DefaultQueue}}
	applied, err := store.Apply(ctx, base, dags, queues, time.Now())
	if errors.Is(err, state.ErrConflict) {
		log.Fatal(err) // "the applied DAGs changed since this plan was made; run plan again"
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(applied.DAGs["nightly"].Version)
}
