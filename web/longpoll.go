package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/state"
)

// Long-polls work as Consul's blocking queries: a read that long-polls answers with its index
// in X-Dagflow-Index; asked again with ?index= that value (and optionally ?wait=), it answers
// once what it reads changed after that index, or when the wait is over, with the new index.
// The lists, a DAG, a run, the deliveries and the assets long-poll; see docs/api.md.
const (
	// DefaultWait is the wait of a long-poll that names none: long enough to spare requests,
	// and under the 2-minute timeout of the api client and of common proxies.
	DefaultWait = time.Minute

	// MaxWait is the longest wait, as Consul's.
	MaxWait = 10 * time.Minute
)

// pollQuery reads ?index= and ?wait=, answering 400 when they are invalid. index is 0 when
// the request does not long-poll.
func pollQuery(w http.ResponseWriter, q url.Values) (index uint64, wait time.Duration, ok bool) {
	var fields []api.FieldError
	if v := q.Get("index"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			fields = append(fields, api.FieldError{Field: "index", Message: "want the X-Dagflow-Index of an earlier answer, a whole number, got " + quote(v)})
		}
		index = n
	}
	wait = DefaultWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > MaxWait {
			fields = append(fields, api.FieldError{Field: "wait", Message: "want a duration from 1s to 10m such as 30s, got " + quote(v)})
		}
		wait = d
	}
	if len(fields) > 0 {
		writeError(w, http.StatusBadRequest, "invalid query", fields...)
		return 0, 0, false
	}
	return index, wait, true
}

func setIndex(w http.ResponseWriter, index uint64) {
	w.Header().Set("X-Dagflow-Index", strconv.FormatUint(index, 10))
}

// waitChange is the long-poll of a read: it waits until the state under watches changed after
// index (at once when index is 0), or wait passed, then sets X-Dagflow-Index to the index to
// ask with next. The request's token is watched too, and checked again once the wait is over:
// a token revoked meanwhile ends the wait and gets 403, not the data. A change of the
// instance's role ends the wait as well: every answer carries the role (X-Dagflow-Role), and a
// page following a standby that took over would otherwise show it as a standby until what it
// watches changed. It answers the request itself (and returns false) when the wait fails or
// the token is gone.
func (s *Server) waitChange(w http.ResponseWriter, r *http.Request, what string, index uint64, wait time.Duration, watches ...state.Watch) bool {
	sec := secret(r)
	if index > 0 && sec != "" {
		watches = append(watches, s.store().TokenWatch(sec))
	}
	ctx := r.Context()
	var roleChanged atomic.Bool
	if index > 0 && s.cfg.RoleChanged != nil {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		changed := s.cfg.RoleChanged()
		go func() {
			select {
			case <-changed:
				roleChanged.Store(true)
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	next, err := s.store().WaitChange(ctx, index, wait, watches...)
	if err != nil && roleChanged.Load() && r.Context().Err() == nil {
		next, err = index, nil
	}
	if err != nil {
		s.fail(w, what, err)
		return false
	}
	if index > 0 && sec != "" {
		_, err := s.store().TokenBySecret(r.Context(), sec)
		if errors.Is(err, state.ErrTokenNotFound) {
			writeError(w, http.StatusForbidden, msgTokenNotFound)
			return false
		}
		if err != nil {
			s.fail(w, "check token", err)
			return false
		}
	}
	setIndex(w, next)
	s.setRole(w)
	return true
}
