package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/state/statetest"
)

// manyDAGs is n DAGs whose catalog entries take more than one 512 KB key when n is 4,000,
// the old single-key ceiling being about 2,800 DAGs.
func manyDAGs(n int, edit func(*spec.DAG)) []*spec.DAG {
	dags := make([]*spec.DAG, n)
	for i := range dags {
		dags[i] = testDAG(fmt.Sprintf("a-rather-long-dag-name-for-the-catalog-%05d", i), edit)
	}
	return dags
}

func TestCatalogGenerations(t *testing.T) {
	newStore, _, client := statetest.Stores(t)
	ctx := context.Background()

	t.Run("more DAGs than one key holds", func(t *testing.T) {
		s := newStore(t)
		dags := manyDAGs(4000, nil)
		c := mustApply(t, s, mustCatalog(t, s), dags, []*spec.Queue{testQueue("default")}, t0)
		read := mustCatalog(t, s)
		if diff := cmp.Diff(c, read); diff != "" {
			t.Fatalf("Catalog() after Apply mismatch (-applied +read):\n%s", diff)
		}
		if len(read.DAGs) != 4000 || len(read.Queues) != 1 {
			t.Fatalf("catalog holds %d DAGs and %d queues, want 4000 and 1", len(read.DAGs), len(read.Queues))
		}
		for _, d := range dags[:5] {
			if got, want := read.DAGs[d.Name].Version, hash(t, d); got != want {
				t.Errorf("dag %s version = %s, want %s", d.Name, got, want)
			}
		}
		keys, _, err := client.KV().Keys(s.Prefix()+"catalog/gen/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) < 2 {
			t.Errorf("the catalog of 4000 DAGs takes %d chunk keys, want it split", len(keys))
		}
		// An update that touches one DAG among thousands keeps the others' entries.
		edited := append([]*spec.DAG(nil), dags...)
		edited[1234] = testDAG(dags[1234].Name, func(d *spec.DAG) { d.Schedule = "@hourly" })
		c2 := mustApply(t, s, read, edited, []*spec.Queue{testQueue("default")}, t1)
		if got := c2.DAGs[dags[1234].Name]; got.UpdatedAt != t1 || got.CreatedAt != t0 {
			t.Errorf("edited entry = %+v, want created %v updated %v", got, t0, t1)
		}
		if got := c2.DAGs[dags[0].Name]; got.UpdatedAt != t0 {
			t.Errorf("untouched entry = %+v, want updated %v", got, t0)
		}
		if _, err := s.DAGVersion(ctx, dags[1234].Name, hash(t, dags[1234])); err != nil {
			t.Errorf("the version before the edit is gone: %v", err)
		}
	})

	t.Run("a reader never sees half an apply", func(t *testing.T) {
		s := newStore(t)
		versions := []func(*spec.DAG){nil, func(d *spec.DAG) { d.Schedule = "@hourly" }, func(d *spec.DAG) { d.Schedule = "@weekly" }}
		sets := make([][]*spec.DAG, len(versions))
		for i, edit := range versions {
			sets[i] = manyDAGs(3000, edit)
		}
		// Every catalog a reader may see is one of the sets, whole: each version names its set.
		setOf := map[string]int{}
		for i, set := range sets {
			for _, d := range set {
				setOf[hash(t, d)] = i
			}
		}
		base := mustApply(t, s, mustCatalog(t, s), sets[0], nil, t0)

		done := make(chan struct{})
		var wg sync.WaitGroup
		var reads, mixed int
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				c, err := s.Catalog(ctx)
				if err != nil {
					t.Errorf("Catalog during apply: %v", err)
					return
				}
				reads++
				seen := map[int]bool{}
				for _, e := range c.DAGs {
					seen[setOf[e.Version]] = true
				}
				if len(c.DAGs) != 3000 || len(seen) != 1 {
					mixed++
				}
			}
		}()
		for i := 1; i < len(sets); i++ {
			base = mustApply(t, s, base, sets[i], nil, t1)
		}
		close(done)
		wg.Wait()
		if mixed > 0 {
			t.Errorf("%d of %d reads during applies saw a catalog that is no apply's", mixed, reads)
		}
		if reads < 2 {
			t.Errorf("only %d reads during the applies; the test proves nothing", reads)
		}
	})

	t.Run("watch answers when an apply lands", func(t *testing.T) {
		s := newStore(t)
		c := mustApply(t, s, mustCatalog(t, s), []*spec.DAG{testDAG("a", nil)}, nil, t0)
		_, index, err := s.WatchCatalog(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *state.Catalog, 1)
		go func() {
			c, _, err := s.WatchCatalog(ctx, index)
			if err != nil {
				t.Errorf("WatchCatalog: %v", err)
			}
			got <- c
		}()
		applied := mustApply(t, s, c, []*spec.DAG{testDAG("a", nil), testDAG("b", nil)}, nil, t1)
		if diff := cmp.Diff(applied, <-got); diff != "" {
			t.Errorf("watch returned another catalog than the apply's (-applied +watched):\n%s", diff)
		}
	})

	t.Run("CatalogSince reuses an unchanged catalog", func(t *testing.T) {
		s := newStore(t)
		c := mustApply(t, s, mustCatalog(t, s), []*spec.DAG{testDAG("a", nil)}, nil, t0)
		read := mustCatalog(t, s)
		same, err := s.CatalogSince(ctx, read)
		if err != nil {
			t.Fatal(err)
		}
		if same != read {
			t.Error("CatalogSince read the chunks again though the head did not change")
		}
		mustApply(t, s, c, []*spec.DAG{testDAG("a", nil), testDAG("b", nil)}, nil, t1)
		next, err := s.CatalogSince(ctx, read)
		if err != nil {
			t.Fatal(err)
		}
		if len(next.DAGs) != 2 || next.Index <= read.Index {
			t.Errorf("CatalogSince after an apply = %d DAGs at index %d, want 2 after %d", len(next.DAGs), next.Index, read.Index)
		}
		if first, err := s.CatalogSince(ctx, nil); err != nil || first.Index != next.Index {
			t.Errorf("CatalogSince(nil) = %v, %v", first, err)
		}
	})

	t.Run("old single-key layout reads and migrates", func(t *testing.T) {
		s := newStore(t)
		a := testDAG("a", nil)
		old := map[string]map[string]state.Entry{
			"dags":   {"a": {Version: hash(t, a), CreatedAt: t0, UpdatedAt: t0}},
			"queues": {"default": {Version: hash(t, testQueue("default")), CreatedAt: t0, UpdatedAt: t0}},
		}
		value, err := json.Marshal(old)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.KV().Put(&consulapi.KVPair{Key: s.Prefix() + "catalog", Value: value}, nil); err != nil {
			t.Fatal(err)
		}
		base := mustCatalog(t, s)
		if diff := cmp.Diff(old["dags"], base.DAGs); diff != "" {
			t.Errorf("old catalog's DAGs (-stored +read):\n%s", diff)
		}
		if base.Index == 0 {
			t.Error("old catalog read with Index 0")
		}
		stale := *base
		stale.Index--
		if _, err := s.Apply(ctx, &stale, []*spec.DAG{a, testDAG("b", nil)}, nil, t1); !errors.Is(err, state.ErrConflict) {
			t.Errorf("Apply(stale base of the old layout) error = %v, want ErrConflict", err)
		}
		c := mustApply(t, s, base, []*spec.DAG{a, testDAG("b", nil)}, []*spec.Queue{testQueue("default")}, t1)
		if got := c.DAGs["a"]; got.CreatedAt != t0 || got.UpdatedAt != t0 {
			t.Errorf("migrated entry a = %+v, want its timestamps kept", got)
		}
		if diff := cmp.Diff(c, mustCatalog(t, s)); diff != "" {
			t.Errorf("Catalog() after migration (-applied +read):\n%s", diff)
		}
		if pair, _, err := client.KV().Get(s.Prefix()+"catalog", nil); err != nil || pair != nil {
			t.Errorf("the old catalog key is still there after migrating (%v)", err)
		}
		if _, err := s.Apply(ctx, base, []*spec.DAG{a}, nil, t2); !errors.Is(err, state.ErrConflict) {
			t.Errorf("Apply(old layout's base after migration) error = %v, want ErrConflict", err)
		}
	})

	t.Run("old generations are dropped, versions kept", func(t *testing.T) {
		s := newStore(t)
		c := mustCatalog(t, s)
		var applied []*spec.DAG
		for i := range 8 {
			d := testDAG("a", func(d *spec.DAG) { d.Description = fmt.Sprintf("edit %d", i) })
			applied = append(applied, d)
			c = mustApply(t, s, c, []*spec.DAG{d}, nil, t0)
		}
		folders, _, err := client.KV().Keys(s.Prefix()+"catalog/gen/", "/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(folders) != 4 {
			t.Errorf("after 8 applies %d generations are stored (%s), want the current one and 3 before it", len(folders), strings.Join(folders, ", "))
		}
		for _, d := range applied {
			if _, err := s.DAGVersion(ctx, "a", hash(t, d)); err != nil {
				t.Errorf("version %s: %v", hash(t, d), err)
			}
		}
	})
}
