package web

import (
	"net/http"
	"slices"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/state"
)

// listDeliveries serves GET /v1/deliveries?state=&dag=&run_id=: the callback deliveries
// Consul keeps (pending ones, and ended ones for the engine's DeliveryKeep), oldest first.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	index, wait, ok := pollQuery(w, q)
	if !ok {
		return
	}
	f := state.DeliveryFilter{State: state.DeliveryState(q.Get("state")), DAG: q.Get("dag"), RunID: q.Get("run_id")}
	if f.State != "" && !slices.Contains([]state.DeliveryState{state.DeliveryPending, state.DeliveryDelivered, state.DeliveryFailed}, f.State) {
		writeError(w, http.StatusBadRequest, "invalid query", api.FieldError{Field: "state", Message: "want pending, delivered or failed, got " + quote(string(f.State))})
		return
	}
	if !s.waitChange(w, r, "list deliveries", index, wait, s.store().DeliveriesWatch()) {
		return
	}
	ds, err := s.store().Deliveries(r.Context(), f)
	if err != nil {
		s.fail(w, "list deliveries", err)
		return
	}
	out := make([]api.Delivery, 0, len(ds))
	for _, d := range ds {
		a := api.Delivery{
			ID: d.ID, State: string(d.State), URL: d.URL, Headers: d.Headers, JobID: d.JobID, Attempts: d.Attempts,
			NextAt: d.NextAt, LastError: d.LastError, CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt, EndedAt: d.EndedAt,
			Payload: api.DeliveryPayload(d.Payload),
		}
		for _, h := range d.SecretHeaders {
			a.SecretHeaders = append(a.SecretHeaders, api.SecretHeader(h))
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, out)
}
