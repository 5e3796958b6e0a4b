package history

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dagflow/dagflow/state"
)

// Fence is a writer's claim to write: its epoch, and the Consul session it leads with, kept
// for people reading the fence row.
type Fence struct {
	Epoch   uint64
	Session string
}

// Entry is one run to record, as Consul holds it, with the logs of its tries that finished
// since it was last recorded.
type Entry struct {
	Run    *state.RunRecord
	Digest string // Digest(Run)
	Logs   []TryLogs
}

// TryLogs is the output of one finished try.
type TryLogs struct {
	Task      string
	Try       int
	Stdout    []byte
	Stderr    []byte
	Truncated bool   // the start of a longer output was dropped
	Source    string // LogSourceNomad or LogSourceConsul
}

// Where a try's logs were read.
const (
	LogSourceNomad  = "nomad"  // the allocation's whole output, up to the log limit
	LogSourceConsul = "consul" // the tail kept in Consul: the allocation was gone
)

// Record writes entries in one transaction fenced by f: it fails with ErrDeposed, writing
// nothing, when a writer with a newer epoch wrote before. Rows are upserted by their keys, so
// recording a run again updates it; logs are written once per try.
func (db *DB) Record(ctx context.Context, f Fence, entries []Entry) error {
	if err := db.ready(ctx); err != nil {
		return err
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// Raising the fence takes its row lock until commit: a successor's raise waits for this
	// transaction, and this one's waits for the successor's and is then refused.
	tag, err := tx.Exec(ctx, `INSERT INTO fence (id, epoch, session, updated_at) VALUES (true, $1, $2, now())
		ON CONFLICT (id) DO UPDATE SET epoch = EXCLUDED.epoch, session = EXCLUDED.session, updated_at = now()
		WHERE fence.epoch <= EXCLUDED.epoch`, int64(f.Epoch), f.Session)
	if err != nil {
		return fmt.Errorf("record history: raise fence: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrDeposed
	}
	b := &pgx.Batch{}
	for _, e := range entries {
		if err := queueEntry(b, e); err != nil {
			return err
		}
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record history: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record history: commit: %w", err)
	}
	return nil
}

// Epoch returns the epoch of the last writer; 0 before the first write.
func (db *DB) Epoch(ctx context.Context) (uint64, error) {
	if err := db.ready(ctx); err != nil {
		return 0, err
	}
	var epoch int64
	err := db.pool.QueryRow(ctx, "SELECT epoch FROM fence").Scan(&epoch)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read history fence: %w", err)
	}
	return uint64(epoch), nil
}

// Digests returns the digest each of the runs keys names was last recorded with; runs never
// recorded are missing from the map.
func (db *DB) Digests(ctx context.Context, keys []RunKey) (map[RunKey]string, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	dags, ids := split(keys)
	rows, err := db.pool.Query(ctx, `SELECT r.dag, r.run_id, r.digest FROM runs r
		JOIN unnest($1::text[], $2::text[]) AS k(dag, run_id) ON r.dag = k.dag AND r.run_id = k.run_id`, dags, ids)
	if err != nil {
		return nil, fmt.Errorf("read history digests: %w", err)
	}
	out := map[RunKey]string{}
	var k RunKey
	var d string
	_, err = pgx.ForEachRow(rows, []any{&k.DAG, &k.ID, &d}, func() error { out[k] = d; return nil })
	if err != nil {
		return nil, fmt.Errorf("read history digests: %w", err)
	}
	return out, nil
}

// LoggedTries returns the tries of runs keys whose logs are recorded.
func (db *DB) LoggedTries(ctx context.Context, keys []RunKey) (map[TryKey]bool, error) {
	if err := db.ready(ctx); err != nil {
		return nil, err
	}
	dags, ids := split(keys)
	rows, err := db.pool.Query(ctx, `SELECT DISTINCT l.dag, l.run_id, l.task, l.try FROM try_logs l
		JOIN unnest($1::text[], $2::text[]) AS k(dag, run_id) ON l.dag = k.dag AND l.run_id = k.run_id`, dags, ids)
	if err != nil {
		return nil, fmt.Errorf("read history logs: %w", err)
	}
	out := map[TryKey]bool{}
	var k TryKey
	_, err = pgx.ForEachRow(rows, []any{&k.DAG, &k.RunID, &k.Task, &k.Try}, func() error { out[k] = true; return nil })
	if err != nil {
		return nil, fmt.Errorf("read history logs: %w", err)
	}
	return out, nil
}

// RunKey names a run.
type RunKey struct{ DAG, ID string }

// TryKey names a try.
type TryKey struct {
	DAG, RunID, Task string
	Try              int
}

func split(keys []RunKey) (dags, ids []string) {
	for _, k := range keys {
		dags = append(dags, k.DAG)
		ids = append(ids, k.ID)
	}
	return dags, ids
}

// Digest returns what a run looks like as recorded: equal digests mean nothing to record.
func Digest(rec *state.RunRecord) string {
	b, _ := json.Marshal(rec) // maps marshal in key order: the same record gives the same bytes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func queueEntry(b *pgx.Batch, e Entry) error {
	r := e.Run.Run
	var params []byte
	if len(r.Params) > 0 {
		var err error
		if params, err = json.Marshal(r.Params); err != nil {
			return fmt.Errorf("record run %s/%s: encode params: %w", r.DAG, r.ID, err)
		}
	}
	b.Queue(`INSERT INTO runs (dag, run_id, page_key, type, version, state, logical_date, data_interval_start,
			data_interval_end, params, created_at, started_at, ended_at, canceled_at, digest)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
		ON CONFLICT (dag, run_id) DO UPDATE SET page_key = EXCLUDED.page_key, type = EXCLUDED.type,
			version = EXCLUDED.version, state = EXCLUDED.state, logical_date = EXCLUDED.logical_date,
			data_interval_start = EXCLUDED.data_interval_start, data_interval_end = EXCLUDED.data_interval_end,
			params = EXCLUDED.params, created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,
			ended_at = EXCLUDED.ended_at, canceled_at = EXCLUDED.canceled_at, digest = EXCLUDED.digest`,
		r.DAG, r.ID, pageKey(r), string(r.Type), r.Version, string(r.State),
		r.LogicalDate, r.DataIntervalStart, r.DataIntervalEnd, params, r.CreatedAt,
		ts(r.StartedAt), ts(r.EndedAt), ts(r.CanceledAt), e.Digest)
	transition(b, r.DAG, r.ID, "", 0, string(state.RunQueued), r.CreatedAt)
	transition(b, r.DAG, r.ID, "", 0, string(state.RunRunning), r.StartedAt)
	if r.State.Finished() {
		transition(b, r.DAG, r.ID, "", 0, string(r.State), r.EndedAt)
	}
	for _, ti := range e.Run.Tasks {
		// Unchanged rows are left alone, so recording a run again rewrites only what changed.
		b.Queue(`INSERT INTO task_instances AS t (dag, run_id, task, state, retry_at, cleared_tries, map_keys, message)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (dag, run_id, task) DO UPDATE SET state = EXCLUDED.state, retry_at = EXCLUDED.retry_at,
				cleared_tries = EXCLUDED.cleared_tries, map_keys = EXCLUDED.map_keys, message = EXCLUDED.message
			WHERE (t.state, t.retry_at, t.cleared_tries, t.map_keys, t.message)
				IS DISTINCT FROM (EXCLUDED.state, EXCLUDED.retry_at, EXCLUDED.cleared_tries, EXCLUDED.map_keys, EXCLUDED.message)`,
			r.DAG, r.ID, ti.Task, string(ti.State), ts(ti.RetryAt), ti.ClearedTries, ti.MapKeys, str(ti.Message))
		for _, tr := range ti.Tries {
			b.Queue(`INSERT INTO tries AS t (dag, run_id, task, try, job_id, state, scheduled_at, queued_at,
					started_at, ended_at, alloc_id, node, exit_code, message, outputs)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
				ON CONFLICT (dag, run_id, task, try) DO UPDATE SET job_id = EXCLUDED.job_id, state = EXCLUDED.state,
					scheduled_at = EXCLUDED.scheduled_at, queued_at = EXCLUDED.queued_at,
					started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, alloc_id = EXCLUDED.alloc_id,
					node = EXCLUDED.node, exit_code = EXCLUDED.exit_code, message = EXCLUDED.message,
					-- Consul drops the outputs of older tries once a newer one published some.
					outputs = coalesce(EXCLUDED.outputs, t.outputs)
				WHERE (t.job_id, t.state, t.scheduled_at, t.queued_at, t.started_at, t.ended_at, t.alloc_id, t.node,
						t.exit_code, t.message, t.outputs::text)
					IS DISTINCT FROM (EXCLUDED.job_id, EXCLUDED.state, EXCLUDED.scheduled_at, EXCLUDED.queued_at,
						EXCLUDED.started_at, EXCLUDED.ended_at, EXCLUDED.alloc_id, EXCLUDED.node, EXCLUDED.exit_code,
						EXCLUDED.message, coalesce(EXCLUDED.outputs, t.outputs)::text)`,
				r.DAG, r.ID, ti.Task, tr.Try, tr.JobID, string(tr.State), ts(tr.ScheduledAt), ts(tr.QueuedAt),
				ts(tr.StartedAt), ts(tr.EndedAt), str(tr.AllocID), str(tr.Node), tr.ExitCode, str(tr.Message), str(string(tr.Outputs)))
			transition(b, r.DAG, r.ID, ti.Task, tr.Try, "queued", tr.QueuedAt)
			transition(b, r.DAG, r.ID, ti.Task, tr.Try, "running", tr.StartedAt)
			if tr.State.Finished() {
				transition(b, r.DAG, r.ID, ti.Task, tr.Try, string(tr.State), tr.EndedAt)
			}
		}
	}
	for _, l := range e.Logs {
		for _, s := range []struct {
			name string
			data []byte
		}{{"stdout", l.Stdout}, {"stderr", l.Stderr}} {
			data := s.data
			if data == nil {
				data = []byte{}
			}
			b.Queue(`INSERT INTO try_logs (dag, run_id, task, try, stream, data, truncated, source)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
				r.DAG, r.ID, l.Task, l.Try, s.name, data, l.Truncated, l.Source)
		}
	}
	return nil
}

// pageKey is the run's state.PageKey as read back: PostgreSQL keeps microseconds, and pgx
// truncates to them.
func pageKey(r state.Run) string {
	return state.PageKey(r.LogicalDate.Truncate(time.Microsecond), r.DAG, r.ID)
}

// transition queues the row saying the run or try reached st at; nothing when it did not yet.
func transition(b *pgx.Batch, dag, run, task string, try int, st string, at time.Time) {
	if at.IsZero() {
		return
	}
	b.Queue(`INSERT INTO transitions (dag, run_id, task, try, state, at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT DO NOTHING`, dag, run, task, try, st, at)
}

// ts is t as a nullable timestamp: the zero time is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// str is s as nullable text: "" is NULL.
func str(s string) any {
	if s == "" {
		return nil
	}
	return s
}
