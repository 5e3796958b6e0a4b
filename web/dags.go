package web

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/rules"
	"github.com/dagflow/dagflow/schedule"
	"github.com/dagflow/dagflow/state"
)

func (s *Server) listDAGs(w http.ResponseWriter, r *http.Request) {
	ctx, q := r.Context(), r.URL.Query()
	index, wait, ok := pollQuery(w, q)
	if !ok {
		return
	}
	per := 0 // all
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPerPage {
			writeError(w, http.StatusBadRequest, "invalid query", api.FieldError{Field: "per_page", Message: "want a number from 1 to " + strconv.Itoa(MaxPerPage) + ", got " + quote(v)})
			return
		}
		per = n
	}
	st := s.store()
	if !s.waitChange(w, r, "list dags", index, wait, st.CatalogWatch(), st.PausedWatch(), st.SummariesWatch()) {
		return
	}
	cat, err := s.catalog(ctx)
	if err != nil {
		s.fail(w, "list dags", err)
		return
	}
	paused, _, err := s.store().Paused(ctx, 0)
	if err != nil {
		s.fail(w, "list dags", err)
		return
	}
	names := slices.Sorted(maps.Keys(cat.DAGs))
	if tok := q.Get("next_token"); tok != "" {
		// The token is the name the page starts at, so a DAG removed meanwhile does not
		// end the listing.
		i, _ := slices.BinarySearch(names, tok)
		names = names[i:]
	}
	if per > 0 && len(names) > per {
		w.Header().Set("X-Dagflow-Next-Token", names[per])
		names = names[:per]
	}
	// The DAGs are read and written a chunk at a time: the whole list of 10,000 DAGs held at
	// once (their summaries as read, their entries, the encoded answer) took 320 MB a call,
	// which the process then kept.
	out := newJSONArray(w)
	now := time.Now()
	for chunk := range slices.Chunk(names, listChunk) {
		stubs, err := s.dagStubs(ctx, cat, paused, chunk, now)
		if err != nil {
			out.fail(s, "list dags", err)
			return
		}
		for _, st := range stubs {
			out.add(st)
		}
	}
	out.close()
}

// listChunk is how many DAGs a DAG list reads and encodes at a time: 16 read-only
// transactions of summaries, 4 at once, a few MB. With 256 the list of 10,000 DAGs took 1.5 s
// instead of 1.1 s, one chunk's round trips waiting for the last one's encoding.
const listChunk = 1024

// dagStubs returns the list entries of the DAGs names applied in cat.
func (s *Server) dagStubs(ctx context.Context, cat *state.Catalog, paused map[string]state.Pause, names []string, now time.Time) ([]api.DAGListStub, error) {
	sums, err := s.store().SummariesOf(ctx, names)
	if err != nil {
		return nil, err
	}
	if err := s.cacheVersions(ctx, cat, names); err != nil {
		return nil, err
	}
	out := make([]api.DAGListStub, 0, len(names))
	for _, name := range names {
		e := cat.DAGs[name]
		d, err := s.dagDef(ctx, name, e.Version)
		if err != nil {
			return nil, err
		}
		var recent []api.RunStub
		if sum := sums[name]; sum != nil {
			for _, rs := range sum.Recent[:min(len(sum.Recent), api.RecentRunsShown)] {
				recent = append(recent, summaryStub(rs))
			}
		}
		out = append(out, dagStub(d, e, isPaused(d, paused), recent, now))
	}
	return out, nil
}

func isPaused(d *spec.DAG, paused map[string]state.Pause) bool {
	if p, ok := paused[d.Name]; ok {
		return p.Paused
	}
	return d.Paused
}

func dagStub(d *spec.DAG, e state.Entry, paused bool, recent []api.RunStub, now time.Time) api.DAGListStub {
	tags := d.Tags
	if tags == nil {
		tags = []string{}
	}
	if recent == nil {
		recent = []api.RunStub{}
	}
	return api.DAGListStub{
		Name: d.Name, Version: e.Version, Description: d.Description, Schedule: d.Schedule,
		Timezone: d.Timezone, Tags: tags, Tasks: len(d.Tasks), Paused: paused,
		NextRun: nextRun(d, paused, now), RecentRuns: recent, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
	}
}

// nextRun is when the next scheduled run of d becomes due: the next tick of its schedule, or
// nil for a manual-only, paused or ended DAG.
func nextRun(d *spec.DAG, paused bool, now time.Time) *time.Time {
	if d.Schedule == "" || paused {
		return nil
	}
	loc, err := schedule.LoadLocation(d.Timezone)
	if err != nil {
		return nil
	}
	sched, err := schedule.Parse(d.Schedule, loc, d.StartDate)
	if err != nil {
		return nil
	}
	from := now
	if d.StartDate.After(from) {
		from = d.StartDate
	}
	next := sched.Next(from)
	if next.IsZero() || (!d.EndDate.IsZero() && next.After(d.EndDate)) {
		return nil
	}
	next = next.UTC()
	return &next
}

// appliedEntry returns the catalog entry of DAG name, answering 404 when it is not applied.
func (s *Server) appliedEntry(w http.ResponseWriter, ctx context.Context, name string) (state.Entry, bool) {
	cat, err := s.catalog(ctx)
	if err != nil {
		s.fail(w, "read catalog", err)
		return state.Entry{}, false
	}
	e, ok := cat.DAGs[name]
	if !ok {
		writeError(w, http.StatusNotFound, "DAG "+quote(name)+" is not applied; dagflow plan and apply it first")
		return state.Entry{}, false
	}
	return e, true
}

func (s *Server) dagInfo(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("dag")
	index, wait, ok := pollQuery(w, r.URL.Query())
	if !ok {
		return
	}
	// What a DAG shows: its versions (applied with the catalog), its pause, its recent runs and
	// where the assets of its schedule_on stand.
	st := s.store()
	if !s.waitChange(w, r, "read dag", index, wait, st.CatalogWatch(), st.PausedWatch(), st.RunsWatch(name), st.AssetsWatch(), st.ConsumersWatch()) {
		return
	}
	e, ok := s.appliedEntry(w, ctx, name)
	if !ok {
		return
	}
	versions, err := s.store().DAGVersions(ctx, name)
	if err != nil {
		s.fail(w, "read dag versions", err)
		return
	}
	version := e.Version
	if v := r.URL.Query().Get("version"); v != "" {
		if !slices.ContainsFunc(versions, func(i state.VersionInfo) bool { return i.Version == v }) {
			writeError(w, http.StatusNotFound, "DAG "+quote(name)+" has no version "+quote(v))
			return
		}
		version = v
	}
	v, err := s.version(ctx, name, version)
	if err != nil {
		s.fail(w, "read dag", err)
		return
	}
	paused, _, err := s.store().Paused(ctx, 0)
	if err != nil {
		s.fail(w, "read dag", err)
		return
	}
	recs, err := s.store().Runs(ctx, name)
	if err != nil {
		s.fail(w, "read dag", err)
		return
	}
	recent := make([]api.RunStub, 0, len(recs))
	for _, rec := range recs {
		recent = append(recent, runStub(rec, api.RunSourceConsul))
	}
	sortRuns(recent)
	recent = recent[:min(len(recent), api.RecentRunsShown)]

	d := v.DAG
	out := api.DAG{
		DAGListStub:   dagStub(d, e, isPaused(d, paused), recent, time.Now()),
		StartDate:     d.StartDate,
		EndDate:       d.EndDate,
		Catchup:       d.Catchup,
		MaxActiveRuns: d.MaxActiveRuns, MaxActiveTasks: d.MaxActiveTasks,
		Params:   []api.Param{},
		TaskList: []api.Task{},
		Edges:    []api.Edge{},
		Source:   v.Source,
	}
	out.Version = version
	for _, p := range d.Params {
		out.Params = append(out.Params, api.Param{Name: p.Name, Type: p.Type, Default: p.Default, Description: p.Description, Required: p.Required})
	}
	if err := s.assetWaits(ctx, d, &out); err != nil {
		s.fail(w, "read dag assets", err)
		return
	}
	for _, t := range d.Tasks {
		deps := t.DependsOn
		if deps == nil {
			deps = []string{}
		}
		at := api.Task{Name: t.Name, Group: t.Group, DependsOn: deps, TriggerRule: t.TriggerRule, Queue: t.Queue, Driver: t.Driver, Retries: t.Retries}
		if t.Timeout > 0 {
			at.Timeout = time.Duration(t.Timeout).String()
		}
		out.TaskList = append(out.TaskList, at)
		for _, dep := range t.DependsOn {
			out.Edges = append(out.Edges, api.Edge{From: dep, To: t.Name})
		}
	}
	for i := len(versions) - 1; i >= 0; i-- {
		out.Versions = append(out.Versions, api.Version{Version: versions[i].Version, CreatedAt: versions[i].CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) trigger(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("dag")
	var req api.TriggerRequest
	if !decode(w, r, &req) {
		return
	}
	e, ok := s.appliedEntry(w, ctx, name)
	if !ok {
		return
	}
	d, err := s.dagDef(ctx, name, e.Version)
	if err != nil {
		s.fail(w, "read dag", err)
		return
	}
	// The leader checks the params again against the version it runs; checking here too gives
	// the caller every problem, per field, before anything is queued.
	if _, err := d.ResolveParams(req.Params); err != nil {
		var perrs spec.ParamErrors
		if !errors.As(err, &perrs) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		fields := make([]api.FieldError, 0, len(perrs))
		for _, p := range perrs {
			fields = append(fields, api.FieldError{Field: "params." + p.Param, Message: p.Message})
		}
		writeError(w, http.StatusBadRequest, "DAG "+quote(name)+" cannot run with these params", fields...)
		return
	}
	runID := req.RunID
	if runID == "" {
		runID = rules.RunID(rules.RunManual, time.Now())
	} else if typ, _, err := rules.ParseRunID(runID); err != nil || typ != rules.RunManual {
		writeError(w, http.StatusBadRequest, "invalid trigger", api.FieldError{Field: "run_id", Message: "want manual__<RFC 3339 time> such as " + rules.RunID(rules.RunManual, time.Now()) + ", or none"})
		return
	} else if s.cfg.History != nil {
		// The leader refuses an ID Consul holds; one only history holds would overwrite the
		// earlier run's record there.
		_, err := s.cfg.History.Run(ctx, name, runID)
		if err == nil {
			writeError(w, http.StatusConflict, "DAG "+quote(name)+" already had run "+quote(runID)+" (it is in history); pick another run_id, or none")
			return
		}
		if !errors.Is(err, state.ErrNotFound) {
			s.fail(w, "check the run ID against history", err)
			return
		}
	}
	s.act(w, r, &state.Request{Kind: state.RequestTrigger, DAG: name, RunID: runID, Params: req.Params})
}

func (s *Server) backfill(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("dag")
	var req api.BackfillRequest
	if !decode(w, r, &req) {
		return
	}
	var fields []api.FieldError
	if req.From.IsZero() {
		fields = append(fields, api.FieldError{Field: "from", Message: "the first logical date to backfill is missing"})
	}
	if req.To.IsZero() {
		fields = append(fields, api.FieldError{Field: "to", Message: "the last logical date to backfill is missing"})
	}
	if len(fields) == 0 && req.To.Before(req.From) {
		fields = append(fields, api.FieldError{Field: "to", Message: "is before from; swap them"})
	}
	if len(fields) > 0 {
		writeError(w, http.StatusBadRequest, "invalid backfill", fields...)
		return
	}
	if _, ok := s.appliedEntry(w, ctx, name); !ok {
		return
	}
	s.act(w, r, &state.Request{Kind: state.RequestBackfill, DAG: name, From: req.From, To: req.To})
}

func (s *Server) pause(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, name := r.Context(), r.PathValue("dag")
		if _, ok := s.appliedEntry(w, ctx, name); !ok {
			return
		}
		// Pausing is runtime state any instance may write: the leader watches it.
		if err := s.store().SetPaused(ctx, name, paused); err != nil {
			s.fail(w, "pause dag", err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// act queues req for the active instance and answers with its result: 200 when carried out,
// 409 when the leader refused it (the reason is in the body), 202 when no leader carried it out
// within ActionTimeout (it stays queued and happens once one does).
func (s *Server) act(w http.ResponseWriter, r *http.Request, req *state.Request) {
	if err := s.store().Submit(r.Context(), req); err != nil {
		s.fail(w, "queue "+req.Kind, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ActionTimeout)
	defer cancel()
	res, err := s.store().Wait(ctx, req.ID)
	if errors.Is(err, state.ErrRequestTimeout) {
		writeJSON(w, http.StatusAccepted, api.ErrorBody{Error: err.Error()})
		return
	}
	if err != nil {
		s.fail(w, "wait for "+req.Kind, err)
		return
	}
	if res.Error != "" {
		writeError(w, http.StatusConflict, res.Error)
		return
	}
	writeJSON(w, http.StatusOK, api.ActionResult{RunIDs: res.RunIDs})
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
