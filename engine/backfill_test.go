package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// TestBackfill: a backfill request creates a backfill run for each interval that starts in its
// range, bounds included; the same request again creates nothing, and one that overlaps the
// first creates runs only for the dates that have none.
func TestBackfill(t *testing.T) {
	t.Parallel()
	s := newStack(t, engine.Config{})
	today := time.Now().UTC().Truncate(24 * time.Hour)
	s.apply(catchupDAG("daily", "@daily", today.AddDate(0, 0, -30), "none", 16))
	defer s.pause("daily")

	from, to := today.AddDate(0, 0, -10), today.AddDate(0, 0, -8)
	var want []string
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		want = append(want, rules.RunID(rules.RunBackfill, d))
	}
	res := s.request(&state.Request{Kind: state.RequestBackfill, DAG: "daily", From: from, To: to})
	if res.Error != "" || !slices.Equal(res.RunIDs, want) {
		t.Fatalf("backfill: error %q, runs %q; want runs %q", res.Error, res.RunIDs, want)
	}
	for i, id := range want {
		d := from.AddDate(0, 0, i)
		rec := s.waitRun("daily", id, 2*time.Minute)
		if rec.Run.State != state.RunSuccess || rec.Run.Type != rules.RunBackfill || !rec.Run.LogicalDate.Equal(d) ||
			!rec.Run.DataIntervalStart.Equal(d) || !rec.Run.DataIntervalEnd.Equal(d.AddDate(0, 0, 1)) {
			t.Errorf("backfill run for %s: %s", d.Format(time.DateOnly), describe(rec))
		}
	}

	res = s.request(&state.Request{Kind: state.RequestBackfill, DAG: "daily", From: from, To: to})
	if res.Error == "" && len(res.RunIDs) > 0 {
		t.Errorf("the same backfill again created runs %q", res.RunIDs)
	}
	if got := s.runIDs("daily"); !slices.Equal(got, want) {
		t.Errorf("after the same backfill again: runs %q, want %q", got, want)
	}

	later := rules.RunID(rules.RunBackfill, to.AddDate(0, 0, 1))
	res = s.request(&state.Request{Kind: state.RequestBackfill, DAG: "daily", From: from.AddDate(0, 0, 1), To: to.AddDate(0, 0, 1)})
	if res.Error != "" || !slices.Equal(res.RunIDs, []string{later}) {
		t.Errorf("overlapping backfill: error %q, runs %q; want only %q", res.Error, res.RunIDs, later)
	}
	s.waitRun("daily", later, 2*time.Minute)
	all := append(slices.Clone(want), later)
	if got := s.runIDs("daily"); !slices.Equal(got, all) {
		t.Errorf("after the overlapping backfill: runs %q, want %q", got, all)
	}
}
