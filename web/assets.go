package web

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/state"
)

// maxEventExtra bounds the extra JSON an outside producer attaches to an event; consumers'
// runs carry it, and it shares the asset's record with the events before it.
const maxEventExtra = 16 << 10

// assetIndex returns every known asset: those applied DAGs name (outlets, schedule_on) and
// those with events.
func (s *Server) assetIndex(ctx context.Context) (map[string]*api.Asset, error) {
	cat, err := s.store().Catalog(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]*api.Asset{}
	get := func(name string) *api.Asset {
		if out[name] == nil {
			out[name] = &api.Asset{AssetStub: api.AssetStub{Name: name, Producers: []string{}, Consumers: []string{}}, Events: []api.AssetEvent{}}
		}
		return out[name]
	}
	for _, name := range slices.Sorted(maps.Keys(cat.DAGs)) {
		d, err := s.dagDef(ctx, name, cat.DAGs[name].Version)
		if err != nil {
			return nil, err
		}
		for _, t := range d.Tasks {
			for _, o := range t.Outlets {
				a := get(o)
				a.Producers = append(a.Producers, d.Name+"."+t.Name)
			}
		}
		if d.ScheduleOn != nil {
			for _, n := range d.ScheduleOn.Assets() {
				a := get(n)
				a.Consumers = append(a.Consumers, d.Name)
			}
		}
	}
	recs, err := s.store().Assets(ctx)
	if err != nil {
		return nil, err
	}
	for name, rec := range recs {
		a := get(name)
		a.Seq = rec.Seq
		for i := len(rec.Events) - 1; i >= 0; i-- {
			a.Events = append(a.Events, api.AssetEvent(rec.Events[i]))
		}
		if len(rec.Events) > 0 {
			a.UpdatedAt = rec.Events[len(rec.Events)-1].At
		}
	}
	return out, nil
}

// waitAssets is the long-poll of the asset routes: an asset's producers and consumers come with
// the applied DAGs, its events with the asset's record.
func (s *Server) waitAssets(w http.ResponseWriter, r *http.Request, what string) bool {
	index, wait, ok := pollQuery(w, r.URL.Query())
	if !ok {
		return false
	}
	return s.waitChange(w, r, what, index, wait, s.store().CatalogWatch(), s.store().AssetsWatch())
}

func (s *Server) listAssets(w http.ResponseWriter, r *http.Request) {
	if !s.waitAssets(w, r, "list assets") {
		return
	}
	idx, err := s.assetIndex(r.Context())
	if err != nil {
		s.fail(w, "list assets", err)
		return
	}
	out := make([]api.AssetStub, 0, len(idx))
	for _, name := range slices.Sorted(maps.Keys(idx)) {
		out = append(out, idx[name].AssetStub)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) assetInfo(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !s.waitAssets(w, r, "read asset") {
		return
	}
	idx, err := s.assetIndex(r.Context())
	if err != nil {
		s.fail(w, "read asset", err)
		return
	}
	a := idx[name]
	if a == nil {
		writeError(w, http.StatusNotFound, "no DAG names asset "+quote(name)+" and no event was recorded for it")
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) emit(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.EmitRequest
	if !decode(w, r, &req) {
		return
	}
	if err := state.CheckAssetName(name); err != nil {
		writeError(w, http.StatusBadRequest, "invalid asset", api.FieldError{Field: "name", Message: err.Error()})
		return
	}
	if len(req.Extra) > 0 {
		var obj map[string]json.RawMessage
		if json.Unmarshal(req.Extra, &obj) != nil || obj == nil {
			writeError(w, http.StatusBadRequest, "invalid event", api.FieldError{Field: "extra", Message: "want a JSON object, such as {\"rows\": 42}"})
			return
		}
		if len(req.Extra) > maxEventExtra {
			writeError(w, http.StatusBadRequest, "invalid event", api.FieldError{Field: "extra", Message: "larger than 16 KiB; attach a reference to bulk data instead"})
			return
		}
	}
	if len(req.ID) > 200 {
		writeError(w, http.StatusBadRequest, "invalid event", api.FieldError{Field: "id", Message: "longer than 200 characters"})
		return
	}
	sr := &state.Request{Kind: state.RequestEmit, Asset: name, Event: &state.AssetEvent{ID: req.ID, Extra: req.Extra}}
	if err := s.store().Submit(r.Context(), sr); err != nil {
		s.fail(w, "queue emit", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ActionTimeout)
	defer cancel()
	res, err := s.store().Wait(ctx, sr.ID)
	if errors.Is(err, state.ErrRequestTimeout) {
		writeJSON(w, http.StatusAccepted, api.ErrorBody{Error: err.Error()})
		return
	}
	if err != nil {
		s.fail(w, "wait for emit", err)
		return
	}
	if res.Error != "" {
		writeError(w, http.StatusConflict, res.Error)
		return
	}
	out := api.EmitResult{Duplicate: res.Duplicate}
	if res.Event != nil {
		ev := api.AssetEvent(*res.Event)
		out.Event = &ev
	}
	writeJSON(w, http.StatusOK, out)
}

// assetWaits fills the schedule_on condition of d into out, and where each of its assets
// stands against what d's runs consumed.
func (s *Server) assetWaits(ctx context.Context, d *spec.DAG, out *api.DAG) error {
	if d.ScheduleOn == nil {
		return nil
	}
	cond, err := json.Marshal(d.ScheduleOn)
	if err != nil {
		return err
	}
	out.ScheduleOn = cond
	assets, err := s.store().Assets(ctx)
	if err != nil {
		return err
	}
	consumers, err := s.store().Consumers(ctx)
	if err != nil {
		return err
	}
	var consumed map[string]uint64
	if c := consumers[d.Name]; c != nil {
		consumed = c.Consumed
	}
	for _, name := range d.ScheduleOn.Assets() {
		w := api.AssetWait{Asset: name, Consumed: consumed[name]}
		if a := assets[name]; a != nil {
			w.Latest = a.Seq
		}
		w.Updated = w.Latest > w.Consumed
		out.WaitsFor = append(out.WaitsFor, w)
	}
	return nil
}
