package history_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/dagflow/dagflow/history"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/internal/testcluster"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/state"
)

func TestMain(m *testing.M) { testcluster.Main(m) }

// open opens a new, empty history database, migrated unless fresh.
func open(t *testing.T, migrate bool) (*history.DB, string) {
	t.Helper()
	url := testcluster.Postgres(t)
	db, err := history.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if migrate {
		if err := db.Migrate(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return db, url
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	db, url := open(t, false)
	current, latest, err := db.Schema(ctx)
	if err != nil || current != 0 || latest < 1 {
		t.Fatalf("Schema of an empty database = %d, %d, %v; want 0, at least 1", current, latest, err)
	}
	// Servers starting together apply the migrations once between them.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other, err := history.Open(url)
			if err != nil {
				errs[i] = err
				return
			}
			defer other.Close()
			errs[i] = other.Migrate(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate: %v", err)
		}
	}
	// And again, as every server start does.
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if current, latest2, err := db.Schema(ctx); err != nil || current != latest || latest2 != latest {
		t.Fatalf("Schema after Migrate = %d, %d, %v; want %d, %d", current, latest2, err, latest, latest)
	}
}

func TestOpenBadURL(t *testing.T) {
	_, err := history.Open("postgres://u:hunter2@db:notaport/x")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Open of a bad URL = %v; want an error without the password", err)
	}
}

var t0 = time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)

func exit(c int) *int { return &c }

// sample is a finished run: extract succeeded on its second try, load on its first.
func sample(dag, id string, day int) *state.RunRecord {
	at := t0.AddDate(0, 0, day)
	return &state.RunRecord{
		Run: state.Run{
			DAG: dag, ID: id, Type: rules.RunManual, Version: "v1", LogicalDate: at,
			DataIntervalStart: at, DataIntervalEnd: at, State: state.RunSuccess, CreatedAt: at,
			StartedAt: at.Add(time.Second), EndedAt: at.Add(time.Minute),
			Params: map[string]json.RawMessage{"region": json.RawMessage(`"eu"`)},
		},
		Tasks: map[string]*state.TaskInstance{
			"extract": {DAG: dag, RunID: id, Task: "extract", State: rules.Success, Tries: []state.Try{
				{Try: 1, JobID: "j-e1", State: rules.Failed, ScheduledAt: at, QueuedAt: at, StartedAt: at.Add(time.Second), EndedAt: at.Add(2 * time.Second), AllocID: "a1", Node: "n1", ExitCode: exit(3), Message: "exit code 3"},
				{Try: 2, JobID: "j-e2", State: rules.Success, ScheduledAt: at, QueuedAt: at.Add(5 * time.Second), StartedAt: at.Add(6 * time.Second), EndedAt: at.Add(7 * time.Second), AllocID: "a2", Node: "n1", ExitCode: exit(0)},
			}},
			"load": {DAG: dag, RunID: id, Task: "load", State: rules.Success, Tries: []state.Try{
				{Try: 1, JobID: "j-l1", State: rules.Success, ScheduledAt: at, QueuedAt: at.Add(8 * time.Second), StartedAt: at.Add(9 * time.Second), EndedAt: at.Add(10 * time.Second), AllocID: "a3", Node: "n1", ExitCode: exit(0)},
			}},
		},
	}
}

func entry(rec *state.RunRecord, logs ...history.TryLogs) history.Entry {
	return history.Entry{Run: rec, Digest: history.Digest(rec), Logs: logs}
}

func count(t *testing.T, url, query string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRecordAndRead(t *testing.T) {
	ctx := context.Background()
	db, url := open(t, true)
	fence := history.Fence{Epoch: 1, Session: "s1"}

	// Recorded while running, then again finished, then once more unchanged: one row per try.
	rec := sample("etl", "r1", 0)
	running := sample("etl", "r1", 0)
	running.Run.State, running.Run.EndedAt = state.RunRunning, time.Time{}
	running.Tasks["load"].State = rules.Running
	running.Tasks["load"].Tries[0].State, running.Tasks["load"].Tries[0].EndedAt = rules.Running, time.Time{}
	for _, e := range []history.Entry{
		entry(running, history.TryLogs{Task: "extract", Try: 1, Stderr: []byte("boom\n"), Source: history.LogSourceNomad}),
		entry(rec, history.TryLogs{Task: "load", Try: 1, Stdout: []byte("loaded 3 rows\n"), Source: history.LogSourceNomad}),
		entry(rec, history.TryLogs{Task: "load", Try: 1, Stdout: []byte("a second copy is ignored\n"), Source: history.LogSourceConsul}),
	} {
		if err := db.Record(ctx, fence, []history.Entry{e}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.Run(ctx, "etl", "r1")
	if err != nil {
		t.Fatal(err)
	}
	want := sample("etl", "r1", 0)
	want.Tasks["extract"].Tries[0].Logs = true
	want.Tasks["load"].Tries[0].Logs = true
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Run (-want +got):\n%s", diff)
	}
	if n := count(t, url, "SELECT count(*) FROM tries"); n != 3 {
		t.Errorf("%d try rows; want 3", n)
	}
	// queued, running, success for the run; queued, running, an end for each of 3 tries.
	if n := count(t, url, "SELECT count(*) FROM transitions"); n != 3+3*3 {
		t.Errorf("%d transitions; want %d", n, 3+3*3)
	}
	l, err := db.Log(ctx, "etl", "r1", "load", 1, "stdout", 7, 100)
	if err != nil || string(l.Data) != "3 rows\n" || l.Size != 14 || l.Source != history.LogSourceNomad {
		t.Errorf("Log from offset 7 = %+v, %v; want %q of 14 bytes from nomad", l, err, "3 rows\n")
	}
	if _, err := db.Log(ctx, "etl", "r1", "load", 2, "stdout", 0, 100); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Log of a try without logs: %v; want ErrNotFound", err)
	}
	if _, err := db.Run(ctx, "etl", "nope"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("Run of an unknown run: %v; want ErrNotFound", err)
	}
	digests, err := db.Digests(ctx, []history.RunKey{{DAG: "etl", ID: "r1"}, {DAG: "etl", ID: "nope"}})
	if err != nil || len(digests) != 1 || digests[history.RunKey{DAG: "etl", ID: "r1"}] != history.Digest(rec) {
		t.Errorf("Digests = %v, %v; want r1's digest only", digests, err)
	}
}

func TestFence(t *testing.T) {
	ctx := context.Background()
	db, _ := open(t, true)
	rec := sample("etl", "r1", 0)
	if err := db.Record(ctx, history.Fence{Epoch: 2, Session: "new"}, []history.Entry{entry(rec)}); err != nil {
		t.Fatal(err)
	}
	// The deposed leader, epoch 1, writes late: refused, and nothing changes.
	stale := sample("etl", "r1", 0)
	stale.Run.State = state.RunFailed
	err := db.Record(ctx, history.Fence{Epoch: 1, Session: "old"}, []history.Entry{entry(stale), entry(sample("etl", "r2", 1))})
	if !errors.Is(err, history.ErrDeposed) {
		t.Fatalf("Record with an older epoch: %v; want ErrDeposed", err)
	}
	if got, err := db.Run(ctx, "etl", "r1"); err != nil || got.Run.State != state.RunSuccess {
		t.Errorf("after a deposed write, r1 = %+v, %v; want it as the leader wrote it", got, err)
	}
	if _, err := db.Run(ctx, "etl", "r2"); !errors.Is(err, state.ErrNotFound) {
		t.Errorf("a deposed write added r2: %v", err)
	}
	// The same epoch writes again, a newer one takes over.
	for _, e := range []uint64{2, 3} {
		if err := db.Record(ctx, history.Fence{Epoch: e, Session: "s"}, []history.Entry{entry(rec)}); err != nil {
			t.Fatalf("Record with epoch %d: %v", e, err)
		}
	}
	if e, err := db.Epoch(ctx); err != nil || e != 3 {
		t.Errorf("Epoch = %d, %v; want 3", e, err)
	}
}

func TestRunsPaging(t *testing.T) {
	ctx := context.Background()
	db, _ := open(t, true)
	var entries []history.Entry
	for i, k := range []struct{ dag, id string }{{"a", "r0"}, {"b", "r1"}, {"a", "r2"}, {"a", "r3"}, {"b", "r4"}} {
		rec := sample(k.dag, k.id, i)
		if k.id == "r2" {
			rec.Run.State = state.RunFailed
		}
		entries = append(entries, entry(rec))
	}
	if err := db.Record(ctx, history.Fence{Epoch: 1}, entries); err != nil {
		t.Fatal(err)
	}
	ids := func(recs []*state.RunRecord) string {
		var out []string
		for _, r := range recs {
			out = append(out, r.Run.ID)
		}
		return strings.Join(out, " ")
	}
	page := func(q history.RunQuery) []*state.RunRecord {
		t.Helper()
		recs, err := db.Runs(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	first := page(history.RunQuery{Limit: 3})
	if got := ids(first); got != "r4 r3 r2" {
		t.Fatalf("first page = %s; want newest first: r4 r3 r2", got)
	}
	last := first[len(first)-1].Run
	next := page(history.RunQuery{Limit: 3, From: state.PageKey(last.LogicalDate, last.DAG, last.ID)})
	if got := ids(next); got != "r2 r1 r0" {
		t.Errorf("page from r2's key = %s; want r2 r1 r0", got)
	}
	if got := ids(page(history.RunQuery{DAG: "a", Limit: 10})); got != "r3 r2 r0" {
		t.Errorf("DAG a = %s", got)
	}
	if got := ids(page(history.RunQuery{State: "failed", Limit: 10})); got != "r2" {
		t.Errorf("failed = %s", got)
	}
	if got := ids(page(history.RunQuery{RunID: "r1", Limit: 10})); got != "r1" {
		t.Errorf("run r1 = %s", got)
	}
	if recs := page(history.RunQuery{DAG: "b", Limit: 1}); len(recs) != 1 || len(recs[0].Tasks["extract"].Tries) != 2 {
		t.Errorf("a listed run lacks its tasks: %+v", recs)
	}
}

// TestReadsPauseWhileUnreachable: once a read could not connect, reads fail at once for a
// while instead of each waiting for a connection attempt, and go to PostgreSQL again after.
func TestReadsPauseWhileUnreachable(t *testing.T) {
	ctx := context.Background()
	pg := devstack.StartPostgresT(t)
	url, err := pg.CreateDatabase(ctx, "pause")
	if err != nil {
		t.Fatal(err)
	}
	db, err := history.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	history.SetReadPause(db, time.Hour)
	if _, err := db.Runs(ctx, history.RunQuery{Limit: 1}); err != nil {
		t.Fatalf("Runs while PostgreSQL is up: %v", err)
	}
	if err := pg.Down(); err != nil {
		t.Fatal(err)
	}
	// The pool's idle connection may fail first as broken; the connection attempt after it
	// fails to connect, and pauses reads.
	var errs []error
	for len(errs) < 3 {
		_, err := db.Runs(ctx, history.RunQuery{Limit: 1})
		errs = append(errs, err)
		if err == nil || errors.Is(err, history.ErrUnavailable) {
			break
		}
	}
	if last := errs[len(errs)-1]; len(errs) < 2 || !errors.Is(last, history.ErrUnavailable) {
		t.Fatalf("reads with PostgreSQL down = %v; want failures to connect, then ErrUnavailable", errs)
	}
	if _, err := db.Run(ctx, "d", "r"); !errors.Is(err, history.ErrUnavailable) {
		t.Errorf("Run during the pause = %v, want ErrUnavailable", err)
	}
	if _, _, err := db.Schema(ctx); !errors.Is(err, history.ErrUnavailable) {
		t.Errorf("Schema during the pause = %v, want ErrUnavailable", err)
	}

	if err := pg.Up(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Runs(ctx, history.RunQuery{Limit: 1}); !errors.Is(err, history.ErrUnavailable) {
		t.Fatalf("Runs during the pause, PostgreSQL up again = %v; want ErrUnavailable", err)
	}
	history.EndReadPause(db)
	if _, err := db.Runs(ctx, history.RunQuery{Limit: 1}); err != nil {
		t.Fatalf("Runs after the pause: %v", err)
	}
}
