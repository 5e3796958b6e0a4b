package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/devstack"
	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/web"
)

const dags = `
dag "etl" {
  description = "<script>alert(1)</script><img src=x onerror=alert(2)>"
  schedule    = "@daily"
  start_date  = "2026-01-01"
  tags        = ["<b>tag</b>"]
  task "a" { command = "/bin/true" }
  task "b" {
    command    = "/bin/true"
    depends_on = ["a"]
  }
}

dag "manual" {
  task "a" { command = "/bin/true" }
}
`

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	consul := devstack.StartConsulT(t)
	client := devstack.ConsulClientT(t, consul)
	store, err := state.New(client, "web-test/")
	if err != nil {
		t.Fatal(err)
	}
	c, diags := spec.NewParser().LoadSource([]byte(dags), "dags.hcl")
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	ctx := context.Background()
	base, err := store.Catalog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply(ctx, base, c.DAGs, c.Queues, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(store, hclog.NewNullLogger(), func() string { return "standby" }, prometheus.NewRegistry()))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func TestRoutes(t *testing.T) {
	srv := newServer(t)
	tests := []struct {
		name        string
		path        string
		status      int
		contentType string
		contains    []string
		absent      []string
	}{
		{name: "health", path: "/v1/health", status: 200, contentType: "application/json", contains: []string{`"status": "ok"`, `"role": "standby"`}},
		{name: "dags as JSON", path: "/v1/dags", status: 200, contentType: "application/json", contains: []string{`"name": "etl"`, `"name": "manual"`, `"tasks": 2`, `"schedule": "@daily"`}},
		{
			name: "UI escapes DAG text", path: "/", status: 200, contentType: "text/html; charset=utf-8",
			contains: []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", "&lt;b&gt;tag&lt;/b&gt;", "manual"},
			absent:   []string{"<script>alert", "<img src=x", "<b>tag"},
		},
		{name: "stylesheet", path: "/static/style.css", status: 200, contentType: "text/css; charset=utf-8"},
		{name: "unknown route", path: "/v1/nope", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, srv.URL+tt.path)
			if resp.StatusCode != tt.status {
				t.Fatalf("GET %s: status %d, want %d; body:\n%s", tt.path, resp.StatusCode, tt.status, body)
			}
			if tt.contentType != "" && resp.Header.Get("Content-Type") != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", resp.Header.Get("Content-Type"), tt.contentType)
			}
			for _, s := range tt.contains {
				if !strings.Contains(body, s) {
					t.Errorf("body lacks %q:\n%s", s, body)
				}
			}
			for _, s := range tt.absent {
				if strings.Contains(body, s) {
					t.Errorf("body contains unescaped %q", s)
				}
			}
			for header, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
			} {
				if got := resp.Header.Get(header); got != want {
					t.Errorf("%s = %q, want %q", header, got, want)
				}
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
		})
	}
}

func TestDAGListDecodes(t *testing.T) {
	srv := newServer(t)
	_, body := get(t, srv.URL+"/v1/dags")
	var list []web.DAGSummary
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "etl" || list[1].Name != "manual" {
		t.Fatalf("dags = %+v", list)
	}
	if list[0].Version == "" || list[0].CreatedAt.IsZero() {
		t.Errorf("etl has no version or creation time: %+v", list[0])
	}
}

// TestConsulDown answers with an error status, not a crash, when state cannot be read.
func TestConsulDown(t *testing.T) {
	cfg := consulapi.DefaultConfig()
	cfg.Address = "127.0.0.1:1"
	client, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	store, err := state.New(client, "x/")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(store, hclog.NewNullLogger(), func() string { return "standby" }, prometheus.NewRegistry()))
	defer srv.Close()
	resp, body := get(t, srv.URL+"/v1/dags")
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(body, "127.0.0.1:1") {
		t.Fatalf("status %d, body %s", resp.StatusCode, body)
	}
	resp, _ = get(t, srv.URL+"/v1/health")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("health: status %d", resp.StatusCode)
	}
}
