package web

import (
	"context"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/internal/bounded"
	"github.com/dagflow/dagflow/state"
)

// versionReads is how many uncached DAG versions a DAG list reads at once.
const versionReads = 16

// summaryStub is a run of a summary as lists show it, as held in Consul.
func summaryStub(rs state.RunSummary) api.RunStub {
	r := rs.Run
	return api.RunStub{
		DAG: r.DAG, ID: r.ID, Type: string(r.Type), State: string(r.State), Version: r.Version,
		LogicalDate: r.LogicalDate, DataIntervalStart: r.DataIntervalStart, DataIntervalEnd: r.DataIntervalEnd,
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, EndedAt: r.EndedAt, TaskStates: rs.TaskStates, Source: api.RunSourceConsul,
		DeadlineMissedAt: r.DeadlineMissedAt,
	}
}

// catalog reads the applied catalog, reusing the one read last while the catalog's head is
// unchanged: with 10,000 DAGs its chunks take about 1.5 MB to read and decode. The result is
// shared: callers must not change it.
func (s *Server) catalog(ctx context.Context) (*state.Catalog, error) {
	s.mu.Lock()
	known := s.lastCatalog
	s.mu.Unlock()
	c, err := s.store().CatalogSince(ctx, known)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.lastCatalog == nil || c.Index > s.lastCatalog.Index {
		s.lastCatalog = c
	}
	s.mu.Unlock()
	return c, nil
}

// cacheVersions reads the versions of the DAGs names applied in cat that are not cached yet,
// several at once, so the first list after a start or a large apply does not read thousands
// of keys one after another.
func (s *Server) cacheVersions(ctx context.Context, cat *state.Catalog, names []string) error {
	var reads []func(context.Context) error
	s.mu.Lock()
	for _, name := range names {
		e := cat.DAGs[name]
		if _, ok := s.versions[e.Version]; !ok {
			reads = append(reads, func(ctx context.Context) error {
				_, err := s.version(ctx, name, e.Version)
				return err
			})
		}
	}
	s.mu.Unlock()
	return bounded.Run(ctx, versionReads, reads)
}
