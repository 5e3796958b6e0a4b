// Package web serves dagflow's HTTP API (/v1/...) and its web UI. Every server instance serves
// both, active or standby: reads come from Consul, and actions are queued as requests that the
// active instance carries out, so a caller never needs to know which instance leads.
//
// Every route but health, ACL bootstrap and the UI's static files needs a token whose role
// allows it; see Routes.
package web

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/history"
	"github.com/dagflow/dagflow/state"
)

//go:embed ui
var assets embed.FS

// maxRequestBody bounds what a request may send; no route needs more.
const maxRequestBody = 1 << 20

// DefaultActionTimeout is how long an action waits for the active instance to carry it out
// before answering 202 Accepted: long enough for a leader busy with a large catch-up, short
// enough that a browser does not give up first.
const DefaultActionTimeout = 30 * time.Second

// LogReader reads a live allocation's output from Nomad.
type LogReader interface {
	// ReadLog returns up to limit bytes of the allocation's stdout or stderr from offset on,
	// and the offset after them.
	ReadLog(ctx context.Context, allocID, logType string, offset int64, limit int) ([]byte, int64, error)
}

// History reads the runs Consul no longer keeps. *history.DB is one.
type History interface {
	Runs(ctx context.Context, q history.RunQuery) ([]*state.RunRecord, error)
	Run(ctx context.Context, dag, id string) (*state.RunRecord, error)
	Log(ctx context.Context, dag, run, task string, try int, stream string, offset int64, limit int) (*history.Log, error)
	Schema(ctx context.Context) (current, latest int, err error)
}

// Config is what a Server needs.
type Config struct {
	Store    *state.Store
	History  History   // nil: runs go as far back as Consul keeps them
	KeepRuns int       // finished runs per DAG Consul keeps, for people
	Logs     LogReader // nil: logs come from Consul only, once a try has ended
	Logger   hclog.Logger
	Metrics  prometheus.Gatherer // what /metrics serves

	// Role reports the instance's current role (api's "active" or "standby"); Leader reads
	// the active instance's lock value ("<service ID> <address>"), nil when none leads.
	Role   func() string
	Leader func(ctx context.Context) ([]byte, error)
	// RoleChanged returns a channel closed at the instance's next change of role (nil: the
	// role never changes); long-polls end then, so the page learns the new role.
	RoleChanged func() <-chan struct{}

	// AnonymousRole is what a request without a token may do: "" (nothing but health), or a
	// role such as api.RoleViewer for a read-only dashboard.
	AnonymousRole string
	// NomadUI is the Nomad web UI's base address ("http://127.0.0.1:4646/ui"), for links to jobs
	// and allocations; empty: no links.
	NomadUI string
	// ActionTimeout: zero means DefaultActionTimeout.
	ActionTimeout time.Duration
}

// Server serves the API and UI. It is safe for concurrent use.
type Server struct {
	cfg Config
	log hclog.Logger
	mux *http.ServeMux

	// versions caches DAG definitions by content hash. Versions are immutable, so an entry never
	// goes stale, and listing 1,000 DAGs reads the catalog once instead of 1,000 keys.
	mu       sync.Mutex
	versions map[string]*state.DAGVersion

	lastCatalog *state.Catalog // the catalog read last; see catalog
}

// Route is one route of the API: who may call it.
type Route struct {
	Pattern string // as http.ServeMux takes it: "GET /v1/dags/{dag}"
	Role    string // the least role allowed; "" for anyone
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	if cfg.ActionTimeout == 0 {
		cfg.ActionTimeout = DefaultActionTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), versions: map[string]*state.DAGVersion{}}
	for _, rt := range s.routes() {
		s.mux.Handle(rt.Pattern, s.authorize(rt.Role, rt.handler))
	}
	ui, _ := fs.Sub(assets, "ui")
	static := http.FileServerFS(ui)
	s.mux.Handle("GET /static/", http.StripPrefix("/static", static))
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, ui, "index.html")
	})
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path+"; the API is documented in docs/api.md")
	})
	return s
}

type route struct {
	Route
	handler http.Handler
}

// Routes lists every API route with the least role that may call it.
func Routes() []Route {
	var out []Route
	for _, r := range (&Server{}).routes() {
		out = append(out, r.Route)
	}
	return out
}

func (s *Server) routes() []route {
	h := func(pattern, role string, f http.HandlerFunc) route {
		return route{Route{pattern, role}, f}
	}
	const (
		anyone   = ""
		viewer   = api.RoleViewer
		operator = api.RoleOperator
		admin    = api.RoleAdmin
	)
	run := "/v1/dags/{dag}/runs/{run}"
	return []route{
		h("GET /v1/health", anyone, s.health),
		h("GET /v1/status/leader", viewer, s.leader),
		h("GET /v1/status/history", viewer, s.historyStatus),
		{Route{"GET /metrics", viewer}, http.HandlerFunc(s.metrics)},

		h("GET /v1/dags", viewer, s.listDAGs),
		h("GET /v1/dags/{dag}", viewer, s.dagInfo),
		h("POST /v1/dags/{dag}/runs", operator, s.trigger),
		h("POST /v1/dags/{dag}/backfill", operator, s.backfill),
		h("POST /v1/dags/{dag}/pause", operator, s.pause(true)),
		h("POST /v1/dags/{dag}/unpause", operator, s.pause(false)),

		h("GET /v1/runs", viewer, s.listRuns),
		h("GET /v1/dags/{dag}/runs", viewer, s.listRuns),
		h("GET "+run, viewer, s.runInfo),
		h("GET "+run+"/tasks/{task}/tries/{try}/logs", viewer, s.logs),
		h("POST "+run+"/tasks/{task}/clear", operator, s.clear),
		h("POST "+run+"/tasks/{task}/mark", operator, s.mark),
		h("POST "+run+"/cancel", operator, s.cancel),

		h("GET /v1/assets", viewer, s.listAssets),
		h("GET /v1/assets/{name}", viewer, s.assetInfo),
		h("POST /v1/assets/{name}/events", operator, s.emit),

		h("GET /v1/deliveries", viewer, s.listDeliveries),

		h("POST /v1/acl/bootstrap", anyone, s.bootstrap),
		h("GET /v1/acl/token/self", viewer, s.tokenSelf),
		h("GET /v1/acl/tokens", admin, s.listTokens),
		h("POST /v1/acl/tokens", admin, s.createToken),
		h("DELETE /v1/acl/tokens/{id}", admin, s.deleteToken),
	}
}

// setRole says in X-Dagflow-Role which role the instance has now; a long-poll says it again
// as it answers, since the role may have changed while it waited.
func (s *Server) setRole(w http.ResponseWriter) {
	if s.cfg.Role != nil {
		w.Header().Set("X-Dagflow-Role", s.cfg.Role())
	}
}

// ServeHTTP implements http.Handler, adding the headers every response carries.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	s.setRole(w)
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	s.mux.ServeHTTP(w, r)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", Role: s.cfg.Role(), Time: time.Now()})
}

func (s *Server) leader(w http.ResponseWriter, r *http.Request) {
	v, err := s.cfg.Leader(r.Context())
	if err != nil {
		s.fail(w, "read leader", err)
		return
	}
	id, addr, ok := strings.Cut(string(v), " ")
	if v == nil || !ok {
		writeError(w, http.StatusNotFound, "no instance leads right now; actions stay queued until one does")
		return
	}
	writeJSON(w, http.StatusOK, api.Leader{ServiceID: id, Address: addr})
}

func (s *Server) historyStatus(w http.ResponseWriter, r *http.Request) {
	out := api.HistoryStatus{Enabled: s.cfg.History != nil, KeepRuns: s.cfg.KeepRuns}
	if s.cfg.History != nil {
		current, latest, err := s.cfg.History.Schema(r.Context())
		switch {
		case err != nil:
			s.log.Warn("history database unavailable", "error", err)
			out.Error = "the history database does not answer; runs older than Consul keeps are not shown until it does"
		case current < latest:
			out.Error = "the history database's schema is not current yet; the active server applies it"
		default:
			out.Available = true
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// version returns a DAG version, cached.
func (s *Server) version(ctx context.Context, name, version string) (*state.DAGVersion, error) {
	s.mu.Lock()
	v, ok := s.versions[version]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := s.store().DAGVersion(ctx, name, version)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.versions[version] = v
	s.mu.Unlock()
	return v, nil
}

func (s *Server) store() *state.Store { return s.cfg.Store }

// dagDef returns the definition of a DAG version.
func (s *Server) dagDef(ctx context.Context, name, version string) (*spec.DAG, error) {
	v, err := s.version(ctx, name, version)
	if err != nil {
		return nil, err
	}
	return v.DAG, nil
}

// fail logs an internal error and answers without its details, which may name internal hosts.
func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Error(what, "error", err)
	writeError(w, http.StatusServiceUnavailable, what+": state is unavailable; try again shortly")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// jsonArray writes a JSON array to w one element at a time, byte for byte as writeJSON
// writes the whole slice, so a long list is never held encoded in memory. The status (200) is
// sent with the first element; an error after that can only abort the answer (fail).
type jsonArray struct {
	w    http.ResponseWriter
	n    int
	buf  bytes.Buffer
	enc  *json.Encoder
	sent bool
}

func newJSONArray(w http.ResponseWriter) *jsonArray {
	a := &jsonArray{w: w}
	a.enc = json.NewEncoder(&a.buf)
	a.enc.SetIndent("  ", "  ")
	return a
}

func (a *jsonArray) start() {
	if !a.sent {
		a.sent = true
		a.w.Header().Set("Content-Type", "application/json")
		a.w.WriteHeader(http.StatusOK)
	}
}

// add writes v as the array's next element.
func (a *jsonArray) add(v any) {
	a.start()
	a.buf.Reset()
	if a.n == 0 {
		a.buf.WriteString("[\n  ")
	} else {
		a.buf.WriteString(",\n  ")
	}
	a.n++
	_ = a.enc.Encode(v)
	a.buf.Truncate(a.buf.Len() - 1) // Encode's newline
	_, _ = a.w.Write(a.buf.Bytes())
}

// close ends the array.
func (a *jsonArray) close() {
	a.start()
	if a.n == 0 {
		_, _ = io.WriteString(a.w, "[]\n")
		return
	}
	_, _ = io.WriteString(a.w, "\n]\n")
}

// fail answers as Server.fail does when nothing was sent yet; past the first element it logs
// the error and aborts the answer, so the client sees a broken response, not a short list.
func (a *jsonArray) fail(s *Server, what string, err error) {
	if !a.sent {
		s.fail(a.w, what, err)
		return
	}
	if !errors.Is(err, context.Canceled) {
		s.log.Error(what, "error", err)
	}
	panic(http.ErrAbortHandler)
}

func writeError(w http.ResponseWriter, status int, msg string, fields ...api.FieldError) {
	writeJSON(w, status, api.ErrorBody{Error: msg, Fields: fields})
}

// decode reads a JSON request body into v; an empty body leaves v as it is.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "request body is larger than 1 MiB")
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}
