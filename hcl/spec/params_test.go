package spec_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/dagflow/dagflow/hcl/spec"
)

func paramsDAG(t *testing.T) *spec.DAG {
	t.Helper()
	cfg, diags := spec.NewParser().LoadSource([]byte(`
dag "d" {
  start_date = "2026-01-01"
  param "title" {
    type     = string
    required = true
  }
  param "days" {
    type    = number
    default = 1
  }
  param "regions" {
    type    = list(string)
    default = ["eu"]
  }
  task "a" {
    command = "/bin/true"
  }
}
`), "d.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg.DAGs[0]
}

func TestResolveParams(t *testing.T) {
	d := paramsDAG(t)
	tests := []struct {
		name  string
		given map[string]string // JSON values
		want  map[string]string
		err   []string
	}{
		{name: "defaults fill in", given: map[string]string{"title": `"x"`},
			want: map[string]string{"title": `"x"`, "days": `1`, "regions": `["eu"]`}},
		{name: "values are converted", given: map[string]string{"title": `42`, "days": `"7"`, "regions": `["a","b"]`},
			want: map[string]string{"title": `"42"`, "days": `7`, "regions": `["a","b"]`}},
		{name: "every problem", given: map[string]string{"titel": `"x"`, "days": `"soon"`, "regions": `{"a":1}`},
			err: []string{`param "days": want a number`, `param "regions": want a list(string)`, `param "titel": the DAG has no such param. Did you mean "title"?`, `param "title": required`}},
		{name: "null is no value", given: map[string]string{"title": `null`}, err: []string{`param "title": want a string, not null`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			given := map[string]json.RawMessage{}
			for k, v := range tt.given {
				given[k] = json.RawMessage(v)
			}
			got, err := d.ResolveParams(given)
			if tt.err != nil {
				var perrs spec.ParamErrors
				if err == nil || !asParamErrors(err, &perrs) || len(perrs) != len(tt.err) {
					t.Fatalf("error %v, want %d param errors %q", err, len(tt.err), tt.err)
				}
				for i, want := range tt.err {
					if msg := `param "` + perrs[i].Param + `": ` + perrs[i].Message; !strings.HasPrefix(msg, want) {
						t.Errorf("error %d = %q, want prefix %q", i, msg, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotS := map[string]string{}
			for k, v := range got {
				gotS[k] = string(v)
			}
			if diff := cmp.Diff(tt.want, gotS); diff != "" {
				t.Errorf("ResolveParams (-want +got):\n%s", diff)
			}
		})
	}
}

func asParamErrors(err error, out *spec.ParamErrors) bool {
	pe, ok := err.(spec.ParamErrors)
	*out = pe
	return ok
}

func TestParseParam(t *testing.T) {
	d := paramsDAG(t)
	byName := map[string]*spec.Param{}
	for _, p := range d.Params {
		byName[p.Name] = p
	}
	tests := []struct{ param, text, want, err string }{
		{"title", `Q4 "numbers"`, `"Q4 \"numbers\""`, ""},
		{"days", `7`, `7`, ""},
		{"regions", `["eu", "us"]`, `["eu","us"]`, ""},
		{"days", `soon`, "", `"soon" is not a valid number`},
		{"regions", `[`, "", `"[" is not a valid list(string)`},
		{"regions", `{a = 1}`, "", `is not a valid list(string)`},
	}
	for _, tt := range tests {
		got, err := spec.ParseParam(byName[tt.param], tt.text)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseParam(%s, %q) error %v, want %q", tt.param, tt.text, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("ParseParam(%s, %q) = %s, %v; want %s", tt.param, tt.text, got, err, tt.want)
		}
	}
}
