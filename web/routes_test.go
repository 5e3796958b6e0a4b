package web_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dagflow/dagflow/api"
	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/internal/testcluster"
	"github.com/dagflow/dagflow/web"
)

// call sends one request to base and returns the status and body.
func call(t *testing.T, method, url, token, body string) (*http.Response, string) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, url, rd)
	} else {
		req, err = http.NewRequest(method, url, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set(api.TokenHeader, token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp, b.String()
}

// TestRouteRoleMatrix sends every route with no token, a bad token and a token of each role,
// and checks who is let through. A route missing from the table fails the test, so a new
// route cannot ship without deciding who may call it.
func TestRouteRoleMatrix(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{})
	c.Apply(pipeline)
	ctx := context.Background()
	admin := c.Client(0, c.AdminToken)
	res, err := admin.DAGs().Trigger(ctx, "etl", &api.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	run := res.RunIDs[0]
	c.WaitRun("etl", run, 2*time.Minute, "finished", testcluster.Finished)
	runPath := "/v1/dags/etl/runs/" + run

	// Each route: the role it needs, a request to send, and the status an allowed caller gets.
	// Actions that would change something use a name that does not exist where they can, so
	// that an allowed caller's 404 proves it got past the check.
	type call_ struct {
		role, path, body string
		ok               int
	}
	table := map[string]call_{
		"GET /v1/health":                {"", "/v1/health", "", 200},
		"GET /v1/status/leader":         {"viewer", "/v1/status/leader", "", 200},
		"GET /v1/status/history":        {"viewer", "/v1/status/history", "", 200},
		"GET /metrics":                  {"viewer", "/metrics", "", 200},
		"GET /v1/dags":                  {"viewer", "/v1/dags", "", 200},
		"GET /v1/dags/{dag}":            {"viewer", "/v1/dags/etl", "", 200},
		"POST /v1/dags/{dag}/runs":      {"operator", "/v1/dags/nope/runs", `{}`, 404},
		"POST /v1/dags/{dag}/backfill":  {"operator", "/v1/dags/nope/backfill", `{"from":"2026-01-01T00:00:00Z","to":"2026-01-02T00:00:00Z"}`, 404},
		"POST /v1/dags/{dag}/pause":     {"operator", "/v1/dags/nope/pause", "", 404},
		"POST /v1/dags/{dag}/unpause":   {"operator", "/v1/dags/nope/unpause", "", 404},
		"GET /v1/runs":                  {"viewer", "/v1/runs", "", 200},
		"GET /v1/dags/{dag}/runs":       {"viewer", "/v1/dags/etl/runs", "", 200},
		"GET /v1/dags/{dag}/runs/{run}": {"viewer", runPath, "", 200},
		"GET /v1/dags/{dag}/runs/{run}/tasks/{task}/tries/{try}/logs": {"viewer", runPath + "/tasks/extract/tries/1/logs", "", 200},
		"POST /v1/dags/{dag}/runs/{run}/tasks/{task}/clear":           {"operator", runPath + "/tasks/nope/clear", `{}`, 404},
		"POST /v1/dags/{dag}/runs/{run}/tasks/{task}/mark":            {"operator", runPath + "/tasks/nope/mark", `{"state":"success"}`, 404},
		"POST /v1/dags/{dag}/runs/{run}/cancel":                       {"operator", runPath + "/cancel", "", 409},
		"GET /v1/assets":                                              {"viewer", "/v1/assets", "", 200},
		"GET /v1/assets/{name}":                                       {"viewer", "/v1/assets/nope", "", 404},
		"POST /v1/assets/{name}/events":                               {"operator", "/v1/assets/bad%20name/events", `{}`, 400},
		"GET /v1/deliveries":                                          {"viewer", "/v1/deliveries", "", 200},
		"POST /v1/acl/bootstrap":                                      {"", "/v1/acl/bootstrap", "", 403}, // done once already
		"GET /v1/acl/token/self":                                      {"viewer", "/v1/acl/token/self", "", 200},
		"GET /v1/acl/tokens":                                          {"admin", "/v1/acl/tokens", "", 200},
		"POST /v1/acl/tokens":                                         {"admin", "/v1/acl/tokens", `{"name":"x","role":"nope"}`, 400},
		"DELETE /v1/acl/tokens/{id}":                                  {"admin", "/v1/acl/tokens/nope", "", 404},
	}
	callers := []struct{ name, token, role string }{
		{"no token", "", ""},
		{"bad token", "00000000-0000-4000-8000-000000000000", ""},
		{"viewer", c.Token(api.RoleViewer), api.RoleViewer},
		{"operator", c.Token(api.RoleOperator), api.RoleOperator},
		{"admin", c.AdminToken, api.RoleAdmin},
	}
	rank := map[string]int{"": 0, "viewer": 1, "operator": 2, "admin": 3}
	for _, rt := range web.Routes() {
		tc, ok := table[rt.Pattern]
		if !ok {
			t.Errorf("route %s is missing from the matrix", rt.Pattern)
			continue
		}
		if tc.role != rt.Role {
			t.Errorf("route %s needs role %q, want %q", rt.Pattern, rt.Role, tc.role)
		}
		method, _, _ := strings.Cut(rt.Pattern, " ")
		for _, who := range callers {
			want := tc.ok
			switch {
			case tc.role == "":
			case who.name == "no token":
				want = http.StatusUnauthorized
			case rank[who.role] < rank[tc.role]:
				want = http.StatusForbidden
			}
			resp, body := call(t, method, c.Instances[0].URL+tc.path, who.token, tc.body)
			if resp.StatusCode != want {
				t.Errorf("%s as %s: status %d, want %d; body: %s", rt.Pattern, who.name, resp.StatusCode, want, body)
			}
		}
		delete(table, rt.Pattern)
	}
	for p := range table {
		t.Errorf("matrix names %s, which is not a route", p)
	}
}

// TestAnonymousRole lets a request without a token read, but not act, when the configuration
// says anonymous callers are viewers.
func TestAnonymousRole(t *testing.T) {
	t.Parallel()
	c := testcluster.New(t, testcluster.Options{Config: func(cfg *config.Server) { cfg.ACL.AnonymousRole = api.RoleViewer }})
	c.Apply(pipeline)
	base := c.Instances[0].URL
	if resp, body := call(t, "GET", base+"/v1/dags", "", ""); resp.StatusCode != 200 {
		t.Errorf("anonymous list: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "POST", base+"/v1/dags/etl/pause", "", ""); resp.StatusCode != 401 {
		t.Errorf("anonymous pause: %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "POST", base+"/v1/dags/etl/pause", "00000000-0000-4000-8000-000000000000", ""); resp.StatusCode != 403 {
		t.Errorf("pause with a bad token: %d %s", resp.StatusCode, body)
	}
}
