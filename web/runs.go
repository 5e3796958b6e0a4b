package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/history"
	"github.com/dagflow/dagflow/state"
)

// Paging of run lists.
const (
	DefaultPerPage = 50
	MaxPerPage     = 500
)

// sourcedRun is a run as read for a route, and where it was read.
type sourcedRun struct {
	*state.RunRecord
	source string // api.RunSourceConsul or api.RunSourceHistory
}

func runStub(rec *state.RunRecord, source string) api.RunStub {
	stub := summaryStub(state.Summarize(rec))
	stub.Source = source
	return stub
}

// sortRuns orders runs newest logical date first, then by DAG and ID, which is the order pages
// follow.
func sortRuns(runs []api.RunStub) {
	sort.Slice(runs, func(i, j int) bool { return pageKey(runs[i]) > pageKey(runs[j]) })
}

// pageKey sorts like the run list and is the opaque next-page token: runs are ordered by
// descending key, and a page starts at the first run whose key is at most the token.
func pageKey(r api.RunStub) string { return state.PageKey(r.LogicalDate, r.DAG, r.ID) }

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	index, wait, ok := pollQuery(w, q)
	if !ok {
		return
	}
	dag := q.Get("dag")
	if p := r.PathValue("dag"); p != "" {
		// GET /v1/dags/{dag}/runs is the run list of one DAG.
		if dag != "" && dag != p {
			writeError(w, http.StatusBadRequest, "invalid query", api.FieldError{Field: "dag", Message: "names DAG " + quote(dag) + " but the path names " + quote(p) + "; drop ?dag="})
			return
		}
		dag = p
	}
	per := DefaultPerPage
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPerPage {
			writeError(w, http.StatusBadRequest, "invalid query", api.FieldError{Field: "per_page", Message: "want a number from 1 to " + strconv.Itoa(MaxPerPage) + ", got " + quote(v)})
			return
		}
		per = n
	}
	if st := q.Get("state"); st != "" && !slices.Contains([]string{string(state.RunQueued), string(state.RunRunning), string(state.RunSuccess), string(state.RunFailed)}, st) {
		writeError(w, http.StatusBadRequest, "invalid query", api.FieldError{Field: "state", Message: "want queued, running, success or failed, got " + quote(st)})
		return
	}
	if !s.waitChange(w, r, "list runs", index, wait, s.store().RunsWatch(dag)) {
		return
	}
	st, id, tok := q.Get("state"), q.Get("run_id"), q.Get("next_token")
	var recs []*state.RunRecord
	var inConsul map[state.RunRef]bool
	var err error
	if dag != "" {
		recs, err = s.store().Runs(r.Context(), dag)
		inConsul = make(map[state.RunRef]bool, len(recs))
		for _, rec := range recs {
			inConsul[state.RunRef{DAG: rec.Run.DAG, ID: rec.Run.ID}] = true
		}
	} else {
		recs, inConsul, err = s.indexPage(r.Context(), st, id, tok, per+1)
	}
	if err != nil {
		s.fail(w, "list runs", err)
		return
	}
	runs := make([]api.RunStub, 0, len(recs))
	for _, rec := range recs {
		if st != "" && string(rec.Run.State) != st {
			continue
		}
		if id != "" && rec.Run.ID != id {
			continue
		}
		runs = append(runs, runStub(rec, api.RunSourceConsul))
	}
	if s.cfg.History != nil {
		// The page's runs are the first per+1 of Consul's and history's together; history's
		// copies of runs Consul still holds may be behind, and give way.
		old, err := s.cfg.History.Runs(r.Context(), history.RunQuery{DAG: dag, State: st, RunID: id, From: tok, Limit: per + 1})
		if err != nil {
			s.log.Warn("list runs from history", "error", err)
			w.Header().Set("X-Dagflow-History", "unavailable")
		}
		for _, rec := range old {
			if !inConsul[state.RunRef{DAG: rec.Run.DAG, ID: rec.Run.ID}] {
				runs = append(runs, runStub(rec, api.RunSourceHistory))
			}
		}
	}
	sortRuns(runs)
	if tok != "" {
		i := sort.Search(len(runs), func(i int) bool { return pageKey(runs[i]) <= tok })
		runs = runs[i:]
	}
	if len(runs) > per {
		w.Header().Set("X-Dagflow-Next-Token", pageKey(runs[per]))
		runs = runs[:per]
	}
	writeJSON(w, http.StatusOK, runs)
}

// indexPage reads, for the list of every DAG's runs, the records of the first n runs that
// match st and id (when not empty) at or after next token tok, in list order, from the run
// index, an hour at a time, instead of every run record. held holds every run Consul keeps
// from the top of the page down to the end of the last hour read, whatever its state: the
// runs history's copies give way to (any run ranked below holds no place on the page).
func (s *Server) indexPage(ctx context.Context, st, id, tok string, n int) (recs []*state.RunRecord, held map[state.RunRef]bool, err error) {
	hours, err := s.store().IndexHours(ctx)
	if err != nil {
		return nil, nil, err
	}
	held = map[state.RunRef]bool{}
	var page []state.RunRef
	for _, hour := range hours {
		if len(page) >= n {
			break
		}
		// Page keys start with the logical date, so a token's first 13 bytes are its hour.
		if tok != "" && hour > tok[:min(len(tok), len(hour))] {
			continue
		}
		entries, err := s.store().IndexHourEntries(ctx, hour)
		if err != nil {
			return nil, nil, err
		}
		for _, en := range entries {
			if tok != "" && en.PageKey() > tok {
				continue
			}
			ref := state.RunRef{DAG: en.DAG, ID: en.ID}
			held[ref] = true
			if (st == "" || string(en.State) == st) && (id == "" || en.ID == id) {
				page = append(page, ref)
			}
		}
	}
	recs, err = s.store().RunRecords(ctx, page[:min(len(page), n)])
	return recs, held, err
}

// runRecord reads the run a route names, from Consul, else from history, answering 404 when
// neither holds it.
func (s *Server) runRecord(w http.ResponseWriter, r *http.Request) (sourcedRun, bool) {
	dag, id := r.PathValue("dag"), r.PathValue("run")
	rec, err := s.store().RunRecord(r.Context(), dag, id)
	source := api.RunSourceConsul
	if errors.Is(err, state.ErrNotFound) && s.cfg.History != nil {
		rec, err = s.cfg.History.Run(r.Context(), dag, id)
		source = api.RunSourceHistory
	}
	if errors.Is(err, state.ErrNotFound) {
		writeError(w, http.StatusNotFound, "DAG "+quote(dag)+" has no run "+quote(id)+"; dagflow runs "+dag+" lists its runs")
		return sourcedRun{}, false
	}
	if err != nil {
		s.fail(w, "read run", err)
		return sourcedRun{}, false
	}
	return sourcedRun{rec, source}, true
}

// taskInstance reads the run a route names and returns the task instance it names, answering
// 404 when either is missing.
func (s *Server) taskInstance(w http.ResponseWriter, r *http.Request) (sourcedRun, *state.TaskInstance, bool) {
	rec, ok := s.runRecord(w, r)
	if !ok {
		return sourcedRun{}, nil, false
	}
	name := r.PathValue("task")
	ti := rec.Tasks[name]
	if ti == nil {
		names := make([]string, 0, len(rec.Tasks))
		for n := range rec.Tasks {
			names = append(names, quote(n))
		}
		sort.Strings(names)
		writeError(w, http.StatusNotFound, "run "+quote(rec.Run.ID)+" of DAG "+quote(rec.Run.DAG)+" has no task "+quote(name)+"; it has "+strings.Join(names, ", "))
		return sourcedRun{}, nil, false
	}
	return rec, ti, true
}

// actionable answers 409 for a run only history holds: the scheduler no longer knows it.
func actionable(w http.ResponseWriter, rec sourcedRun) bool {
	if rec.source == api.RunSourceHistory {
		writeError(w, http.StatusConflict, "run "+quote(rec.Run.ID)+" of DAG "+quote(rec.Run.DAG)+" is only in history: the scheduler keeps the latest runs of each DAG and no longer holds it; trigger a new run instead")
		return false
	}
	return true
}

func (s *Server) runInfo(w http.ResponseWriter, r *http.Request) {
	index, wait, ok := pollQuery(w, r.URL.Query())
	if !ok {
		return
	}
	// A run only history holds has no keys left in Consul: its long-poll waits out the wait,
	// as nothing about it changes.
	if !s.waitChange(w, r, "read run", index, wait, s.store().RunWatch(r.PathValue("dag"), r.PathValue("run"))) {
		return
	}
	rec, ok := s.runRecord(w, r)
	if !ok {
		return
	}
	d, err := s.dagDef(r.Context(), rec.Run.DAG, rec.Run.Version)
	if err != nil {
		s.fail(w, "read run", err)
		return
	}
	out := api.Run{RunStub: runStub(rec.RunRecord, rec.source), Params: rec.Run.Params, Tasks: []api.TaskInstance{}}
	for _, t := range spec.TopoOrder(d.Tasks) {
		// A task not scheduled yet has no instance; it is listed all the same, with no state.
		ti := rec.Tasks[t.Name]
		if ti == nil {
			ti = &state.TaskInstance{Task: t.Name}
		}
		deps := t.DependsOn
		if deps == nil {
			deps = []string{}
		}
		out.Tasks = append(out.Tasks, s.taskJSON(t.Name, ti, deps))
		if t.MapOver != nil {
			out.Tasks[len(out.Tasks)-1].MapOver = t.MapOver.String()
			out.Tasks = append(out.Tasks, s.instancesJSON(rec.RunRecord, t, ti, deps)...)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// taskJSON returns task instance ti, named name, with its upstream task instances deps.
func (s *Server) taskJSON(name string, ti *state.TaskInstance, deps []string) api.TaskInstance {
	out := api.TaskInstance{Task: name, State: string(ti.State), DependsOn: deps, RetryAt: ti.RetryAt, Tries: []api.Try{}, MapKeys: ti.MapKeys, Message: ti.Message, Waiting: ti.Waiting, DeadlineMissedAt: ti.DeadlineMissedAt}
	for _, tr := range ti.Tries {
		out.Tries = append(out.Tries, s.tryJSON(tr))
	}
	return out
}

// instancesJSON returns the instances of the latest expansion of mapped task t, whose record
// is ti: those not started yet have no record, and no state.
func (s *Server) instancesJSON(rec *state.RunRecord, t *spec.Task, ti *state.TaskInstance, deps []string) []api.TaskInstance {
	out := make([]api.TaskInstance, 0, len(ti.MapKeys))
	for _, key := range ti.MapKeys {
		name := spec.InstanceName(t.Name, key)
		inst := rec.Tasks[name]
		if inst == nil {
			inst = &state.TaskInstance{Task: name}
		}
		a := s.taskJSON(name, inst, deps)
		a.Parent = t.Name
		out = append(out, a)
	}
	return out
}

func (s *Server) tryJSON(t state.Try) api.Try {
	out := api.Try{
		Try: t.Try, State: string(t.State), JobID: t.JobID, AllocID: t.AllocID, Node: t.Node,
		ExitCode: t.ExitCode, Message: t.Message, ScheduledAt: t.ScheduledAt, QueuedAt: t.QueuedAt,
		StartedAt: t.StartedAt, EndedAt: t.EndedAt, Outputs: t.Outputs, Pending: t.Pending,
	}
	if s.cfg.NomadUI != "" {
		base := strings.TrimSuffix(s.cfg.NomadUI, "/")
		if t.JobID != "" {
			out.NomadJobURL = base + "/jobs/" + t.JobID
		}
		if t.AllocID != "" {
			out.NomadAllocURL = base + "/allocations/" + t.AllocID
		}
	}
	return out
}

func (s *Server) clear(w http.ResponseWriter, r *http.Request) {
	var req api.ClearRequest
	if !decode(w, r, &req) {
		return
	}
	rec, ti, ok := s.taskInstance(w, r)
	if !ok || !actionable(w, rec) {
		return
	}
	s.act(w, r, &state.Request{Kind: state.RequestClear, DAG: rec.Run.DAG, RunID: rec.Run.ID, Task: ti.Task, Downstream: req.Downstream})
}

func (s *Server) mark(w http.ResponseWriter, r *http.Request) {
	var req api.MarkRequest
	if !decode(w, r, &req) {
		return
	}
	if req.State != "success" && req.State != "failed" {
		writeError(w, http.StatusBadRequest, "invalid mark", api.FieldError{Field: "state", Message: "want success or failed, got " + quote(req.State)})
		return
	}
	rec, ti, ok := s.taskInstance(w, r)
	if !ok || !actionable(w, rec) {
		return
	}
	s.act(w, r, &state.Request{Kind: state.RequestMark, DAG: rec.Run.DAG, RunID: rec.Run.ID, Task: ti.Task, State: req.State, Downstream: req.Downstream})
}

func (s *Server) cancel(w http.ResponseWriter, r *http.Request) {
	rec, ok := s.runRecord(w, r)
	if !ok || !actionable(w, rec) {
		return
	}
	if rec.Run.State.Finished() {
		writeError(w, http.StatusConflict, "run "+quote(rec.Run.ID)+" of DAG "+quote(rec.Run.DAG)+" already finished ("+string(rec.Run.State)+"); clear a task to run it again")
		return
	}
	s.act(w, r, &state.Request{Kind: state.RequestCancel, DAG: rec.Run.DAG, RunID: rec.Run.ID})
}
