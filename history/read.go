package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

// RunQuery selects a page of runs, in the order of state.PageKey, newest first.
type RunQuery struct {
	DAG   string // "": every DAG
	State string // "": any state
	RunID string // "": any run
	From  string // the page starts at the first run whose page key is at most From; "": the newest
	Limit int
}

// Runs returns a page of recorded runs with their task instances and tries.
func (db *DB) Runs(ctx context.Context, q RunQuery) ([]*state.RunRecord, error) {
	if err := db.reading(ctx); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+runColumns+` FROM runs
		WHERE ($1 = '' OR dag = $1) AND ($2 = '' OR state = $2) AND ($3 = '' OR run_id = $3)
			AND ($4 = '' OR page_key <= $4)
		ORDER BY page_key DESC LIMIT $5`, q.DAG, q.State, q.RunID, q.From, q.Limit)
	if err != nil {
		return nil, db.readDone(fmt.Errorf("list runs from history: %w", err))
	}
	recs, err := pgx.CollectRows(rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("list runs from history: %w", err)
	}
	if err := db.addTasks(ctx, recs); err != nil {
		return nil, err
	}
	return recs, nil
}

// Run returns one recorded run; state.ErrNotFound (wrapped) when history does not hold it.
func (db *DB) Run(ctx context.Context, dag, id string) (*state.RunRecord, error) {
	if err := db.reading(ctx); err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT `+runColumns+` FROM runs WHERE dag = $1 AND run_id = $2`, dag, id)
	if err != nil {
		return nil, db.readDone(fmt.Errorf("read run from history: %w", err))
	}
	rec, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("run %s of DAG %s in history: %w", id, dag, state.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read run from history: %w", err)
	}
	if err := db.addTasks(ctx, []*state.RunRecord{rec}); err != nil {
		return nil, err
	}
	return rec, nil
}

// Log is a part of a recorded try's output.
type Log struct {
	Data      []byte
	Size      int64 // of the whole recorded output
	Truncated bool  // the start of a longer output was dropped when it was recorded
	Source    string
}

// Log returns up to limit bytes of a try's stream ("stdout" or "stderr") from offset;
// state.ErrNotFound (wrapped) when history holds no logs of the try.
func (db *DB) Log(ctx context.Context, dag, run, task string, try int, stream string, offset int64, limit int) (*Log, error) {
	if err := db.reading(ctx); err != nil {
		return nil, err
	}
	l := &Log{}
	err := db.pool.QueryRow(ctx, `SELECT substring(data FROM $6::int + 1 FOR $7::int), length(data), truncated, source
		FROM try_logs WHERE dag = $1 AND run_id = $2 AND task = $3 AND try = $4 AND stream = $5`,
		dag, run, task, try, stream, offset, limit).Scan(&l.Data, &l.Size, &l.Truncated, &l.Source)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("logs of %s/%s/%s try %d in history: %w", dag, run, task, try, state.ErrNotFound)
	}
	if err != nil {
		return nil, db.readDone(fmt.Errorf("read logs from history: %w", err))
	}
	return l, nil
}

const runColumns = `dag, run_id, type, version, state, logical_date, data_interval_start, data_interval_end,
	params, created_at, started_at, ended_at, canceled_at`

func scanRun(row pgx.CollectableRow) (*state.RunRecord, error) {
	rec := &state.RunRecord{Tasks: map[string]*state.TaskInstance{}}
	r := &rec.Run
	var typ, st string
	var params []byte
	var started, ended, canceled *time.Time
	if err := row.Scan(&r.DAG, &r.ID, &typ, &r.Version, &st, &r.LogicalDate, &r.DataIntervalStart,
		&r.DataIntervalEnd, &params, &r.CreatedAt, &started, &ended, &canceled); err != nil {
		return nil, err
	}
	r.Type, r.State = rules.RunType(typ), state.RunState(st)
	r.StartedAt, r.EndedAt, r.CanceledAt = utc(started), utc(ended), utc(canceled)
	r.LogicalDate, r.DataIntervalStart = r.LogicalDate.UTC(), r.DataIntervalStart.UTC()
	r.DataIntervalEnd, r.CreatedAt = r.DataIntervalEnd.UTC(), r.CreatedAt.UTC()
	if params != nil {
		if err := json.Unmarshal(params, &r.Params); err != nil {
			return nil, fmt.Errorf("decode params of run %s/%s: %w", r.DAG, r.ID, err)
		}
	}
	return rec, nil
}

// addTasks reads the task instances and tries of recs.
func (db *DB) addTasks(ctx context.Context, recs []*state.RunRecord) error {
	if len(recs) == 0 {
		return nil
	}
	byKey := map[RunKey]*state.RunRecord{}
	keys := make([]RunKey, 0, len(recs))
	for _, rec := range recs {
		k := RunKey{rec.Run.DAG, rec.Run.ID}
		byKey[k] = rec
		keys = append(keys, k)
	}
	dags, ids := split(keys)
	rows, err := db.pool.Query(ctx, `SELECT t.dag, t.run_id, t.task, t.state, t.retry_at, t.cleared_tries,
			t.map_keys, coalesce(t.message, '')
		FROM task_instances t JOIN unnest($1::text[], $2::text[]) AS k(dag, run_id) ON t.dag = k.dag AND t.run_id = k.run_id`, dags, ids)
	if err != nil {
		return fmt.Errorf("read task instances from history: %w", err)
	}
	var (
		k      RunKey
		ti     state.TaskInstance
		st     string
		retry  *time.Time
		tasks  = map[TryKey]*state.TaskInstance{}
		notask = func(k RunKey, task string) TryKey { return TryKey{DAG: k.DAG, RunID: k.ID, Task: task} }
	)
	_, err = pgx.ForEachRow(rows, []any{&k.DAG, &k.ID, &ti.Task, &st, &retry, &ti.ClearedTries, &ti.MapKeys, &ti.Message}, func() error {
		t := &state.TaskInstance{DAG: k.DAG, RunID: k.ID, Task: ti.Task, State: rules.State(st), RetryAt: utc(retry),
			ClearedTries: ti.ClearedTries, MapKeys: ti.MapKeys, Message: ti.Message}
		byKey[k].Tasks[t.Task] = t
		tasks[notask(k, t.Task)] = t
		return nil
	})
	if err != nil {
		return fmt.Errorf("read task instances from history: %w", err)
	}
	rows, err = db.pool.Query(ctx, `SELECT t.dag, t.run_id, t.task, t.try, t.job_id, t.state, t.scheduled_at,
			t.queued_at, t.started_at, t.ended_at, coalesce(t.alloc_id, ''), coalesce(t.node, ''), t.exit_code,
			coalesce(t.message, ''), EXISTS (SELECT 1 FROM try_logs l WHERE l.dag = t.dag AND l.run_id = t.run_id
				AND l.task = t.task AND l.try = t.try), t.outputs::text
		FROM tries t JOIN unnest($1::text[], $2::text[]) AS k(dag, run_id) ON t.dag = k.dag AND t.run_id = k.run_id
		ORDER BY t.dag, t.run_id, t.task, t.try`, dags, ids)
	if err != nil {
		return fmt.Errorf("read tries from history: %w", err)
	}
	var (
		tr                                  state.Try
		task                                string
		scheduled, queued, started, endedAt *time.Time
		outputs                             *string
	)
	_, err = pgx.ForEachRow(rows, []any{&k.DAG, &k.ID, &task, &tr.Try, &tr.JobID, &st, &scheduled, &queued,
		&started, &endedAt, &tr.AllocID, &tr.Node, &tr.ExitCode, &tr.Message, &tr.Logs, &outputs}, func() error {
		t := tasks[notask(k, task)]
		if t == nil {
			return nil
		}
		c := tr
		c.State = rules.State(st)
		c.ScheduledAt, c.QueuedAt, c.StartedAt, c.EndedAt = utc(scheduled), utc(queued), utc(started), utc(endedAt)
		if outputs != nil {
			c.Outputs = json.RawMessage(*outputs)
		}
		t.Tries = append(t.Tries, c)
		tr.ExitCode = nil // the next row scans into a fresh pointer
		return nil
	})
	if err != nil {
		return fmt.Errorf("read tries from history: %w", err)
	}
	return nil
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
