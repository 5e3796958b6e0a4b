package spec_test

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/dagflow/dagflow/hcl/spec"
	"github.com/dagflow/dagflow/internal/golden"
)

// diagnosticText renders diagnostics the way dagflow validate prints them.
func diagnosticText(t *testing.T, p *spec.Parser, diags hcl.Diagnostics) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := hcl.NewDiagnosticTextWriter(&buf, p.Files(), 0, false)
	if err := w.WriteDiagnostics(diags); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestInvalid pins the diagnostics for every class of mistake: each file under
// testdata/invalid must fail with exactly the errors in its .golden file.
func TestInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".hcl"), func(t *testing.T) {
			p := spec.NewParser()
			_, diags := p.Load(file)
			if !diags.HasErrors() {
				t.Fatalf("Load(%s) reported no errors", file)
			}
			golden.Check(t, strings.TrimSuffix(file, ".hcl")+".golden", diagnosticText(t, p, diags))
		})
	}
}

// TestInvalidTogether loads every file under testdata/invalid at once, as a directory: the
// diagnostics include those across files (a DAG declared in two), and must come out the same,
// sorted by file and line, however the files' decoding was spread over the cores. The golden
// file was written by a loader that decoded one block after another.
func TestInvalidTogether(t *testing.T) {
	for range 5 {
		p := spec.NewParser()
		_, diags := p.Load("testdata/invalid")
		if !diags.HasErrors() {
			t.Fatal("Load(testdata/invalid) reported no errors")
		}
		golden.Check(t, "testdata/invalid_together.golden", diagnosticText(t, p, diags))
		if t.Failed() {
			return
		}
	}
}

// TestValid pins the decoded definitions of the valid examples as JSON.
func TestValid(t *testing.T) {
	p := spec.NewParser()
	cfg, diags := p.Load("testdata/valid")
	if diags.HasErrors() {
		t.Fatalf("Load: %s", diagnosticText(t, p, diags))
	}
	got, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/valid.golden.json", append(got, '\n'))
}

func TestExamplesAreValid(t *testing.T) {
	p := spec.NewParser()
	cfg, diags := p.Load("../../examples")
	if diags.HasErrors() {
		t.Fatalf("examples do not validate:\n%s", diagnosticText(t, p, diags))
	}
	if len(cfg.DAGs) == 0 {
		t.Fatal("examples declare no DAGs")
	}
}

func TestVarOverrides(t *testing.T) {
	src := []byte(`
variable "regions" {
  type    = list(string)
  default = ["eu"]
}
variable "image" {
  default = "alpine:3"
}
dag "d" {
  task "t" {
    for_each = toset(var.regions)
    driver   = "docker"
    image    = var.image
  }
}`)
	tests := []struct {
		name      string
		vars      map[string]string
		wantTasks []string
		wantImage string
		wantErr   string
	}{
		{name: "defaults", wantTasks: []string{"t[eu]"}, wantImage: "alpine:3"},
		{name: "list parsed as HCL", vars: map[string]string{"regions": `["eu", "us"]`}, wantTasks: []string{"t[eu]", "t[us]"}, wantImage: "alpine:3"},
		{name: "string taken as is", vars: map[string]string{"image": `busybox:1`}, wantTasks: []string{"t[eu]"}, wantImage: "busybox:1"},
		{name: "wrong type", vars: map[string]string{"regions": `"eu"`}, wantErr: `Invalid value for variable`},
		{name: "undeclared", vars: map[string]string{"nope": `1`}, wantErr: `no DAG file declares it`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := spec.NewParser()
			p.Vars = tt.vars
			cfg, diags := p.LoadSource(src, "vars.hcl")
			if tt.wantErr != "" {
				if !strings.Contains(diags.Error(), tt.wantErr) {
					t.Fatalf("diagnostics %q do not contain %q", diags.Error(), tt.wantErr)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			var names []string
			for _, task := range cfg.DAGs[0].Tasks {
				names = append(names, task.Name)
				if task.Image != tt.wantImage {
					t.Errorf("task %s image = %q, want %q", task.Name, task.Image, tt.wantImage)
				}
			}
			if diff := cmp.Diff(tt.wantTasks, names); diff != "" {
				t.Errorf("tasks (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHashStable checks that formatting and declaration order do not change a DAG's version,
// while any change of meaning does.
func TestHashStable(t *testing.T) {
	load := func(src string) string {
		t.Helper()
		cfg, diags := spec.NewParser().LoadSource([]byte(src), "h.hcl")
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		h, err := spec.Hash(cfg.DAGs[0])
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a := load(`dag "d" {
  task "a" { command = "/bin/true" }
  task "b" {
    command = "/bin/true"
    depends_on = ["a"]
  }
}`)
	b := load(`dag "d" {
  task "b" {
    depends_on = ["a"]
    command    = "/bin/true"
  }
  task "a" {
    command = "/bin/true"
  }
}`)
	c := load(`dag "d" {
  task "a" { command = "/bin/true" }
  task "b" {
    command = "/bin/false"
    depends_on = ["a"]
  }
}`)
	if a != b {
		t.Errorf("reordering and reformatting changed the hash: %s != %s", a, b)
	}
	if a == c {
		t.Errorf("changing a command kept the hash %s", a)
	}
}
