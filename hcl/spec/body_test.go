package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// TestBodyContent checks that bodyContent returns what hcl's Content does, for every body of
// every test and example file against every schema of the package: the fast path where
// Content would report nothing, hcl's own result otherwise.
func TestBodyContent(t *testing.T) {
	var files []string
	for _, pattern := range []string{"testdata/*/*.hcl", "../../examples/*.hcl"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var bodies []*hclsyntax.Body
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, syntaxBodies(src, name)...)
	}
	if len(bodies) < 100 {
		t.Fatalf("only %d bodies in %d files", len(bodies), len(files))
	}
	fast := 0
	for _, b := range bodies {
		fast += compareContent(t, b)
	}
	if fast == 0 {
		t.Error("no body had content without diagnostics")
	}
	t.Logf("%d bodies of %d files: %d body and schema pairs without diagnostics", len(bodies), len(files), fast)
}

// FuzzBodyContent compares bodyContent with hcl's Content on the bodies of arbitrary source.
func FuzzBodyContent(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.hcl")
	for _, s := range seeds {
		src, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		for _, b := range syntaxBodies(src, "fuzz.hcl") {
			compareContent(t, b)
		}
	})
}

// contentSchemas are the package's schemas, by a name for messages.
func contentSchemas() map[string]*hcl.BodySchema {
	schemas := map[string]*hcl.BodySchema{
		"file": fileSchema, "dag": dagSchema, "param": paramSchema, "defaults": defaultsSchema,
		"task": taskSchema, "resources": resourcesSchema, "variable": variableSchema, "group": groupSchema,
		"queue": queueSchema, "constraint": constraintSchema, "sensor": sensorSchema,
		"callback": callbackSchema, "webhook": webhookSchema, "deadline": deadlineSchema,
		"device": deviceSchema, "artifact": artifactSchema, "volume": volumeSchema,
		"volume_mount": volumeMountSchema, "secret": secretSchema, "template": templateSchema, "vault": vaultSchema,
	}
	for kind, s := range sensorBodySchemas {
		schemas["sensor "+kind] = s
	}
	return schemas
}

// syntaxBodies parses src and returns its body and every block's, nested ones too.
func syntaxBodies(src []byte, name string) []*hclsyntax.Body {
	f, _ := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
	if f == nil {
		return nil
	}
	root, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var bodies []*hclsyntax.Body
	var walk func(*hclsyntax.Body)
	walk = func(b *hclsyntax.Body) {
		bodies = append(bodies, b)
		for _, blk := range b.Blocks {
			walk(blk.Body)
		}
	}
	walk(root)
	return bodies
}

// compareContent checks bodyContent against Content for b and every schema, and returns for how
// many schemas Content reported nothing.
func compareContent(t *testing.T, b *hclsyntax.Body) int {
	t.Helper()
	fast := 0
	for name, s := range contentSchemas() {
		want, wantDiags := b.Content(s)
		got, gotDiags := bodyContent(b, s)
		if len(wantDiags) == 0 {
			fast++
		}
		if diff := cmp.Diff(describeContent(want, wantDiags), describeContent(got, gotDiags)); diff != "" {
			t.Errorf("%s, schema %s (-Content +bodyContent):\n%s", b.SrcRange, name, diff)
		}
	}
	return fast
}

// describeContent is what a caller can see of Content's result, in a comparable form.
func describeContent(c *hcl.BodyContent, diags hcl.Diagnostics) []string {
	var out []string
	for name, a := range c.Attributes {
		out = append(out, fmt.Sprintf("attr %s %p %v %v %v", name, a.Expr, a.Range, a.NameRange, a.Name))
	}
	sort.Strings(out)
	for _, b := range c.Blocks {
		out = append(out, fmt.Sprintf("block %s %q %p %v %v %v", b.Type, b.Labels, b.Body, b.DefRange, b.TypeRange, b.LabelRanges))
	}
	out = append(out, fmt.Sprintf("missing %v", c.MissingItemRange))
	var ds []string
	for _, d := range diags {
		ds = append(ds, fmt.Sprintf("diag %v %q %q %v %v", d.Severity, d.Summary, d.Detail, d.Subject, d.Context))
	}
	sort.Strings(ds)
	return append(out, ds...)
}
