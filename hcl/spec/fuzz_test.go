package spec_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dagflow/dagflow/hcl/spec"
)

// FuzzLoad feeds arbitrary source to the parser. Whatever the input, loading must not panic;
// source that loads without errors must hash, and formatting must be idempotent. The seed corpus
// is every test file, so `go test` runs it on each build.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.hcl")
	for _, s := range seeds {
		src, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(`dag "x" { task "t" { command = "${run.id}${" } }`))
	f.Add([]byte(`dag "x" { task "t" { for_each = {a = 1} command = "/bin/${each.value}" depends_on = ["t[a]"] } }`))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := spec.NewParser().LoadSource(src, "fuzz.hcl")
		if !diags.HasErrors() {
			if cfg == nil {
				t.Fatal("no errors but no configuration")
			}
			for _, d := range cfg.DAGs {
				if _, err := spec.Hash(d); err != nil {
					t.Fatalf("hash %s: %v", d.Name, err)
				}
			}
		}
		once, fdiags := spec.Format(src, "fuzz.hcl")
		if fdiags.HasErrors() {
			return
		}
		twice, _ := spec.Format(once, "fuzz.hcl")
		if !bytes.Equal(once, twice) {
			t.Fatalf("formatting is not idempotent:\n%s\n---\n%s", once, twice)
		}
	})
}
