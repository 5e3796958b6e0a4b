package state_test

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/state/statetest"
)

// TestDAGVersionShared: readers of one Store get the same decoded version while one holds it.
func TestDAGVersionShared(t *testing.T) {
	newStore, _, _ := statetest.Stores(t)
	s := newStore(t)
	ctx := context.Background()
	d := testDAG("nightly", nil)
	mustApply(t, s, mustCatalog(t, s), []*spec.DAG{d}, nil, t0)
	a, err := s.DAGVersion(ctx, "nightly", hash(t, d))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.DAGVersion(ctx, "nightly", hash(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if a.DAG != b.DAG {
		t.Errorf("two reads of one version gave two copies")
	}
	if a.DAG.Name != "nightly" || a.Source == "" || b.Source != a.Source || !b.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("version read: name %q, source %q; again: source %q, created %v and %v", a.DAG.Name, a.Source, b.Source, a.CreatedAt, b.CreatedAt)
	}
}

// TestDAGVersionSharedByDefinition: a reader that keeps only a version's definition, as the
// engine does, keeps it shared with later readers, past garbage collections.
func TestDAGVersionSharedByDefinition(t *testing.T) {
	newStore, _, _ := statetest.Stores(t)
	s := newStore(t)
	ctx := context.Background()
	d := testDAG("nightly", nil)
	mustApply(t, s, mustCatalog(t, s), []*spec.DAG{d}, nil, t0)
	v, err := s.DAGVersion(ctx, "nightly", hash(t, d))
	if err != nil {
		t.Fatal(err)
	}
	kept := v.DAG
	v = nil
	runtime.GC()
	runtime.GC()
	again, err := s.DAGVersion(ctx, "nightly", hash(t, d))
	if err != nil {
		t.Fatal(err)
	}
	if again.DAG != kept {
		t.Errorf("a version whose definition a reader keeps was decoded again")
	}
	if again.Source == "" || again.Source != kept.Source {
		t.Errorf("version read again: source %q, want %q", again.Source, kept.Source)
	}
}

// countingTransport counts the GETs of Consul keys whose path holds part.
type countingTransport struct {
	part string
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, c.part) {
		c.n.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestDAGVersionReadOnce: readers asking for one version at once read and decode it once.
func TestDAGVersionReadOnce(t *testing.T) {
	newStore, agent, _ := statetest.Stores(t)
	d := testDAG("nightly", nil)
	applied := newStore(t)
	mustApply(t, applied, mustCatalog(t, applied), []*spec.DAG{d}, nil, t0)
	counter := &countingTransport{part: "/versions/"}
	client, err := consulapi.NewClient(&consulapi.Config{Address: agent.HTTPAddr, HttpClient: &http.Client{Transport: counter}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := state.New(client, applied.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	const readers = 20
	got := make([]*spec.DAG, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Go(func() {
			v, err := s.DAGVersion(context.Background(), "nightly", hash(t, d))
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = v.DAG
		})
	}
	wg.Wait()
	for i, g := range got {
		if g == nil || g != got[0] {
			t.Fatalf("reader %d got %p, reader 0 %p", i, g, got[0])
		}
	}
	if n := counter.n.Load(); n != 1 {
		t.Errorf("%d readers at once read the version %d times, want once", readers, n)
	}
}
