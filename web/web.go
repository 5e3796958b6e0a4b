// Package web serves dagflow's HTTP API and web UI. Every server instance serves both.
package web

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/state"
)

//go:embed templates/*.html static/*
var assets embed.FS

var pages = template.Must(template.ParseFS(assets, "templates/*.html"))

// maxRequestBody bounds what a request may send; no route needs more.
const maxRequestBody = 1 << 20

// Server serves the API and UI from dagflow's state.
type Server struct {
	store  *state.Store
	logger hclog.Logger
	role   func() string
	mux    *http.ServeMux

	// versions caches DAG definitions by content hash. Versions are immutable, so an entry never
	// goes stale, and listing 1,000 DAGs reads the catalog once instead of 1,000 keys.
	mu       sync.Mutex
	versions map[string]*spec.DAG
}

// New returns a Server reading from store. role reports the instance's current role ("active"
// or "standby"), which the health endpoint shows; metrics is what /metrics serves.
func New(store *state.Store, logger hclog.Logger, role func() string, metrics prometheus.Gatherer) *Server {
	s := &Server{store: store, logger: logger, role: role, mux: http.NewServeMux(), versions: map[string]*spec.DAG{}}
	s.mux.HandleFunc("GET /v1/health", s.health)
	s.mux.HandleFunc("GET /v1/dags", s.listDAGs)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.Handle("GET /static/", http.FileServerFS(assets))
	return s
}

// ServeHTTP implements http.Handler, adding the headers every response carries.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("Referrer-Policy", "same-origin")
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	s.mux.ServeHTTP(w, r)
}

// DAGSummary is one applied DAG in the list the API and the UI show.
type DAGSummary struct {
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Description string    `json:"description,omitempty"`
	Schedule    string    `json:"schedule,omitempty"`
	Timezone    string    `json:"timezone"`
	Tags        []string  `json:"tags"`
	Tasks       int       `json:"tasks"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// health answers 200 on active and standby instances alike: both serve the UI and API. The
// body says which one this is.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "role": s.role()})
}

func (s *Server) listDAGs(w http.ResponseWriter, r *http.Request) {
	dags, err := s.dags(r.Context())
	if err != nil {
		s.fail(w, "list dags", err)
		return
	}
	writeJSON(w, http.StatusOK, dags)
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	dags, err := s.dags(r.Context())
	if err != nil {
		s.fail(w, "list dags", err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "index.html", dags); err != nil {
		s.logger.Error("render index", "error", err)
	}
}

// dags returns the applied DAGs, sorted by name.
func (s *Server) dags(ctx context.Context) ([]DAGSummary, error) {
	cat, err := s.store.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]DAGSummary, 0, len(cat.DAGs))
	for name, e := range cat.DAGs {
		d, err := s.version(ctx, name, e.Version)
		if err != nil {
			return nil, err
		}
		tags := d.Tags
		if tags == nil {
			tags = []string{}
		}
		out = append(out, DAGSummary{
			Name: name, Version: e.Version, Description: d.Description, Schedule: d.Schedule,
			Timezone: d.Timezone, Tags: tags, Tasks: len(d.Tasks), CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (s *Server) version(ctx context.Context, name, version string) (*spec.DAG, error) {
	s.mu.Lock()
	d, ok := s.versions[version]
	s.mu.Unlock()
	if ok {
		return d, nil
	}
	v, err := s.store.DAGVersion(ctx, name, version)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.versions[version] = v.DAG
	s.mu.Unlock()
	return v.DAG, nil
}

// fail logs an internal error and answers without its details, which may name internal hosts.
func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	s.logger.Error(what, "error", err)
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": what + ": state is unavailable"})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
