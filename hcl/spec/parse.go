package spec

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/dagflow/dagflow/internal/bounded"
)

// FileExt is the extension of DAG files. Loading a directory reads every file with it, in every
// subdirectory, except files and directories whose names start with a dot.
const FileExt = ".hcl"

// namePattern is what DAG, task, queue and for_each key names may look like: they become parts
// of Nomad job IDs, Consul KV keys and URLs, so they stay within characters all three take as is.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// identPattern is what names used in expressions (params, variables) may look like.
var identPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var fileSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "queue", LabelNames: []string{"name"}},
		{Type: "dag", LabelNames: []string{"name"}},
	},
}

// Parser loads DAG files. Its Files are what diagnostics point into, for printing them with
// their source lines.
type Parser struct {
	// Vars overrides variable defaults by name ("-var NAME=VALUE"): a string variable takes the
	// text as is, any other type parses it as an HCL expression, as Terraform does.
	Vars map[string]string

	p *hclparse.Parser
}

// NewParser returns a Parser with no variable overrides.
func NewParser() *Parser {
	return &Parser{p: hclparse.NewParser()}
}

// Files returns every file parsed so far, by the name diagnostics use.
func (p *Parser) Files() map[string]*hcl.File {
	return p.p.Files()
}

// Load reads a DAG file, or every DAG file below a directory, and returns the validated
// configuration. It reports every problem it finds, not only the first; when the diagnostics
// have errors the configuration is incomplete and must not be applied.
func (p *Parser) Load(path string) (*Config, hcl.Diagnostics) {
	paths, err := Files(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Cannot read DAG files",
			Detail:   err.Error() + ".",
		}}
	}
	// Files are read and parsed on every core (a third of the time of loading 10,000 DAG
	// files), then registered with the parser, which is not safe for concurrent use, in order.
	type parsed struct {
		file  *hcl.File
		diags hcl.Diagnostics
	}
	results := make([]parsed, len(paths))
	fns := make([]func(context.Context) error, len(paths))
	for i, name := range paths {
		fns[i] = func(context.Context) error {
			src, err := os.ReadFile(name)
			if err != nil {
				results[i].diags = hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read DAG file", Detail: err.Error() + "."}}
				return nil
			}
			results[i].file, results[i].diags = hclsyntax.ParseConfig(src, name, hcl.Pos{Line: 1, Column: 1, Byte: 0})
			return nil
		}
	}
	_ = bounded.Run(context.Background(), runtime.GOMAXPROCS(0), fns) // the functions never fail
	var diags hcl.Diagnostics
	var files []*hclsyntax.Body
	var names []string
	for i, name := range paths {
		f, fdiags := results[i].file, results[i].diags
		diags = append(diags, fdiags...)
		if f == nil {
			continue
		}
		p.p.AddFile(name, f)
		if fdiags.HasErrors() {
			continue
		}
		files = append(files, f.Body.(*hclsyntax.Body))
		names = append(names, name)
	}
	cfg, cdiags := p.decode(names, files)
	diags = append(diags, cdiags...)
	sortDiagnostics(diags)
	return cfg, diags
}

// LoadSource parses DAG source held in memory as if it were the file name: for tests, fuzzing
// and tools that do not read from disk.
func (p *Parser) LoadSource(src []byte, name string) (*Config, hcl.Diagnostics) {
	f, diags := p.p.ParseHCL(src, name)
	if f == nil || diags.HasErrors() {
		return nil, diags
	}
	cfg, cdiags := p.decode([]string{name}, []*hclsyntax.Body{f.Body.(*hclsyntax.Body)})
	diags = append(diags, cdiags...)
	sortDiagnostics(diags)
	return cfg, diags
}

// Files returns the DAG files at path, sorted: path itself when it is a file, otherwise every
// *.hcl file below it, skipping files and directories whose names start with a dot (.git,
// editor backups).
func Files(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != path && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), FileExt) && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s files in %s", FileExt, path)
	}
	sort.Strings(out)
	return out, nil
}

// decode turns parsed files into a Config. Variables and locals are scoped to their file, so a
// DAG file can be copied between repositories with everything it needs; DAG and queue names are
// global.
//
// Files' scopes and then DAG blocks are decoded on every core (decoding 10,000 DAGs one after
// another took as long as parsing them did on two cores); queues, which DAGs are checked
// against, are decoded before any DAG. Every result is kept in its slot and merged in file and
// block order, so diagnostics, duplicates (the first declaration wins) and the Config are the
// same as decoding one block after another.
func (p *Parser) decode(names []string, bodies []*hclsyntax.Body) (*Config, hcl.Diagnostics) {
	workers := runtime.GOMAXPROCS(0)
	files := p.p.Files()

	type fileResult struct {
		scope    *fileScope
		diags    hcl.Diagnostics
		declared map[string]bool
	}
	scoped := make([]fileResult, len(bodies))
	fns := make([]func(context.Context) error, len(bodies))
	for i, body := range bodies {
		fns[i] = func(context.Context) error {
			r := &scoped[i]
			content, cdiags := bodyContent(body, fileSchema)
			r.diags = append(r.diags, cdiags...)
			r.scope = &fileScope{name: names[i], src: files[names[i]].Bytes}
			r.declared = map[string]bool{}
			r.diags = append(r.diags, r.scope.decodeVariables(content.Blocks, p.Vars, r.declared)...)
			return nil
		}
	}
	_ = bounded.Run(context.Background(), workers, fns) // the functions never fail

	var diags hcl.Diagnostics
	type pending struct {
		file  *fileScope
		block *hclsyntax.Block
	}
	var dagBlocks, queueBlocks []pending
	declaredVars := map[string]bool{}
	for i, body := range bodies {
		r := scoped[i]
		diags = append(diags, r.diags...)
		maps.Copy(declaredVars, r.declared)
		// The syntax blocks keep their full source range, which the schema's blocks lack; a
		// block without its one label was already reported by Content above.
		for _, b := range body.Blocks {
			if len(b.Labels) != 1 {
				continue
			}
			switch b.Type {
			case "dag":
				dagBlocks = append(dagBlocks, pending{r.scope, b})
			case "queue":
				queueBlocks = append(queueBlocks, pending{r.scope, b})
			}
		}
	}
	for name := range p.Vars {
		if !declaredVars[name] {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Undeclared variable",
				Detail:   fmt.Sprintf("A value was given for variable %q, but no DAG file declares it. Declare it with a variable block, or remove the -var option.", name),
			})
		}
	}

	cfg := &Config{}
	queues := map[string]*Queue{}
	for _, pb := range queueBlocks {
		q, qdiags := pb.file.decodeQueue(pb.block)
		diags = append(diags, qdiags...)
		if q == nil {
			continue
		}
		if prev, ok := queues[q.Name]; ok {
			diags = append(diags, duplicate("queue", q.Name, q.DeclRange, prev.DeclRange))
			continue
		}
		queues[q.Name] = q
		cfg.Queues = append(cfg.Queues, q)
	}
	if _, ok := queues[DefaultQueue]; !ok {
		q := &Queue{Name: DefaultQueue, Description: "Tasks that name no queue."}
		queues[q.Name] = q
		cfg.Queues = append(cfg.Queues, q)
	}

	// From here on queues is only read, and a file's scope is only read, so DAG blocks decode
	// concurrently, several of one file included.
	type dagResult struct {
		dag   *DAG
		diags hcl.Diagnostics
	}
	decoded := make([]dagResult, len(dagBlocks))
	fns = make([]func(context.Context) error, len(dagBlocks))
	for i, pb := range dagBlocks {
		fns[i] = func(context.Context) error {
			decoded[i].dag, decoded[i].diags = pb.file.decodeDAG(pb.block, queues)
			return nil
		}
	}
	_ = bounded.Run(context.Background(), workers, fns) // the functions never fail

	dags := map[string]*DAG{}
	for _, r := range decoded {
		d := r.dag
		diags = append(diags, r.diags...)
		if d == nil {
			continue
		}
		if prev, ok := dags[d.Name]; ok {
			diags = append(diags, duplicate("dag", d.Name, d.DeclRange, prev.DeclRange))
			continue
		}
		dags[d.Name] = d
		cfg.DAGs = append(cfg.DAGs, d)
	}
	sort.Slice(cfg.DAGs, func(i, j int) bool { return cfg.DAGs[i].Name < cfg.DAGs[j].Name })
	sort.Slice(cfg.Queues, func(i, j int) bool { return cfg.Queues[i].Name < cfg.Queues[j].Name })
	return cfg, diags
}

// fileScope is what expressions in one file can refer to.
type fileScope struct {
	name   string
	src    []byte
	vars   map[string]cty.Value
	locals map[string]cty.Value

	// base binds var, local and the runtime namespaces once decodeVariables is done; see
	// evalContext.
	base *hcl.EvalContext
}

func duplicate(kind, name string, rng, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s %q", kind, name),
		Detail:   fmt.Sprintf("A %s named %q was already declared at %s. Names must be unique; rename or remove one of them.", kind, name, prev),
		Subject:  rng.Ptr(),
	}
}

// checkName reports a name that cannot be used as part of Nomad job IDs and KV keys.
func checkName(kind, name string, rng hcl.Range) *hcl.Diagnostic {
	if namePattern.MatchString(name) {
		return nil
	}
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Invalid %s name", kind),
		Detail:   fmt.Sprintf("The %s name %q cannot be used: names become part of Nomad job IDs and Consul keys, so they must start with a letter or digit, contain only letters, digits, \"_\" and \"-\", and be at most 64 characters long.", kind, name),
		Subject:  rng.Ptr(),
	}
}

// blockSource returns the text of a block as written.
func (f *fileScope) blockSource(b *hclsyntax.Block) string {
	r := b.Range()
	if r.Start.Byte < 0 || r.End.Byte > len(f.src) || r.Start.Byte > r.End.Byte {
		return ""
	}
	return string(f.src[r.Start.Byte:r.End.Byte])
}

// sortDiagnostics orders diagnostics by position so output is stable and reads top to bottom;
// diagnostics without a position come first.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
}
