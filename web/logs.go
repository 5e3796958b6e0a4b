package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/state"
)

// maxLogRead bounds one read of a live log; a client follows a longer one read after read.
const maxLogRead = 1 << 20

// logs serves a try's stdout or stderr as plain text: a finished try's from history (whole, as
// recorded) when there is one, else from Nomad while the allocation is there (live while it
// runs, whole after), else the tail stored in Consul when the try ended. The X-Dagflow-Log-Offset header says where the next
// read starts, X-Dagflow-Try-Finished whether more can come.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	logType := q.Get("type")
	if logType == "" {
		logType = "stdout"
	}
	if logType != "stdout" && logType != "stderr" {
		writeError(w, http.StatusBadRequest, "invalid query", api.FieldError{Field: "type", Message: "want stdout or stderr, got " + quote(logType)})
		return
	}
	var offset int64
	if v := q.Get("offset"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "invalid query", api.FieldError{Field: "offset", Message: "want a byte offset of 0 or more, got " + quote(v)})
			return
		}
		offset = n
	}
	rec, ti, ok := s.taskInstance(w, r)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("try"))
	if err != nil || n < 1 || n > len(ti.Tries) {
		writeError(w, http.StatusNotFound, "task "+quote(ti.Task)+" of run "+quote(rec.Run.ID)+" has "+strconv.Itoa(len(ti.Tries))+" tries; there is no try "+quote(r.PathValue("try")))
		return
	}
	try := ti.Tries[n-1]
	finished := try.State.Finished()

	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Dagflow-Try-Finished", strconv.FormatBool(finished))
	if finished && s.cfg.History != nil {
		// What history recorded is whole, and spares Nomad the read.
		l, err := s.cfg.History.Log(r.Context(), rec.Run.DAG, rec.Run.ID, ti.Task, n, logType, offset, maxLogRead)
		if err == nil {
			h.Set("X-Dagflow-Log-Source", api.LogSourceHistory)
			h.Set("X-Dagflow-Log-Offset", strconv.FormatInt(offset+int64(len(l.Data)), 10))
			h.Set("X-Dagflow-Log-Truncated", strconv.FormatBool(l.Truncated))
			_, _ = w.Write(l.Data)
			return
		}
		if !errors.Is(err, state.ErrNotFound) {
			s.log.Warn("read logs from history", "error", err)
		}
	}
	if try.AllocID != "" && s.cfg.Logs != nil {
		data, next, err := s.cfg.Logs.ReadLog(r.Context(), try.AllocID, logType, offset, maxLogRead)
		if err == nil {
			h.Set("X-Dagflow-Log-Source", api.LogSourceNomad)
			h.Set("X-Dagflow-Log-Offset", strconv.FormatInt(next, 10))
			_, _ = w.Write(data)
			return
		}
		if !finished {
			s.fail(w, "read live log", err)
			return
		}
		// A finished try's allocation may be gone from Nomad: its stored tail answers.
	}
	if !finished || !try.Logs {
		// Nothing written yet, or a try that ended before it could write anything.
		h.Set("X-Dagflow-Log-Source", api.LogSourceStored)
		h.Set("X-Dagflow-Log-Offset", strconv.FormatInt(offset, 10))
		w.WriteHeader(http.StatusOK)
		return
	}
	logs, err := s.store().Logs(r.Context(), rec.Run.DAG, rec.Run.ID, ti.Task, n)
	if errors.Is(err, state.ErrNotFound) {
		logs = &state.Logs{}
	} else if err != nil {
		s.fail(w, "read logs", err)
		return
	}
	data := logs.Stdout
	if logType == "stderr" {
		data = logs.Stderr
	}
	data = data[min(int64(len(data)), offset):]
	h.Set("X-Dagflow-Log-Source", api.LogSourceStored)
	h.Set("X-Dagflow-Log-Offset", strconv.FormatInt(offset+int64(len(data)), 10))
	h.Set("X-Dagflow-Log-Truncated", strconv.FormatBool(logs.Truncated))
	_, _ = w.Write(data)
}
