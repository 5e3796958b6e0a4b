package spec

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
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
	var diags hcl.Diagnostics
	var files []*hclsyntax.Body
	var names []string
	for _, name := range paths {
		src, err := os.ReadFile(name)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Cannot read DAG file", Detail: err.Error() + "."})
			continue
		}
		f, fdiags := p.p.ParseHCL(src, name)
		diags = append(diags, fdiags...)
		if f == nil || fdiags.HasErrors() {
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
func (p *Parser) decode(names []string, bodies []*hclsyntax.Body) (*Config, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	type pending struct {
		file  *fileScope
		block *hclsyntax.Block
	}
	var dagBlocks, queueBlocks []pending
	declaredVars := map[string]bool{}
	for i, body := range bodies {
		content, cdiags := body.Content(fileSchema)
		diags = append(diags, cdiags...)
		scope := &fileScope{name: names[i], src: p.p.Files()[names[i]].Bytes}
		diags = append(diags, scope.decodeVariables(content.Blocks, p.Vars, declaredVars)...)
		// The syntax blocks keep their full source range, which the schema's blocks lack; a
		// block without its one label was already reported by Content above.
		for _, b := range body.Blocks {
			if len(b.Labels) != 1 {
				continue
			}
			switch b.Type {
			case "dag":
				dagBlocks = append(dagBlocks, pending{scope, b})
			case "queue":
				queueBlocks = append(queueBlocks, pending{scope, b})
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

	dags := map[string]*DAG{}
	for _, pb := range dagBlocks {
		d, ddiags := pb.file.decodeDAG(pb.block, queues)
		diags = append(diags, ddiags...)
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
