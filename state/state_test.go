package state_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/state/statetest"
)

var (
	t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Hour)
	t2 = t0.Add(2 * time.Hour)
)

func TestNewPrefix(t *testing.T) {
	client, err := consulapi.NewClient(consulapi.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		prefix  string
		want    string
		wantErr bool
	}{
		{prefix: "dagflow", want: "dagflow/"},
		{prefix: "dagflow/", want: "dagflow/"},
		{prefix: "team-a/dagflow", want: "team-a/dagflow/"},
		{prefix: "", wantErr: true},
		{prefix: "/dagflow", wantErr: true},
		{prefix: "/", wantErr: true},
		{prefix: "a//b", wantErr: true},
		{prefix: "dagflow//", wantErr: true},
		{prefix: "a/../b", wantErr: true},
		{prefix: "dag flow", wantErr: true},
		{prefix: "dag\nflow", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.prefix), func(t *testing.T) {
			s, err := state.New(client, tt.prefix)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("New(%q) = %q, want an error", tt.prefix, s.Prefix())
				}
				if !strings.Contains(err.Error(), `such as "dagflow/"`) {
					t.Errorf("error %q does not say what a valid prefix looks like", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%q): %v", tt.prefix, err)
			}
			if got := s.Prefix(); got != tt.want {
				t.Errorf("Prefix() = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := state.New(nil, "dagflow"); err == nil {
		t.Error("New(nil client) succeeded, want an error")
	}
}

// testDAG is a small valid-looking DAG; edit changes it so its hash differs.
func testDAG(name string, edit func(*spec.DAG)) *spec.DAG {
	d := &spec.DAG{
		Name:           name,
		Schedule:       "@daily",
		Timezone:       "UTC",
		StartDate:      time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Catchup:        spec.CatchupNone,
		MaxActiveRuns:  1,
		MaxActiveTasks: 16,
		Params: []*spec.Param{
			{Name: "day", Type: "string", Default: json.RawMessage(`"today"`)},
		},
		Tasks: []*spec.Task{
			{Name: "extract", TriggerRule: "all_success", Queue: spec.DefaultQueue, Driver: spec.DriverRawExec, Command: "extract.sh", Retries: 1},
			{Name: "load", DependsOn: []string{"extract"}, TriggerRule: "all_success", Queue: spec.DefaultQueue, Driver: spec.DriverRawExec, Command: "load.sh", Env: map[string]string{"DAY": "${params.day}"}},
		},
		Source: fmt.Sprintf("dag %q {\n  schedule = \"@daily\"\n}\n", name),
	}
	if edit != nil {
		edit(d)
	}
	return d
}

func testQueue(name string) *spec.Queue {
	return &spec.Queue{Name: name, NodePool: name, MaxRunning: 4, Source: fmt.Sprintf("queue %q {}\n", name)}
}

func hash(t *testing.T, v any) string {
	t.Helper()
	h, err := spec.Hash(v)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustCatalog(t *testing.T, s *state.Store) *state.Catalog {
	t.Helper()
	c, err := s.Catalog(context.Background())
	if err != nil {
		t.Fatalf("Catalog: %v", err)
	}
	return c
}

func mustApply(t *testing.T, s *state.Store, base *state.Catalog, dags []*spec.DAG, queues []*spec.Queue, now time.Time) *state.Catalog {
	t.Helper()
	c, err := s.Apply(context.Background(), base, dags, queues, now)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return c
}

// ignoreIndex compares catalogs by content; Index values are checked on their own.
var ignoreIndex = cmpopts.IgnoreFields(state.Catalog{}, "Index")

func TestStore(t *testing.T) {
	newStore, _, client := statetest.Stores(t)
	ctx := context.Background()

	t.Run("empty catalog", func(t *testing.T) {
		s := newStore(t)
		got := mustCatalog(t, s)
		want := &state.Catalog{DAGs: map[string]state.Entry{}, Queues: map[string]state.Entry{}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Catalog() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("apply then read back", func(t *testing.T) {
		s := newStore(t)
		nightly, reports := testDAG("nightly", nil), testDAG("reports", nil)
		gpu := testQueue("gpu")
		applied := mustApply(t, s, mustCatalog(t, s), []*spec.DAG{nightly, reports}, []*spec.Queue{gpu}, t0)
		if applied.Index == 0 {
			t.Error("Apply returned Index 0, want the catalog's ModifyIndex")
		}
		want := &state.Catalog{
			DAGs: map[string]state.Entry{
				"nightly": {Version: hash(t, nightly), CreatedAt: t0, UpdatedAt: t0},
				"reports": {Version: hash(t, reports), CreatedAt: t0, UpdatedAt: t0},
			},
			Queues: map[string]state.Entry{
				"gpu": {Version: hash(t, gpu), CreatedAt: t0, UpdatedAt: t0},
			},
		}
		if diff := cmp.Diff(want, applied, ignoreIndex); diff != "" {
			t.Errorf("Apply() mismatch (-want +got):\n%s", diff)
		}
		read := mustCatalog(t, s)
		if diff := cmp.Diff(applied, read); diff != "" {
			t.Errorf("Catalog() after Apply mismatch (-applied +read):\n%s", diff)
		}

		v, err := s.DAGVersion(ctx, "nightly", hash(t, nightly))
		if err != nil {
			t.Fatalf("DAGVersion: %v", err)
		}
		wantV := &state.DAGVersion{DAG: nightly, Source: nightly.Source, CreatedAt: t0}
		if diff := cmp.Diff(wantV, v); diff != "" {
			t.Errorf("DAGVersion() mismatch (-want +got):\n%s", diff)
		}
		if got := hash(t, v.DAG); got != hash(t, nightly) {
			t.Errorf("read-back DAG hashes to %s, want %s", got, hash(t, nightly))
		}
		q, err := s.Queue(ctx, "gpu", hash(t, gpu))
		if err != nil {
			t.Fatalf("Queue: %v", err)
		}
		if diff := cmp.Diff(gpu, q); diff != "" {
			t.Errorf("Queue() mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("re-apply identical keeps versions and timestamps", func(t *testing.T) {
		s := newStore(t)
		dags := []*spec.DAG{testDAG("nightly", nil)}
		queues := []*spec.Queue{testQueue("default")}
		first := mustApply(t, s, mustCatalog(t, s), dags, queues, t0)
		second := mustApply(t, s, mustCatalog(t, s), []*spec.DAG{testDAG("nightly", nil)}, []*spec.Queue{testQueue("default")}, t1)
		if diff := cmp.Diff(first, second); diff != "" {
			t.Errorf("re-apply changed the catalog (-first +second):\n%s", diff)
		}
		if got := mustCatalog(t, s).Index; got != first.Index {
			t.Errorf("re-applying identical definitions wrote the catalog: index %d, want %d", got, first.Index)
		}
	})

	t.Run("edit makes a new version and keeps the old one", func(t *testing.T) {
		s := newStore(t)
		v1 := testDAG("nightly", nil)
		v2 := testDAG("nightly", func(d *spec.DAG) { d.Tasks[1].Retries = 3 })
		other := testDAG("other", nil)
		c1 := mustApply(t, s, mustCatalog(t, s), []*spec.DAG{v1, other}, nil, t0)
		c2 := mustApply(t, s, c1, []*spec.DAG{v2, other}, nil, t1)
		want := map[string]state.Entry{
			"nightly": {Version: hash(t, v2), CreatedAt: t0, UpdatedAt: t1},
			"other":   {Version: hash(t, other), CreatedAt: t0, UpdatedAt: t0},
		}
		if diff := cmp.Diff(want, c2.DAGs); diff != "" {
			t.Errorf("catalog DAGs after edit (-want +got):\n%s", diff)
		}
		if c2.Index <= c1.Index {
			t.Errorf("Index after edit = %d, want more than %d", c2.Index, c1.Index)
		}
		versions, err := s.DAGVersions(ctx, "nightly")
		if err != nil {
			t.Fatalf("DAGVersions: %v", err)
		}
		wantVersions := []state.VersionInfo{{Version: hash(t, v1), CreatedAt: t0}, {Version: hash(t, v2), CreatedAt: t1}}
		if diff := cmp.Diff(wantVersions, versions); diff != "" {
			t.Errorf("DAGVersions() mismatch (-want +got):\n%s", diff)
		}
		old, err := s.DAGVersion(ctx, "nightly", hash(t, v1))
		if err != nil {
			t.Fatalf("DAGVersion(old): %v", err)
		}
		if old.DAG.Tasks[1].Retries != 0 {
			t.Errorf("old version has retries %d, want 0", old.DAG.Tasks[1].Retries)
		}

		// Reverting re-applies a version that is stored already: its create-only write finds
		// the key and moves on.
		c3 := mustApply(t, s, c2, []*spec.DAG{testDAG("nightly", nil), other}, nil, t2)
		if got, want := c3.DAGs["nightly"], (state.Entry{Version: hash(t, v1), CreatedAt: t0, UpdatedAt: t2}); !cmp.Equal(got, want) {
			t.Errorf("entry after revert = %+v, want %+v", got, want)
		}
		versions, err = s.DAGVersions(ctx, "nightly")
		if err != nil {
			t.Fatalf("DAGVersions: %v", err)
		}
		if diff := cmp.Diff(wantVersions, versions); diff != "" {
			t.Errorf("DAGVersions() after revert mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("remove keeps the versions", func(t *testing.T) {
		s := newStore(t)
		a, b := testDAG("a", nil), testDAG("b", nil)
		c1 := mustApply(t, s, mustCatalog(t, s), []*spec.DAG{a, b}, []*spec.Queue{testQueue("default"), testQueue("gpu")}, t0)
		c2 := mustApply(t, s, c1, []*spec.DAG{a}, []*spec.Queue{testQueue("default")}, t1)
		want := &state.Catalog{
			DAGs:   map[string]state.Entry{"a": c1.DAGs["a"]},
			Queues: map[string]state.Entry{"default": c1.Queues["default"]},
		}
		if diff := cmp.Diff(want, c2, ignoreIndex); diff != "" {
			t.Errorf("catalog after remove (-want +got):\n%s", diff)
		}
		if _, err := s.DAGVersion(ctx, "b", hash(t, b)); err != nil {
			t.Errorf("removed DAG's version is gone: %v", err)
		}
		if _, err := s.Queue(ctx, "gpu", c1.Queues["gpu"].Version); err != nil {
			t.Errorf("removed queue's version is gone: %v", err)
		}
		empty := mustApply(t, s, c2, nil, nil, t2)
		if len(empty.DAGs) != 0 || len(empty.Queues) != 0 {
			t.Errorf("applying nothing left %v", empty)
		}
	})

	t.Run("prefixes are independent", func(t *testing.T) {
		x, err := state.New(client, "independent-x")
		if err != nil {
			t.Fatal(err)
		}
		nested, err := state.New(client, "independent-x/nested")
		if err != nil {
			t.Fatal(err)
		}
		y, err := state.New(client, "independent-y/")
		if err != nil {
			t.Fatal(err)
		}
		mustApply(t, x, mustCatalog(t, x), []*spec.DAG{testDAG("a", nil)}, nil, t0)
		mustApply(t, nested, mustCatalog(t, nested), []*spec.DAG{testDAG("b", nil)}, nil, t0)
		if got := mustCatalog(t, y); len(got.DAGs) != 0 || got.Index != 0 {
			t.Errorf("store y sees %v", got)
		}
		if got := mustCatalog(t, x); len(got.DAGs) != 1 || got.DAGs["a"].Version == "" {
			t.Errorf("store x holds %v, want only dag a", got)
		}
		if got := mustCatalog(t, nested); len(got.DAGs) != 1 || got.DAGs["b"].Version == "" {
			t.Errorf("store x/nested holds %v, want only dag b", got)
		}
		if _, err := y.DAGVersions(ctx, "a"); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("y.DAGVersions(a) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("concurrent applies from one base", func(t *testing.T) {
		s := newStore(t)
		base := mustApply(t, s, mustCatalog(t, s), []*spec.DAG{testDAG("a", nil)}, nil, t0)
		sets := [][]*spec.DAG{
			{testDAG("a", nil), testDAG("from-first", nil)},
			{testDAG("a", func(d *spec.DAG) { d.Schedule = "@hourly" }), testDAG("from-second", nil)},
		}
		results := make([]*state.Catalog, len(sets))
		errs := make([]error, len(sets))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, dags := range sets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = s.Apply(ctx, base, dags, nil, t1)
			}()
		}
		close(start)
		wg.Wait()

		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner == -1:
				winner = i
			case err == nil:
				t.Fatalf("both applies succeeded")
			case !errors.Is(err, state.ErrConflict):
				t.Errorf("apply %d error = %v, want ErrConflict", i, err)
			case !strings.Contains(err.Error(), "run plan again"):
				t.Errorf("conflict error %q does not tell the user to plan again", err)
			}
		}
		if winner == -1 {
			t.Fatalf("no apply succeeded: %v", errs)
		}
		if diff := cmp.Diff(results[winner], mustCatalog(t, s)); diff != "" {
			t.Errorf("stored catalog is not the winner's (-winner +stored):\n%s", diff)
		}
	})

	t.Run("stale base conflicts even without changes", func(t *testing.T) {
		s := newStore(t)
		base := mustCatalog(t, s)
		applied := mustApply(t, s, base, []*spec.DAG{testDAG("a", nil)}, nil, t0)
		// Planned against the empty catalog, applying nothing would be a no-op there, but
		// the catalog moved on since.
		if _, err := s.Apply(ctx, base, nil, nil, t1); !errors.Is(err, state.ErrConflict) {
			t.Errorf("Apply(stale base, no DAGs) error = %v, want ErrConflict", err)
		}
		stale := *applied
		stale.Index--
		if _, err := s.Apply(ctx, &stale, []*spec.DAG{testDAG("a", nil)}, nil, t1); !errors.Is(err, state.ErrConflict) {
			t.Errorf("Apply(stale base, same DAGs) error = %v, want ErrConflict", err)
		}
		if _, err := s.Apply(ctx, nil, nil, nil, t1); err == nil {
			t.Error("Apply(nil base) succeeded, want an error")
		}
	})

	t.Run("more versions than one transaction holds", func(t *testing.T) {
		s := newStore(t)
		var dags []*spec.DAG
		for i := range 150 {
			dags = append(dags, testDAG(fmt.Sprintf("dag-%03d", i), nil))
		}
		// Each value is 8 KB, so batches are cut by size as well as by operation count.
		dags[7].Tasks[0].Command = strings.Repeat("x", 8<<10)
		for _, d := range dags[100:] {
			d.Tasks[0].Command = strings.Repeat("y", 8<<10)
		}
		_, meta, err := client.KV().Get("index-probe", nil)
		if err != nil {
			t.Fatal(err)
		}
		before := meta.LastIndex
		c := mustApply(t, s, mustCatalog(t, s), dags, nil, t0)
		if len(c.DAGs) != len(dags) {
			t.Fatalf("catalog has %d DAGs, want %d", len(c.DAGs), len(dags))
		}
		// One Raft write per batch and one for the catalog, not one per version (a little
		// slack for the agent's own writes).
		if writes := c.Index - before; writes > 20 {
			t.Errorf("applying %d DAGs took %d Raft writes, want them batched", len(dags), writes)
		}
		for _, d := range dags {
			v, err := s.DAGVersion(ctx, d.Name, hash(t, d))
			if err != nil {
				t.Fatalf("DAGVersion(%s): %v", d.Name, err)
			}
			if diff := cmp.Diff(d, v.DAG); diff != "" {
				t.Fatalf("DAGVersion(%s) mismatch (-want +got):\n%s", d.Name, diff)
			}
		}
	})

	t.Run("batch holding a stored version and a new one", func(t *testing.T) {
		s := newStore(t)
		edit := func(schedule string) func(*spec.DAG) { return func(d *spec.DAG) { d.Schedule = schedule } }
		c := mustApply(t, s, mustCatalog(t, s), []*spec.DAG{testDAG("a", nil), testDAG("b", nil)}, nil, t0)
		c = mustApply(t, s, c, []*spec.DAG{testDAG("a", edit("@hourly")), testDAG("b", edit("@hourly"))}, nil, t1)
		// a goes back to a stored version, b to a new one: Consul rolls back the transaction
		// holding both, and the one-by-one retry writes b.
		a, b := testDAG("a", nil), testDAG("b", edit("@weekly"))
		c = mustApply(t, s, c, []*spec.DAG{a, b}, nil, t2)
		for _, d := range []*spec.DAG{a, b} {
			if got, want := c.DAGs[d.Name].Version, hash(t, d); got != want {
				t.Errorf("dag %s version = %s, want %s", d.Name, got, want)
			}
			if _, err := s.DAGVersion(ctx, d.Name, hash(t, d)); err != nil {
				t.Errorf("DAGVersion(%s): %v", d.Name, err)
			}
		}
	})

	t.Run("too large DAG", func(t *testing.T) {
		s := newStore(t)
		huge := testDAG("huge", func(d *spec.DAG) { d.Tasks[0].Command = strings.Repeat("x", 600<<10) })
		_, err := s.Apply(ctx, mustCatalog(t, s), []*spec.DAG{testDAG("small", nil), huge}, nil, t0)
		if !errors.Is(err, state.ErrTooLarge) {
			t.Fatalf("Apply(huge DAG) error = %v, want ErrTooLarge", err)
		}
		if !strings.Contains(err.Error(), `dag "huge"`) || !strings.Contains(err.Error(), "512 KB") {
			t.Errorf("error %q does not name the DAG and the limit", err)
		}
		if c := mustCatalog(t, s); c.Index != 0 {
			t.Errorf("a failed apply wrote the catalog: %v", c)
		}
		if _, err := s.DAGVersions(ctx, "small"); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("a failed apply wrote versions: DAGVersions(small) error = %v", err)
		}
	})

	t.Run("too large DAG under Consul's limit, over the transaction budget", func(t *testing.T) {
		s := newStore(t)
		big := testDAG("big", func(d *spec.DAG) { d.Tasks[0].Command = strings.Repeat("x", 450<<10) })
		mustApply(t, s, mustCatalog(t, s), []*spec.DAG{testDAG("small", nil), big}, nil, t0)
		v, err := s.DAGVersion(ctx, "big", hash(t, big))
		if err != nil {
			t.Fatalf("DAGVersion(big): %v", err)
		}
		if len(v.DAG.Tasks[0].Command) != 450<<10 {
			t.Errorf("read back a command of %d bytes", len(v.DAG.Tasks[0].Command))
		}
	})

	t.Run("not found", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.DAGVersion(ctx, "nope", strings.Repeat("0", 64)); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("DAGVersion(missing) error = %v, want ErrNotFound", err)
		}
		if _, err := s.Queue(ctx, "nope", strings.Repeat("0", 64)); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("Queue(missing) error = %v, want ErrNotFound", err)
		}
		if _, err := s.DAGVersions(ctx, "nope"); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("DAGVersions(missing) error = %v, want ErrNotFound", err)
		}
	})

	t.Run("bad names", func(t *testing.T) {
		s := newStore(t)
		base := mustCatalog(t, s)
		for _, name := range []string{"", "a/b", ".."} {
			if _, err := s.Apply(ctx, base, []*spec.DAG{testDAG(name, nil)}, nil, t0); err == nil {
				t.Errorf("Apply(dag %q) succeeded, want an error", name)
			}
		}
		if _, err := s.Apply(ctx, base, []*spec.DAG{testDAG("a", nil), testDAG("a", nil)}, nil, t0); err == nil {
			t.Error("Apply(dag a twice) succeeded, want an error")
		}
	})

	t.Run("canceled context", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Catalog(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Catalog(canceled) error = %v, want context.Canceled", err)
		}
		if _, err := s.Apply(cctx, &state.Catalog{}, []*spec.DAG{testDAG("a", nil)}, nil, t0); !errors.Is(err, context.Canceled) {
			t.Errorf("Apply(canceled) error = %v, want context.Canceled", err)
		}
	})
}
