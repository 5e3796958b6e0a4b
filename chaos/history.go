package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/history"
)

// historyDB is the database the postgres-restart scenario keeps history in.
const historyDB = "chaos_history"

// restartPostgres stops PostgreSQL, keeps it down until the runs made progress without it,
// and starts it again. Scheduling must not notice; history catches up (see verifyHistory).
func restartPostgres(ctx context.Context, c *Cluster, _ int) (time.Duration, string, error) {
	pg := c.Stack.Postgres
	ids := c.Triggered()
	before, _ := c.Progress(ctx, ids)
	if err := pg.Down(); err != nil {
		return 0, "", err
	}
	ended, ok := waitProgress(ctx, c, ids, before, max(1, c.DAG.Lanes/4), recoverTimeout)
	if err := pg.Up(ctx); err != nil {
		return 0, "", err
	}
	if !ok {
		return 0, "", fmt.Errorf("no try ended while PostgreSQL was down (%d before, %d after)", before, ended)
	}
	if _, err := waitActive(ctx, c.Live()...); err != nil {
		return 0, "", fmt.Errorf("after PostgreSQL came back: %w", err)
	}
	return 0, fmt.Sprintf("%d tries ended while PostgreSQL was down", ended-before), nil
}

// verifyHistory waits until history holds every run as dagflow answered it, finished, with
// exactly its tries, each in the same state; it gives up after p.Stuck.
func verifyHistory(ctx context.Context, c *Cluster, runs map[string]*api.Run, p Params) (notes, problems []string) {
	db, err := history.Open(c.Stack.Postgres.URL(historyDB))
	if err != nil {
		return nil, []string{fmt.Sprintf("open history: %v", err)}
	}
	defer db.Close()
	deadline := time.Now().Add(p.Stuck)
	for {
		problems = problems[:0]
		tries := 0
		for _, id := range slices.Sorted(maps.Keys(runs)) {
			want := runs[id]
			got, err := db.Run(ctx, want.DAG, id)
			if err != nil {
				problems = append(problems, fmt.Sprintf("history: run %s: %v", id, err))
				continue
			}
			if string(got.Run.State) != want.State {
				problems = append(problems, fmt.Sprintf("history: run %s is %s, dagflow says %s", id, got.Run.State, want.State))
			}
			for _, ti := range want.Tasks {
				h := got.Tasks[ti.Task]
				if h == nil || len(h.Tries) != len(ti.Tries) {
					n := 0
					if h != nil {
						n = len(h.Tries)
					}
					problems = append(problems, fmt.Sprintf("history: run %s task %s has %d tries, dagflow says %d", id, ti.Task, n, len(ti.Tries)))
					continue
				}
				for i, tr := range ti.Tries {
					tries++
					if ht := h.Tries[i]; ht.Try != tr.Try || string(ht.State) != tr.State || ht.AllocID != tr.AllocID {
						problems = append(problems, fmt.Sprintf("history: run %s task %s try %d is %s on %s, dagflow says try %d %s on %s",
							id, ti.Task, ht.Try, ht.State, ht.AllocID, tr.Try, tr.State, tr.AllocID))
					}
				}
			}
		}
		if len(problems) == 0 {
			return []string{fmt.Sprintf("history holds all %d runs and %d tries, as dagflow records them", len(runs), tries)}, nil
		}
		if time.Now().After(deadline) {
			return nil, problems
		}
		time.Sleep(time.Second)
	}
}
